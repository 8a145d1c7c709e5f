"""Pretrained models that install offline: `mdrl models` lists them; `mdrl models smollm2` converts the
named ones once into the cache and prints their folders. Anywhere a model is asked for (`mdrl train
--model`, `mdrl eval run -m`, a study's models) the name works too."""

from __future__ import annotations

import json
from typing import List, Optional

import typer


def models(
    names: Optional[List[str]] = typer.Argument(None, help="Packaged models to prepare (e.g. smollm2)."),
) -> None:
    """List the packaged models, or convert the named ones into the cache and print their folders."""
    from mdrl.pretrained import PACKAGED_MODELS, PackagedModelMissing, describe, prepare_model

    if not names:
        typer.echo(json.dumps(describe(), indent=2))
        return
    unknown = [name for name in names if name not in PACKAGED_MODELS]
    if unknown:
        raise typer.BadParameter(f"unknown model {unknown[0]!r}; known: {', '.join(PACKAGED_MODELS)}")
    try:
        folders = {name: str(prepare_model(name)) for name in names}
    except PackagedModelMissing as exc:
        typer.echo(f"mdrl models: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(folders, indent=2))
