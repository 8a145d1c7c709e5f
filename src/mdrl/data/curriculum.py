"""Curriculum ordering: easy to hard, by difficulty level, stable (ties keep the mixture's interleaving).

Two orderings:
  * "difficulty": the raw level (KK people, countdown numbers); across a mixture, lower levels of every
    domain come first, so a domain whose levels are all low (countdown 3-4) is finished early.
  * "relative": each item's rank among its own domain's levels, scaled to [0, 1]; every domain goes
    from its easiest to its hardest level over the same stretch of the epoch, so the mixture holds
    throughout.
Either way each domain's items are in non-decreasing difficulty. Trainers must not shuffle a
curriculum: `is_curriculum` in the build result and the files' metadata says so.
"""

from __future__ import annotations

from typing import Callable, Sequence

from mdrl.domains.base import Problem

CURRICULA = ("none", "difficulty", "relative")


def curriculum_keys(problems: Sequence[Problem], by: str = "difficulty") -> list[float]:
    """The sort key of each problem under the ordering `by`."""
    if by == "difficulty":
        return [float(problem.difficulty) for problem in problems]
    if by == "relative":
        levels: dict[str, list[int]] = {}
        for problem in problems:
            levels.setdefault(problem.domain, []).append(problem.difficulty)
        rank: dict[str, Callable[[int], float]] = {}
        for domain, found in levels.items():
            distinct = sorted(set(found))
            position = {level: i / max(len(distinct) - 1, 1) for i, level in enumerate(distinct)}
            rank[domain] = position.__getitem__
        return [rank[problem.domain](problem.difficulty) for problem in problems]
    raise ValueError(f"unknown curriculum {by!r}; known: {', '.join(CURRICULA)}")


def order_by_curriculum(problems: Sequence[Problem], by: str = "difficulty") -> list[Problem]:
    """Problems sorted easy -> hard under `by` ("none" keeps the order). The sort is stable."""
    if by == "none":
        return list(problems)
    keys = curriculum_keys(problems, by)
    positions = sorted(range(len(problems)), key=keys.__getitem__)
    return [problems[i] for i in positions]


def is_non_decreasing(problems: Sequence[Problem], by: str = "difficulty") -> bool:
    """True when the problems are in curriculum order under `by`."""
    keys = curriculum_keys(problems, by)
    return all(a <= b for a, b in zip(keys, keys[1:]))
