"""One entry point: `mdrl <command>`. Each command lives in its own module under `mdrl.commands`;
heavy libraries (torch, transformers) are imported inside the commands, so `mdrl score` starts fast."""

from __future__ import annotations

import logging
import os
from typing import Optional

import typer

from mdrl.commands import data, demo, models, score, serve, study, tiny, train
from mdrl.commands import eval as evaluation

app = typer.Typer(rich_markup_mode=None, add_completion=False, no_args_is_help=True,
                  help="mdrl: multi-domain RL with verifiable rewards.")


@app.callback()
def _main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at INFO level."),
    domains: Optional[str] = typer.Option(
        None, "--domains", metavar="MODULE[,MODULE...]",
        help="Python modules that register domains of your own (read before any command; also "
             "$MDRL_DOMAINS, which this sets so child processes and reward workers load them too). "
             "Installed packages can instead declare an entry point in the group mdrl.domains."),
) -> None:
    level = logging.INFO if verbose else getattr(logging, os.environ.get("MDRL_LOG_LEVEL", "WARNING"))
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if domains:
        from mdrl.domains.registry import DOMAINS_ENV

        known = [m for m in os.environ.get(DOMAINS_ENV, "").split(",") if m.strip()]
        os.environ[DOMAINS_ENV] = ",".join(dict.fromkeys([*known, *(m.strip() for m in domains.split(","))]))
    # transformers' per-load "Loading weights" bars would bury mdrl's own progress bars (and reach the
    # study's worker processes through the environment)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


app.command("score", help=score.__doc__,
            epilog="Example: mdrl score -i rows.jsonl --reward proportional > scores.jsonl")(score.score)
app.command("train", help=train.__doc__, epilog="Example: mdrl train -p tiny -o runs/kk")(train.train)
app.command("serve", epilog="Example: mdrl serve --port 8000")(serve.serve)
app.command("study", epilog="Example: mdrl study --preset tiny -o runs/study-tiny -j 2")(study.study)
app.command("demo", help=demo.__doc__, epilog="Example: mdrl demo -o runs/demo")(demo.demo)
app.command("models", help=models.__doc__, epilog="Example: mdrl models smollm2")(models.models)
app.add_typer(data.app, name="data")
app.add_typer(evaluation.app, name="eval")
app.add_typer(tiny.app, name="tiny")
