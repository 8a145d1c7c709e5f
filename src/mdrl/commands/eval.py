"""`mdrl eval run|serve-model|suites`: evaluate models on the study's suites, serve a HF model over the
OpenAI protocol, list suites."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import fields
from pathlib import Path
from typing import List, Optional

import typer

from mdrl.commands.options import list_options_option, resolve, set_option, spec_option
from mdrl.specs import DataSpec, EvalOptions, EvalSpec, RewardSpec, SamplingConfig, build_settings

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
    template: Optional[str] = spec_option(DataSpec, "template", "--template", "-t", note=(
        "A comma list evaluates each model under each, e.g. r1-base,chat,plain.")),
    template_grid: Optional[str] = typer.Option(None, "--template-grid", hidden=True,
                                                help="Deprecated: --template a,b does the same."),
    lang: Optional[str] = spec_option(EvalOptions, "lang"),
    n: Optional[int] = spec_option(SamplingConfig, "n"),
    temperature: Optional[float] = spec_option(SamplingConfig, "temperature"),
    top_p: Optional[float] = spec_option(SamplingConfig, "top_p"),
    max_new_tokens: Optional[int] = spec_option(SamplingConfig, "max_new_tokens"),
    seed: Optional[int] = spec_option(SamplingConfig, "seed"),
    stop: Optional[List[str]] = spec_option(SamplingConfig, "stop", note="Repeatable."),
    k: Optional[List[int]] = spec_option(EvalOptions, "ks", "--k", note="Repeatable."),
    out: Path = typer.Option(Path("eval_out"), "--out", "-o", help="Output folder."),
    cache_dir: Optional[Path] = spec_option(EvalOptions, "cache_dir"),
    data_root: Optional[Path] = spec_option(EvalSpec, "data_root"),
    limit: Optional[int] = spec_option(EvalSpec, "limit"),
    gen_n: Optional[int] = spec_option(EvalSpec, "gen_n"),
    gen_seed: Optional[int] = spec_option(EvalSpec, "gen_seed"),
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
    reward: Optional[str] = spec_option(RewardSpec, "mode", "--reward", prefix="For the score column: ",
                                        show_default=False),
    format_weight: Optional[float] = spec_option(RewardSpec, "format_weight", prefix="For the score column: ",
                                                 show_default=False),
    score_workers: Optional[int] = spec_option(EvalSpec, "score_workers"),
    progress: Optional[bool] = spec_option(EvalOptions, "progress", "--progress/--no-progress"),
    set_values: Optional[List[str]] = set_option("sampling.temperature=0.7 or --set limit=50"),
    list_options: bool = list_options_option(("", EvalOptions), ("sampling.", SamplingConfig)),
) -> None:
    """Evaluate models x templates x suites; write OUT/summary.json, OUT/report.md and per-sample JSONL."""
    from mdrl.eval.runner import evaluate

    if template_grid:
        log.warning("--template-grid is deprecated: --template %s does the same", template_grid)
        if template is not None and template != template_grid:
            raise typer.BadParameter("give --template only (its old spelling --template-grid is given too)")
        template = template_grid
    template = template or DataSpec.template
    values = {"lang": lang, "data_root": data_root and str(data_root), "limit": limit, "gen_n": gen_n,
              "gen_seed": gen_seed, "reward.mode": reward, "reward.format_weight": format_weight,
              "score_workers": score_workers, "cache_dir": cache_dir and str(cache_dir), "ks": k or None,
              "progress": progress, "sampling.n": n, "sampling.temperature": temperature,
              "sampling.top_p": top_p, "sampling.max_new_tokens": max_new_tokens, "sampling.seed": seed,
              "sampling.stop": stop or None}
    options, sampling = resolve(EvalOptions, values, set_values, build=_options_and_sampling)
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


def _options_and_sampling(data: dict) -> tuple[EvalOptions, SamplingConfig]:
    """EvalOptions from the top-level settings and SamplingConfig from `sampling.*` (as in a study's eval)."""
    data = dict(data)
    sampling = data.pop("sampling", None) or {}
    if not isinstance(sampling, dict):
        raise ValueError(f"sampling: expected a mapping of sampling settings, got {sampling!r}")
    try:
        options = build_settings(EvalOptions, data)
    except ValueError as exc:
        known = ", ".join(f"sampling.{f.name}" for f in fields(SamplingConfig))
        raise ValueError(f"{exc}; sampling settings: {known}") from None
    return options, build_settings(SamplingConfig, sampling, "sampling.")


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
    model: str = typer.Option(..., "--model", "-m", help="A model folder, hub name or packaged model (smollm2)."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    served_name: Optional[str] = typer.Option(None, "--served-name", help="Model id (default: folder name)."),
    device: str = typer.Option("auto", "--device"),
    dtype: str = typer.Option("auto", "--dtype"),
    batch_size: int = typer.Option(16, "--batch-size", help="Sequences per forward batch; concurrent greedy "
                                                             "requests are batched together up to it."),
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
