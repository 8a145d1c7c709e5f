"""`evaluate`: models x templates x suites -> scored samples, metrics, a summary and a report.

For each (model, template, suite) run the runner looks up the cache, sends only the missing items to
the backend in batches, scores each batch with the study's verifiers, appends it to the cache (a
crash loses at most the batch in flight), and finally writes the run's per-sample JSONL and summary.

Output layout under `out_dir`:
    summary.json, report.md                         every run of this call
    <model>/<template>/<suite>/samples.jsonl        one line per (item, sample), in suite order
    <model>/<template>/<suite>/summary.json         that run's metrics
    cache/<key>.jsonl, cache/<key>.key.json          the resumable cache (or --cache-dir)
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from mdrl.specs import EvalOptions  # noqa: F401  (re-exported: mdrl.eval.EvalOptions)
from mdrl.eval.cache import ResultCache
from mdrl.eval.metrics import aggregate
from mdrl.eval.scoring import Scorer
from mdrl.eval.suites import EvalItem, Suite, load_suite, user_message
from mdrl.eval.types import Backend, GenRequest, SamplingConfig
from mdrl.templates import Template

log = logging.getLogger(__name__)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:80] or "model"


def _templates(template: str | Template | Sequence[str | Template], lang: str) -> list[Template]:
    if isinstance(template, (str, Template)):
        template = [template]
    out = []
    for entry in template:
        if isinstance(entry, Template):
            out.append(entry)
        else:
            for name in str(entry).split(","):
                if name.strip():
                    out.append(Template(name.strip(), lang))
    if not out:
        raise ValueError("no template given")
    return out


def _record(
    item: EvalItem, index: int, prompt: str, completion: Any, scored: dict[str, Any]
) -> dict[str, Any]:
    return {
        "item_id": item.item_id,
        "sample_index": index,
        "fingerprint": item.fingerprint(),
        "group": item.group,
        "data_source": item.problem.data_source,
        "difficulty": item.problem.difficulty,
        "prompt": prompt,
        "response": completion.text,
        **scored,
        "n_tokens": completion.n_tokens,
        "n_chars": len(completion.text),
        "length_unit": "tokens" if completion.n_tokens is not None else "chars",
        "finish_reason": completion.finish_reason,
    }


def run_suite(
    backend: Backend,
    suite: Suite,
    template: Template,
    sampling: SamplingConfig,
    run_dir: Path,
    options: EvalOptions,
    scorer: Scorer,
    cache_dir: Path,
    model_name: str,
) -> dict[str, Any]:
    """Evaluate one suite under one template; resumes from the cache. Returns the run's summary."""
    from tqdm import tqdm

    run_key = {
        "model": backend.identity,
        "suite": suite.name,
        "template": template.name,
        "lang": template.lang,
        "sampling": sampling.as_dict(),
        "reward": asdict(options.reward) if options.reward else "domain default",
    }
    cache = ResultCache(cache_dir, run_key)
    fingerprints = {item.item_id: item.fingerprint() for item in suite.items}
    done = cache.complete_items(sampling.n, fingerprints)
    pending = [item for item in suite.items if item.item_id not in done]
    messages = {item.item_id: user_message(item, template.lang) for item in pending}
    # Similar lengths batch together (less padding); the output is put back in suite order below.
    pending.sort(key=lambda item: len(messages[item.item_id]))
    per_call = max(1, backend.batch_size // sampling.n)
    new_records: dict[str, list[dict[str, Any]]] = {}
    gen_seconds = score_seconds = 0.0
    label = f"{model_name} | {template.name}-{template.lang} | {suite.name}"
    if done:
        log.info("%s: %d of %d items cached", label, len(done), len(suite.items))
    started = time.perf_counter()
    with (
        cache,
        tqdm(
            total=len(pending) * sampling.n,
            desc=label,
            unit="sample",
            file=sys.stderr,
            disable=not options.progress or not pending,
            dynamic_ncols=True,
        ) as bar,
    ):
        for start in range(0, len(pending), per_call):
            chunk = pending[start : start + per_call]
            requests = [GenRequest(messages[item.item_id], template, key=item.item_id) for item in chunk]
            t0 = time.perf_counter()
            generations = backend.generate(requests, sampling)
            t1 = time.perf_counter()
            if len(generations) != len(chunk) or any(len(g.completions) != sampling.n for g in generations):
                raise RuntimeError(
                    f"backend {backend.identity} returned {len(generations)} generations for "
                    f"{len(chunk)} prompts (expected {sampling.n} samples each)"
                )
            jobs = [
                (item.problem, completion.text)
                for item, generation in zip(chunk, generations)
                for completion in generation.completions
            ]
            scores = iter(scorer.score(jobs))
            batch = []
            for item, generation in zip(chunk, generations):
                records = [
                    _record(item, index, generation.prompt, completion, next(scores))
                    for index, completion in enumerate(generation.completions)
                ]
                new_records[item.item_id] = records
                batch.extend(records)
            cache.append(batch)
            gen_seconds += t1 - t0
            score_seconds += time.perf_counter() - t1
            bar.update(len(batch))
    elapsed = time.perf_counter() - started
    ordered = [
        record
        for item in suite.items
        for record in (done.get(item.item_id) or new_records.get(item.item_id) or [])
    ]
    run_dir.mkdir(parents=True, exist_ok=True)
    with (run_dir / "samples.jsonl").open("w", encoding="utf-8") as handle:
        for record in ordered:
            handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
    new_samples = sum(len(v) for v in new_records.values())
    summary = {
        "model": model_name,
        "model_identity": backend.identity,
        "suite": suite.name,
        "suite_source": suite.source,
        "template": template.name,
        "lang": template.lang,
        "sampling": sampling.as_dict(),
        **aggregate(ordered, options.ks or None),
        "cached_items": len(done),
        "generated_items": len(new_records),
        "generated_samples": new_samples,
        "seconds": round(elapsed, 3),
        "generation_seconds": round(gen_seconds, 3),
        "scoring_seconds": round(score_seconds, 3),
        "samples_per_s": round(new_samples / gen_seconds, 3) if gen_seconds > 0 else None,
        "cache_file": str(cache.path),
        "samples_file": str(run_dir / "samples.jsonl"),
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
    log.info(
        "%s: reused %d items, generated %d (%d samples) in %.1fs",
        label,
        len(done),
        len(new_records),
        new_samples,
        elapsed,
    )
    return summary


def evaluate(
    model: "str | Backend | Sequence[str | Backend]",
    suites: Sequence[str | Suite],
    template: str | Template | Sequence[str | Template] = "r1-base",
    sampling: SamplingConfig = SamplingConfig(),
    out_dir: str | Path = "eval_out",
    *,
    backend: str = "hf",
    backend_options: dict[str, Any] | None = None,
    options: EvalOptions = EvalOptions(),
) -> dict[str, Any]:
    """Evaluate one or more models on suites under one or more templates; returns the summary dict.

    `model`: a path/hub name (hf, vllm), a server URL (openai), a ready Backend, or a list of them
    (the model x template grid). `suites`: spec strings (`math500`, `mbpp=/x.jsonl`, `gen:countdown:3`)
    or loaded Suites. `template`: a name, a comma list ("r1-base,chat,plain") or Templates.
    The summary has one entry per (model, template, suite) in `runs`, plus a markdown `table`.
    """
    from mdrl.eval.backends import make_backend
    from mdrl.eval.report import write_report

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(options.cache_dir) if options.cache_dir else out / "cache"
    models = list(model) if isinstance(model, (list, tuple)) else [model]
    templates = _templates(template, options.lang)
    loaded = [
        suite
        if isinstance(suite, Suite)
        else load_suite(
            suite, options.data_root, options.limit, options.gen_n, options.gen_seed, options.lang
        )
        for suite in suites
    ]
    if not loaded:
        raise ValueError("no suite given")
    runs: list[dict[str, Any]] = []
    models_info = []
    scorer = Scorer(options.reward, options.score_workers)
    try:
        for entry in models:
            owned = isinstance(entry, str)
            engine = make_backend(backend, entry, **(backend_options or {})) if owned else entry
            name = getattr(engine, "name", None) or _slug(engine.identity)
            models_info.append({"name": name, "identity": engine.identity})
            try:
                for tpl in templates:
                    for suite in loaded:
                        run_dir = out / _slug(name) / f"{tpl.name}-{tpl.lang}" / _slug(suite.name)
                        runs.append(
                            run_suite(engine, suite, tpl, sampling, run_dir, options, scorer, cache_dir, name)
                        )
            finally:
                if owned:
                    engine.close()
    finally:
        scorer.close()
    summary = {
        "models": models_info,
        "backend": backend
        if all(isinstance(m, str) for m in models)
        else ", ".join(sorted({type(m).__name__ for m in models if not isinstance(m, str)})),
        "templates": [f"{t.name}-{t.lang}" for t in templates],
        "suites": [s.name for s in loaded],
        "sampling": sampling.as_dict(),
        "options": {k: v for k, v in asdict(options).items() if k != "reward"}
        | {"reward": asdict(options.reward) if options.reward else None},
        "runs": runs,
    }
    summary["table"] = write_report(summary, out)
    return summary
