"""The grid runner: every cell trained once and evaluated on every suite through the real verifiers,
finished cells skipped on a re-run, a SIGKILLed run resumed without redoing finished work, changed
settings detected, failures isolated."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_study_support import BASE_CORRECT, N_ITEMS, SUITES, StoredResponseRunner, trained_correct

from mdrl.study import Study, StudyConfig, run_study
from mdrl.study.runner import RESULT, TRAIN, read_json, write_json_atomic

TESTS = Path(__file__).resolve().parent
MIXTURES = ["countdown", "knights_knaves", "countdown+knights_knaves"]
CD, KK = SUITES["countdown"], SUITES["knights_knaves"]


def study_mapping(**changes):
    data = {"name": "resume-test", "models": [{"name": "base", "path": "stored-base", "kind": "base"}],
            "mixtures": MIXTURES, "seeds": [0, 1], "suites": [CD, KK]}
    data.update(changes)
    return data


def train_calls(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def expected_accuracy(mixture: str, seed: int, domain: str) -> float:
    return trained_correct("base", mixture.split("+"), seed)[domain] / N_ITEMS


def assert_tables_match_the_rule(results: dict) -> None:
    [entry] = results["tables"]
    table = entry["results"]
    assert table["baseline"]["suites"][CD] == BASE_CORRECT["base"]["countdown"] / N_ITEMS
    assert table["baseline"]["suites"][KK] == BASE_CORRECT["base"]["knights_knaves"] / N_ITEMS
    for row in table["rows"]:
        for suite, domain in ((CD, "countdown"), (KK, "knights_knaves")):
            want = [expected_accuracy(row["mixture"], seed, domain) for seed in (0, 1)]
            assert row["suites"][suite]["values"] == pytest.approx(want), (row["mixture"], suite)
            assert row["suites"][suite]["delta"] == pytest.approx(sum(want) / 2 - table["baseline"]["suites"][suite])
    # adding knights_knaves to countdown: 3 instead of 4 items gained on countdown -> -1/8
    matrix = entry["synergy"]["matrix"]
    assert matrix["countdown"]["knights_knaves"]["delta"] == pytest.approx(-1 / N_ITEMS)
    assert matrix["knights_knaves"]["countdown"]["delta"] == pytest.approx(-1 / N_ITEMS)


def test_full_run_then_rerun_skips_everything(tmp_path):
    log = tmp_path / "train.log"
    config = StudyConfig.from_mapping(study_mapping())
    first = run_study(config, tmp_path / "out", StoredResponseRunner(config, log_path=log))
    assert first.counts["ran"] == 7 and first.counts["skipped"] == 0 and first.counts["failed"] == 0
    assert sorted(train_calls(log)) == sorted(c.cell_id for c in config.cells())  # each cell trained once
    assert_tables_match_the_rule(json.loads((tmp_path / "out" / "results.json").read_text()))
    for name in ("results.md", "report.html"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert len(list((tmp_path / "out" / "plots").glob("*.png"))) == 3  # heatmap, bars, synergy

    study = Study(config, tmp_path / "out", StoredResponseRunner(config, log_path=log))
    assert study.plan().summary() == "skipped 7 finished cells, running 0"
    second = study.run()
    assert second.counts["ran"] == 0 and second.counts["skipped"] == 7
    assert len(train_calls(log)) == 6
    assert second.results["tables"] == first.results["tables"]

    (tmp_path / "out" / "report.html").unlink()         # --report-only: outputs from finished cells alone
    rebuilt = study.report()
    assert rebuilt.report_path.is_file() and rebuilt.counts == {"planned": 7, "finished": 7, "pending": 0}
    assert rebuilt.results["tables"] == first.results["tables"]


def test_changed_settings_are_detected(tmp_path):
    log = tmp_path / "train.log"
    out = tmp_path / "out"
    config = StudyConfig.from_mapping(study_mapping(seeds=[0]))
    run_study(config, out, StoredResponseRunner(config, log_path=log))
    assert len(train_calls(log)) == 3

    # a new suite: nothing is retrained, only the new suite is evaluated
    extra = "gen:countdown:3:4"
    wider = StudyConfig.from_mapping(study_mapping(seeds=[0], suites=[CD, KK, extra]))
    plan = Study(wider, out, StoredResponseRunner(wider)).plan()
    assert plan.summary() == "skipped 0 finished cells, running 4 (1 baseline evaluation; 3 need evaluation only)"
    assert all(job.missing == [extra] for job in plan.jobs)
    result = run_study(wider, out, StoredResponseRunner(wider, log_path=log))
    assert len(train_calls(log)) == 3 and result.counts["failed"] == 0
    record = read_json(out / "cells" / "base__countdown__default__r1-base__none__en__seed0" / RESULT)
    assert list(record["scores"]) == [CD, KK, extra]
    assert record["scores"][extra]["accuracy"] == 4 / 4   # 6 right of the first 8 -> all of the first 4

    # a training setting: every cell is stale and retrained; the baseline still holds
    retrain = StudyConfig.from_mapping(study_mapping(seeds=[0], suites=[CD, KK, extra],
                                                     train={"grpo": {"learning_rate": 1e-5}}))
    plan = Study(retrain, out, StoredResponseRunner(retrain)).plan()
    assert plan.summary() == "skipped 1 finished cells, running 3 (3 rerun because their settings changed)"
    run_study(retrain, out, StoredResponseRunner(retrain, log_path=log))
    assert len(train_calls(log)) == 6

    # an evaluation setting: everything is re-evaluated, nothing retrained
    reeval = StudyConfig.from_mapping(study_mapping(seeds=[0], suites=[CD, KK, extra],
                                                    train={"grpo": {"learning_rate": 1e-5}},
                                                    eval={"limit": 4}))
    plan = Study(reeval, out, StoredResponseRunner(reeval)).plan()
    assert plan.summary() == "skipped 0 finished cells, running 4 (1 baseline evaluation; 3 need evaluation only)"
    run_study(reeval, out, StoredResponseRunner(reeval, log_path=log))
    assert len(train_calls(log)) == 6


def test_unreadable_or_partial_results_do_not_count_as_finished(tmp_path):
    config = StudyConfig.from_mapping(study_mapping(seeds=[0], mixtures=["countdown"]))
    out = tmp_path / "out"
    run_study(config, out, StoredResponseRunner(config))
    folder = out / "cells" / "base__countdown__default__r1-base__none__en__seed0"
    (folder / RESULT).write_text('{"kind": "cell", "scor')     # torn write (not ours: ours are atomic)
    (folder / f".{RESULT}.123.tmp").write_text("{}")          # a temp file left by a kill
    (folder / TRAIN).unlink()
    plan = Study(config, out, StoredResponseRunner(config)).plan()
    assert plan.summary() == "skipped 1 finished cells, running 1"
    assert [job.cell_id for job in plan.pending] == ["base__countdown__default__r1-base__none__en__seed0"]


def test_one_runner_per_study_folder(tmp_path):
    from mdrl.study.runner import StudyLockedError, _exclusive

    config = StudyConfig.from_mapping(study_mapping(seeds=[0], mixtures=["countdown"]))
    out = tmp_path / "out"
    out.mkdir()
    with _exclusive(out / ".lock"), pytest.raises(StudyLockedError, match=f"pid {os.getpid()}"):
        run_study(config, out, StoredResponseRunner(config))
    assert run_study(config, out, StoredResponseRunner(config)).counts["ran"] == 2  # released


def test_write_json_atomic_replaces_whole_files(tmp_path):
    path = tmp_path / "a" / "r.json"
    write_json_atomic(path, {"x": 1})
    write_json_atomic(path, {"x": 2, "y": [1, 2]})
    assert json.loads(path.read_text()) == {"x": 2, "y": [1, 2]}
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]


class BrokenForOneMixture(StoredResponseRunner):
    def train(self, cell, model_path, settings, work_dir):
        if cell.mixture.name == "knights_knaves":
            raise RuntimeError("out of memory (simulated)")
        return super().train(cell, model_path, settings, work_dir)


def test_a_failing_cell_is_recorded_and_the_rest_finish(tmp_path):
    config = StudyConfig.from_mapping(study_mapping(seeds=[0]))
    out = tmp_path / "out"
    result = run_study(config, out, BrokenForOneMixture(config))
    assert result.counts["ran"] == 3 and result.counts["failed"] == 1
    [failure] = result.failed
    assert failure["cell_id"].startswith("base__knights_knaves__") and "out of memory" in failure["error"]
    assert (out / "cells" / failure["cell_id"] / "error.json").exists()
    assert "out of memory" in (out / "report.html").read_text()
    again = Study(config, out, StoredResponseRunner(config))
    assert again.plan().summary() == "skipped 3 finished cells, running 1"
    assert again.run().counts["failed"] == 0
    assert not (out / "cells" / failure["cell_id"] / "error.json").exists()


def test_workers_run_cells_in_parallel_processes_with_the_same_results(tmp_path):
    config = StudyConfig.from_mapping(study_mapping())
    serial = run_study(config, tmp_path / "serial", StoredResponseRunner(config))
    log = tmp_path / "train.log"
    parallel = run_study(config, tmp_path / "parallel", StoredResponseRunner(config, log_path=log), workers=2)
    assert parallel.counts["ran"] == 7 and parallel.counts["failed"] == 0
    assert sorted(train_calls(log)) == sorted(c.cell_id for c in config.cells())  # each cell trained once
    assert parallel.results["tables"] == serial.results["tables"]
    broken = run_study(config, tmp_path / "broken", BrokenForOneMixture(config), workers=2)
    assert broken.counts["ran"] == 5 and broken.counts["failed"] == 2  # both seeds of knights_knaves
    assert all("out of memory" in failure["error"] for failure in broken.failed)
    with pytest.raises(ValueError, match="workers"):
        Study(config, tmp_path / "zero", StoredResponseRunner(config)).run(workers=0)


def run_cli_command(config_path: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "mdrl", "study", "--config", str(config_path), "--out", str(out),
            "--runner", "test_study_support:make_runner", "--no-progress"]


def run_cli(config_path: Path, out: Path, env: dict, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(run_cli_command(config_path, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, **kwargs)


def test_sigkill_then_resume_skips_finished_cells(tmp_path):
    import yaml

    config_path = tmp_path / "study.yaml"
    config_path.write_text(yaml.safe_dump(study_mapping()))
    out = tmp_path / "out"
    log = tmp_path / "train.log"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
               MDRL_STUDY_TEST_LOG=str(log), MDRL_STUDY_TEST_SLEEP="1.0")
    process = run_cli(config_path, out, env)
    deadline = time.monotonic() + 120
    try:
        while not list(out.glob(f"cells/*/{RESULT}")):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no cell finished within 120 s"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    finished = {p.parent.name: p.read_text() for p in out.glob(f"*/*/{RESULT}")}
    finished_cells = [name for name in finished if (out / "cells" / name).is_dir()]
    assert 1 <= len(finished_cells) < 6                 # killed part-way
    first_trained = train_calls(log)

    env["MDRL_STUDY_TEST_SLEEP"] = "0"
    resumed = run_cli(config_path, out, env)
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    match = re.search(r"skipped (\d+) finished cells, running (\d+)", stdout)
    assert match, stdout
    assert (int(match[1]), int(match[2])) == (len(finished), 7 - len(finished))
    second_trained = train_calls(log)[len(first_trained):]
    assert not set(second_trained) & set(finished_cells)      # finished cells were not retrained
    assert sorted(first_trained + second_trained) == sorted(  # a cell killed after training is not retrained
        c.cell_id for c in StudyConfig.from_mapping(study_mapping()).cells())
    for name, text in finished.items():                        # nor re-evaluated: results untouched
        assert (next(out.glob(f"*/{name}")) / RESULT).read_text() == text
    assert len(list(out.glob(f"cells/*/{RESULT}"))) == 6
    assert_tables_match_the_rule(json.loads((out / "results.json").read_text()))
    assert "report: " in stdout and "| training data |" in stdout


def _children(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid and fields[0] != "Z":
            children.append(int(stat.parent.name))
    return children


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_sigterm_to_the_study_process_stops_its_workers(tmp_path):
    import yaml

    config_path = tmp_path / "study.yaml"
    config_path.write_text(yaml.safe_dump(study_mapping()))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
               MDRL_STUDY_TEST_SLEEP="60")
    process = subprocess.Popen([*run_cli_command(config_path, tmp_path / "out"), "--workers", "2"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while len(workers := _children(process.pid)) < 2:  # the two pool workers (a third: its resource tracker)
            assert process.poll() is None, "the study exited before starting its workers"
            assert time.monotonic() < deadline, "no workers within 120 s"
            time.sleep(0.1)
        time.sleep(1)  # the workers are past their initialiser and sleeping in a cell's training
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while (left := [pid for pid in workers if _alive(pid)]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not left, f"workers {left} outlived the study process"
    finally:
        process.kill()
        for pid in {*workers, *_children(process.pid)}:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_train_outcome_from_mdrl_train():
    from types import SimpleNamespace

    from mdrl.study.runner import train_outcome

    cell = SimpleNamespace(name="c")
    trl = train_outcome({"final_model": "/runs/c/final", "global_step": 2, "tokenizer": object()}, cell)
    assert trl == {"final_model": "/runs/c/final", "global_step": 2, "checkpoint": "/runs/c/final"}
    with pytest.raises(RuntimeError, match="run the written launch script"):  # veRL prepared, not trained
        train_outcome({"run_dir": "/runs/c", "launch_script": "/runs/c/launch.sh", "launched": False}, cell)


def test_workers_share_the_cores_out(monkeypatch):
    import torch

    from mdrl.study import runner

    monkeypatch.setattr(runner.os, "sched_getaffinity", lambda _pid: set(range(8)), raising=False)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(8)
        assert [runner._worker_threads(n) for n in (1, 2, 3, 8, 16)] == [8, 4, 2, 1, 1]
        torch.set_num_threads(1)  # the parent's own choice (`mdrl demo --threads 1`) caps the share
        assert runner._worker_threads(2) == 1
    finally:
        torch.set_num_threads(previous)


def test_eval_templates_and_factor_tables(tmp_path):
    """Template consistency as an axis: every trained cell is also evaluated under eval.templates (a
    later template is evaluated alone, nothing retrained), and the report has a table per factor."""
    log = tmp_path / "train.log"
    mapping = study_mapping(mixtures=["countdown"], seeds=[0], rewards=["default", "binary"],
                            eval={"templates": ["plain"]})
    config = StudyConfig.from_mapping(mapping)
    assert list(config.axes()) == ["SFT (starting model)", "template (train)", "template (eval)", "curriculum",
                                   "reward", "language", "training data", "seeds"]
    assert sorted(b.template for b in config.baselines()) == ["plain", "r1-base"]
    first = run_study(config, tmp_path / "out", StoredResponseRunner(config, log_path=log))
    assert first.counts["failed"] == 0 and len(train_calls(log)) == 2
    record = read_json(next((tmp_path / "out" / "cells").glob("*binary*")) / RESULT)
    assert set(record["template_scores"]) == {"plain"} and set(record["template_scores"]["plain"]) == {CD, KK}
    items = record["scores"][CD]["items"]                                  # per-item accuracies, for the se
    assert len(items) == N_ITEMS and sum(acc for acc, _ in items.values()) == expected_accuracy("countdown", 0, "countdown") * N_ITEMS

    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [g["variant"] for g in results["template_consistency"]] == [["base", "default", "none", "en"],
                                                                       ["base", "binary", "none", "en"]]
    group = results["template_consistency"][0]
    assert group["eval_templates"] == ["r1-base", "plain"] and group["train_templates"] == ["r1-base"]
    cell = group["matrix"]["countdown"]["r1-base"]["plain"]
    base_avg = (BASE_CORRECT["base"]["countdown"] + BASE_CORRECT["base"]["knights_knaves"]) / 2 / N_ITEMS
    assert cell["delta"] == pytest.approx(cell["mean"] - base_avg)
    assert cell["effect"]["se_items"] is not None and cell["effect"]["se_seeds"] is None  # one seed: items only
    [reward] = [f for f in results["factors"] if f["factor"] == "reward"]
    assert reward["levels"] == ["default", "binary"] and reward["rows"][0]["vs"]["binary"]["delta"] == 0.0
    markdown = (tmp_path / "out" / "results.md").read_text()
    assert "factor reward: default vs binary" in markdown and "template consistency: base" in markdown

    widened = StudyConfig.from_mapping({**mapping, "eval": {"templates": ["plain", "chat"]}})
    plan = Study(widened, tmp_path / "out", StoredResponseRunner(widened, log_path=log)).plan()
    cells = [job for job in plan.jobs if job.kind == "cell"]
    assert [job.status for job in cells] == ["evaluate", "evaluate"]
    assert all(job.missing == [] and job.missing_templates == {"chat": [CD, KK]} for job in cells)


def test_chinese_cells_on_generated_data_run_and_get_their_factor_table(tmp_path):
    config = StudyConfig.from_mapping(study_mapping(mixtures=["countdown"], seeds=[0], langs=["en", "zh"]))
    result = run_study(config, tmp_path / "out", StoredResponseRunner(config))
    assert result.counts["failed"] == 0 and result.counts["ran"] == 4     # 2 cells, 2 baselines
    zh = read_json(next((tmp_path / "out" / "cells").glob("*__zh__*")) / RESULT)
    samples = Path(zh["scores"][CD]["samples_file"])
    if not samples.is_absolute():
        samples = tmp_path / "out" / samples
    assert any("\u4e00" <= ch <= "\u9fff" for ch in json.loads(samples.read_text().splitlines()[0])["prompt"])
    [language] = [f for f in result.results["factors"] if f["factor"] == "language"]
    assert language["levels"] == ["en", "zh"] and language["rows"][0]["vs"]["zh"]["delta"] is not None
