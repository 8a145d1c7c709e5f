"""The study's numbers from finished cells: results tables (accuracy and delta against the starting
model, mean +- standard error over seeds) and the synergy/conflict matrix. Pure functions over the
cells' result records, so every number can be checked by hand.

Definitions (`metric` is a suite metric, accuracy unless the study says otherwise):
  * mean and standard error over seeds: mean = sum(x)/n, se = sd(x, ddof=1)/sqrt(n); one seed -> se None.
  * delta = mean(trained) - baseline (the starting model evaluated under the same template and
    language). Its `effect` carries the paired standard error of mdrl.study.significance.effect: the
    spread over seeds combined with the item-level error (items paired with the baseline's, clustered
    by question), z = delta / se, and `above_2se` when |z| > 2. Without per-item records (a custom
    runner) only the seeds' part is there.
  * avg column: per seed the unweighted mean over the suites, then mean and se over seeds.
  * own suites of a mixture key (a group such as `math`, or a domain such as `countdown`): the suites
    whose domain is that key or belongs to that group.
  * synergy[A][B] = mean over A's own suites of (acc trained on A+B) - (acc trained on A alone), with
    the same paired effect (items paired between the two models; the seed part from the per-seed
    differences when both sides trained the same seeds, else both sides' seed spreads). Positive:
    B helps A; negative: conflict. Factor tables compare two levels the same way.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mdrl.study.significance import combine, combine_seeds, effect

#: Per mixture, per suite: one item-accuracy map per seed (mdrl.study.significance.ItemAccuracy).
SeedItems = Mapping[str, Sequence[Mapping[str, Sequence[Any]]]]


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


def effect_text(numbers: Mapping[str, Any] | None) -> str:
    """'+4.1 ± 1.9*': a delta in points, its paired se, and * when |z| > 2."""
    if not numbers or numbers.get("delta") is None:
        return "–"
    text = _fmt(numbers["delta"], signed=True)
    if numbers.get("se") is not None:
        text += f" ± {_fmt(numbers['se'])}"
    return text + ("*" if numbers.get("above_2se") else "")


def cell_text(stats: Mapping[str, Any] | None) -> str:
    """'45.2 (+4.1 ± 1.9*)': accuracy in percent, the delta to the baseline with its paired se, * when
    |z| > 2; '45.2 ± 1.3' (se over seeds) where there is no baseline."""
    if not stats or stats.get("mean") is None:
        return "–"
    text = _fmt(stats["mean"])
    if stats.get("delta") is not None:
        return text + f" ({effect_text(stats.get('effect') or {'delta': stats['delta']})})"
    if stats.get("se") is not None:
        text += f" ± {_fmt(stats['se'])}"
    return text


# --------------------------------------------------------------------------- results table


def _metric(record: Mapping[str, Any], suite: str, metric: str) -> float | None:
    scores = record.get("scores", {}).get(suite)
    if not scores or scores.get(metric) is None:
        return None
    return float(scores[metric])


def suite_items(record: Mapping[str, Any], suite: str) -> Mapping[str, Sequence[Any]] | None:
    """A record's per-item accuracies on a suite (stored by the study runner), or None."""
    items = (record.get("scores", {}).get(suite) or {}).get("items")
    return items or None


def group_cells(cells: Iterable[Mapping[str, Any]]) -> dict[tuple[str, ...], dict[str, list[Mapping[str, Any]]]]:
    """{variant: {mixture: its records sorted by seed}}, variants and mixtures in first-seen order."""
    grouped: dict[tuple[str, ...], dict[str, list[Mapping[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for record in cells:
        grouped[tuple(record["variant"])][record["axes"]["mixture"]].append(record)
    for by_mixture in grouped.values():
        for records in by_mixture.values():
            records.sort(key=lambda r: r["axes"]["seed"])
    return grouped


def seed_items(records: Sequence[Mapping[str, Any]], suites: Sequence[str]) -> dict[str, list[Any]]:
    """{suite: one item-accuracy map per record}, for the suites every record has items of."""
    out = {}
    for suite in suites:
        maps = [suite_items(record, suite) for record in records]
        if maps and all(m is not None for m in maps):
            out[suite] = maps
    return out


def _paired(treated: SeedItems, control: SeedItems, suites: Sequence[str],
            seed_deltas: Sequence[float]) -> dict[str, Any] | None:
    """The paired effect on `suites` when both sides have items there, else the seeds' part alone."""
    if suites and all(s in treated and s in control for s in suites):
        found = effect({s: treated[s] for s in suites}, {s: control[s] for s in suites})
        if found is not None:
            return found
    return combine_seeds(seed_deltas, None) if seed_deltas else None


def results_tables(cells: Iterable[Mapping[str, Any]], baselines: Iterable[Mapping[str, Any]],
                   suites: Sequence[str], metric: str = "accuracy",
                   mixture_order: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One table per variant (model, reward, template, curriculum, language).

    Each cell record has `variant` (5 strings), `axes` {mixture, seed, ...} and `scores`
    {suite: {metric: value, items?: {item_id: [acc, cluster]}}}; each baseline record has `axes`
    {model, template, lang} and `scores`. Rows are mixtures (in `mixture_order`, else first-seen);
    columns the suites plus `avg`. Paired effects use per-item accuracy, whatever `metric` is shown.
    """
    base_scores = {(b["axes"]["model"], b["axes"]["template"], b["axes"]["lang"]): b for b in baselines}
    tables = []
    for variant, by_mixture in group_cells(cells).items():
        model, _reward, template, _curriculum, lang = variant
        baseline = base_scores.get((model, template, lang))
        base_row, base_items = None, {}
        if baseline is not None:
            base_values = {s: _metric(baseline, s, metric) for s in suites}
            present = [v for v in base_values.values() if v is not None]
            base_avg = sum(present) / len(present) if len(present) == len(suites) else None
            base_row = {"suites": base_values, "avg": base_avg}
            base_items = seed_items([baseline], suites)
        order = [m for m in (mixture_order or []) if m in by_mixture] + \
                [m for m in by_mixture if m not in (mixture_order or [])]
        rows = []
        for mixture in order:
            records = by_mixture[mixture]
            items = seed_items(records, suites)
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
                if base is not None:
                    row["suites"][suite]["effect"] = _paired(items, base_items, [suite], [v - base for v in values])
            row["avg"] = _stats(per_seed_avg, base_row["avg"] if base_row else None)
            if base_row is not None and base_row["avg"] is not None:
                row["avg"]["effect"] = _paired(items, base_items, list(suites),
                                               [v - base_row["avg"] for v in per_seed_avg])
            rows.append(row)
        tables.append({"variant": list(variant), "metric": metric, "suites": list(suites),
                       "baseline": base_row, "rows": rows})
    return tables


def _stats(values: Sequence[float], base: float | None) -> dict[str, Any]:
    mean, se = mean_se(values)
    return {"mean": mean, "se": se, "n": len(values), "values": list(values),
            "delta": (mean - base) if mean is not None and base is not None else None}


# --------------------------------------------------------------------------- factors

VARIANT_PARTS = ("model", "reward", "template", "curriculum", "language")
#: The study's factors as the parts of a cell's variant (model, reward, template, curriculum, language)
#: they vary. SFT varies the template with the model: each starting model trains with its own (`auto`).
FACTORS = (("SFT (starting model)", (0, 2)), ("reward", (1,)), ("template", (2,)), ("curriculum", (3,)),
           ("language", (4,)))


def factor_tables(cells: Iterable[Mapping[str, Any]], tables: Sequence[Mapping[str, Any]]
                  ) -> list[dict[str, Any]]:
    """One table per factor with two or more levels, per setting of the other variant parts.

    Rows are training mixtures, columns the factor's levels: each level's average over the suites
    (with its delta against its own starting model), and `vs` {level: the paired difference from the
    first level on the same items, its seed part paired by seed when both levels ran the same seeds}.
    """
    grouped = group_cells(cells)
    out = []
    for factor, varied in FACTORS:
        by_rest: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
        for table in tables:
            rest = tuple(v for i, v in enumerate(table["variant"]) if i not in varied)
            by_rest.setdefault(rest, []).append(table)
        for rest, members in by_rest.items():
            # a level per distinct value of the factor's own part (SFT: the model, whatever its template)
            if len({table["variant"][varied[0]] for table in members}) < 2:
                continue
            suites = members[0]["suites"]
            levels = [" / ".join(table["variant"][i] for i in varied) for table in members]
            rows_of = [{row["mixture"]: row for row in table["rows"]} for table in members]
            mixtures = list(dict.fromkeys(m for rows in rows_of for m in rows))
            rows = []
            for mixture in mixtures:
                reference = rows_of[0].get(mixture)
                reference_items = seed_items(grouped[tuple(members[0]["variant"])].get(mixture, []), suites)
                row: dict[str, Any] = {"mixture": mixture, "levels": {}, "vs": {}}
                for level, table, table_rows in zip(levels, members, rows_of):
                    found = table_rows.get(mixture)
                    row["levels"][level] = found["avg"] if found else None
                    if found is None or reference is None or found is reference:
                        continue
                    items = seed_items(grouped[tuple(table["variant"])].get(mixture, []), suites)
                    row["vs"][level] = _effect(reference, found, suites, reference_items, items)
                rows.append(row)
            out.append({"factor": factor, "fixed": list(rest), "levels": levels, "reference": levels[0],
                        "suites": list(suites), "rows": rows})
    return out


def factor_markdown(table: Mapping[str, Any], title: str = "") -> str:
    levels, reference = table["levels"], table["reference"]
    others = levels[1:]
    header = ["training data", *levels, *(f"{level} − {reference}" for level in others)]
    lines = [f"### {title}" if title else "", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table["rows"]:
        cells = [cell_text(row["levels"].get(level)) for level in levels]
        cells += [effect_text(row["vs"].get(level)) for level in others]
        lines.append(f"| {row['mixture']} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Average over the suites in %, mean over seeds, (delta against the starting model); the last "
                 f"columns: the difference from {reference} on the same items ± paired standard error; "
                 "* |difference| > 2 se.")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- template consistency


def template_tables(cells: Iterable[Mapping[str, Any]], baselines: Iterable[Mapping[str, Any]],
                    suites: Sequence[str], metric: str = "accuracy") -> list[dict[str, Any]]:
    """The template-consistency factor: every trained model under each evaluation template.

    A cell record's `scores` are under its training template and `template_scores` {template: scores}
    under the others (eval.templates). Per (model, reward, curriculum, language) this returns
    `tables` {eval template: a results table whose rows are "mixture | train T", each against the
    starting model evaluated under that same eval template} and `matrix` {mixture: {T: {E: the avg
    column's stats}}}: the study's train-template x eval-template table. Cells evaluated under one
    template only are left out.
    """
    views = []
    for record in cells:
        model, reward, trained_with, curriculum, lang = record["variant"]
        evaluated = {trained_with: record.get("scores", {}), **record.get("template_scores", {})}
        if len(evaluated) < 2:
            continue
        for template, scores in evaluated.items():
            views.append({**record, "variant": [model, reward, template, curriculum, lang], "scores": scores,
                          "axes": {**record["axes"], "mixture": f"{record['axes']['mixture']} | train {trained_with}"},
                          "train_template": trained_with})
    groups: dict[tuple[str, ...], dict[str, Any]] = {}
    for table in results_tables(views, baselines, suites, metric):
        model, reward, template, curriculum, lang = table["variant"]
        group = groups.setdefault((model, reward, curriculum, lang), {
            "variant": [model, reward, curriculum, lang], "tables": {}, "matrix": {}})
        group["tables"][template] = table
        for row in table["rows"]:
            mixture, _, trained_with = row["mixture"].rpartition(" | train ")
            group["matrix"].setdefault(mixture, {}).setdefault(trained_with, {})[template] = row["avg"]
    for group in groups.values():
        group["eval_templates"] = list(group["tables"])
        group["train_templates"] = list(dict.fromkeys(t for by_train in group["matrix"].values() for t in by_train))
    return list(groups.values())


def template_markdown(group: Mapping[str, Any], title: str = "") -> str:
    """Rows: training data and training template; columns: evaluation templates; the suites' average."""
    evals = group["eval_templates"]
    lines = [f"### {title}" if title else "", "",
             "| training data | trained with ↓ / evaluated with → | " + " | ".join(evals) + " |",
             "|" + "---|" * (len(evals) + 2)]
    for mixture, by_train in group["matrix"].items():
        for trained_with, by_eval in by_train.items():
            lines.append(f"| {mixture} | {trained_with} | " + " | ".join(cell_text(by_eval.get(e)) for e in evals)
                         + " |")
    lines.append("")
    lines.append("Average over the suites in %, mean over seeds; (delta ± paired standard error) against the "
                 "starting model evaluated with the same template; * |delta| > 2 se.")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- synergy


def synergy(table: Mapping[str, Any], overrides: Mapping[str, str] | None = None,
            items: Mapping[str, SeedItems] | None = None) -> dict[str, Any]:
    """Effects of adding mixture keys to a single-key mixture, on that key's own suites.

    `items` {mixture: seed_items(...)} gives the paired item-level error; without it only the seeds'.
    Returns `keys` (the single-key mixtures, table order), `matrix` {A: {B: effect}} for every pair
    whose A and A+B mixtures were trained, and `effects`: one entry per (single A, larger mixture M
    containing A), including the triple. An effect is significance.effect's numbers plus
    {suites, target, added, mixture, base_mixture, mixed, single}.
    """
    suites = table["suites"]
    items = items or {}
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
            found = _effect(rows[single_name], row, own, items.get(single_name, {}), items.get(name, {}))
            if found is None:
                continue
            added = [k for k in row["keys"] if k != key]
            found.update(target=key, added=added, mixture=name, base_mixture=single_name)
            effects.append(found)
            if len(added) == 1:
                matrix.setdefault(key, {})[added[0]] = found
    keys = [key for key, _ in singles]
    return {"keys": keys, "matrix": matrix, "effects": effects}


def _own_means(row: Mapping[str, Any], own: Sequence[str]) -> list[float] | None:
    """Per seed, the mean over own suites (None when a suite misses some seed)."""
    per_suite = [row["suites"][s]["values"] for s in own]
    if any(len(values) != len(row["seeds"]) for values in per_suite):
        return None
    return [sum(values[i] for values in per_suite) / len(per_suite) for i in range(len(row["seeds"]))]


def _effect(single: Mapping[str, Any], mixed: Mapping[str, Any], own: Sequence[str],
            single_items: SeedItems, mixed_items: SeedItems) -> dict[str, Any] | None:
    mixed_seeds, single_seeds = _own_means(mixed, own), _own_means(single, own)
    if mixed_seeds is None or single_seeds is None:
        # a suite missing for some seed: suite means only, no se
        means = [(mixed["suites"][s]["mean"], single["suites"][s]["mean"]) for s in own]
        if any(m is None or s is None for m, s in means):
            return None
        delta = sum(m - s for m, s in means) / len(means)
        return {"delta": delta, "se": None, "z": None, "above_2se": None, "suites": list(own),
                "mixed": sum(m for m, _ in means) / len(means), "single": sum(s for _, s in means) / len(means)}
    found = None
    same_seeds = list(mixed["seeds"]) == list(single["seeds"])  # rows list their seeds sorted
    if all(s in mixed_items and s in single_items for s in own):
        found = effect({s: mixed_items[s] for s in own}, {s: single_items[s] for s in own},
                       paired_seeds=same_seeds)
    if found is None and same_seeds and len(mixed_seeds) >= 2:  # no items: the seeds' own differences
        found = {**combine_seeds([m - s for m, s in zip(mixed_seeds, single_seeds)], None), "seeds_paired": True}
    elif found is None:  # independent runs: the two sides' seed spreads
        mixed_mean, mixed_se = mean_se(mixed_seeds)
        single_mean, single_se = mean_se(single_seeds)
        se = math.hypot(mixed_se, single_se) if mixed_se is not None and single_se is not None else None
        found = combine(mixed_mean - single_mean, se, None)  # type: ignore[operator]
    found.update(suites=list(own), mixed=sum(mixed_seeds) / len(mixed_seeds),
                 single=sum(single_seeds) / len(single_seeds))
    return found


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
    lines.append(f"{table['metric']} in %, mean over seeds; (delta ± paired standard error, seeds and items) "
                 "against the starting model; * |delta| > 2 se.")
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
            found = result["matrix"].get(a, {}).get(b)
            if found is None:
                cells.append("·" if a == b else "–")
            else:
                cells.append(effect_text(found))
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Row A, column B: accuracy on A's own suites (points) when trained on A+B minus trained on A "
                 "alone, ± paired standard error; * |delta| > 2 se.")
    return "\n".join(lines) + "\n"
