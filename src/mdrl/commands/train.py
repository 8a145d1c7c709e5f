"""GRPO training: `mdrl train --preset tiny`, `mdrl train -c run.yaml --set grpo.learning_rate=1e-5`.

The config is resolved from a preset, a YAML file and overrides (later wins) and saved as
<run>/config.yaml. The TRL engine (default) trains on this machine, CPU or one GPU, and resumes
from the last checkpoint when the same command is run again; the veRL engine writes veRL parquet,
the reward config and launch.sh, runs it where veRL and GPUs are present, and prints it otherwise.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import List, Optional

import typer

log = logging.getLogger(__name__)


def _shortcuts(
    engine: Optional[str],
    model: Optional[str],
    mix: Optional[str],
    curriculum: Optional[str],
    output_dir: Optional[Path],
    max_steps: Optional[int],
    name: Optional[str],
) -> list[str]:
    pairs = (
        ("engine", engine),
        ("model.path", model),
        ("data.mix", mix),
        ("data.curriculum", curriculum),
        ("run.output_dir", str(output_dir) if output_dir else None),
        ("grpo.max_steps", max_steps),
        ("name", name),
    )
    # Quoted so a value such as "math:1,puzzle:1" stays a string when the override is read as YAML.
    return [f"{key}={json.dumps(value)}" for key, value in pairs if value is not None]


def train(
    preset: Optional[str] = typer.Option(
        None,
        "--preset",
        "-p",
        help="Packaged preset: paper, paper-instruct, paper-curriculum, tiny (see --list-presets).",
    ),
    config: Optional[Path] = typer.Option(
        None, "--config", "-c", help="YAML config (may say `extends: <preset>`)."
    ),
    overrides: Optional[List[str]] = typer.Option(
        None,
        "--set",
        "-s",
        help="Dotted override KEY=VALUE, e.g. grpo.learning_rate=1e-5 (value read as YAML); repeatable.",
    ),
    engine: Optional[str] = typer.Option(None, "--engine", help="trl (this machine) | verl (cluster)."),
    model: Optional[str] = typer.Option(
        None, "--model", help="HF model path or hub id; 'tiny' for mdrl's own."
    ),
    mix: Optional[str] = typer.Option(None, "--mix", help="Mixture ratios, e.g. math:1,puzzle:1."),
    curriculum: Optional[str] = typer.Option(None, "--curriculum", help="none | difficulty | relative."),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", "-o", help="Run directory."),
    max_steps: Optional[int] = typer.Option(
        None, "--max-steps", help="Stop after this many rollout batches."
    ),
    name: Optional[str] = typer.Option(None, "--name", help="Run name (default run dir runs/<name>)."),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Resolve and print the config (veRL: also write the data and launch.sh) without training.",
    ),
    list_options: bool = typer.Option(
        False, "--list-options", help="List every setting with its help and exit."
    ),
    list_presets: bool = typer.Option(False, "--list-presets", help="List the packaged presets and exit."),
) -> None:
    """GRPO training on TRL (one machine, CPU or GPU) or veRL (cluster); resumes when re-run."""
    from mdrl.specs import describe_options
    from mdrl.train.config import TrainConfig, load_config, preset_names

    if list_presets:
        typer.echo("\n".join(preset_names()))
        return
    if list_options:
        for key, default, text in describe_options(TrainConfig):
            typer.echo(f"{key:<42} {default:<22} {text}")
        return
    try:
        resolved = load_config(
            preset,
            config,
            [*_shortcuts(engine, model, mix, curriculum, output_dir, max_steps, name), *(overrides or [])],
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None

    try:
        if resolved.engine == "verl":
            _run_verl(resolved, dry_run)
            return
        if dry_run:
            typer.echo(resolved.to_yaml())
            return
        from mdrl.train.trl_engine import train_trl

        summary = train_trl(resolved)
    except (
        ValueError,
        KeyError,
        FileNotFoundError,
    ) as exc:  # bad settings, data (DataError is a ValueError) or model path: say what, not where
        typer.echo(f"mdrl train: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(summary, indent=2))


def _run_verl(resolved, dry_run: bool) -> None:
    from mdrl.train.verl_engine import launch, prepare_verl, summary, verl_ready

    prep = prepare_verl(resolved)
    typer.echo(json.dumps(summary(prep), indent=2))
    ready, why = verl_ready()
    if dry_run or not resolved.verl.launch or not ready:
        reason = "dry run" if dry_run else "verl.launch=false" if not resolved.verl.launch else why
        typer.echo(f"# not launching ({reason}); run on the cluster:\nbash {prep.script}\n# which runs:")
        typer.echo(prep.command_line())
        return
    code = launch(prep)
    if code:
        raise typer.Exit(code)
