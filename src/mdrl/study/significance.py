"""Paired standard errors of accuracy deltas: a trained model against its starting model on the same
items, over one or several training seeds. Pure functions over per-item accuracies, so every number
can be checked by hand.

For one seed, on the n items both models answered (d_i = acc_trained_i - acc_start_i, an item's
accuracy being the mean over its samples):
    delta = mean(d),   se_items = the cluster-robust se of mean(d), the items that ask one question
    forming a cluster (= sd(d, ddof=1) / sqrt(n) when no question repeats; None below 2 clusters).
Over k seeds compared with one starting-model evaluation:
    delta = mean of the seeds' deltas,   se_seeds = sd(seed deltas, ddof=1) / sqrt(k) (None for k < 2),
    se_items = the clustered se of the per-item mean over seeds of d_i (the shared starting model's
               noise counted once, and pairing on items removes question difficulty),
    se = sqrt(se_seeds^2 + se_items^2) when both exist, else whichever exists;  z = delta / se.
se_seeds carries the spread of training runs (and again the answers' sampling noise, so the sum counts
that twice: conservative); se_items the finite item sample and the sampling noise of both evaluations.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

#: |z| above this marks a delta as significant in tables.
Z_MARK = 2.0


def clustered_se(diffs: Sequence[float], clusters: Sequence[Hashable]) -> float | None:
    """Cluster-robust standard error of mean(diffs): sqrt(C/(C-1) * sum_c (sum_{i in c} (d_i - mean))^2) / n
    over the C clusters; sd(d, ddof=1)/sqrt(n) when every cluster holds one item; None below 2 clusters."""
    n = len(diffs)
    if n == 0:
        return None
    mean = sum(diffs) / n
    sums: dict[Hashable, float] = defaultdict(float)
    for diff, cluster in zip(diffs, clusters):
        sums[cluster] += diff - mean
    c = len(sums)
    return math.sqrt(c / (c - 1) * sum(v ** 2 for v in sums.values())) / n if c >= 2 else None


def paired_delta(trained: Mapping[str, float], start: Mapping[str, float], ids: Sequence[str],
                 clusters: Mapping[str, Hashable]) -> dict[str, Any]:
    """One seed: trained minus start on the items `ids` (per-item accuracies), with se_items clustered
    on `clusters` (item -> its question) and the unclustered se beside it. `diffs` keeps d_i per item
    for `combine_seeds`."""
    diffs = [trained[i] - start[i] for i in ids]
    n = len(diffs)
    return {"diffs": dict(zip(ids, diffs)), "n_paired": n,
            "trained_acc": sum(trained[i] for i in ids) / n if n else None,
            "baseline_acc": sum(start[i] for i in ids) / n if n else None,
            "delta": sum(diffs) / n if n else None,
            "se_items": clustered_se(diffs, [clusters[i] for i in ids]),
            "se_items_unclustered": statistics.stdev(diffs) / math.sqrt(n) if n >= 2 else None}


def joint_se_items(per_seed_diffs: Sequence[Mapping[str, float]], clusters: Mapping[str, Hashable]) -> float | None:
    """Clustered se of the seeds' mean delta from the per-item mean of their differences, on the items
    every seed answered."""
    if not per_seed_diffs:
        return None
    ids = sorted(set.intersection(*(set(diffs) for diffs in per_seed_diffs)))
    means = [sum(diffs[i] for diffs in per_seed_diffs) / len(per_seed_diffs) for i in ids]
    return clustered_se(means, [clusters[i] for i in ids]) if len(ids) >= 2 else None


def combine_seeds(seed_deltas: Sequence[float], se_items: float | None) -> dict[str, Any]:
    """Mean delta over seeds, se_seeds, the combined se (see the module doc), z and the |z| > Z_MARK mark."""
    k = len(seed_deltas)
    return combine(sum(seed_deltas) / k if k else None, _spread(seed_deltas), se_items)


def _spread(values: Sequence[float]) -> float | None:
    """Standard error of the mean of `values` (sd with ddof=1 over sqrt(k)); None below two values."""
    return statistics.stdev(values) / math.sqrt(len(values)) if len(values) >= 2 else None


def combine(delta: float | None, se_seeds: float | None, se_items: float | None) -> dict[str, Any]:
    """A delta with its seed and item errors: se = sqrt(se_seeds^2 + se_items^2) of those present, z, mark."""
    present = [s for s in (se_seeds, se_items) if s is not None]
    se = math.sqrt(sum(s ** 2 for s in present)) if present else None
    return {"delta": delta, "se_seeds": se_seeds, "se_items": se_items, "se": se,
            "se_used": "combined" if len(present) == 2 else ("seeds" if se_seeds is not None
                                                             else "items" if se_items is not None else None),
            "z": delta / se if delta is not None and se else None,
            "above_2se": abs(delta) > Z_MARK * se if delta is not None and se is not None else None}


# --------------------------------------------------------------------------- effects in the study's tables

#: One evaluation of one suite: item id -> (the item's accuracy over its samples, its question cluster).
ItemAccuracy = Mapping[str, Sequence[Any]]


def item_accuracies(samples: Iterable[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """mdrl.eval's sample records -> {item_id: [mean acc over its samples, cluster]}; the cluster is the
    item's fingerprint (its question, reference and data source), so repeated questions form one."""
    grouped: dict[str, list[bool]] = defaultdict(list)
    cluster: dict[str, str] = {}
    for record in samples:
        item = str(record["item_id"])
        grouped[item].append(bool(record.get("acc")))
        cluster.setdefault(item, str(record.get("fingerprint") or item))
    return {item: [sum(accs) / len(accs), cluster[item]] for item, accs in grouped.items()}


def effect(treated: Mapping[str, Sequence[ItemAccuracy]], control: Mapping[str, Sequence[ItemAccuracy]],
           paired_seeds: bool = False) -> dict[str, Any] | None:
    """Treated minus control, averaged over suites (unweighted), each side a list of seeds per suite.

    Per suite s, on the items every evaluation of both sides answered: per-seed accuracies t_s,k and
    c_s,k, and d_i = mean_k t_k,i - mean_k c_k,i with se_items,s its clustered se. Over the S suites:
        delta    = mean_s (mean_k t_s,k - mean_k c_s,k)
        se_items = sqrt(sum_s se_items,s^2) / S          (suites' items are independent)
        se_seeds = sqrt(spread(T)^2 + spread(C)^2), T and C the per-seed averages over suites and
                   spread = sd/sqrt(k) (a side of one evaluation, such as a starting model, adds nothing);
                   with `paired_seeds` (the caller's promise that run j of each side trained with the same
                   seed) and k >= 2 runs a side: spread(T - C), the seeds' own differences, so two
                   identical trainings differ by 0 ± 0 rather than by their unpaired spread
    combined as in combine_seeds. None when some suite has no evaluation or no common item.
    """
    suites = list(treated)
    if not suites or any(not treated[s] or not control.get(s) for s in suites):
        return None
    parts = []
    for suite in suites:
        runs_t, runs_c = list(treated[suite]), list(control[suite])
        ids = sorted(set.intersection(*(set(run) for run in [*runs_t, *runs_c])))
        if not ids:
            return None
        mean_t = [sum(float(run[i][0]) for i in ids) / len(ids) for run in runs_t]
        mean_c = [sum(float(run[i][0]) for i in ids) / len(ids) for run in runs_c]
        diffs = [sum(float(run[i][0]) for run in runs_t) / len(runs_t)
                 - sum(float(run[i][0]) for run in runs_c) / len(runs_c) for i in ids]
        parts.append((mean_t, mean_c, clustered_se(diffs, [runs_t[0][i][1] for i in ids]), len(ids)))
    n_suites = len(parts)
    delta = sum(sum(t) / len(t) - sum(c) / len(c) for t, c, _, _ in parts) / n_suites
    item_ses = [se for _, _, se, _ in parts]
    se_items = math.sqrt(sum(se ** 2 for se in item_ses)) / n_suites if None not in item_ses else None
    runs_per_side = {len(part[side]) for part in parts for side in (0, 1)}
    paired = paired_seeds and len(runs_per_side) == 1 and min(runs_per_side) >= 2
    if paired:
        k = runs_per_side.pop()
        se_seeds = _spread([sum(t[j] - c[j] for t, c, _, _ in parts) / n_suites for j in range(k)])
    else:
        spreads = []
        for side in (0, 1):
            runs = {len(part[side]) for part in parts}
            if len(runs) == 1:  # every suite has the same seeds: per-seed averages over the suites
                k = runs.pop()
                spreads.append(_spread([sum(part[side][j] for part in parts) / n_suites for j in range(k)]))
            else:
                spreads.append(None)
        present = [s for s in spreads if s is not None]
        se_seeds = math.sqrt(sum(s ** 2 for s in present)) if present else None
    return {**combine(delta, se_seeds, se_items), "n_items": sum(part[3] for part in parts),
            **({"seeds_paired": True} if paired else {})}
