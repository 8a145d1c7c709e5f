"""One command after installation: build (or reuse) the embedded tiny models, run a bounded study on
generated data (baselines, one single-domain GRPO cell per domain group and model, the evaluation
matrix), and print the tables and the path of the HTML report. About 9 minutes on 2 CPU cores;
`--full` runs the whole tiny grid with the mixed cells (every pair and all three) and the
synergy/conflict matrix (about 70 minutes)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import typer

log = logging.getLogger(__name__)

DEMO_PRESET = "study_demo.yaml"
#: Merged over the demo preset by `--full` (the complete grid) and `--fast` (tests).
FULL_PRESET = "overlays/demo_full.yaml"
FAST_PRESET = "overlays/demo_fast.yaml"


def demo_config(models_dir: Path, full: bool = False, fast: bool = False) -> dict[str, Any]:
    """The demo study as a mapping: the packaged preset (+ the full or fast grid), with `tiny:base` /
    `tiny:instruct` pointing at the models built in `models_dir`."""
    import yaml

    from mdrl.commands.study import preset_folder
    from mdrl.specs import deep_merge

    def read(name: str) -> dict[str, Any]:
        return yaml.safe_load((preset_folder() / name).read_text(encoding="utf-8"))

    mapping = read(DEMO_PRESET)
    if full:
        mapping = deep_merge(mapping, read(FULL_PRESET))
    if fast:
        mapping = deep_merge(mapping, read(FAST_PRESET))
    models = []
    for model in mapping["models"]:
        path = str(model["path"])
        if path.startswith("tiny:"):
            model = {**model, "path": str(models_dir / path.split(":", 1)[1])}
        models.append(model)
    mapping["models"] = models
    return mapping


def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Study folder; re-run to resume."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir",
                                          help="Where the tiny models are built once and reused when the shipped "
                                               "ones are not the current recipe's (default: ~/.cache/mdrl/tiny, "
                                               "or $MDRL_CACHE_DIR/tiny)."),
    full: bool = typer.Option(False, "--full", help="The complete tiny grid: base and instruct x math, code, "
                                                    "puzzle, all pairs and all three x 3 seeds (about 70 minutes on 2 cores)."),
    runner: str | None = typer.Option(None, "--runner", help="package.module:factory giving your own CellRunner."),
    fast: bool = typer.Option(False, "--fast", hidden=True,
                              help="Seconds-long models and grid, to test the wiring (numbers mean nothing)."),
    workers: int = typer.Option(2, "--workers", "-j", min=1,
                                help="Cells trained and evaluated at once, one process each (one per CPU core)."),
    threads: int = typer.Option(1, "--threads", min=1,
                                help="torch CPU threads for training and evaluation. A 1M-parameter model "
                                     "gains little from more, and on a busy machine extra threads thrash."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bars with ETA on stderr."),
) -> None:
    """Build (or reuse) the tiny models, run a bounded tiny study, print the tables and the report path."""
    import time

    import torch

    from mdrl.commands.study import echo_results
    from mdrl.commands.tiny import build_with_progress, load_recipe
    from mdrl.study.config import StudyConfig, StudyConfigError
    from mdrl.study.runner import MdrlCellRunner, Study, StudyLockedError, load_runner
    from mdrl.tiny.recipe import SHIPPED_DIR, accuracy_table, default_cache_dir, ready_models

    started = time.perf_counter()
    models_dir, record = ready_models((cache_dir or default_cache_dir()) / ("fast" if fast else ""),
                                      load_recipe(None, fast),
                                      build=lambda folder, recipe: build_with_progress(folder, recipe,
                                                                                       progress=progress))
    if models_dir == SHIPPED_DIR:
        typer.echo(f"tiny models: the shipped build in {models_dir}", err=True)
    typer.echo("Tiny models before RL (the build's own measurement; the study's baselines are on held-out items):")
    typer.echo(accuracy_table(record))
    try:
        config = StudyConfig.from_mapping(demo_config(models_dir, full, fast))
        cell_runner = load_runner(runner, config) if runner else None
    except (StudyConfigError, ImportError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None
    torch.set_num_threads(threads)
    grid = Study(config, out, cell_runner if cell_runner is not None else MdrlCellRunner(config, progress))
    plan = grid.plan()
    typer.echo(f"{config.name}: {len(plan.jobs)} jobs (training cells and baseline evaluations) in {out}; "
               f"{plan.summary()}", err=True)
    try:
        results = grid.run(plan, progress=progress, workers=workers)
    except StudyLockedError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(3) from None
    echo_results(results, "jobs", f" in {time.perf_counter() - started:.0f} s")
    typer.echo(f"report: {results.report_path}")
    if results.failed:
        raise typer.Exit(1)
