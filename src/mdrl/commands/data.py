"""`mdrl data build|inspect`: build mixed / curriculum training sets as veRL parquet; look inside files."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, List, Optional

import typer

from mdrl.commands.options import list_options_option, resolve, set_option, spec_option
from mdrl.specs import BuildSpec

app = typer.Typer(rich_markup_mode=None, 
    add_completion=False,
    no_args_is_help=True,
    help="Build training data (mixtures, curricula) as veRL parquet; inspect data files.",
)


@app.command("build",
             epilog="Example: mdrl data build --mix countdown:1,knights_knaves:1 --n 2000 --out data/cdkk")
def build(
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Output folder (train.parquet, manifest.json)."
    ),
    mix: Optional[str] = spec_option(BuildSpec, "mix", "--mix", "-m"),
    source: Optional[List[str]] = spec_option(BuildSpec, "sources", "--source", "-s", note="Repeatable."),
    n: Optional[int] = spec_option(BuildSpec, "n", "--n", "-n"),
    difficulty: Optional[List[str]] = spec_option(BuildSpec, "difficulty", "--difficulty", "-d",
                                                  note="Repeatable."),
    template: Optional[str] = spec_option(BuildSpec, "template", "--template", "-t"),
    lang: Optional[str] = spec_option(BuildSpec, "lang"),
    curriculum: Optional[bool] = typer.Option(None, "--curriculum/--no-curriculum",
                                              help="--curriculum: difficulty order (see --curriculum-by)."),
    curriculum_by: Optional[str] = spec_option(BuildSpec, "curriculum", "--curriculum-by"),
    seed: Optional[int] = spec_option(BuildSpec, "seed"),
    split: Optional[str] = spec_option(BuildSpec, "split"),
    allow_repeat: Optional[bool] = spec_option(BuildSpec, "allow_repeat", "--allow-repeat/--no-allow-repeat"),
    mixed_language: Optional[bool] = spec_option(BuildSpec, "mixed_language",
                                                 "--mixed-language/--no-mixed-language"),
    skip_bad_rows: Optional[bool] = spec_option(BuildSpec, "skip_bad_rows",
                                                "--skip-bad-rows/--no-skip-bad-rows"),
    ground_truth_format: Optional[str] = spec_option(BuildSpec, "ground_truth_format"),
    set_values: Optional[List[str]] = set_option("difficulty.countdown=3-4"),
    list_options: bool = list_options_option(("", BuildSpec)),
    hf_dataset: bool = typer.Option(False, "--hf-dataset", help="Also save an HF Dataset under OUT/hf."),
    config: Optional[Path] = typer.Option(
        None,
        "--config",
        "-c",
        help="YAML with the same settings (options given here override it); may also set out.",
    ),
) -> None:
    """Build a training set (mixture ratios, difficulty levels, curriculum): OUT/train.parquet + manifest."""
    from mdrl.data.build import BuildConfig, build_dataset, summarize, write_build
    from mdrl.domains.base import DataError

    settings: dict[str, Any] = {}
    if config is not None:
        import yaml

        loaded = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise typer.BadParameter(f"{config}: the config must be a mapping")
        settings.update(loaded)
    out = out or (Path(settings.pop("out")) if settings.get("out") else None)
    settings.pop("out", None)
    if out is None:
        raise typer.BadParameter("give --out (or `out:` in the config)")
    curriculum_name = curriculum_by if curriculum_by is not None else (
        None if curriculum is None else "difficulty" if curriculum else "none")
    options = {"mix": mix, "n": n, "template": template, "lang": lang, "seed": seed, "split": split,
               "allow_repeat": allow_repeat, "mixed_language": mixed_language, "skip_bad_rows": skip_bad_rows,
               "ground_truth_format": ground_truth_format, "curriculum": curriculum_name,
               "sources": list(source) if source else None,
               "difficulty": list(difficulty) if difficulty else None}
    build_config = resolve(BuildConfig, options, set_values, base=settings, build=BuildConfig.from_mapping)
    try:
        result = build_dataset(build_config)
        paths = write_build(result, out, hf_dataset=hf_dataset)
    except (ValueError, KeyError, DataError) as exc:
        raise typer.BadParameter(
            str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)
        ) from None
    typer.echo(summarize(result))
    typer.echo("wrote " + ", ".join(str(path) for path in paths.values()))


def _inspect_rows(path: Path, skip_bad_rows: bool, skipped: list[str]) -> tuple[list[Any], dict[str, Any]]:
    from mdrl.data.sources import SourceSpec, load_source, parquet_metadata

    kind = "parquet" if path.suffix == ".parquet" else "jsonl" if path.suffix == ".jsonl" else "hf"
    metadata = parquet_metadata(path) if kind == "parquet" else {}
    spec = SourceSpec(kind=kind, path=str(path), on_error="skip" if skip_bad_rows else "raise")
    return load_source(spec, skipped=skipped), metadata


@app.command("inspect", epilog="Example: mdrl data inspect data/cdkk/train.parquet")
def inspect(
    file: Path = typer.Argument(..., help="A veRL parquet file, a jsonl file or a saved HF Dataset folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
    skip_bad_rows: bool = typer.Option(
        False, "--skip-bad-rows", help="Count malformed rows (and name the first) instead of stopping at one."),
) -> None:
    """Counts per data_source, domain and difficulty of a data file (the study's or one mdrl built)."""
    from mdrl.domains.base import DataError

    if not file.exists():
        raise typer.BadParameter(f"{file} does not exist")
    skipped: list[str] = []
    try:
        problems, metadata = _inspect_rows(file, skip_bad_rows, skipped)
    except (DataError, ValueError) as exc:
        hint = "" if skip_bad_rows else " (--skip-bad-rows counts such rows and goes on)"
        raise typer.BadParameter(f"{exc}{hint}") from None
    by_level: dict[str, Counter[int]] = {}
    for problem in problems:
        by_level.setdefault(problem.domain, Counter())[problem.difficulty] += 1
    report = {
        "file": str(file),
        "rows": len(problems),
        "data_source": dict(sorted(Counter(p.data_source for p in problems).items())),
        "domain": dict(sorted(Counter(p.domain for p in problems).items())),
        "difficulty": {d: {str(k): v for k, v in sorted(c.items())} for d, c in sorted(by_level.items())},
        "curriculum": metadata.get("curriculum", "none") if metadata else None,
        "skipped_rows": {"count": len(skipped), "first": skipped[:5]},
    }
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(
        f"{file}: {report['rows']} rows"
        + (f", curriculum {report['curriculum']}" if report["curriculum"] not in (None, "none") else "")
    )
    if skipped:
        typer.echo(f"  skipped {len(skipped)} malformed row(s), first: {skipped[0]}")
    for name, count in report["data_source"].items():
        typer.echo(f"  data_source {name:<20} {count:>7}")
    for name, levels in report["difficulty"].items():
        typer.echo(
            f"  domain {name:<25} {report['domain'][name]:>7}  difficulty "
            + ", ".join(f"{k}:{v}" for k, v in levels.items())
        )
