"""Run a study grid (resumable): train every cell, evaluate every model on every suite, write the tables,
the synergy matrix, plots and an HTML report."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from mdrl.commands.options import set_option

log = logging.getLogger(__name__)


def preset_folder() -> Path:
    import mdrl

    return Path(mdrl.__file__).resolve().parent / "presets"


def study_presets() -> list[str]:
    """Names of the packaged study presets (presets/study_<name>.yaml)."""
    return sorted(p.stem[len("study_"):] for p in preset_folder().glob("study_*.yaml"))


def preset_path(name: str) -> Path:
    path = preset_folder() / f"study_{name}.yaml"
    if not path.is_file():
        raise typer.BadParameter(f"unknown study preset {name!r}; known: {', '.join(study_presets()) or 'none'}")
    return path


def study(
    config: Path | None = typer.Option(None, "--config", "-c", exists=True, dir_okay=False,
                                          help="The study YAML (grid, suites, data, train, eval)."),
    preset: str | None = typer.Option(None, "--preset", "-p",
                                         help="A packaged study instead of --config: paper | tiny."),
    out: Path | None = typer.Option(None, "--out", "-o",
                                       help="Study folder (default runs/study-<name>); re-run to resume."),
    runner: str | None = typer.Option(None, "--runner",
                                         help="package.module:factory giving your own CellRunner "
                                              "(default: mdrl.train + mdrl.eval)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the grid and each cell's status; run nothing."),
    report_only: bool = typer.Option(False, "--report-only",
                                     help="Only rebuild tables, plots and report from finished cells."),
    fail_fast: bool = typer.Option(False, "--fail-fast", help="Stop at the first failing cell."),
    workers: int = typer.Option(1, "--workers", "-j", min=1,
                                help="Jobs run at once, each in its own process (CPU studies: one per core)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar with ETA on stderr."),
    list_presets: bool = typer.Option(False, "--list-presets", help="List the packaged study presets."),
    set_values: list[str] | None = set_option("eval.limit=50 or --set 'seeds=[1, 2]'"),
) -> None:
    """Run a study grid (resumable): train every cell, evaluate every model on every suite, write the
    tables, the synergy matrix, plots and an HTML report. Finished cells are skipped on a re-run."""
    from mdrl.study.config import StudyConfig, StudyConfigError
    from mdrl.study.runner import FINISHED, MdrlCellRunner, Study, StudyLockedError, load_runner

    if list_presets:
        for name in study_presets():
            typer.echo(f"{name}\t{preset_path(name)}")
        return
    if (config is None) == (preset is None):
        raise typer.BadParameter("give exactly one of --config or --preset")
    path = config if config is not None else preset_path(str(preset))
    try:
        study_config = StudyConfig.from_yaml(path, set_values or ())
    except (StudyConfigError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None
    out_dir = out or Path("runs") / f"study-{study_config.name}"
    try:
        cell_runner = load_runner(runner, study_config) if runner else MdrlCellRunner(study_config, progress)
    except (ImportError, ValueError) as exc:
        raise typer.BadParameter(f"--runner: {exc}") from None
    grid = Study(study_config, out_dir, cell_runner)
    plan = grid.plan()
    if report_only:
        results = grid.report()
        typer.echo(results.markdown)
        typer.echo(f"report: {results.report_path}")
        return
    if dry_run:
        try:
            grid.check(plan)
        except (ValueError, StudyConfigError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"design: {study_config.design}, {len(study_config.cells())} cells, "
                   f"{len(study_config.baselines())} baselines")
        for axis, values in study_config.axes().items():
            typer.echo(f"{axis + ':':22s} {' | '.join(values)}  ({len(values)})")
        for job in plan.jobs:
            extra = f" (suites: {', '.join(job.missing)})" if job.status == "evaluate" and job.missing else ""
            if job.missing_templates:
                extra += f" (+ eval templates: {', '.join(job.missing_templates)})"
            typer.echo(f"{job.status:9s} {job.kind:8s} {job.cell_id}{extra}")
        typer.echo(f"{study_config.name}: {len(plan.jobs)} jobs in {out_dir}; {plan.summary()}")
        return
    typer.echo(f"{study_config.name}: {plan.summary()}")
    try:
        results = grid.run(plan, progress=progress, fail_fast=fail_fast, workers=workers)
    except (ValueError, StudyConfigError) as exc:  # a config the runner rejected before running
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except StudyLockedError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(3) from None
    echo_results(results, "cells")
    typer.echo(f"results: {results.paths['results_json']}")
    typer.echo(f"report: {results.report_path}")
    unfinished = sum(job.status != FINISHED for job in grid.plan().jobs)
    if results.failed or unfinished:
        raise typer.Exit(1)


def echo_results(results, unit: str, suffix: str = "") -> None:
    """The tables, the job counts and each failure: the summary `mdrl study` and `mdrl demo` share."""
    typer.echo(results.markdown)
    counts = results.counts
    typer.echo(f"ran {counts['ran']}, skipped {counts['skipped']}, failed {counts['failed']} "
               f"of {counts['planned']} {unit}{suffix}")
    for failure in results.failed:
        typer.echo(f"failed: {failure['cell_id']}: {failure['error']}", err=True)
