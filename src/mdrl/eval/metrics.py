"""Metrics over scored samples: accuracy, mean@n, unbiased pass@k, format errors, lengths, and
per-group breakdowns. Pure functions over plain records, so they are easy to test by hand."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Iterable, Mapping, Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al., 2021): 1 - C(n-c, k) / C(n, k), for n samples of which c pass.

    Computed as 1 - prod_{i=n-c+1}^{n} (1 - k/i), which never forms the huge binomials.
    """
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:  # every k-subset contains a passing sample
        return 1.0
    product = 1.0
    for i in range(n - c + 1, n + 1):
        product *= 1.0 - k / i
    return 1.0 - product


def default_ks(n: int) -> list[int]:
    """k = 1, 2, 4, ... up to n, and n itself."""
    ks, k = [], 1
    while k <= n:
        ks.append(k)
        k *= 2
    if ks[-1] != n:
        ks.append(n)
    return ks


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def item_metrics(samples: Sequence[Mapping[str, Any]], ks: Sequence[int]) -> dict[str, Any]:
    """Per-item numbers from its n scored samples."""
    n = len(samples)
    correct = sum(bool(s["acc"]) for s in samples)
    out: dict[str, Any] = {
        "n": n,
        "correct": correct,
        "mean_acc": correct / n,
        "mean_score": _mean([float(s["score"]) for s in samples]),
        "strict": _mean([float(bool(s["acc_strict"])) for s in samples]),
        "flexible": _mean([float(bool(s["acc_flexible"])) for s in samples]),
    }
    for k in ks:
        if k <= n:
            out[f"pass@{k}"] = pass_at_k(n, correct, k)
    return out


def aggregate(
    samples: Iterable[Mapping[str, Any]], ks: Sequence[int] | None = None, top_reasons: int = 8
) -> dict[str, Any]:
    """Suite-level metrics from sample records (one per item x sample index).

    Items are weighted equally (mean@n averages samples within an item first). A record needs
    item_id, acc, score, acc_strict, acc_flexible, format_error, length and length_unit; an optional
    `group` gives a per-group breakdown.
    """
    by_item: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    groups: dict[str, str] = {}
    all_samples: list[Mapping[str, Any]] = []
    for record in samples:
        by_item[str(record["item_id"])].append(record)
        if record.get("group") is not None:
            groups[str(record["item_id"])] = str(record["group"])
        all_samples.append(record)
    if not by_item:
        return {"n_items": 0, "n_samples": 0}
    n_min = min(len(v) for v in by_item.values())
    ks = [k for k in (ks or default_ks(n_min)) if k <= n_min]
    per_item = {item: item_metrics(recs, ks) for item, recs in by_item.items()}
    summary = _summarise(per_item, all_samples, ks, top_reasons)
    if groups:
        breakdown = {}
        members: dict[str, list[str]] = defaultdict(list)
        for item, group in groups.items():
            members[group].append(item)
        for group in sorted(members, key=_natural_key):
            items = members[group]
            recs = [r for item in items for r in by_item[item]]
            breakdown[group] = _summarise({i: per_item[i] for i in items}, recs, ks, top_reasons=0)
        summary["breakdown"] = breakdown
    return summary


def _summarise(
    per_item: Mapping[str, Mapping[str, Any]],
    samples: Sequence[Mapping[str, Any]],
    ks: Sequence[int],
    top_reasons: int,
) -> dict[str, Any]:
    items = list(per_item.values())
    out: dict[str, Any] = {
        "n_items": len(items),
        "n_samples": len(samples),
        "accuracy": _mean([m["mean_acc"] for m in items]),
        "mean_score": _mean([m["mean_score"] for m in items]),
        "acc_strict": _mean([m["strict"] for m in items]),
        "acc_flexible": _mean([m["flexible"] for m in items]),
        "format_error_rate": _mean([float(bool(s["format_error"])) for s in samples]),
    }
    for k in ks:
        out[f"pass@{k}"] = _mean([m[f"pass@{k}"] for m in items])
    units = {s.get("length_unit") for s in samples}
    # Tokens when every sample knows its token count; otherwise characters for all (never a mix).
    unit = "tokens" if units == {"tokens"} else "chars"
    lengths = [float(s["n_tokens"]) if unit == "tokens" else float(s["n_chars"]) for s in samples]
    out["mean_length"] = _mean(lengths)
    out["length_unit"] = unit
    if top_reasons:
        reasons = Counter(str(s.get("reason", "")) for s in samples if not s["acc"])
        out["fail_reasons"] = dict(reasons.most_common(top_reasons))
    return out


def _natural_key(text: str) -> tuple:
    """Sort "3ppl" before "10ppl" and "4x3" before "10x2"."""
    import re

    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))
