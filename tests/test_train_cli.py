"""`mdrl train` on the command line: presets, dry runs, named options, errors, the veRL print-out."""

from __future__ import annotations

import yaml
from typer.testing import CliRunner

from mdrl.cli import app

runner = CliRunner()


def test_list_presets_and_options():
    presets = runner.invoke(app, ["train", "--list-presets"])
    assert presets.exit_code == 0 and {"paper", "tiny"} <= set(presets.output.split())
    options = runner.invoke(app, ["train", "--list-options"])
    assert options.exit_code == 0 and "grpo.num_generations" in options.output


def test_dry_run_prints_the_resolved_config_with_named_options_and_overrides():
    result = runner.invoke(
        app,
        [
            "train",
            "-p",
            "tiny",
            "--dry-run",
            "--mix",
            "countdown:1,knights_knaves:2",
            "--max-steps",
            "7",
            "--set",
            "grpo.learning_rate=1e-5",
            "--curriculum",
            "difficulty",
        ],
    )
    assert result.exit_code == 0, result.output
    resolved = yaml.safe_load(result.output)
    assert resolved["data"]["mix"] == "countdown:1,knights_knaves:2"
    assert resolved["grpo"]["max_steps"] == 7 and resolved["grpo"]["learning_rate"] == 1e-5
    assert resolved["data"]["curriculum"] == "difficulty"


def test_a_typo_is_a_usage_error_with_a_suggestion():
    result = runner.invoke(app, ["train", "-p", "tiny", "--set", "grpo.num_generation=4"])
    assert result.exit_code == 2
    assert "grpo.num_generations" in result.output


def test_verl_engine_writes_and_prints_the_launch(tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "train",
            "-p",
            "paper",
            "-o",
            str(out),
            "--dry-run",
            "--set",
            "data.sources=[]",
            "--mix",
            "countdown:1,knights_knaves:1",
            "--set",
            "data.n=16",
            "--set",
            "data.val_sources=[]",
            "--set",
            "data.val_n=4",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (
        "python3 -m verl.trainer.main_ppo" in result.output
        and "actor_rollout_ref.rollout.n=5" in result.output
    )
    assert (out / "launch.sh").is_file() and (out / "data" / "train.parquet").is_file()
    assert (out / "data" / "val" / "test.parquet").is_file()
