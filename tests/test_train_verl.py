"""veRL engine: parquet export, launch.sh overrides, and the reward module through veRL's own code.

veRL is installed by mdrl's `verl` extra (in `all`, so in CI). Its own code checks every part up to
where it needs a GPU: each preset's and each paper study cell's overrides compose against veRL's Hydra
config and pass its validate_config; RLHFDataset reads the exported parquet; every reward manager of
the installed veRL scores a batch through mdrl's module, or mdrl refuses it; and launch.sh runs
verl.trainer.main_ppo on CPU until veRL's GPU check.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mdrl.commands.study import preset_path
from mdrl.data import load_source, read_verl_parquet
from mdrl.domains import DataError
from mdrl.domains.registry import domain_for_source
from mdrl.study import StudyConfig
from mdrl.study.runner import train_config
from mdrl.train.config import REFUSED_REWARD_MANAGERS, VERL_REWARD_MANAGERS, load_config, preset_names
from mdrl.train.verl_check import VerlConfigError, check_launch, verl_installed
from mdrl.train.verl_engine import hydra_overrides, prepare_verl, reward_variants
from mdrl.train.verl_reward import RESULT_KEYS, compute_score

VERL_COLUMNS = {"data_source", "prompt", "ability", "reward_model", "extra_info"}


def _config(tmp_path: Path, *overrides: str):
    return load_config(
        "paper",
        overrides=[
            f"run.output_dir={tmp_path / 'run'}",
            "data.sources=[]",
            "data.mix=countdown:1,knights_knaves:1",
            "data.n=24",
            "data.val_sources=[]",
            "data.val_n=6",
            "data.difficulty.knights_knaves=3-4",
            "data.difficulty.countdown=3-4",
            *overrides,
        ],
    )


def _overrides(prep) -> dict[str, str]:
    return dict(item.split("=", 1) for item in prep.overrides)


def test_prepare_writes_parquet_reward_config_and_launch_script(tmp_path):
    prep = prepare_verl(_config(tmp_path, "reward.domains.knights_knaves.mode=proportional"))
    values = _overrides(prep)
    assert values["algorithm.adv_estimator"] == "grpo"
    assert values["actor_rollout_ref.rollout.n"] == "5"
    assert values["data.train_batch_size"] == "256"
    assert (values["data.max_prompt_length"], values["data.max_response_length"]) == ("512", "8192")
    assert values["actor_rollout_ref.actor.optim.lr"] == "1e-06"
    assert values["actor_rollout_ref.actor.use_kl_loss"] == "True"
    assert values["actor_rollout_ref.actor.kl_loss_coef"] == "0.001"
    assert values["actor_rollout_ref.actor.kl_loss_type"] == "low_var_kl"
    assert values["actor_rollout_ref.actor.ppo_mini_batch_size"] == "32"
    assert (values["trainer.n_gpus_per_node"], values["trainer.nnodes"]) == ("8", "1")
    assert values["trainer.total_epochs"] == "10"
    assert values["data.shuffle"] == "True"
    assert values["reward.custom_reward_function.path"] == "pkg://mdrl.train.verl_reward"
    assert values["reward.custom_reward_function.name"] == "compute_score"
    assert Path(values["data.train_files"]) == prep.train_file.resolve()
    reward = json.loads(prep.reward_config.read_text())
    assert reward["knights_knaves"] == {"mode": "proportional", "format_weight": 0.0}
    inline = values["+reward.custom_reward_function.reward_kwargs.reward_config"]
    assert inline.startswith("'{") and json.loads(inline.strip("'")) == reward
    script = prep.script.read_text()
    assert script.startswith("#!/usr/bin/env bash") and "python3 -m verl.trainer.main_ppo" in script
    assert prep.script.stat().st_mode & 0o111
    assert (prep.run_dir / "config.yaml").is_file()


def test_launch_script_names_no_path_of_this_machine(tmp_path):
    """The run folder moves as a whole: launch.sh finds its data and checkpoints from its own place."""
    prep = prepare_verl(_config(tmp_path))
    script = prep.script.read_text()
    assert str(tmp_path) not in script and str(Path.cwd()) not in script
    assert str(Path(__file__).resolve().parents[1]) not in script  # nor this checkout's
    moved = tmp_path / "elsewhere"
    prep.run_dir.rename(moved)
    # bash expands the script's own folder: print the arguments main_ppo would get.
    echo = (moved / "launch.sh").read_text().replace("python3 -m verl.trainer.main_ppo", "printf '%s\\n'")
    (moved / "echo.sh").write_text(echo)
    args = subprocess.run(["bash", str(moved / "echo.sh")], capture_output=True, text=True, check=True)
    values = dict(line.split("=", 1) for line in args.stdout.splitlines() if "=" in line)
    assert values["data.train_files"] == str(moved / "data" / "train.parquet")
    assert values["trainer.default_local_dir"] == str(moved / "checkpoints")
    assert Path(values["data.val_files"]).is_file()
    assert json.loads(values["+reward.custom_reward_function.reward_kwargs.reward_config"].strip("'"))


def test_curriculum_launch_disables_shuffling_and_keeps_order(tmp_path):
    prep = prepare_verl(_config(tmp_path, "data.curriculum=difficulty"))
    assert _overrides(prep)["data.shuffle"] == "False"
    difficulties = [p.difficulty for p in read_verl_parquet(prep.train_file)]
    assert difficulties == sorted(difficulties) and len(set(difficulties)) == 2


def test_hydra_overrides_follow_the_config(tmp_path):
    config = _config(
        tmp_path,
        "grpo.beta=0",
        "grpo.max_steps=7",
        "verl.nnodes=4",
        "verl.n_gpus_per_node=4",
        "verl.extra_overrides=[trainer.val_before_train=False]",
    )
    values = dict(o.split("=", 1) for o in hydra_overrides(config, "t.parquet", "v.parquet", None, "m", "ck"))
    assert values["actor_rollout_ref.actor.use_kl_loss"] == "False"
    assert values["trainer.total_training_steps"] == "7"
    assert (values["trainer.nnodes"], values["trainer.n_gpus_per_node"]) == ("4", "4")
    assert values["trainer.val_before_train"] == "False"  # the extra override comes last and wins
    assert "+reward.custom_reward_function.reward_kwargs.reward_config" not in values


def test_parquet_has_the_verl_schema_and_reads_back(tmp_path):
    prep = prepare_verl(_config(tmp_path))
    table = pq.read_table(prep.train_file)
    assert VERL_COLUMNS <= set(table.column_names)
    rows = table.to_pylist()
    assert {row["data_source"] for row in rows} == {"countdown", "kk_logic"}  # the study's names
    assert all(row["prompt"][0]["role"] == "user" and row["reward_model"]["style"] == "rule" for row in rows)
    problems = read_verl_parquet(prep.train_file)
    assert len(problems) == 24
    for problem in problems:  # the exported ground truth scores the reference exactly as veRL will
        assert compute_score(problem.data_source, problem.reference, problem.ground_truth)["score"] == 1.0


# ---------------------------------------------------------------------------- the reward module contract


def test_reward_module_has_the_verl_signature():
    params = inspect.signature(compute_score).parameters
    assert list(params)[:4] == ["data_source", "solution_str", "ground_truth", "extra_info"]
    assert params["extra_info"].default is None
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def test_reward_module_returns_the_same_keys_for_every_domain(paper_data):
    results = []
    for source in (
        "paper:countdown/test?n=2",
        "paper:kk/test?n=2",
        "paper:zebra/test?n=2",
        "paper:deepscaler/test?n=2",
    ):
        for problem in load_source(source):
            # veRL adds its own keys to extra_info and may pass more keyword arguments.
            extra = {**problem.extra_info, "num_turns": None, "rollout_reward_scores": {}}
            good = compute_score(
                problem.data_source,
                problem.reference,
                problem.ground_truth,
                extra,
                reward_router_address=None,
            )
            bad = compute_score(
                problem.data_source, "<think>hmm</think><answer>nothing</answer>", problem.ground_truth, extra
            )
            assert (good["score"], good["acc"]) == (1.0, True), (source, good)
            assert bad["score"] == 0.0 and bad["acc"] is False
            results += [good, bad]
    assert all(tuple(result) == RESULT_KEYS for result in results)


def test_reward_config_file_selects_the_variant(tmp_path):
    problem = load_source("knights_knaves:3?n=1&seed=2")[0]
    answer = problem.reference[problem.reference.index("<answer>") :]
    first = answer.splitlines()[0]
    partly = problem.reference.replace(
        first, first.replace("knight", "KNAVE").replace("knave", "knight").replace("KNAVE", "knave")
    )
    config = tmp_path / "reward.json"
    config.write_text(json.dumps({"knights_knaves": {"mode": "proportional", "format_weight": 0.0}}))
    binary = compute_score(problem.data_source, partly, problem.ground_truth)
    proportional = compute_score(problem.data_source, partly, problem.ground_truth, reward_config=str(config))
    assert binary["score"] == 0.0
    assert proportional["score"] == pytest.approx(2 / 3)


def test_malformed_ground_truth_is_a_data_error():
    with pytest.raises(DataError):
        compute_score("countdown", "<answer>1+2</answer>", "{not json")


# ---------------------------------------------------------------------------- through veRL's own code

needs_verl = pytest.mark.skipif(not verl_installed(), reason="veRL is not installed (pip install -e '.[verl]')")


def _check(config) -> None:
    """veRL's compose + validate_config on this config's overrides (the model is not loaded there)."""
    check_launch(hydra_overrides(config, "t.parquet", "v.parquet", reward_variants(config), config.model.path, "ck"))


@needs_verl
@pytest.mark.parametrize("preset", preset_names())
def test_every_train_preset_composes_against_verls_config(preset, tmp_path):
    _check(load_config(preset, overrides=[f"run.output_dir={tmp_path}", "engine=verl"]))


@needs_verl
def test_every_paper_study_cell_composes_against_verls_config(tmp_path):
    study = StudyConfig.from_yaml(preset_path("paper"))
    cells = study.cells()
    assert len(cells) >= 10
    for cell in cells:
        settings = study.train_settings(cell)
        _check(train_config(settings, settings["model"]["path"], tmp_path / cell.cell_id))


@pytest.mark.parametrize(
    "override,message",
    [
        ("trainer.n_gpus_per_nod=8", "n_gpus_per_nod"),  # a mistyped key
        ("data.train_batch_size=3", "divisible"),  # 3 x 5 rollouts on 8 GPUs
    ],
)
@needs_verl
def test_verl_rejects_what_it_would_reject_on_the_cluster(tmp_path, override, message):
    with pytest.raises(VerlConfigError, match=message):
        prepare_verl(_config(tmp_path, f"verl.extra_overrides=[{override}]"))
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    """A small byte-level BPE tokenizer (mdrl.tiny) that decodes every response exactly."""
    from transformers import AutoTokenizer

    from mdrl.tiny import build_tokenizer

    corpus = [p.reference or "" for s in ("countdown:3?n=8", "knights_knaves:3?n=8") for p in load_source(s)]
    folder = tmp_path_factory.mktemp("tok")
    build_tokenizer(
        corpus + ["Solve it. <think> </think> <answer> </answer>"], vocab_size=400
    ).save_pretrained(folder)
    return AutoTokenizer.from_pretrained(folder)


def _verl_batch(tokenizer, files: list[str], responses: list[str], tmp_path: Path):
    """Rows read by veRL's RLHFDataset, collated by veRL, with tokenized responses attached."""
    import torch
    from omegaconf import OmegaConf
    from verl import DataProto
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

    config = OmegaConf.create(
        {
            "max_prompt_length": 4096,
            "filter_overlong_prompts": False,
            "cache_dir": str(tmp_path / "cache"),
            "return_raw_chat": True,
        }
    )
    dataset = RLHFDataset(files, tokenizer, config)
    items = [dataset[i] for i in range(len(responses))]
    batch = collate_fn(items)
    prompt_ids = [tokenizer("prompt", add_special_tokens=False)["input_ids"]] * len(responses)
    response_ids = [tokenizer(r, add_special_tokens=False)["input_ids"] for r in responses]
    width_p = max(map(len, prompt_ids))
    width_r = max(map(len, response_ids))
    pad = tokenizer.pad_token_id
    prompts = torch.tensor([[pad] * (width_p - len(p)) + p for p in prompt_ids])
    resp = torch.tensor([r + [pad] * (width_r - len(r)) for r in response_ids])
    mask = torch.tensor(
        [
            [0] * (width_p - len(p)) + [1] * len(p) + [1] * len(r) + [0] * (width_r - len(r))
            for p, r in zip(prompt_ids, response_ids)
        ]
    )
    non_tensors = {k: v for k, v in batch.items() if not isinstance(v, torch.Tensor)}
    return DataProto.from_dict(
        tensors={"prompts": prompts, "responses": resp, "attention_mask": mask}, non_tensors=non_tensors
    ), dataset


@pytest.fixture(scope="module")
def mixed_batch(tokenizer, tmp_path_factory):
    """A launch over four domains, KK scored proportionally, and a batch of its exported rows read by veRL:
    references, wrong answers and a KK answer with one of three people wrong."""
    tmp_path = tmp_path_factory.mktemp("batch")
    prep = prepare_verl(
        _config(
            tmp_path,
            "data.mix=countdown:1,knights_knaves:1,math:1,zebra:1",
            "data.n=16",
            "data.shuffle=false",
            "data.difficulty.knights_knaves=3",
            "data.difficulty.math=1",
            "data.difficulty.zebra=2",
            "reward.domains.knights_knaves.mode=proportional",
        )
    )
    problems = read_verl_parquet(prep.train_file)
    by_domain = {}
    for i, p in enumerate(problems):
        by_domain.setdefault(p.data_source, []).append(i)
    chosen = [ids[0] for ids in by_domain.values()] + [ids[1] for ids in by_domain.values()]
    responses, expected = [], []
    for n, i in enumerate(chosen):
        problem = problems[i]
        if n < len(by_domain):
            responses.append(problem.reference)
            expected.append(1.0)
        else:
            responses.append("<think>guess</think>\n<answer> nothing here </answer>")
            expected.append(0.0)
    kk = by_domain["kk_logic"][2]
    reference = problems[kk].reference
    first = reference[reference.index("<answer>") :].splitlines()[0]
    swapped = first.replace("knight", "KNAVE").replace("knave", "knight").replace("KNAVE", "knave")
    responses.append(reference.replace(first, swapped))
    expected.append(pytest.approx(2 / 3))
    chosen.append(kk)
    # RLHFDataset reads rows in file order: a file of exactly the chosen rows, in the chosen order.
    table = pq.read_table(prep.train_file).take(chosen)
    batch_file = tmp_path / "batch.parquet"
    pq.write_table(table, batch_file)
    data, dataset = _verl_batch(tokenizer, [str(batch_file)], responses, tmp_path)
    sources = [problems[i].data_source for i in chosen]
    return prep, data, dataset, expected, sources


@needs_verl
def test_verls_dataset_reads_the_exported_parquet(mixed_batch):
    _, _, dataset, _, sources = mixed_batch
    item = dataset[0]
    assert item["raw_prompt"][0]["role"] == "user" and item["reward_model"]["style"] == "rule"
    assert [dataset[i]["data_source"] for i in range(len(sources))] == sources
    assert set(sources) == {"countdown", "kk_logic", "math", "zebra"}


def _every_manager() -> list[str]:
    import verl.experimental.reward_loop.reward_manager  # noqa: F401  (registers the reward loop's)
    from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER
    from verl.workers.reward_manager.registry import REWARD_MANAGER_REGISTRY

    return sorted(set(REWARD_MANAGER) | set(REWARD_MANAGER_REGISTRY))


@needs_verl
def test_the_manager_lists_cover_the_installed_verl():
    names = _every_manager()
    assert {"naive", "dapo", "prime", "batch", "remote"} <= set(names)
    assert set(names) <= set(VERL_REWARD_MANAGERS) | set(REFUSED_REWARD_MANAGERS)


@pytest.mark.parametrize("name", sorted(REFUSED_REWARD_MANAGERS))
def test_managers_that_cannot_score_mdrl_are_refused_with_the_fix(name, tmp_path):
    with pytest.raises(ValueError, match=rf"verl.reward_manager='{name}'.*Use verl.reward_manager=naive"):
        load_config("paper", overrides=[f"run.output_dir={tmp_path}", f"verl.reward_manager={name}"])
    with pytest.raises(ValueError, match="not a veRL 0.9 reward manager"):
        load_config("paper", overrides=[f"run.output_dir={tmp_path}", "verl.reward_manager=naiv"])


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


@needs_verl
@pytest.mark.parametrize("name", VERL_REWARD_MANAGERS)
def test_every_accepted_manager_scores_mdrls_module(name, mixed_batch, tokenizer, request):
    """As main_ppo's reward loop does: the composed launch config, veRL's load_reward_manager, and
    run_single per sample (remote: in a Ray actor that imports the module from pkg://)."""
    from verl.trainer.ppo.reward import load_reward_manager

    if name == "remote":
        request.getfixturevalue("ray_cluster")
    prep, data, _, expected, sources = mixed_batch
    overrides = [o for o in prep.overrides if not o.startswith("reward.reward_manager.name=")]
    # remote: one scoring actor for the test cluster's one CPU (veRL's default of 8 would wait for CPUs).
    config = check_launch([*overrides, f"reward.reward_manager.name={name}", "reward.num_workers=1"])
    manager = load_reward_manager(config, tokenizer)

    def score(i: int) -> dict:
        return manager.loop.run_until_complete(asyncio.wait_for(manager.run_single(data[i : i + 1]), 120))

    results = [score(i) for i in range(len(data))]
    assert [r["reward_score"] for r in results] == expected, [r["reward_extra_info"]["reason"] for r in results]
    info = [r["reward_extra_info"] for r in results]
    # veRL's reward loop stacks extra info by the first result's keys: every result must share them.
    assert all(tuple(i)[: len(RESULT_KEYS)] == RESULT_KEYS for i in info)
    assert [i["acc"] for i in info] == [e == 1.0 for e in expected]
    assert [i["domain"] for i in info] == [domain_for_source(s).name for s in sources]
    assert all(i["format"] == 1.0 for i in info)


@needs_verl
def test_the_smoke_launch_reaches_verls_gpu_check(tmp_path):
    """launch.sh runs veRL's real main_ppo on CPU: Hydra, Ray, the tokenizer and the exported data load,
    and the run stops where veRL asks for a GPU (veRL 0.9 has no CPU platform)."""
    from mdrl.tiny.recipe import SHIPPED_DIR

    prep = prepare_verl(
        _config(
            tmp_path,
            f"model.path={SHIPPED_DIR / 'instruct'}",
            "verl.n_gpus_per_node=1",
            "verl.tensor_model_parallel_size=1",
            "grpo.train_batch_size=8",
            "grpo.mini_batch_size=8",
            "verl.logger=[console]",
        )
    )
    # Ray gets this machine's 2 CPUs, and TransferQueue one storage actor instead of 8.
    cpu = ["+ray_kwargs.ray_init.num_cpus=2", "transfer_queue.backend.SimpleStorage.num_data_storage_units=1",
           "data.dataloader_num_workers=0"]
    proc = subprocess.run(["bash", str(prep.script), *cpu], check=False, capture_output=True, text=True, timeout=170,
                          env={**os.environ, "RAY_DEDUP_LOGS": "0"})
    log = proc.stdout + proc.stderr
    assert "train dataset size: 24, val dataset size: 6" in log, log[-3000:]
    assert "Total available GPUs 0 is less than total desired GPUs 1" in log, log[-3000:]
    assert list((prep.run_dir / "outputs").glob("*/*/.hydra/overrides.yaml"))  # Hydra's record, in the run


def test_a_failed_first_preparation_leaves_no_run_folder(tmp_path):
    """README users hit this: the paper preset with data that is not there. The error names the
    missing data, and no half-made run folder (a lone config.yaml) is left behind."""
    empty = tmp_path / "shared"
    (empty / "paper").mkdir(parents=True)
    out = tmp_path / "runs" / "paper"
    proc = subprocess.run([sys.executable, "-m", "mdrl", "train", "-p", "paper", "--mix", "math:1,countdown:1",
                           "-o", str(out)], check=False, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MDRL_SHARED_DATA": str(empty)})
    assert proc.returncode == 2 and "no study file" in proc.stderr, proc.stderr[-2000:]
    assert not out.exists()
