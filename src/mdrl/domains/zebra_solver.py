"""Logic-grid ("zebra") puzzles without words: clues, a solver that counts solutions, a generator.

A grid has `houses` positions (house 0 is the leftmost) and `categories` attribute categories, each
with `houses` distinct values; every value sits in exactly one house. The unknowns are the houses of
the values: variable `category * houses + value`, whose domain is a bitmask of the houses it may
still occupy. The solver propagates (all-different per category with naked and hidden singles,
bounds on the binary clues) and branches on the smallest domain; `count_solutions(..., limit=2)`
is how the generator proves a puzzle has exactly one solution.

The generator draws a hidden grid, then adds random clues that are true of it (skipping clues that
propagation shows to be implied by the clues so far) until the solver proves the grid unique, then
drops every clue whose removal keeps the solution unique. Everything is seeded by the caller's
`random.Random`; nothing here touches global random state.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

#: Clue kinds. "found"/"not_at" name a house; the others relate two values.
FOUND, NOT_AT, SAME, NOT_SAME, LEFT_OF, SOMEWHERE_LEFT, NEXT_TO = (
    "found", "not_at", "same", "not_same", "left_of", "somewhere_left", "next_to")
KINDS = (FOUND, NOT_AT, SAME, NOT_SAME, LEFT_OF, SOMEWHERE_LEFT, NEXT_TO)
_TWO_VALUE_KINDS = frozenset(KINDS[2:])
_SYMMETRIC_KINDS = frozenset((SAME, NOT_SAME, NEXT_TO))

#: How often each kind is drawn. Direct placements are rare so that puzzles need relational reasoning.
_KIND_WEIGHTS = {FOUND: 1.0, NOT_AT: 1.0, SAME: 3.0, NOT_SAME: 1.0, LEFT_OF: 2.0,
                 SOMEWHERE_LEFT: 1.5, NEXT_TO: 2.0}

#: Draws in a row that propagation shows to be implied before one is accepted anyway (a clue that
#: propagation cannot use may still cut the search tree).
_MAX_IMPLIED_DRAWS = 30


@dataclass(frozen=True)
class Clue:
    """One statement about the hidden grid. `a`/`b` are variables (category * houses + value)."""

    kind: str
    a: int
    b: int = -1
    house: int = -1  # 0-based; only for FOUND and NOT_AT

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown clue kind {self.kind!r}; known: {', '.join(KINDS)}")
        if (self.kind in _TWO_VALUE_KINDS) != (self.b >= 0):
            raise ValueError(f"clue {self.kind!r} needs {'two values' if self.b < 0 else 'one value'}")
        if (self.kind in (FOUND, NOT_AT)) != (self.house >= 0):
            raise ValueError(f"clue {self.kind!r} {'needs' if self.house < 0 else 'takes no'} house")


def holds(clue: Clue, position: Sequence[int]) -> bool:
    """Whether the clue is true of a full assignment (position[variable] = house)."""
    pa = position[clue.a]
    if clue.kind == FOUND:
        return pa == clue.house
    if clue.kind == NOT_AT:
        return pa != clue.house
    pb = position[clue.b]
    if clue.kind == SAME:
        return pa == pb
    if clue.kind == NOT_SAME:
        return pa != pb
    if clue.kind == LEFT_OF:
        return pa + 1 == pb
    if clue.kind == SOMEWHERE_LEFT:
        return pa < pb
    return abs(pa - pb) == 1  # NEXT_TO


@dataclass(frozen=True)
class Grid:
    """The shape of a puzzle: how many houses and categories."""

    houses: int
    categories: int

    def __post_init__(self) -> None:
        if not (1 <= self.houses <= 30 and 1 <= self.categories <= 30):
            raise ValueError(f"grid of {self.houses} houses x {self.categories} categories is out of range")

    @property
    def size(self) -> int:
        return self.houses * self.categories

    @property
    def full(self) -> int:
        return (1 << self.houses) - 1


def _start_domains(grid: Grid, clues: Sequence[Clue]) -> tuple[list[int], list[tuple[str, int, int]]]:
    """Initial domains with the one-value clues applied, and the two-value clues as constraints."""
    domains = [grid.full] * grid.size
    binaries: list[tuple[str, int, int]] = []
    for clue in clues:
        if clue.kind == FOUND:
            domains[clue.a] &= 1 << clue.house
        elif clue.kind == NOT_AT:
            domains[clue.a] &= ~(1 << clue.house)
        else:
            binaries.append((clue.kind, clue.a, clue.b))
    return domains, binaries


def _revise(kind: str, dx: int, dy: int, full: int) -> tuple[int, int]:
    """Narrow two domains to the houses that have support under one two-value clue."""
    if kind == SAME:
        both = dx & dy
        return both, both
    if kind == NOT_SAME:
        if dx & (dx - 1) == 0:
            dy &= ~dx
        if dy & (dy - 1) == 0:
            dx &= ~dy
        return dx, dy
    if kind == LEFT_OF:  # house(y) == house(x) + 1
        dy &= (dx << 1) & full
        dx &= dy >> 1
        return dx, dy
    if kind == SOMEWHERE_LEFT:  # house(x) < house(y)
        if not dx or not dy:
            return 0, 0
        dx &= (1 << (dy.bit_length() - 1)) - 1       # below y's rightmost possible house
        if not dx:
            return 0, 0
        dy &= full & ~(((dx & -dx) << 1) - 1)           # above x's leftmost possible house
        return dx, dy
    # NEXT_TO
    dx &= ((dy << 1) | (dy >> 1)) & full
    dy &= ((dx << 1) | (dx >> 1)) & full
    return dx, dy


def _all_different(domains: list[int], base: int, houses: int, full: int) -> bool | None:
    """One category's values occupy distinct houses. Returns None on contradiction, else whether
    anything narrowed (naked singles: a placed value leaves its house to no other; hidden singles:
    a house only one value can take gets that value)."""
    changed = False
    end = base + houses
    again = True
    while again:
        again = False
        placed = 0
        for i in range(base, end):
            d = domains[i]
            if d & (d - 1) == 0:
                if d & placed:
                    return None
                placed |= d
        for i in range(base, end):
            d = domains[i]
            if d & (d - 1) and d & placed:
                d &= ~placed
                if not d:
                    return None
                domains[i] = d
                changed = again = True
    once = twice = 0
    for i in range(base, end):
        d = domains[i]
        twice |= once & d
        once |= d
    if once != full:
        return None
    only = once & ~twice
    if only:
        for i in range(base, end):
            d = domains[i]
            mine = d & only
            if mine and mine != d:
                if mine & (mine - 1):
                    return None
                domains[i] = mine
                changed = True
    return changed


def propagate(grid: Grid, domains: list[int], binaries: Sequence[tuple[str, int, int]]) -> bool:
    """Narrow `domains` in place to a fixpoint. False when some value has no house left."""
    full, houses = grid.full, grid.houses
    changed = True
    while changed:
        changed = False
        for kind, x, y in binaries:
            dx, dy = domains[x], domains[y]
            nx, ny = _revise(kind, dx, dy, full)
            if nx != dx or ny != dy:
                if not nx or not ny:
                    return False
                domains[x], domains[y] = nx, ny
                changed = True
        for base in range(0, grid.size, houses):
            outcome = _all_different(domains, base, houses, full)
            if outcome is None:
                return False
            changed = changed or outcome
    return True


def _search(grid: Grid, domains: list[int], binaries: Sequence[tuple[str, int, int]], limit: int,
            found: list[list[int]]) -> None:
    """Depth-first search on propagated domains; appends solutions to `found` until it has `limit`."""
    best, best_count = -1, grid.houses + 1
    for i, d in enumerate(domains):
        if d & (d - 1):
            count = d.bit_count()
            if count < best_count:
                best, best_count = i, count
                if count == 2:
                    break
    if best < 0:  # every value placed; propagation has checked every clue on singletons
        found.append([d.bit_length() - 1 for d in domains])
        return
    choices = domains[best]
    while choices and len(found) < limit:
        bit = choices & -choices
        choices ^= bit
        child = domains.copy()
        child[best] = bit
        if propagate(grid, child, binaries):
            _search(grid, child, binaries, limit, found)


def solve(grid: Grid, clues: Sequence[Clue], limit: int = 2) -> list[list[int]]:
    """Up to `limit` solutions (each a list position[variable] = house). One solution = unique."""
    domains, binaries = _start_domains(grid, clues)
    found: list[list[int]] = []
    if propagate(grid, domains, binaries):
        _search(grid, domains, binaries, limit, found)
    return found


def _random_true_clue(rng: random.Random, grid: Grid, position: Sequence[int],
                      value_at: Sequence[Sequence[int]]) -> Clue:
    """A clue drawn at random among those true of the hidden grid."""
    n, m = grid.houses, grid.categories
    kinds = [k for k in KINDS if _possible(k, n, m)]
    kind = rng.choices(kinds, weights=[_KIND_WEIGHTS[k] for k in kinds])[0]
    if kind == FOUND:
        a = rng.randrange(grid.size)
        return Clue(FOUND, a, house=position[a])
    if kind == NOT_AT:
        a = rng.randrange(grid.size)
        return Clue(NOT_AT, a, house=rng.choice([h for h in range(n) if h != position[a]]))
    if kind == SAME:
        h = rng.randrange(n)
        c1, c2 = sorted(rng.sample(range(m), 2))
        return Clue(SAME, value_at[c1][h], value_at[c2][h])
    if kind == NOT_SAME:
        h1, h2 = rng.sample(range(n), 2)
        c1, c2 = sorted(rng.sample(range(m), 2))
        return Clue(NOT_SAME, value_at[c1][h1], value_at[c2][h2])
    if kind == LEFT_OF:
        h = rng.randrange(n - 1)
        return Clue(LEFT_OF, value_at[rng.randrange(m)][h], value_at[rng.randrange(m)][h + 1])
    if kind == SOMEWHERE_LEFT:
        h1, h2 = sorted(rng.sample(range(n), 2))
        return Clue(SOMEWHERE_LEFT, value_at[rng.randrange(m)][h1], value_at[rng.randrange(m)][h2])
    h = rng.randrange(n - 1)
    a, b = value_at[rng.randrange(m)][h], value_at[rng.randrange(m)][h + 1]
    if rng.random() < 0.5:
        a, b = b, a
    return Clue(NEXT_TO, a, b)


def _possible(kind: str, houses: int, categories: int) -> bool:
    needs_two_categories = kind in (SAME, NOT_SAME)
    needs_two_houses = kind in (NOT_AT, NOT_SAME, LEFT_OF, SOMEWHERE_LEFT, NEXT_TO)
    return not (needs_two_categories and categories < 2) and not (needs_two_houses and houses < 2)


@dataclass(frozen=True)
class Puzzle:
    """A generated puzzle: its shape, hidden grid (position[variable] = house) and clues."""

    grid: Grid
    position: tuple[int, ...]
    clues: tuple[Clue, ...]

    def value_at(self, category: int, house: int) -> int:
        """The value index of `category` in `house` (0-based)."""
        base = category * self.grid.houses
        for value in range(self.grid.houses):
            if self.position[base + value] == house:
                return value
        raise ValueError(f"no value of category {category} in house {house}")


def generate_puzzle(rng: random.Random, grid: Grid, prune: bool = True) -> Puzzle:
    """A puzzle whose clues the solver proves have exactly one solution, the hidden grid."""
    n, m = grid.houses, grid.categories
    position: list[int] = []
    value_at: list[list[int]] = []
    for c in range(m):
        houses_of = list(range(n))
        rng.shuffle(houses_of)
        position.extend(houses_of)
        at = [0] * n
        for value, house in enumerate(houses_of):
            at[house] = c * n + value
        value_at.append(at)

    clues: list[Clue] = []
    domains, binaries = _start_domains(grid, clues)
    implied_draws = 0
    unique = n == 1
    while not unique:
        clue = _random_true_clue(rng, grid, position, value_at)
        if clue in clues:
            continue
        trial_domains, trial_binaries = _start_domains(grid, [*clues, clue])
        if not propagate(grid, trial_domains, trial_binaries):
            raise RuntimeError(f"a clue true of the hidden grid was refuted: {clue}")  # solver bug
        if trial_domains == domains and implied_draws < _MAX_IMPLIED_DRAWS:
            implied_draws += 1
            continue
        implied_draws = 0
        clues.append(clue)
        domains, binaries = trial_domains, trial_binaries
        if all(d & (d - 1) == 0 for d in domains):
            unique = True
        else:
            unique = len(_solve_from(grid, domains, binaries)) == 1

    if prune:
        order = list(range(len(clues)))
        rng.shuffle(order)
        keep = [True] * len(clues)
        for i in order:
            keep[i] = False
            if len(solve(grid, [c for c, k in zip(clues, keep) if k])) != 1:
                keep[i] = True
        clues = [c for c, k in zip(clues, keep) if k]
    rng.shuffle(clues)
    puzzle = Puzzle(grid, tuple(position), tuple(clues))
    if not all(holds(c, position) for c in clues) or len(solve(grid, clues)) != 1:
        raise RuntimeError("generated puzzle failed its own uniqueness check")  # solver bug
    return puzzle


def _solve_from(grid: Grid, domains: list[int], binaries: Sequence[tuple[str, int, int]],
                limit: int = 2) -> list[list[int]]:
    found: list[list[int]] = []
    _search(grid, domains.copy(), binaries, limit, found)
    return found
