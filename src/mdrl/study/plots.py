"""The study's figures, drawn with matplotlib's Agg backend (no display needed): a heatmap of deltas
against the starting model, a grouped bar chart of accuracies with standard-error bars, and a
heatmap of the synergy/conflict matrix. Each function writes one PNG and returns its path."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: a headless backend, whatever the environment says

import matplotlib.pyplot as plt
from matplotlib.colors import TwoSlopeNorm


def _bound(values: list[float]) -> float:
    return max([abs(v) for v in values if not math.isnan(v)] + [1e-6])


def _symmetric_norm(values: list[float]) -> TwoSlopeNorm:
    bound = _bound(values)
    return TwoSlopeNorm(vmin=-bound, vcenter=0.0, vmax=bound)


def _ink(value: float, bound: float) -> str:
    """White text on the dark ends of a diverging map, black elsewhere."""
    return "white" if abs(value) > 0.6 * bound else "black"


def delta_heatmap(table: Mapping[str, Any], path: Path, title: str = "") -> Path:
    """Rows = training mixtures, columns = suites + avg; colour = delta vs the starting model (points).
    Without a baseline the raw accuracy is shown instead (sequential colours)."""
    columns = [*table["suites"], "avg"]
    rows = table["rows"]
    has_delta = table.get("baseline") is not None
    key = "delta" if has_delta else "mean"
    values = [[_value(row, col, key) for col in columns] for row in rows]
    flat = [v for line in values for v in line]
    fig, ax = plt.subplots(figsize=(1.1 * len(columns) + 2.5, 0.55 * len(rows) + 1.8), dpi=110)
    if has_delta:
        image = ax.imshow(values, cmap="RdBu", norm=_symmetric_norm(flat), aspect="auto")
    else:
        image = ax.imshow(values, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(columns)), labels=columns, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), labels=[row["mixture"] for row in rows])
    bound = _bound(flat)
    for i, line in enumerate(values):
        for j, value in enumerate(line):
            if not math.isnan(value):
                ink = _ink(value, bound) if has_delta else ("black" if value > 60 else "white")
                stats = rows[i]["avg"] if columns[j] == "avg" else rows[i]["suites"].get(columns[j])
                text = _delta_label(value, (stats or {}).get("effect")) if has_delta else f"{value:.1f}"
                ax.text(j, i, text, ha="center", va="center", fontsize=7, color=ink)
    fig.colorbar(image, ax=ax, label="Δ accuracy (points)" if has_delta else "accuracy (%)")
    ax.set_title((title or ("Δ vs starting model" if has_delta else "accuracy"))
                 + ("\n± paired se; * |Δ| > 2 se" if has_delta else ""), fontsize=9)
    return _save(fig, path)


def accuracy_bars(table: Mapping[str, Any], path: Path, title: str = "") -> Path:
    """Grouped bars: one group per suite, one bar per mixture (mean over seeds, se as error bar);
    the starting model is the first, hatched bar of each group."""
    suites = table["suites"]
    series: list[tuple[str, list[float], list[float]]] = []
    base = table.get("baseline")
    if base is not None:
        series.append(("starting model", [_pct(base["suites"].get(s)) for s in suites], [0.0] * len(suites)))
    for row in table["rows"]:
        series.append((row["mixture"], [_value(row, s, "mean") for s in suites],
                       [_value(row, s, "se", missing=0.0) for s in suites]))
    width = 0.8 / max(len(series), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(suites) + 2.5) + 2.0, 4.2), dpi=110)
    cmap = plt.get_cmap("tab10")
    for index, (label, means, errors) in enumerate(series):
        xs = [i - 0.4 + width * (index + 0.5) for i in range(len(suites))]
        heights = [0.0 if math.isnan(m) else m for m in means]
        is_base = base is not None and index == 0
        ax.bar(xs, heights, width, yerr=errors, capsize=2, label=label,
               color="lightgrey" if is_base else cmap((index - (base is not None)) % 10),
               hatch="//" if is_base else None, edgecolor="dimgrey", linewidth=0.4)
    ax.set_xticks(range(len(suites)), labels=suites, rotation=20, ha="right")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, max(5.0, min(100.0, 1.15 * max([v for _, m, _ in series for v in m if not math.isnan(v)] + [0]))))
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title(title or "accuracy by training data", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def synergy_heatmap(result: Mapping[str, Any], path: Path, title: str = "") -> Path:
    """Row A, column B: points gained (blue) or lost (red) on A's own suites by adding B to A."""
    keys = result["keys"]
    values = [[_effect(result, a, b) for b in keys] for a in keys]
    flat = [v for line in values for v in line]
    size = max(3.6, 1.0 * len(keys) + 2.2)
    fig, ax = plt.subplots(figsize=(size + 1.8, size), dpi=110)
    image = ax.imshow(values, cmap="RdBu", norm=_symmetric_norm(flat))
    ax.set_xticks(range(len(keys)), labels=[f"+{k}" for k in keys])
    ax.set_yticks(range(len(keys)), labels=keys)
    ax.set_xlabel("domain added")
    ax.set_ylabel("trained on / scored on its suites")
    bound = _bound(flat)
    for i, line in enumerate(values):
        for j, value in enumerate(line):
            found = result["matrix"].get(keys[i], {}).get(keys[j])
            text = "·" if i == j else ("–" if math.isnan(value) else _delta_label(value, found))
            ink = "black" if math.isnan(value) else _ink(value, bound)
            ax.text(j, i, text, ha="center", va="center", fontsize=9, color=ink)
    fig.colorbar(image, ax=ax, label="Δ accuracy (points)")
    ax.set_title(f"synergy (+) / conflict (−), ± paired se, * |Δ| > 2 se\n{title}", fontsize=8)
    return _save(fig, path)


def _delta_label(points: float, numbers: Mapping[str, Any] | None) -> str:
    """'+4.1\n±1.9*': the delta in points, its paired se and the |z| > 2 mark, when known."""
    numbers = numbers or {}
    text = f"{points:+.1f}"
    if numbers.get("se") is not None:
        text += f"\n±{100.0 * numbers['se']:.1f}"
    return text + ("*" if numbers.get("above_2se") else "")


def _pct(value: float | None) -> float:
    return float("nan") if value is None else 100.0 * value


def _value(row: Mapping[str, Any], column: str, key: str, missing: float = float("nan")) -> float:
    stats = row["avg"] if column == "avg" else row["suites"].get(column)
    if not stats or stats.get(key) is None:
        return missing
    return 100.0 * stats[key]


def _effect(result: Mapping[str, Any], a: str, b: str) -> float:
    effect = result["matrix"].get(a, {}).get(b)
    return float("nan") if effect is None else 100.0 * effect["delta"]


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
