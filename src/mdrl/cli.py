"""One entry point: `mdrl <command>`. Each command lives in its own module under `mdrl.commands`;
heavy libraries (torch, transformers) are imported inside the commands, so `mdrl score` starts fast."""

from __future__ import annotations

import logging
import os

import typer

from mdrl.commands import score as _score

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="mdrl: multi-domain RL with verifiable rewards.")


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at INFO level.")) -> None:
    level = logging.INFO if verbose else getattr(logging, os.environ.get("MDRL_LOG_LEVEL", "WARNING"))
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


app.command("score", help=_score.__doc__)(_score.score)
# Sub-command groups register below, one line each.
