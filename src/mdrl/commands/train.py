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

from mdrl.commands.options import list_options_option, set_option, spec_option
from mdrl.train.config import DataSettings, GRPOSettings, ModelSettings, RunSettings, TrainConfig

log = logging.getLogger(__name__)


def _shortcuts(
    engine: Optional[str],
    model: Optional[str],
    mix: Optional[str],
    curriculum: Optional[str],
    output_dir: Optional[Path],
    max_steps: Optional[int],
    name: Optional[str],
    nproc: Optional[int] = None,
) -> list[str]:
    pairs = (
        ("engine", engine),
        ("model.path", model),
        ("data.mix", mix),
        ("data.curriculum", curriculum),
        ("run.output_dir", str(output_dir) if output_dir else None),
        ("grpo.max_steps", max_steps),
        ("name", name),
        ("run.nproc", nproc),
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
    overrides: Optional[List[str]] = set_option("grpo.learning_rate=1e-5", "-s"),
    # no default shown: a preset or config file sets most of these
    engine: Optional[str] = spec_option(TrainConfig, "engine", show_default=False),
    model: Optional[str] = spec_option(ModelSettings, "path", "--model", show_default=False),
    mix: Optional[str] = spec_option(DataSettings, "mix", show_default=False),
    curriculum: Optional[str] = spec_option(DataSettings, "curriculum", show_default=False),
    output_dir: Optional[Path] = spec_option(RunSettings, "output_dir", "--output-dir", "-o",
                                             show_default=False),
    max_steps: Optional[int] = spec_option(GRPOSettings, "max_steps", show_default=False),
    name: Optional[str] = spec_option(TrainConfig, "name", show_default=False),
    nproc: Optional[int] = spec_option(RunSettings, "nproc", show_default=False),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Resolve and print the config (veRL: also write the data and launch.sh) without training.",
    ),
    list_options: bool = list_options_option(("", TrainConfig)),
    list_presets: bool = typer.Option(False, "--list-presets", help="List the packaged presets and exit."),
) -> None:
    """GRPO training on TRL (one machine, CPU or GPU) or veRL (cluster); resumes when re-run."""
    from mdrl.train.config import load_config, preset_names

    if list_presets:
        typer.echo("\n".join(preset_names()))
        return
    try:
        resolved = load_config(
            preset,
            config,
            [*_shortcuts(engine, model, mix, curriculum, output_dir, max_steps, name, nproc), *(overrides or [])],
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
        from mdrl.train.ranks import train_local

        summary = train_local(resolved)
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
