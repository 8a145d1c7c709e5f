"""One vocabulary for settings: each shared field is declared once (mdrl.specs), every command embeds
it, its CLI help is the field's, `--set` reaches it, and old spellings still work with a warning."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest
from typer.testing import CliRunner

from mdrl.cli import app
from mdrl.data.build import BuildConfig
from mdrl.eval.runner import EvalOptions
from mdrl.specs import (BuildSpec, DataSpec, EvalSpec, RewardSpec, SamplingConfig, ServeConfig, difficulty_map,
                        field_help)
from mdrl.study.config import DataSettings as StudyData
from mdrl.study.config import EvalSettings as StudyEval
from mdrl.study.config import RewardVariant
from mdrl.train.config import DataSettings as TrainData
from mdrl.train.config import RewardSettings

runner = CliRunner()


def _help(cls, name):
    return next(f for f in dataclasses.fields(cls) if f.name == name).metadata["help"]


@pytest.mark.parametrize("cls, spec", [(BuildConfig, BuildSpec), (TrainData, DataSpec), (EvalOptions, EvalSpec),
                                       (StudyEval, EvalSpec)])
def test_commands_extend_the_specs_so_each_field_is_declared_once(cls, spec):
    assert issubclass(cls, spec)
    for field in dataclasses.fields(spec):
        assert _help(cls, field.name) == field.metadata["help"], field.name


@pytest.mark.parametrize("cls, spec, names", [(StudyData, DataSpec, ("n", "difficulty")),
                                              (RewardSettings, RewardSpec, ("mode", "format_weight")),
                                              (RewardVariant, RewardSpec, ("mode", "format_weight"))])
def test_settings_that_take_single_fields_reuse_their_declaration(cls, spec, names):
    for name in names:
        assert field_help(spec, name) in _help(cls, name)


def test_difficulty_has_one_form():
    expected = {"countdown": "3-4", "knights_knaves": "3,5"}
    for spelling in (expected, ["countdown=3-4", "knights_knaves=3,5"], [("countdown", "3-4"), ("knights_knaves", [3, 5])]):
        assert difficulty_map(spelling) == expected
    assert TrainData(difficulty={"countdown": "3-4"}).difficulty == BuildConfig(difficulty=["countdown=3-4"]).difficulty
    assert BuildConfig(difficulty=(("countdown", (3, 4)),)).levels_for("countdown") == (3, 4)
    with pytest.raises(ValueError, match="bad difficulty"):
        difficulty_map(["countdown=3-x"])


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("command, cls, names", [
    (["data", "build"], BuildSpec, ("mix", "n", "seed", "split", "skip_bad_rows")),
    (["eval", "run"], EvalSpec, ("limit", "gen_n", "data_root", "score_workers")),
    (["eval", "run"], SamplingConfig, ("temperature", "top_p", "max_new_tokens")),
    (["score"], RewardSpec, ("format_weight",)),
    (["serve"], ServeConfig, ("host", "chunk_size", "request_timeout_s", "data_source")),
])
def test_cli_help_is_the_field_help(command, cls, names):
    shown = _flat(runner.invoke(app, [*command, "--help"], terminal_width=10_000).output)
    for name in names:
        assert _flat(field_help(cls, name)) in shown, name


def test_set_overrides_reach_the_build_and_the_study(tmp_path):
    result = runner.invoke(app, ["data", "build", "--mix", "countdown:1", "--n", "4", "--set", "difficulty.countdown=3",
                                 "--set", "split=dev", "--out", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert manifest["config"]["difficulty"] == {"countdown": [3]} and (tmp_path / "d" / "dev.parquet").is_file()
    result = runner.invoke(app, ["study", "--preset", "tiny", "--dry-run", "--set", "seeds=[5]", "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    assert "seed5" in result.output and "seed10" not in result.output
    bad = runner.invoke(app, ["study", "--preset", "tiny", "--dry-run", "--set", "seedz=[5]", "--out", str(tmp_path / "s")])
    assert bad.exit_code != 0 and "seedz" in bad.output


def test_old_spellings_work_with_a_warning(tmp_path, caplog):
    from mdrl.data.sources import SourceSpec

    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"data_source": "countdown", "solution_str": "<think>.</think><answer>1+2</answer>",
                                "ground_truth": {"target": 3, "numbers": [1, 2]}}) + "\n")
    with caplog.at_level(logging.WARNING):
        old = runner.invoke(app, ["score", "-i", str(rows), "--format-reward", "0.5"])
    new = runner.invoke(app, ["score", "-i", str(rows), "--format-weight", "0.5"])
    assert old.exit_code == new.exit_code == 0
    def first_row(output: str) -> dict:
        return json.loads(next(line for line in output.splitlines() if line.startswith("{")))

    assert first_row(old.output) == first_row(new.output) and first_row(new.output)["format"] == 1.0
    assert "--format-reward is deprecated" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert SourceSpec.parse("generate:countdown:3?n=4") == SourceSpec.parse("gen:countdown:3?n=4")
    assert "deprecated" in caplog.text
