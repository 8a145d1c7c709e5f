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
app.add_typer(__import__("mdrl.commands.data", fromlist=["app"]).app, name="data")
app.add_typer(__import__("mdrl.commands.eval", fromlist=["app"]).app, name="eval")
app.command("serve")(__import__("mdrl.commands.serve", fromlist=["serve"]).serve)
app.command("study")(__import__("mdrl.commands.study", fromlist=["study"]).study)
app.command("train", help=__import__("mdrl.commands.train", fromlist=["train"]).__doc__)(__import__("mdrl.commands.train", fromlist=["train"]).train)
app.add_typer(__import__("mdrl.commands.tiny", fromlist=["app"]).app, name="tiny")
app.command("demo", help=__import__("mdrl.commands.demo", fromlist=["demo"]).__doc__)(__import__("mdrl.commands.demo", fromlist=["demo"]).demo)
