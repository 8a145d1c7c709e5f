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
from collections.abc import Hashable, Mapping, Sequence
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
    delta = sum(seed_deltas) / k if k else None
    se_seeds = statistics.stdev(seed_deltas) / math.sqrt(k) if k >= 2 else None
    present = [s for s in (se_seeds, se_items) if s is not None]
    se = math.sqrt(sum(s ** 2 for s in present)) if present else None
    return {"delta": delta, "se_seeds": se_seeds, "se_items": se_items, "se": se,
            "se_used": "combined" if len(present) == 2 else ("seeds" if se_seeds is not None
                                                             else "items" if se_items is not None else None),
            "z": delta / se if delta is not None and se else None,
            "above_2se": abs(delta) > Z_MARK * se if delta is not None and se is not None else None}
