"""Mixtures: ratios over domains or domain groups -> exact per-domain counts -> an interleaved order.

Counts come from the largest-remainder method, so each domain's realised share is within 1/N of the
requested one. The order comes from smooth weighted round-robin, so every prefix of the epoch (every
training batch, roughly) also holds the requested proportions to within about one item per domain.
"""

from __future__ import annotations

import difflib
import math
from typing import Hashable, Iterable, Mapping, Sequence, TypeVar

from mdrl.domains.base import Domain
from mdrl.domains.registry import domains_named, families, groups

K = TypeVar("K", bound=Hashable)


def parse_mix(mix: str | Mapping[str, float] | Sequence[tuple[str, float]]) -> tuple[tuple[str, float], ...]:
    """ "math:1,puzzle:1" (or a mapping) -> (("math", 1.0), ("puzzle", 1.0)); a key without ":w" weighs 1."""
    if isinstance(mix, str):
        pairs: list[tuple[str, float]] = []
        for part in mix.split(","):
            part = part.strip()
            if not part:
                continue
            key, sep, weight = part.rpartition(":")
            if not sep or (key.strip() in families() and not _looks_numeric(weight)):
                key, weight = part, "1"  # a family member such as rg:sudoku, without a weight
            try:
                pairs.append((key.strip(), float(weight)))
            except ValueError:
                raise ValueError(
                    f"bad mixture weight {weight!r} in {mix!r}: use e.g. math:1,puzzle:2"
                ) from None
    elif isinstance(mix, Mapping):
        pairs = [(str(key), float(value)) for key, value in mix.items()]
    else:
        pairs = [(str(key), float(value)) for key, value in mix]
    keys = [key for key, _ in pairs]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise ValueError(f"mixture names {duplicates} more than once")
    for key, weight in pairs:
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"mixture weight of {key!r} must be a finite number >= 0, got {weight}")
    if not pairs or sum(weight for _, weight in pairs) <= 0:
        raise ValueError(f"mixture {mix!r} has no positive weight")
    return tuple(pairs)


def _looks_numeric(text: str) -> bool:
    return text.strip().lstrip("+-").replace(".", "", 1).replace("e", "", 1).isdigit()


def format_mix(pairs: Iterable[tuple[str, float]]) -> str:
    return ",".join(f"{key}:{weight:g}" for key, weight in pairs)


def expand_mix(
    mix: str | Mapping[str, float] | Sequence[tuple[str, float]],
    usable: Iterable[str],
    domains: Mapping[str, Domain] | None = None,
) -> list[tuple[str, float, list[str]]]:
    """(key, weight, member domains) for each mixture key; see `resolve_mix` for the rules."""
    pairs = parse_mix(mix)
    domains = dict(domains_named(key for key, _ in pairs) if domains is None else domains)
    known_groups = set(groups()) | {domain.group for domain in domains.values()}
    usable = set(usable)
    named = {key for key, _ in pairs if key in domains}
    expanded = []
    for key, weight in pairs:
        if key in known_groups:
            members = [
                name
                for name, domain in domains.items()
                if domain.group == key and name in usable and (name == key or name not in named)
            ]
            if not members:
                raise ValueError(
                    f"mixture group {key!r}: none of its domains "
                    f"({', '.join(sorted(n for n, d in domains.items() if d.group == key))}) "
                    "has data or a generator here"
                )
        elif key in domains:
            if key not in usable:
                raise ValueError(f"mixture domain {key!r} has neither data from a source nor a generator")
            members = [key]
        else:
            known = sorted(set(domains) | known_groups)
            close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ValueError(f"unknown mixture key {key!r}.{hint} Known: {', '.join(known)}")
        expanded.append((key, weight, members))
    return expanded


def resolve_mix(
    mix: str | Mapping[str, float] | Sequence[tuple[str, float]],
    usable: Iterable[str],
    domains: Mapping[str, Domain] | None = None,
) -> dict[str, float]:
    """Per-domain weights (summing to 1) from a mixture over domains and groups.

    A key is a group name (math, code, puzzle) or a domain name. A group stands for its member domains
    that are `usable` (have data or a generator) and are not named on their own elsewhere in the mix;
    its weight is split equally among them. So "math:1,puzzle:1" means math+countdown vs
    knights_knaves+zebra, while "math:1,countdown:1" means the math domain vs countdown, and a weight of
    0 drops a domain from its group ("math:1,countdown:0"). Where a name is both a group and a domain
    (math), it is the group; with no other usable member that is the domain alone.
    """
    weights: dict[str, float] = {}
    for _, weight, members in expand_mix(mix, usable, domains):
        for member in members:
            weights[member] = weights.get(member, 0.0) + weight / len(members)
    weights = {name: weight for name, weight in weights.items() if weight > 0}
    total = sum(weights.values())
    if total <= 0:
        raise ValueError(f"mixture {format_mix(parse_mix(mix))!r} gives every domain weight 0")
    return {name: weight / total for name, weight in weights.items()}


def largest_remainder(weights: Mapping[K, float], n: int) -> dict[K, int]:
    """Split n into integer counts proportional to `weights` (Hamilton's method; ties by key order)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    total = float(sum(weights.values()))
    if total <= 0:
        raise ValueError("largest_remainder needs a positive total weight")
    quotas = {key: n * weight / total for key, weight in weights.items()}
    counts = {key: int(math.floor(quota)) for key, quota in quotas.items()}
    order = sorted(quotas, key=lambda key: quotas[key] - counts[key], reverse=True)
    for key in order[: n - sum(counts.values())]:
        counts[key] += 1
    return counts


def interleave(counts: Mapping[K, int]) -> list[K]:
    """An order holding each key exactly counts[key] times, spread evenly (smooth weighted round-robin).

    At each step every key gains its count and the richest is emitted and pays the total, so the
    number of times a key has appeared in any prefix stays within one of its exact share.
    """
    live = {key: count for key, count in counts.items() if count > 0}
    total = sum(live.values())
    credit = {key: 0 for key in live}
    order: list[K] = []
    for _ in range(total):
        for key, count in live.items():
            credit[key] += count
        chosen = max(credit, key=credit.__getitem__)  # first key wins ties: deterministic
        credit[chosen] -= total
        order.append(chosen)
    return order


def proportions(keys: Sequence[K]) -> dict[K, float]:
    """Realised shares of each key in a sequence."""
    shares: dict[K, float] = {}
    for key in keys:
        shares[key] = shares.get(key, 0.0) + 1.0
    return {key: count / len(keys) for key, count in shares.items()} if keys else {}


def max_prefix_deviation(keys: Sequence[K], target: Mapping[K, float], min_prefix: int = 1) -> float:
    """The largest |share - target| over every prefix of at least `min_prefix` items and every key."""
    seen = {key: 0 for key in target}
    worst = 0.0
    for length, key in enumerate(keys, start=1):
        seen[key] = seen.get(key, 0) + 1
        if length >= min_prefix:
            worst = max(worst, max(abs(seen[k] / length - share) for k, share in target.items()))
    return worst
