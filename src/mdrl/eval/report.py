"""Markdown tables and summary files from evaluation runs.

The headline table has one row per (model, template) and one column per suite: the template-
consistency view of the study. Details and per-group breakdowns follow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * float(value):.1f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def grid_table(runs: Sequence[Mapping[str, Any]]) -> str:
    """model x template rows, suite columns, accuracy (mean@n) in percent."""
    suites = list(dict.fromkeys(run["suite"] for run in runs))
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for run in runs:
        key = (run["model"], f"{run['template']}-{run['lang']}")
        rows.setdefault(key, {})[run["suite"]] = _pct(run.get("accuracy"))
    body = [
        [model, template, *(cells.get(suite, "-") for suite in suites)]
        for (model, template), cells in rows.items()
    ]
    return _table(["model", "template", *suites], body)


def details_table(runs: Sequence[Mapping[str, Any]]) -> str:
    """One row per run: every metric side by side (strict/flexible only where they differ)."""
    ks = sorted({int(key[5:]) for run in runs for key in run if key.startswith("pass@")})
    show_extraction = any(
        run.get("acc_strict") != run.get("accuracy") or run.get("acc_flexible") != run.get("accuracy")
        for run in runs
    )
    header = ["model", "template", "suite", "items", "n", "acc %"]
    if show_extraction:
        header += ["strict %", "flexible %"]
    header += [f"pass@{k} %" for k in ks if k > 1] + ["score", "format err %", "mean len", "cached/new"]
    body = []
    for run in runs:
        row = [
            run["model"],
            f"{run['template']}-{run['lang']}",
            run["suite"],
            str(run.get("n_items", 0)),
            str(run["sampling"]["n"]),
            _pct(run.get("accuracy")),
        ]
        if show_extraction:
            row += [_pct(run.get("acc_strict")), _pct(run.get("acc_flexible"))]
        row += [_pct(run.get(f"pass@{k}")) for k in ks if k > 1]
        score = run.get("mean_score")
        length = run.get("mean_length")
        row += [
            "-" if score is None else f"{score:.3f}",
            _pct(run.get("format_error_rate")),
            "-" if length is None else f"{length:.0f} {run.get('length_unit', '')[:3]}",
            f"{run.get('cached_items', 0)}/{run.get('generated_items', 0)}",
        ]
        body.append(row)
    return _table(header, body)


def breakdown_tables(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Per-group accuracy for each run that has groups (people count, grid size, difficulty)."""
    out = []
    for run in runs:
        breakdown = run.get("breakdown")
        if not breakdown:
            continue
        title = f"**{run['suite']}** ({run['model']}, {run['template']}-{run['lang']})"
        ks = sorted({int(k[5:]) for group in breakdown.values() for k in group if k.startswith("pass@")})
        header = ["group", "items", "acc %", *[f"pass@{k} %" for k in ks if k > 1], "format err %"]
        body = [
            [
                group,
                str(m["n_items"]),
                _pct(m.get("accuracy")),
                *[_pct(m.get(f"pass@{k}")) for k in ks if k > 1],
                _pct(m.get("format_error_rate")),
            ]
            for group, m in breakdown.items()
        ]
        out.append(title + "\n\n" + _table(header, body))
    return out


def markdown_report(summary: Mapping[str, Any]) -> str:
    runs = summary.get("runs", [])
    sampling = summary.get("sampling", {})
    parts = [
        "# mdrl eval",
        f"sampling: n={sampling.get('n')}, temperature={sampling.get('temperature')}, "
        f"top_p={sampling.get('top_p')}, max_new_tokens={sampling.get('max_new_tokens')}, "
        f"seed={sampling.get('seed')}",
        "## Accuracy (%)",
        grid_table(runs),
        "## Details",
        details_table(runs),
    ]
    breakdowns = breakdown_tables(runs)
    if breakdowns:
        parts += ["## Breakdowns", *breakdowns]
    return "\n\n".join(parts) + "\n"


def write_report(summary: Mapping[str, Any], out_dir: str | Path) -> str:
    """Write summary.json and report.md; return the headline grid table."""
    out = Path(out_dir)
    table = grid_table(summary.get("runs", []))
    (out / "summary.json").write_text(
        json.dumps({**summary, "table": table}, indent=2, ensure_ascii=False, default=str)
    )
    (out / "report.md").write_text(markdown_report(summary), encoding="utf-8")
    return table
