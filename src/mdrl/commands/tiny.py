"""The embedded tiny world: `mdrl tiny build` trains mdrl's own BASE and INSTRUCT models from scratch on
generated data (no downloads) and reports their held-out accuracy, greedy and sampled at temperature 1."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import typer

log = logging.getLogger(__name__)

app = typer.Typer(rich_markup_mode=None, add_completion=False, no_args_is_help=True, help=__doc__)


def load_recipe(recipe_file: Path | None, fast: bool = False) -> Any:
    """The default recipe, one read from JSON (as written in mdrl_recipe.json, or its `recipe` part),
    or the drastically reduced one of `--fast`."""
    from mdrl.tiny.recipe import TinyRecipe

    recipe = TinyRecipe()
    if recipe_file is not None:
        data = json.loads(recipe_file.read_text(encoding="utf-8"))
        try:
            recipe = TinyRecipe.from_dict(data.get("recipe", data))
        except (TypeError, ValueError) as exc:
            raise typer.BadParameter(f"--recipe {recipe_file}: {exc}") from None
    return recipe.fast() if fast else recipe


def build_with_progress(out_dir: Path, recipe: Any, force: bool = False, progress: bool = True) -> dict[str, Any]:
    """Build (or reuse) the tiny models in `out_dir` with a progress bar over optimizer steps."""
    import sys

    from mdrl.tiny.recipe import build_models, finished_base, read_built

    if not force and read_built(out_dir, recipe) is not None:
        typer.echo(f"tiny models: reusing {out_dir} (built by this recipe)", err=True)
        return build_models(out_dir, recipe)
    base_done = not force and finished_base(out_dir, recipe) is not None
    total = (0 if base_done else recipe.base.steps) + recipe.instruct.steps
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="step", desc="tiny build", file=sys.stderr, dynamic_ncols=True)

    def on_step(stage: str, step: int, _stage_total: int, loss: float) -> None:
        if bar is not None:
            bar.set_description(f"tiny {stage}")
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
            bar.update(1)

    reuse = " (base model reused: same base stage)" if base_done else ""
    typer.echo(f"tiny models: building in {out_dir} ({total} training steps, then measuring accuracy){reuse}",
               err=True)
    try:
        return build_models(out_dir, recipe, force=force, on_step=on_step)
    finally:
        if bar is not None:
            bar.close()


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@app.command("build", epilog="Example: mdrl tiny build -o runs/tiny")
def build(
    out: Path | None = typer.Option(None, "--out", "-o", help="Where to write base/ and instruct/ "
                                                                "(default: ~/.cache/mdrl/tiny, or $MDRL_CACHE_DIR/tiny)."),
    force: bool = typer.Option(False, "--force", help="Rebuild even if OUT holds a build of the same recipe."),
    recipe_file: Path | None = typer.Option(None, "--recipe", exists=True, dir_okay=False,
                                            help="A recipe as JSON (e.g. a mdrl_recipe.json) instead of the default."),
    fast: bool = typer.Option(False, "--fast", hidden=True, help="A seconds-long recipe for tests (untrained models)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar on stderr."),
) -> None:
    """Build the tiny BASE (r1-base template) and INSTRUCT (chat template) models from the recipe in
    mdrl.tiny.recipe, deterministically, and print their held-out accuracy per domain."""
    from mdrl.tiny.recipe import RECIPE_FILE, accuracy_table, default_cache_dir

    out_dir = out or default_cache_dir()
    record = build_with_progress(out_dir, load_recipe(recipe_file, fast), force, progress)
    typer.echo(accuracy_table(record))
    typer.echo(f"{record['parameters']:,} parameters; built in {record['seconds']:.0f} s "
               f"({record['threads']} torch threads)")
    for flavour in ("base", "instruct"):
        folder = out_dir / flavour
        typer.echo(f"{flavour}: {folder} ({folder_size(folder) / 1e6:.1f} MB)")
    typer.echo(f"recipe: {out_dir / RECIPE_FILE}")
