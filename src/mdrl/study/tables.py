"""The study's numbers from finished cells: results tables (accuracy and delta against the starting
model, mean +- standard error over seeds) and the synergy/conflict matrix. Pure functions over the
cells' result records, so every number can be checked by hand.

Definitions (`metric` is a suite metric, accuracy unless the study says otherwise):
  * mean and standard error over seeds: mean = sum(x)/n, se = sd(x, ddof=1)/sqrt(n); one seed -> se None.
  * delta = mean(trained) - baseline (the starting model evaluated under the same template and
    language); its standard error is the trained runs' (the baseline is one fixed evaluation).
  * avg column: per seed the unweighted mean over the suites, then mean and se over seeds.
  * own suites of a mixture key (a group such as `math`, or a domain such as `countdown`): the suites
    whose domain is that key or belongs to that group.
  * synergy[A][B] = mean over A's own suites of (acc trained on A+B) - (acc trained on A alone),
    se = sqrt(se(A+B)^2 + se(A)^2) (independent runs). Positive: B helps A; negative: conflict.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

def mean_se(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and standard error of the mean (sample sd, ddof=1); se is None below two values."""
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        return None, None
    mean = sum(values) / n
    if n < 2:
        return mean, None
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(variance / n)


def suite_domain(suite: str, overrides: Mapping[str, str] | None = None) -> str | None:
    """The domain a suite spec tests: an override, the domain that declares the named suite, or the
    domain of a generated spec (gen:DOMAIN:...); else None."""
    from mdrl.data.sources import is_generated, parse_generated
    from mdrl.domains.registry import find_suite

    name = suite.strip() if is_generated(suite) else suite.split("=", 1)[0].strip()
    if overrides and (suite in overrides or name in overrides):
        return overrides.get(suite) or overrides[name]
    if is_generated(name):
        try:
            return parse_generated(name).domain
        except ValueError:
            return None
    found = find_suite(name) or find_suite(name.lower())
    return found[0].name if found else None


def key_suites(key: str, suites: Sequence[str], overrides: Mapping[str, str] | None = None) -> list[str]:
    """A mixture key's own suites: those testing the key's domain, or a domain of the key's group."""
    from mdrl.domains.registry import get_domain, is_domain

    own = []
    for suite in suites:
        domain = suite_domain(suite, overrides)
        if domain is None:
            continue
        group = get_domain(domain).group if is_domain(domain) else None
        if key in (domain, group):
            own.append(suite)
    return own


def _fmt(value: float | None, digits: int = 1, scale: float = 100.0, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value * scale:+.{digits}f}" if signed else f"{value * scale:.{digits}f}"


def cell_text(stats: Mapping[str, Any] | None) -> str:
    """'45.2 ± 1.3 (+4.1)': accuracy in percent, its se over seeds, and the delta to the baseline."""
    if not stats or stats.get("mean") is None:
        return "–"
    text = _fmt(stats["mean"])
    if stats.get("se") is not None:
        text += f" ± {_fmt(stats['se'])}"
    if stats.get("delta") is not None:
        text += f" ({_fmt(stats['delta'], signed=True)})"
    return text


# --------------------------------------------------------------------------- results table


def _metric(record: Mapping[str, Any], suite: str, metric: str) -> float | None:
    scores = record.get("scores", {}).get(suite)
    if not scores or scores.get(metric) is None:
        return None
    return float(scores[metric])


def results_tables(cells: Iterable[Mapping[str, Any]], baselines: Iterable[Mapping[str, Any]],
                   suites: Sequence[str], metric: str = "accuracy",
                   mixture_order: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One table per variant (model, reward, template, curriculum, language).

    Each cell record has `variant` (5 strings), `axes` {mixture, seed, ...} and `scores`
    {suite: {metric: value}}; each baseline record has `axes` {model, template, lang} and `scores`.
    Rows are mixtures (in `mixture_order`, else first-seen); columns the suites plus `avg`.
    """
    base_scores = {(b["axes"]["model"], b["axes"]["template"], b["axes"]["lang"]): b for b in baselines}
    grouped: dict[tuple[str, ...], dict[str, list[Mapping[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for record in cells:
        grouped[tuple(record["variant"])][record["axes"]["mixture"]].append(record)
    tables = []
    for variant, by_mixture in grouped.items():
        model, _reward, template, _curriculum, lang = variant
        baseline = base_scores.get((model, template, lang))
        base_row = None
        if baseline is not None:
            base_values = {s: _metric(baseline, s, metric) for s in suites}
            present = [v for v in base_values.values() if v is not None]
            base_avg = sum(present) / len(present) if len(present) == len(suites) else None
            base_row = {"suites": base_values, "avg": base_avg}
        order = [m for m in (mixture_order or []) if m in by_mixture] + \
                [m for m in by_mixture if m not in (mixture_order or [])]
        rows = []
        for mixture in order:
            records = sorted(by_mixture[mixture], key=lambda r: r["axes"]["seed"])
            row: dict[str, Any] = {"mixture": mixture, "seeds": [r["axes"]["seed"] for r in records],
                                   "keys": list(records[0].get("mixture_keys", [])), "suites": {}}
            per_seed_avg = []
            for record in records:
                values = [_metric(record, s, metric) for s in suites]
                if all(v is not None for v in values):
                    per_seed_avg.append(sum(values) / len(values))  # type: ignore[arg-type]
            for suite in suites:
                values = [v for v in (_metric(r, suite, metric) for r in records) if v is not None]
                base = base_row["suites"].get(suite) if base_row else None
                row["suites"][suite] = _stats(values, base)
            row["avg"] = _stats(per_seed_avg, base_row["avg"] if base_row else None)
            rows.append(row)
        tables.append({"variant": list(variant), "metric": metric, "suites": list(suites),
                       "baseline": base_row, "rows": rows})
    return tables


def _stats(values: Sequence[float], base: float | None) -> dict[str, Any]:
    mean, se = mean_se(values)
    return {"mean": mean, "se": se, "n": len(values), "values": list(values),
            "delta": (mean - base) if mean is not None and base is not None else None}


# --------------------------------------------------------------------------- synergy


def synergy(table: Mapping[str, Any], overrides: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Effects of adding mixture keys to a single-key mixture, on that key's own suites.

    Returns `keys` (the single-key mixtures, table order), `matrix` {A: {B: effect}} for every pair
    whose A and A+B mixtures were trained, and `effects`: one entry per (single A, larger mixture M
    containing A), including the triple. An effect is {delta, se, suites, target, added, mixture}.
    """
    suites = table["suites"]
    rows = {row["mixture"]: row for row in table["rows"]}
    by_keys: dict[frozenset[str], str] = {}
    for name, row in rows.items():
        by_keys.setdefault(frozenset(row["keys"]), name)  # first mixture wins on equal key sets
    singles = [(row["keys"][0], name) for name, row in rows.items() if len(row["keys"]) == 1]
    effects = []
    matrix: dict[str, dict[str, Any]] = {}
    for key, single_name in singles:
        own = key_suites(key, suites, overrides)
        if not own:
            continue
        for name, row in rows.items():
            if key not in row["keys"] or len(row["keys"]) < 2 or by_keys.get(frozenset(row["keys"])) != name:
                continue
            effect = _effect(rows[single_name], row, own)
            if effect is None:
                continue
            added = [k for k in row["keys"] if k != key]
            effect.update(target=key, added=added, mixture=name, base_mixture=single_name)
            effects.append(effect)
            if len(added) == 1:
                matrix.setdefault(key, {})[added[0]] = effect
    keys = [key for key, _ in singles]
    return {"keys": keys, "matrix": matrix, "effects": effects}


def _own_mean(row: Mapping[str, Any], own: Sequence[str]) -> tuple[float | None, float | None]:
    """Mean over own suites per seed, then mean and se over seeds (seeds present in every own suite)."""
    per_suite = [row["suites"][s]["values"] for s in own]
    seeds = row["seeds"]
    if any(len(values) != len(seeds) for values in per_suite):
        # a suite missing for some seed: fall back on suite means, no se
        means = [row["suites"][s]["mean"] for s in own]
        if any(m is None for m in means):
            return None, None
        return sum(means) / len(means), None
    per_seed = [sum(values[i] for values in per_suite) / len(per_suite) for i in range(len(seeds))]
    return mean_se(per_seed)


def _effect(single: Mapping[str, Any], mixed: Mapping[str, Any], own: Sequence[str]) -> dict[str, Any] | None:
    mixed_mean, mixed_se = _own_mean(mixed, own)
    single_mean, single_se = _own_mean(single, own)
    if mixed_mean is None or single_mean is None:
        return None
    se = math.sqrt(mixed_se ** 2 + single_se ** 2) if mixed_se is not None and single_se is not None else None
    return {"delta": mixed_mean - single_mean, "se": se, "suites": list(own),
            "mixed": mixed_mean, "single": single_mean}


# --------------------------------------------------------------------------- markdown


def results_markdown(table: Mapping[str, Any], title: str = "") -> str:
    """The study's layout: rows = training data, columns = suites + avg; 'acc ± se (delta)' in %."""
    suites = table["suites"]
    header = ["training data", *suites, "avg"]
    lines = [f"### {title}" if title else "", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    base = table.get("baseline")
    if base is not None:
        lines.append("| starting model | " + " | ".join(_fmt(base["suites"].get(s)) for s in suites)
                     + f" | {_fmt(base['avg'])} |")
    for row in table["rows"]:
        seeds = f" (n={len(row['seeds'])})" if len(row["seeds"]) > 1 else ""
        lines.append(f"| {row['mixture']}{seeds} | " + " | ".join(cell_text(row["suites"][s]) for s in suites)
                     + f" | {cell_text(row['avg'])} |")
    lines.append("")
    lines.append(f"{table['metric']} in %, mean ± standard error over seeds, (delta) against the starting model.")
    return "\n".join(line for line in lines if line is not None) + "\n"


def synergy_markdown(result: Mapping[str, Any], title: str = "") -> str:
    keys = result["keys"]
    if not result["matrix"]:
        return ""
    lines = [f"### {title}" if title else "", "",
             "| adding → / to ↓ | " + " | ".join(keys) + " |", "|" + "---|" * (len(keys) + 1)]
    for a in keys:
        cells = []
        for b in keys:
            effect = result["matrix"].get(a, {}).get(b)
            if effect is None:
                cells.append("·" if a == b else "–")
            else:
                se = f" ± {_fmt(effect['se'])}" if effect.get("se") is not None else ""
                cells.append(f"{_fmt(effect['delta'], signed=True)}{se}")
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Row A, column B: accuracy on A's own suites (points) when trained on A+B minus trained on A alone.")
    return "\n".join(lines) + "\n"
