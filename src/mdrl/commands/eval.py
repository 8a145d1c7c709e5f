"""`mdrl eval run|serve-model|suites`: evaluate models on the study's suites, serve a HF model over the
OpenAI protocol, list suites."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import List, Optional

import typer

from mdrl.specs import EvalOptions, EvalSpec, RewardSpec, SamplingConfig, field_help

log = logging.getLogger(__name__)

app = typer.Typer(rich_markup_mode=None, 
    add_completion=False,
    no_args_is_help=True,
    help="Evaluate models (hf, OpenAI-compatible server, vllm) on suites; serve a model.",
)


@app.command("run",
             epilog="Example: mdrl eval run -m runs/kk/final -s kk -s gen:countdown:3:200:7 -o runs/kk/eval")
def run(
    model: List[str] = typer.Option(
        ...,
        "--model",
        "-m",
        help="Repeatable. A model folder or hub name (hf, vllm) or a server URL (openai).",
    ),
    suite: List[str] = typer.Option(
        ...,
        "--suite",
        "-s",
        help="Repeatable. A domain's suite (mdrl eval suites lists them), NAME=PATH for your own copy, "
        "or gen:DOMAIN[:LEVELS[:N[:SEED]]].",
    ),
    backend: str = typer.Option("hf", "--backend", "-b", help="hf | openai | vllm."),
    template: str = typer.Option(
        "r1-base", "--template", "-t", help="r1-base | chat | plain, or a comma list to evaluate each model "
        "under each, e.g. r1-base,chat,plain."
    ),
    template_grid: Optional[str] = typer.Option(None, "--template-grid", hidden=True,
                                                help="Deprecated: --template a,b does the same."),
    lang: str = typer.Option("en", "--lang", help=field_help(EvalOptions, "lang")),
    n: int = typer.Option(1, "--n", help=field_help(SamplingConfig, "n")),
    temperature: float = typer.Option(0.0, "--temperature", help=field_help(SamplingConfig, "temperature")),
    top_p: float = typer.Option(1.0, "--top-p", help=field_help(SamplingConfig, "top_p")),
    max_new_tokens: int = typer.Option(1024, "--max-new-tokens", help=field_help(SamplingConfig, "max_new_tokens")),
    seed: int = typer.Option(0, "--seed", help=field_help(SamplingConfig, "seed")),
    stop: Optional[List[str]] = typer.Option(None, "--stop", help="Repeatable. " + field_help(SamplingConfig, "stop")),
    k: Optional[List[int]] = typer.Option(None, "--k", help="Repeatable. " + field_help(EvalOptions, "ks")),
    out: Path = typer.Option(Path("eval_out"), "--out", "-o", help="Output folder."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help=field_help(EvalOptions, "cache_dir")),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help=field_help(EvalSpec, "data_root")),
    limit: Optional[int] = typer.Option(None, "--limit", help=field_help(EvalSpec, "limit")),
    gen_n: Optional[int] = typer.Option(None, "--gen-n", help=field_help(EvalSpec, "gen_n")),
    gen_seed: Optional[int] = typer.Option(None, "--gen-seed", help=field_help(EvalSpec, "gen_seed")),
    batch_size: Optional[int] = typer.Option(
        None, "--batch-size", help="hf: sequences per forward batch (default 16); vllm: prompts per call."
    ),
    device: Optional[str] = typer.Option(None, "--device", help="hf: auto | cpu | cuda[:i]."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="hf: auto | float32 | bfloat16 | float16."),
    model_id: Optional[str] = typer.Option(
        None,
        "--model-id",
        help="Name that identifies the model in the cache and reports instead of "
        "its path+weights fingerprint (hf) or URL+served name (openai).",
    ),
    served_model: Optional[str] = typer.Option(
        None, "--served-model", help="openai: the model name to request (default: the server's first)."
    ),
    api_key: Optional[str] = typer.Option(
        None, "--api-key", envvar="OPENAI_API_KEY", help="openai: bearer token."
    ),
    concurrency: Optional[int] = typer.Option(
        None, "--concurrency", help="openai: parallel requests (default 8)."
    ),
    timeout: Optional[float] = typer.Option(
        None, "--timeout", help="openai: seconds per request (default 600)."
    ),
    retries: Optional[int] = typer.Option(
        None, "--retries", help="openai: retries of a failed request (default 5)."
    ),
    extra_body: Optional[str] = typer.Option(
        None,
        "--extra-body",
        help='openai: JSON merged into every request, e.g. \'{"skip_special_tokens": false}\' for vLLM '
        "serving a tokenizer that marks <think>/<answer> as special tokens.",
    ),
    reward: Optional[str] = typer.Option(
        None, "--reward", help="For the score column: " + field_help(RewardSpec, "mode")),
    score_workers: int = typer.Option(4, "--score-workers", help=field_help(EvalSpec, "score_workers")),
    progress: bool = typer.Option(True, "--progress/--no-progress", help=field_help(EvalOptions, "progress")),
) -> None:
    """Evaluate models x templates x suites; write OUT/summary.json, OUT/report.md and per-sample JSONL."""
    from mdrl.eval.runner import evaluate

    if template_grid:
        log.warning("--template-grid is deprecated: --template %s does the same", template_grid)
        template = template_grid
    try:
        sampling = SamplingConfig(
            n=n,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            seed=seed,
            stop=tuple(stop or ()),
        )
        options = EvalOptions(
            lang=lang,
            data_root=str(data_root) if data_root else None,
            limit=limit,
            gen_n=gen_n,
            gen_seed=gen_seed,
            reward=RewardSpec(mode=reward) if reward else None,
            score_workers=score_workers,
            cache_dir=str(cache_dir) if cache_dir else None,
            ks=tuple(k or ()),
            progress=progress,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if model_id and len(model) > 1:
        raise typer.BadParameter("--model-id names one model; give one --model with it")
    if backend == "hf":
        backend_options = {"batch_size": batch_size, "device": device, "dtype": dtype, "model_id": model_id}
    elif backend == "openai":
        backend_options = {
            "model": served_model,
            "api_key": api_key,
            "concurrency": concurrency,
            "timeout": timeout,
            "max_retries": retries,
            "model_id": model_id,
            "extra_body": _json_object(extra_body, "--extra-body"),
        }
    elif backend == "vllm":
        backend_options = {"batch_size": batch_size, "model_id": model_id}
        if dtype:
            backend_options["dtype"] = dtype
    else:
        raise typer.BadParameter(f"unknown backend {backend!r}; use hf, openai or vllm")
    from mdrl.domains.base import DataError
    from mdrl.eval.backends.openai import ServerError
    from mdrl.eval.cache import CacheBusy
    from mdrl.modelref import ModelNotFound

    try:
        summary = evaluate(
            model,
            suite,
            template,
            sampling,
            out,
            backend=backend,
            backend_options=backend_options,
            options=options,
        )
    except (DataError, KeyError, ServerError, CacheBusy, ImportError, ModelNotFound) as exc:
        typer.echo(f"mdrl eval: {exc.args[0] if isinstance(exc, KeyError) and exc.args else exc}", err=True)
        raise typer.Exit(2) from None
    for entry in summary["runs"]:
        typer.echo(
            f"{entry['model']} | {entry['template']}-{entry['lang']} | {entry['suite']}: "
            f"accuracy {100 * (entry.get('accuracy') or 0):.1f}% over {entry.get('n_items', 0)} items; "
            f"reused {entry['cached_items']} cached items, generated {entry['generated_items']} "
            f"({entry['generated_samples']} samples)",
            err=True,
        )
    typer.echo(summary["table"])
    typer.echo(f"wrote {out / 'summary.json'} and {out / 'report.md'}", err=True)


def _json_object(text: str | None, option: str) -> dict | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"{option}: not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise typer.BadParameter(f"{option}: give a JSON object")
    return value


@app.command("serve-model", epilog="Example: mdrl eval serve-model -m runs/kk/final --port 8001")
def serve_model(
    model: str = typer.Option(..., "--model", "-m", help="A model folder or hub name."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    served_name: Optional[str] = typer.Option(None, "--served-name", help="Model id (default: folder name)."),
    device: str = typer.Option("auto", "--device"),
    dtype: str = typer.Option("auto", "--dtype"),
    batch_size: int = typer.Option(16, "--batch-size", help="Sequences per forward batch within a request."),
) -> None:
    """Serve a HF model over the OpenAI protocol (/v1/completions, /v1/chat/completions); greedy at T=0."""
    from mdrl.eval.openai_server import serve

    serve(
        model,
        host=host,
        port=port,
        served_name=served_name,
        device=device,
        dtype=dtype,
        batch_size=batch_size,
    )


@app.command("suites", epilog="Example: mdrl eval suites")
def suites(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the built-in suites and where their data is looked for."""
    from mdrl.domains import find_suite
    from mdrl.eval.suites import data_root, list_suites

    listing = list_suites()
    if as_json:
        typer.echo(json.dumps(listing, indent=2))
        return
    root = data_root(os.environ.get("MDRL_DATA"))
    for name, description in listing.items():
        found = find_suite(name)
        definition = found[1] if found else None
        where = f"  [{root / definition.default_path}]" if definition and definition.default_path else ""
        typer.echo(f"{name:32s} {description}{where}")
