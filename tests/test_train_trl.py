"""TRL engine end to end on a tiny model: GRPO steps, logs, mixtures, curricula, SIGKILL + resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mdrl.train.config import load_config
from mdrl.train.metrics import consumed_rows, domain_shares, read_jsonl

pytest.importorskip("trl")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A very small random Qwen2 with mdrl's tokenizer, built in seconds."""
    from mdrl.data import generate
    from mdrl.domains import get_domain
    from mdrl.templates import Template
    from mdrl.tiny import TinyModelConfig, build_tiny

    corpus = []
    for domain, level in (("countdown", 3), ("knights_knaves", 2), ("knights_knaves", 3)):
        for problem in generate(domain, 6, seed=0, difficulties=[level]):
            corpus += [
                Template("plain").render(get_domain(domain).render_question(problem)),
                problem.reference,
            ]
    folder = tmp_path_factory.mktemp("tiny")
    build_tiny(
        folder,
        TinyModelConfig(
            vocab_size=400,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            intermediate_size=64,
        ),
        corpus=corpus,
    )
    return folder


def _config(model: Path, out: Path, *overrides: str):
    return load_config(
        "tiny",
        overrides=[
            f"model.path={model}",
            f"run.output_dir={out}",
            "grpo.num_generations=2",
            "grpo.train_batch_size=4",
            "grpo.micro_batch_size=8",
            "grpo.max_completion_length=8",
            "grpo.max_prompt_length=512",
            "data.n=8",
            "run.save_steps=100",
            *overrides,
        ],
    )


def test_grpo_runs_end_to_end_and_logs_per_domain_metrics(tiny_model, tmp_path):
    from mdrl.train import train

    out = tmp_path / "run"
    config = _config(
        tiny_model,
        out,
        "grpo.max_steps=3",
        "data.mix=countdown:1,knights_knaves:1",
        "data.difficulty={countdown: '3', knights_knaves: '2'}",
    )
    summary = train(config)
    assert summary["global_step"] == 3 and Path(summary["final_model"], "config.json").is_file()
    # 12 completions per domain: fewer than the START_SAMPLES a starting reward is measured on
    assert summary["start_reward"] == {} and summary["flat_start"] == []
    metrics = read_jsonl(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2, 3]
    for key in (
        "rewards/countdown/mean",
        "rewards/knights_knaves/mean",
        "rewards/countdown/acc",
        "rewards/knights_knaves/length",
        "frac_reward_zero_std",
        "data/countdown/prompts",
        "loss",
    ):
        assert any(key in m for m in metrics), key
    # 8 prompts, 4:4; three batches of 4 take one epoch and half of a reshuffled second one.
    per_step = [m.get("data/countdown/prompts", 0) + m.get("data/knights_knaves/prompts", 0) for m in metrics]
    assert per_step == [4, 4, 4]
    assert load_config(config_file=out / "config.yaml") == config  # the resolved config is saved
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert json.loads((out / "summary.json").read_text())["step"] == 3
    rows = consumed_rows(out / "consumed.jsonl")
    assert [r["row"] for r in rows] == list(range(12))  # 3 batches of 4 prompts, in plan order


def test_progress_off_silences_the_training_bar(tiny_model, tmp_path, capsys):
    """A study run with --no-progress passes run.progress=false: its workers draw no TRL bars."""
    from mdrl.train import train

    train(_config(tiny_model, tmp_path / "quiet", "grpo.max_steps=1", "run.progress=false"))
    quiet = capsys.readouterr()
    assert "updates" not in quiet.err and "'loss'" not in quiet.out + quiet.err  # no bar, no log dicts
    train(_config(tiny_model, tmp_path / "shown", "grpo.max_steps=1"))
    assert "updates" in capsys.readouterr().err


def test_mixture_proportions_hold_over_an_epoch(tiny_model, tmp_path):
    from mdrl.train import train

    out = tmp_path / "run"
    # 1:3 over 24 prompts = 6 + 18; 6 rollout batches of 4 consume exactly one epoch.
    train(
        _config(
            tiny_model,
            out,
            "data.mix=countdown:1,knights_knaves:3",
            "data.n=24",
            "data.difficulty={countdown: '3', knights_knaves: '2'}",
            "grpo.epochs=1",
        )
    )
    shares = domain_shares(consumed_rows(out / "consumed.jsonl"))
    assert list(shares) == [0]
    assert abs(shares[0]["countdown"] - 0.25) <= 0.02
    assert abs(shares[0]["knights_knaves"] - 0.75) <= 0.02
    manifest = json.loads((out / "data" / "manifest.json").read_text())
    assert manifest["data"]["target_proportions"] == {"countdown": 0.25, "knights_knaves": 0.75}


def test_curriculum_is_consumed_easy_to_hard_without_shuffling(tiny_model, tmp_path):
    from mdrl.train import train

    out = tmp_path / "run"
    train(
        _config(
            tiny_model,
            out,
            "data.mix=knights_knaves:1",
            "data.difficulty.knights_knaves=2-3",
            "data.curriculum=difficulty",
            "data.n=12",
            "grpo.epochs=2",
        )
    )
    rows = consumed_rows(out / "consumed.jsonl")
    assert len(rows) == 24
    for epoch in (0, 1):
        levels = [r["difficulty"] for r in rows if r["epoch"] == epoch]
        assert levels == sorted(levels) and set(levels) == {2, 3}, levels


def test_chat_template_prompts_train_as_conversations(tiny_model, tmp_path):
    from mdrl.train import train

    out = tmp_path / "run"
    summary = train(
        _config(
            tiny_model,
            out,
            "grpo.max_steps=2",
            "data.template=chat",
            "data.mix=countdown:1",
            "data.difficulty.countdown=3",
        )
    )
    assert summary["global_step"] == 2
    items = [json.loads(line) for line in (out / "data" / "items.jsonl").read_text().splitlines()]
    assert items[0]["prompt"][0]["role"] == "system" and items[0]["prompt"][-1]["role"] == "user"
    assert [m["step"] for m in read_jsonl(out / "metrics.jsonl")] == [1, 2]


def test_shuffled_epochs_differ_but_keep_every_batch_mixed():
    from mdrl.data import max_prefix_deviation
    from mdrl.train.plan import epoch_order

    domains = ["a", "b", "b", "a", "b", "b", "a", "b", "b", "b", "a", "b"]  # 4 a : 8 b, as built
    order = epoch_order(domains, 3, shuffled=True, seed=0)
    epochs = [[item for e, item in order if e == epoch] for epoch in range(3)]
    assert epochs[0] == list(range(12))  # the built order first
    assert all(sorted(items) == list(range(12)) for items in epochs) and epochs[1] != epochs[2] != epochs[0]
    for items in epochs[1:]:  # reshuffled within each domain, but still interleaved 1:2
        assert (
            max_prefix_deviation([domains[i] for i in items], {"a": 1 / 3, "b": 2 / 3}, min_prefix=3) <= 1 / 3
        )
    unshuffled = epoch_order(domains, 2, shuffled=False, seed=0)
    assert unshuffled == [(e, i) for e in range(2) for i in range(12)]


def test_changed_settings_refuse_to_continue_a_run(tiny_model, tmp_path):
    from mdrl.train import train

    out = tmp_path / "run"
    train(
        _config(
            tiny_model,
            out,
            "grpo.max_steps=2",
            "run.save_steps=1",
            "data.mix=knights_knaves:1",
            "data.difficulty.knights_knaves=2",
        )
    )
    with pytest.raises(ValueError, match="grpo.learning_rate"):
        train(
            _config(
                tiny_model,
                out,
                "grpo.max_steps=2",
                "run.save_steps=1",
                "data.mix=knights_knaves:1",
                "data.difficulty.knights_knaves=2",
                "grpo.learning_rate=0.1",
            )
        )


def _cli(model: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mdrl",
        "train",
        "--preset",
        "tiny",
        "--model",
        str(model),
        "-o",
        str(out),
        "--max-steps",
        "8",
        "--set",
        "data.mix=knights_knaves:1",
        "--set",
        "data.difficulty.knights_knaves=2",
        "--set",
        "data.n=32",
        "--set",
        "grpo.num_generations=2",
        "--set",
        "grpo.train_batch_size=4",
        "--set",
        "grpo.micro_batch_size=4",
        "--set",
        "grpo.max_completion_length=12",
        "--set",
        "grpo.max_prompt_length=512",
        "--set",
        "run.save_steps=2",
        # The entropy bonus gives every step a gradient even when every reward is 0, so the optimizer
        # state really evolves and a resume that lost it would end with different weights.
        "--set",
        "grpo.learning_rate=1e-3",
        "--set",
        "grpo.entropy_coeff=0.05",
    ]


@pytest.mark.slow
def test_sigkill_then_same_command_resumes_exactly(tiny_model, tmp_path):
    from safetensors.torch import load_file

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    full, killed = tmp_path / "full", tmp_path / "killed"
    subprocess.run(_cli(tiny_model, full), check=True, env=env, capture_output=True)

    process = subprocess.Popen(
        _cli(tiny_model, killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    marker = killed / "checkpoints" / "checkpoint-4" / "mdrl_checkpoint.json"
    deadline = time.time() + 300
    while not marker.is_file() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert marker.is_file(), "no checkpoint before the deadline"
    process.send_signal(signal.SIGKILL)
    process.wait()
    logged_before = [m["step"] for m in read_jsonl(killed / "metrics.jsonl")]
    assert max(logged_before) >= 4 and not (killed / "final").exists()

    rerun = subprocess.run(_cli(tiny_model, killed), check=True, env=env, capture_output=True, text=True)
    assert '"resumed_from_step": 4' in rerun.stdout

    # Steps neither repeated nor lost; data order continued; same losses and bit-identical weights.
    full_metrics, killed_metrics = read_jsonl(full / "metrics.jsonl"), read_jsonl(killed / "metrics.jsonl")
    assert [m["step"] for m in killed_metrics] == list(range(1, 9))
    assert [r["row"] for r in consumed_rows(killed / "consumed.jsonl")] == list(range(32))
    assert [m["loss"] for m in killed_metrics] == pytest.approx([m["loss"] for m in full_metrics], abs=1e-6)
    a, b = load_file(full / "final" / "model.safetensors"), load_file(killed / "final" / "model.safetensors")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-6
    # TensorBoard, as TensorBoard reads it (purging what the resumed run redid): each step once.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def steps_by_tag(folder):
        events = EventAccumulator(str(folder / "tensorboard"))
        events.Reload()
        return {tag: [e.step for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}

    assert steps_by_tag(killed) == steps_by_tag(full)
    assert all(steps == sorted(set(steps)) for tag, steps in steps_by_tag(full).items() if tag != "train/epoch")
    assert "resuming" in rerun.stderr, rerun.stderr[-3000:]
    assert "missing keys" not in rerun.stderr, rerun.stderr[-3000:]


def test_progress_bar_names_its_run_and_counts_rollout_batches():
    from types import SimpleNamespace

    from mdrl.train.metrics import RewardProgress

    bar = RewardProgress("cells/math-s10/train-a1", rollout_batches=30)
    state = SimpleNamespace(max_steps=60, global_step=0)  # two optimizer updates per rollout batch
    assert [bar._batch(SimpleNamespace(max_steps=60, global_step=s)) for s in (1, 2, 3, 60)] == \
        ["1/30", "1/30", "2/30", "30/30"]
    assert RewardProgress()._batch(state) is None


# --------------------------------------------------------------------------- several ranks (run.nproc)


def _ranks_cli(model: Path, out: Path, steps: int) -> list[str]:
    return [sys.executable, "-m", "mdrl", "train", "-p", "tiny", "--model", str(model), "-o", str(out),
            "--max-steps", str(steps), "--nproc", "2", "--set", "data.n=32", "--set", "grpo.num_generations=2",
            "--set", "grpo.train_batch_size=4", "--set", "grpo.micro_batch_size=2",
            "--set", "grpo.max_completion_length=8", "--set", "grpo.max_prompt_length=512",
            "--set", "run.save_steps=1", "--set", "run.tensorboard=false"]


def _rank_ledgers(out: Path) -> dict[int, list[dict]]:
    """step -> the rank lines of that rollout batch."""
    lines: dict[int, list[dict]] = {}
    for rank in (0, 1):
        for line in read_jsonl(out / f"consumed.rank{rank}.jsonl"):
            lines.setdefault(line["step"], []).append(line)
    return lines


def _assert_sharded_and_complete(out: Path, steps: int) -> None:
    assert [m["step"] for m in read_jsonl(out / "metrics.jsonl")] == list(range(1, steps + 1))  # rank 0 only
    assert not (out / "consumed.jsonl").exists()
    ledgers = _rank_ledgers(out)
    assert sorted(ledgers) == list(range(1, steps + 1))
    for step, lines in ledgers.items():
        assert len(lines) == 2  # each rank scored its share of the batch once
        shares = [set(line["rows"]) for line in lines]
        assert not shares[0] & shares[1] and all(shares)  # no row on both ranks
        # together: the step's whole rollout batch, in the data plan's order
        assert sorted(shares[0] | shares[1]) == list(range(4 * (step - 1), 4 * step))


def test_two_ranks_share_each_batch_and_write_logs_once(tiny_model, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(_ranks_cli(tiny_model, out, 3), capture_output=True, text=True, timeout=240,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert summary["nproc"] == 2 and summary["global_step"] == 3
    _assert_sharded_and_complete(out, 3)
    assert (out / "final" / "model.safetensors").is_file() and (out / "final" / "tokenizer.json").is_file()
    checkpoints = sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*"))
    assert checkpoints == ["checkpoint-2", "checkpoint-3"]  # one set, save_total_limit 2


@pytest.mark.slow
def test_two_ranks_resume_after_sigkill(tiny_model, tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen(_ranks_cli(tiny_model, out, 6), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    marker = out / "checkpoints" / "checkpoint-3" / "mdrl_checkpoint.json"
    deadline = time.time() + 300
    while not marker.is_file() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert marker.is_file(), "no checkpoint before the deadline"
    process.send_signal(signal.SIGKILL)  # the launcher only: its ranks must die with it
    process.wait()
    deadline = time.time() + 30
    while time.time() < deadline and _ranks_alive(out):
        time.sleep(0.2)
    assert not _ranks_alive(out), "orphaned ranks"
    assert not (out / "final").exists()
    rerun = subprocess.run(_ranks_cli(tiny_model, out, 6), capture_output=True, text=True, timeout=300,
                           check=False)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert '"resumed_from_step": 3' in rerun.stdout
    _assert_sharded_and_complete(out, 6)


def _ranks_alive(out: Path) -> bool:
    import psutil

    return any(str(out) in " ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"])
               if "mdrl.train.ranks" in " ".join(p.info["cmdline"] or []))
