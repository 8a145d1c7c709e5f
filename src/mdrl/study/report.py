"""A study's outputs from its finished runs: results.json (machine-readable), results.md, the PNG plots
and report.html: one self-contained file (inline CSS, plots embedded as base64 PNG, no external
links or scripts) with the tables, the plots and the resolved config of every run."""

from __future__ import annotations

import base64
import html
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mdrl.study.config import StudyConfig, variant_label
from mdrl.study.files import write_json_atomic
from mdrl.study.tables import (
    FACTORS,
    VARIANT_PARTS,
    cell_text,
    effect_text,
    factor_markdown,
    factor_tables,
    group_cells,
    results_markdown,
    results_tables,
    seed_items,
    synergy,
    synergy_markdown,
    template_markdown,
    template_tables,
)

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px 40px; color: #222; }
h1 { font-size: 24px; margin-bottom: 4px; } h2 { font-size: 19px; margin-top: 36px; border-bottom: 1px solid #ccc; }
h3 { font-size: 15px; margin-top: 22px; }
table { border-collapse: collapse; margin: 10px 0; font-size: 13px; }
th, td { border: 1px solid #d0d0d0; padding: 4px 8px; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; } td.label, th.label { text-align: left; }
tr.baseline td { background: #fafafa; font-style: italic; }
.pos { color: #1a7f37; } .neg { color: #c62828; } .muted { color: #888; }
.delta { display: block; font-size: 11px; }
td.sig { outline: 2px solid #555; outline-offset: -3px; font-weight: 600; }
img { max-width: 100%; border: 1px solid #eee; margin: 6px 12px 6px 0; }
.figs { display: flex; flex-wrap: wrap; align-items: flex-start; }
pre { background: #f7f7f7; padding: 8px; font-size: 12px; overflow-x: auto; }
.summary span { margin-right: 18px; } .failed { color: #c62828; }
details { margin: 4px 0; } summary { cursor: pointer; }
"""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:80] or "x"


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"


def _sign_class(value: float | None) -> str:
    if value is None or abs(value) < 1e-12:
        return "muted"
    return "pos" if value > 0 else "neg"


# --------------------------------------------------------------------------- computing


def compute_results(config: StudyConfig, cells: Sequence[Mapping[str, Any]],
                    baselines: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per variant: its results table and its synergy matrix."""
    suites = list(config.suites)
    order = [m.name for m in config.mixtures]
    out = []
    grouped = group_cells(cells)
    for table in results_tables(cells, baselines, suites, config.eval.metric, order):
        items = {mixture: seed_items(records, suites)
                 for mixture, records in grouped[tuple(table["variant"])].items()}
        out.append({"variant": table["variant"], "label": variant_label(table["variant"]),
                    "results": table, "synergy": synergy(table, config.suite_domains, items)})
    return out


def _without_items(record: Mapping[str, Any]) -> dict[str, Any]:
    """A run record for results.json: per-item accuracies stay in the run's own result.json."""
    def strip(scores: Mapping[str, Any]) -> dict[str, Any]:
        return {suite: {k: v for k, v in metrics.items() if k != "items"} for suite, metrics in scores.items()}

    stripped = {**record, "scores": strip(record.get("scores", {}))}
    if "template_scores" in record:
        stripped["template_scores"] = {t: strip(scores) for t, scores in record["template_scores"].items()}
    return stripped


def _relative_paths(value: Any, root: Path) -> Any:
    """`value` with every path string inside `root` made relative to it."""
    if isinstance(value, Mapping):
        return {key: _relative_paths(item, root) for key, item in value.items()}
    if isinstance(value, list):
        return [_relative_paths(item, root) for item in value]
    if isinstance(value, str):
        for prefix in {f"{root}{os.sep}", f"{root.resolve()}{os.sep}"}:
            if value.startswith(prefix):
                return value[len(prefix):]
    return value


def write_outputs(config: StudyConfig, out_dir: Path, cells: Sequence[Mapping[str, Any]],
                  baselines: Sequence[Mapping[str, Any]], counts: Mapping[str, int],
                  failed: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], dict[str, Path], str]:
    """Write results.json, results.md, plots/*.png and report.html; return (results, paths, markdown)."""
    from mdrl.study import plots

    tables = compute_results(config, cells, baselines)
    paths: dict[str, Path] = {}
    figures: dict[int, list[tuple[str, Path]]] = {}
    for index, entry in enumerate(tables):
        slug = f"{index:02d}-{_slug('-'.join(entry['variant']))}"
        figs = [("heatmap", plots.delta_heatmap(entry["results"], out_dir / "plots" / f"{slug}-heatmap.png",
                                                            entry["label"])),
                ("bars", plots.accuracy_bars(entry["results"], out_dir / "plots" / f"{slug}-bars.png",
                                                 entry["label"]))]
        if entry["synergy"]["matrix"]:
            figs.append(("synergy", plots.synergy_heatmap(entry["synergy"], out_dir / "plots" / f"{slug}-synergy.png",
                                                          entry["label"])))
        figures[index] = figs
        for name, path in figs:
            paths[f"plot:{slug}:{name}"] = path
    templates = template_tables(cells, baselines, list(config.suites), config.eval.metric)
    factors = factor_tables(cells, [entry["results"] for entry in tables])
    markdown = _markdown(config, tables, templates, factors)
    results = {
        "study": config.name,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "metric": config.eval.metric,
        "suites": list(config.suites),
        "counts": dict(counts),
        "failed": [{k: v for k, v in f.items() if k != "traceback"} for f in failed],
        "tables": tables,
        "factors": factors,
        "template_consistency": templates,
        "paths_relative_to": "this folder",  # so a copied or moved study folder keeps its links
        "baselines": _relative_paths([_without_items(r) for r in baselines], out_dir),
        "cells": _relative_paths([_without_items(r) for r in cells], out_dir),
        "config": config.resolved(),
    }
    paths["results_json"] = out_dir / "results.json"
    write_json_atomic(paths["results_json"], results)
    paths["results_md"] = out_dir / "results.md"
    paths["results_md"].write_text(markdown, encoding="utf-8")
    paths["report"] = out_dir / "report.html"
    paths["report"].write_text(render_html(config, results, figures), encoding="utf-8")
    return results, paths, markdown


def _template_title(group: Mapping[str, Any]) -> str:
    model, reward, curriculum, lang = group["variant"]
    return f"template consistency: {model} · reward {reward} · curriculum {curriculum} · {lang}"


def _factor_title(table: Mapping[str, Any]) -> str:
    varied = dict(FACTORS)[table["factor"]]
    names = [name for index, name in enumerate(VARIANT_PARTS) if index not in varied]
    fixed = " · ".join(f"{name} {value}" for name, value in zip(names, table["fixed"]))
    return f"factor {table['factor']}: {' vs '.join(table['levels'])} ({fixed})"


def _markdown(config: StudyConfig, tables: Sequence[Mapping[str, Any]],
              templates: Sequence[Mapping[str, Any]] = (), factors: Sequence[Mapping[str, Any]] = ()) -> str:
    parts = [f"# {config.name}\n"]
    for entry in tables:
        parts.append(results_markdown(entry["results"], entry["label"]))
        syn = synergy_markdown(entry["synergy"], f"synergy / conflict: {entry['label']}")
        if syn:
            parts.append(syn)
    parts.extend(factor_markdown(table, _factor_title(table)) for table in factors)
    parts.extend(template_markdown(group, _template_title(group)) for group in templates)
    if not tables:
        parts.append("No finished cells yet.\n")
    return "\n".join(parts)


# --------------------------------------------------------------------------- HTML


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _results_table(table: Mapping[str, Any]) -> str:
    suites = table["suites"]
    head = "".join(f"<th>{html.escape(s)}</th>" for s in [*suites, "avg"])
    rows = [f'<tr><th class="label">training data</th>{head}</tr>']
    base = table.get("baseline")
    if base is not None:
        cells = "".join(f"<td>{_pct(base['suites'].get(s))}</td>" for s in suites)
        rows.append(f'<tr class="baseline"><td class="label">starting model</td>{cells}<td>{_pct(base["avg"])}</td></tr>')
    for row in table["rows"]:
        seeds = f' <span class="muted">(n={len(row["seeds"])})</span>' if len(row["seeds"]) > 1 else ""
        cells = "".join(_stat_cell(row["suites"][s]) for s in suites) + _stat_cell(row["avg"])
        rows.append(f'<tr><td class="label">{html.escape(row["mixture"])}{seeds}</td>{cells}</tr>')
    return "<table>" + "".join(rows) + "</table>"


def _stat_cell(stats: Mapping[str, Any]) -> str:
    if stats.get("mean") is None:
        return '<td class="muted">–</td>'
    text = _pct(stats["mean"])
    delta = stats.get("delta")
    if delta is None:
        text += f" ± {_pct(stats['se'])}" if stats.get("se") is not None else ""
        return f"<td>{text}</td>"
    numbers = stats.get("effect") or {"delta": delta}
    sub = f'<span class="delta {_sign_class(delta)}">{html.escape(effect_text(numbers))}</span>'
    return f'<td{_mark(numbers)} title="{html.escape(_effect_tip(numbers, cell_text(stats)))}">{text}{sub}</td>'


def _mark(numbers: Mapping[str, Any]) -> str:
    return ' class="sig"' if numbers.get("above_2se") else ""


def _effect_tip(numbers: Mapping[str, Any], head: str) -> str:
    parts = [head]
    for key, label in (("se_seeds", "se over seeds"), ("se_items", "se over items"), ("z", "z")):
        if numbers.get(key) is not None:
            value = numbers[key]
            parts.append(f"{label} {value:.2f}" if key == "z" else f"{label} {_pct(value)}")
    return "; ".join(parts)


def _synergy_table(result: Mapping[str, Any]) -> str:
    keys = result["keys"]
    head = "".join(f"<th>+{html.escape(k)}</th>" for k in keys)
    rows = [f'<tr><th class="label">trained on ↓ / adding →</th>{head}</tr>']
    for a in keys:
        cells = []
        for b in keys:
            found = result["matrix"].get(a, {}).get(b)
            if found is None:
                cells.append(f'<td class="muted">{"·" if a == b else "–"}</td>')
                continue
            tip = _effect_tip(found, f"{', '.join(found['suites'])}: {_pct(found['mixed'])} on {found['mixture']} "
                                     f"vs {_pct(found['single'])} on {found['base_mixture']}")
            classes = _sign_class(found["delta"]) + (" sig" if found.get("above_2se") else "")
            cells.append(f'<td class="{classes}" title="{html.escape(tip)}">{html.escape(effect_text(found))}</td>')
        rows.append(f'<tr><td class="label">{html.escape(a)}</td>{"".join(cells)}</tr>')
    others = [e for e in result["effects"] if len(e["added"]) > 1]
    extra = ""
    if others:
        items = "".join(f"<li>{html.escape(e['mixture'])} vs {html.escape(e['base_mixture'])} on "
                        f"{html.escape(e['target'])}'s suites: "
                        f'<span class="{_sign_class(e["delta"])}">{html.escape(effect_text(e))}</span></li>'
                        for e in others)
        extra = f"<p>Larger mixtures:</p><ul>{items}</ul>"
    return "<table>" + "".join(rows) + "</table>" + extra


def _factor_table(table: Mapping[str, Any]) -> str:
    levels, reference = table["levels"], table["reference"]
    head = "".join(f"<th>{html.escape(level)}</th>" for level in levels)
    head += "".join(f"<th>{html.escape(level)} − {html.escape(reference)}</th>" for level in levels[1:])
    rows = [f'<tr><th class="label">training data</th>{head}</tr>']
    for row in table["rows"]:
        cells = "".join(_stat_cell(row["levels"].get(level) or {}) for level in levels)
        for level in levels[1:]:
            found = row["vs"].get(level)
            if found is None:
                cells += '<td class="muted">–</td>'
                continue
            classes = _sign_class(found["delta"]) + (" sig" if found.get("above_2se") else "")
            cells += f'<td class="{classes}" title="{html.escape(_effect_tip(found, ""))}">' \
                     f"{html.escape(effect_text(found))}</td>"
        rows.append(f'<tr><td class="label">{html.escape(row["mixture"])}</td>{cells}</tr>')
    note = (f'<p class="muted">Average over the suites ({html.escape(", ".join(table["suites"]))}); the last '
            f"columns are the difference from {html.escape(reference)} on the same items.</p>")
    return note + "<table>" + "".join(rows) + "</table>"


def _template_table(group: Mapping[str, Any]) -> str:
    evals = group["eval_templates"]
    head = "".join(f"<th>eval {html.escape(e)}</th>" for e in evals)
    rows = [f'<tr><th class="label">training data</th><th class="label">trained with</th>{head}</tr>']
    for mixture, by_train in group["matrix"].items():
        for trained_with, by_eval in by_train.items():
            cells = "".join(_stat_cell(by_eval.get(e) or {}) for e in evals)
            rows.append(f'<tr><td class="label">{html.escape(mixture)}</td>'
                        f'<td class="label">{html.escape(trained_with)}</td>{cells}</tr>')
    note = ('<p class="muted">Average over the suites; the change is against the starting model evaluated '
            "with the same template.</p>")
    return note + "<table>" + "".join(rows) + "</table>"


def _runs_section(results: Mapping[str, Any]) -> str:
    rows = [('<tr><th class="label">run</th><th class="label">kind</th><th class="label">model evaluated</th>'
             '<th>train s</th><th>eval s</th><th class="label">finished</th></tr>')]
    details = []
    for record in [*results["baselines"], *results["cells"]]:
        seconds = record.get("seconds", {})
        model = record.get("checkpoint") or record.get("model_path", "")
        rows.append(f'<tr><td class="label">{html.escape(record["cell_id"])}</td>'
                    f'<td class="label">{html.escape(record["kind"])}</td>'
                    f'<td class="label">{html.escape(str(model))}</td>'
                    f'<td>{seconds.get("train", "–")}</td><td>{seconds.get("eval", "–")}</td>'
                    f'<td class="label">{html.escape(str(record.get("finished_at", "")))}</td></tr>')
        config = json.dumps(record.get("resolved_config", {}), indent=2, ensure_ascii=False, default=str)
        details.append(f"<details><summary>{html.escape(record['cell_id'])}</summary>"
                       f"<pre>{html.escape(config)}</pre></details>")
    return "<table>" + "".join(rows) + "</table><h3>Resolved config of every run</h3>" + "".join(details)


def render_html(config: StudyConfig, results: Mapping[str, Any],
                figures: Mapping[int, Sequence[tuple[str, Path]]]) -> str:
    counts = results["counts"]
    summary = "".join(f"<span><b>{html.escape(str(k))}</b>: {html.escape(str(v))}</span>" for k, v in counts.items())
    body = [f"<h1>{html.escape(config.name)}</h1>",
            (f'<p class="muted">mdrl study report · generated {html.escape(results["generated_at"])} · '
             f'metric {html.escape(results["metric"])} (%), mean over seeds; the smaller line is the change '
             "against the starting model ± its paired standard error (seeds and items, clustered by question); "
             "* and a frame mark |change| &gt; 2 se.</p>"),
            f'<p class="summary">{summary}</p>']
    if results["failed"]:
        items = "".join(f"<li>{html.escape(f['cell_id'])}: {html.escape(f['error'])}</li>" for f in results["failed"])
        body.append(f'<div class="failed"><h3>Failed runs</h3><ul>{items}</ul></div>')
    if not results["tables"]:
        body.append("<p>No finished cells yet.</p>")
    for index, entry in enumerate(results["tables"]):
        body.append(f"<h2>{html.escape(entry['label'])}</h2>")
        body.append("<h3>Results</h3>" + _results_table(entry["results"]))
        if entry["synergy"]["matrix"]:
            body.append("<h3>Synergy / conflict</h3><p class=\"muted\">Row A, column B: points on A's own "
                        "suites when trained on A+B minus trained on A alone.</p>")
            body.append(_synergy_table(entry["synergy"]))
        figs = "".join(_img(path, name) for name, path in figures.get(index, []))
        body.append(f'<div class="figs">{figs}</div>')
    for table in results.get("factors", []):
        body.append(f"<h2>{html.escape(_factor_title(table))}</h2>" + _factor_table(table))
    for group in results.get("template_consistency", []):
        body.append(f"<h2>{html.escape(_template_title(group))}</h2>" + _template_table(group))
    body.append("<h2>Runs</h2>" + _runs_section(results))
    study = json.dumps(results["config"], indent=2, ensure_ascii=False, default=str)
    body.append(f"<h2>Study config</h2><details open><summary>resolved</summary><pre>{html.escape(study)}</pre></details>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(config.name)} · mdrl study</title><style>{_CSS}</style></head>"
            f"<body>{''.join(body)}</body></html>\n")
