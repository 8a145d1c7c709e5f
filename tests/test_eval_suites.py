"""Suites: the study's test files split and bucketed as the study reports them, user paths, the data
root, generated suites, and the `mdrl eval` CLI end to end against a replay server."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from typer.testing import CliRunner

from mdrl.cli import app
from mdrl.domains.base import DataError
from mdrl.eval.replay import ReplayStore, replay_app
from mdrl.eval.serving import BackgroundServer
from mdrl.domains.code import MBPP_TEST_IDS
from mdrl.eval.suites import EvalItem, load_suite, user_message
from mdrl.eval.types import GenRequest
from mdrl.templates import Template


def _load_or_skip(spec, **kwargs):
    try:
        return load_suite(spec, **kwargs)
    except (DataError, KeyError) as exc:
        pytest.skip(f"{spec} unavailable: {exc}")


@pytest.mark.parametrize(
    "spec,count,groups",
    [
        ("math500", 500, None),
        ("aime24", 30, None),
        ("countdown", 1024, {"3nums": 540, "4nums": 484}),
        ("kk", 600, {f"{n}ppl": 100 for n in range(3, 9)}),
        ("zebra", 276, {"4x3": 155, "5x3": 107, "4x4": 14}),
        ("leetcode", 200, {"Easy": 51, "Medium": 102, "Hard": 47}),
        ("taco", 512, None),
    ],
)
def test_study_suites_split_and_bucket_like_the_study(spec, count, groups, paper_data):
    suite = _load_or_skip(spec, root=paper_data.parent)
    assert len(suite) == count
    if groups is not None:
        assert Counter(item.group for item in suite.items) == groups
    assert len({item.item_id for item in suite.items}) == count


def test_math_suites_split_one_file_by_data_source(paper_data):
    math500 = load_suite("math500", root=paper_data.parent)
    aime = load_suite("aime24", root=paper_data.parent)
    assert {i.problem.data_source for i in math500.items} == {"math500"}
    assert {i.problem.data_source.lower() for i in aime.items} == {"aime"}
    assert math500.skipped == 30 and aime.skipped == 500


def test_mbpp_is_the_standard_test_split(mbpp_path):
    suite = _load_or_skip(f"mbpp={mbpp_path}")
    ids = sorted(int(item.item_id.rsplit("/", 1)[1]) for item in suite.items)
    assert ids == list(MBPP_TEST_IDS)


def test_humaneval_has_164_problems():
    suite = _load_or_skip("humaneval")
    assert len(suite) == 164 and suite.items[0].item_id == "humaneval/HumanEval/0"


def test_limit_spreads_over_the_groups(paper_data):
    suite = load_suite("kk", root=paper_data.parent, limit=12)
    assert len(suite) == 12
    assert Counter(item.group for item in suite.items) == {f"{n}ppl": 2 for n in range(3, 9)}


def test_a_suite_reads_the_users_copy_and_the_data_root_rules(paper_data, tmp_path, monkeypatch):
    import pandas as pd

    rows = pd.read_parquet(paper_data / "countdown" / "test.parquet").head(5)
    own = tmp_path / "mine.parquet"
    rows.to_parquet(own)
    assert len(load_suite(f"countdown={own}")) == 5

    # default root: ../shared/data from the working directory; $MDRL_DATA wins over it
    (tmp_path / "shared" / "data" / "paper" / "countdown").mkdir(parents=True)
    rows.head(3).to_parquet(tmp_path / "shared" / "data" / "paper" / "countdown" / "test.parquet")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.delenv("MDRL_DATA", raising=False)
    monkeypatch.delenv("MDRL_SHARED_DATA", raising=False)
    assert len(load_suite("countdown")) == 3
    monkeypatch.setenv("MDRL_DATA", str(paper_data.parent))
    assert len(load_suite("countdown")) == 1024
    with pytest.raises(DataError, match="not found"):
        load_suite("countdown", root=tmp_path / "nowhere")


def test_unknown_suite_names_the_near_match():
    with pytest.raises(KeyError, match="math500"):
        load_suite("math50")


def test_generated_suites_are_deterministic_and_seeded():
    first = load_suite("gen:countdown:3-4:10:7")
    assert first.name == "gen:countdown:3,4:10:7" and len(first) == 10
    assert Counter(item.group for item in first.items) == {"level 3": 5, "level 4": 5}
    again = load_suite("gen:countdown:3-4:10:7")
    assert [i.problem.question for i in first.items] == [i.problem.question for i in again.items]
    other = load_suite("gen:countdown:3-4:10:8")
    assert [i.problem.question for i in first.items] != [i.problem.question for i in other.items]
    assert len(load_suite("gen:countdown:3", gen_n=4, gen_seed=1)) == 4
    every_level = load_suite("gen:countdown", gen_n=8)
    assert {item.problem.difficulty for item in every_level.items} == {3, 4, 5, 6}
    assert load_suite("gen:countdown:3?n=4&seed=1").name == load_suite("gen:countdown:3:4:1").name
    with pytest.raises(ValueError):
        load_suite("gen:")
    with pytest.raises(ValueError):
        load_suite("gen:countdown:3?bogus=1")
    with pytest.raises(ValueError):
        load_suite("gen:countdown:3=/some/path")


def test_fingerprint_follows_question_and_ground_truth():
    item = load_suite("gen:countdown:3:1").items[0]
    changed = EvalItem(
        item.item_id, item.problem.__class__(**{**item.problem.__dict__, "ground_truth": {"x": 1}})
    )
    assert item.fingerprint() == EvalItem(item.item_id, item.problem).fingerprint()
    assert item.fingerprint() != changed.fingerprint()


def test_cli_suites_lists_every_builtin():
    result = CliRunner().invoke(app, ["eval", "suites"])
    assert result.exit_code == 0
    for name in (
        "math500",
        "aime24",
        "countdown",
        "kk",
        "zebra",
        "humaneval",
        "mbpp",
        "leetcode",
        "gen:DOMAIN",
    ):
        assert name in result.output


def test_cli_run_against_a_replay_server(paper_data, tmp_path):
    suite = load_suite("countdown", root=paper_data.parent, limit=6)
    store = ReplayStore()
    for template in (Template("r1-base"), Template("plain")):
        for item in suite.items:
            store.add(GenRequest(user_message(item), template), item.problem.reference)
    out = tmp_path / "out"
    with BackgroundServer(replay_app(store, model="ref")) as server:
        result = CliRunner().invoke(
            app,
            [
                "eval",
                "run",
                "--backend",
                "openai",
                "-m",
                server.url,
                "-s",
                "countdown",
                "--limit",
                "6",
                "--data-root",
                str(paper_data.parent),
                "--template-grid",
                "r1-base,plain",
                "-o",
                str(out),
                "--no-progress",
                "--max-new-tokens",
                "32",
            ],
        )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert [(r["template"], r["accuracy"]) for r in summary["runs"]] == [("r1-base", 1.0), ("plain", 1.0)]
    report = (out / "report.md").read_text()
    assert "| ref | r1-base-en | 100.0 |" in report and "| ref | plain-en | 100.0 |" in report
    assert "3nums" in report  # the per-group breakdown
    samples = (out / "ref" / "plain-en" / "countdown" / "samples.jsonl").read_text().splitlines()
    assert len(samples) == 6 and json.loads(samples[0])["acc"] is True


def test_cli_reports_a_missing_data_file_cleanly(tmp_path):
    result = CliRunner().invoke(
        app, ["eval", "run", "-m", "x", "-s", "kk", "--data-root", str(tmp_path), "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "not found" in result.output
