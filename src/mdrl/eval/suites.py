"""Evaluation suites: thin definitions over the domains and the data layer.

A suite is a list of items (a Problem, a stable id, an optional breakdown group). Named suites read
the study's test files under a data root; `gen:DOMAIN:LEVELS[:N[:SEED]]` generates items for any
domain at any difficulty. Every file suite accepts a path (`mbpp=/my/mbpp.jsonl`) so users can point
it at their own copy.

Named suites are declared by the domains (`Domain.suites`); this module only resolves them.

Spec grammar (CLI `--suite`, Python `load_suite`):
    NAME                    a domain's suite at its default path under the data root
    NAME=PATH               the same suite read from PATH
    gen:DOMAIN[:LEVELS[:N[:SEED]]][?n=N&seed=S&lang=L]
                            generated items (the data layer's one grammar, `parse_generated`), LEVELS
                            like 3, 3-5 or 3,5 (default: all); n and seed default to the options
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from mdrl.domains.base import DataError, Problem, SuiteDef
from mdrl.data.sources import is_generated
from mdrl.domains.registry import all_domains, all_suites, families, find_suite, get_domain

log = logging.getLogger(__name__)

#: Generated suites default to a seed that training recipes are unlikely to use, so eval items are
#: not the training stream's first items.
DEFAULT_GEN_SEED = 1_000_003
DEFAULT_GEN_N = 100


def data_root(explicit: str | Path | None = None) -> Path:
    """--data-root, else $MDRL_DATA, else $MDRL_SHARED_DATA, else ../shared/data from the CWD."""
    for candidate in (explicit, os.environ.get("MDRL_DATA"), os.environ.get("MDRL_SHARED_DATA")):
        if candidate:
            return Path(candidate).expanduser()
    return Path.cwd().parent / "shared" / "data"


@dataclass(frozen=True)
class EvalItem:
    """One problem of a suite. `item_id` is stable across runs (cache key); `group` names its
    breakdown bucket (people count, grid size, difficulty), or None."""

    item_id: str
    problem: Problem
    group: str | None = None

    def fingerprint(self) -> str:
        """Changes whenever the task or its answer changes, so a cached result is never reused for
        an edited item even when its id stays the same."""
        payload = json.dumps(
            [
                self.problem.data_source,
                self.problem.question,
                self.problem.ground_truth,
                self.problem.extra_info,
            ],
            sort_keys=True,
            default=str,
            ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Suite:
    """A resolved suite: its canonical name (cache key part), where it came from, and its items."""

    name: str
    source: str
    items: tuple[EvalItem, ...]
    description: str = ""
    #: Problems dropped because they belong to another split or subset (for the record).
    skipped: int = 0

    def __len__(self) -> int:
        return len(self.items)


def _column(path: Path, name: str) -> list[Any] | None:
    """One column of a parquet file (None when absent), row-aligned with the data layer's Problems."""
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    if name not in schema.names:
        return None
    return pq.read_table(path, columns=[name]).column(name).to_pylist()


def list_suites() -> dict[str, str]:
    """Every domain's named suites and descriptions (plus the generated form)."""
    listing = {name: definition.description for name, (_, definition) in all_suites().items()}
    generators = sorted(name for name, domain in all_domains().items() if domain.generate is not None)
    generators += [f"{prefix}:<{family.description or 'member'}>" for prefix, family in families().items()]
    listing["gen:DOMAIN:LEVELS[:N[:SEED]]"] = (
        f"generated items; domains with generators: {', '.join(generators)}"
    )
    return listing


# --------------------------------------------------------------------------- loading


def _read(definition: SuiteDef, readers: dict[str, Any], path: Path | None) -> list[Problem]:
    from mdrl.data import load_jsonl, load_verl_parquet

    if definition.reader is not None:
        return list(readers[definition.reader].read(path))
    if path is None:
        raise DataError(f"suite {definition.name!r} needs a data file")
    if path.suffix == ".jsonl":
        return load_jsonl(path)
    return load_verl_parquet(path)


def _spread(items: Sequence[EvalItem], limit: int | None) -> list[EvalItem]:
    """At most `limit` items, evenly spaced through the suite with each group's items side by side,
    so every group keeps its share; the picked items stay in suite order."""
    if limit is None or limit >= len(items):
        return list(items)
    if limit <= 0:
        return []
    by_group = sorted(range(len(items)), key=lambda i: (items[i].group or "", i))
    step = len(items) / limit
    picked = sorted(by_group[int(k * step)] for k in range(limit))
    return [items[i] for i in picked]


def parse_spec(spec: str) -> tuple[str, str | None]:
    """`NAME[=PATH]` -> (NAME, PATH or None); a generated spec takes no path (its options hold `=`)."""
    if is_generated(spec):
        return spec.strip(), None
    name, sep, path = spec.partition("=")
    name = name.strip()
    if sep and not path.strip():
        raise ValueError(f"suite spec {spec!r} has an empty path")
    return name, (path.strip() if sep else None)


def load_suite(
    spec: str,
    root: str | Path | None = None,
    limit: int | None = None,
    gen_n: int | None = None,
    gen_seed: int | None = None,
    lang: str = "en",
) -> Suite:
    """Resolve a suite spec (see the module docstring) into its items.

    `limit` keeps that many items spread evenly over the suite (a quick slice that still covers every
    group). `lang` only affects generated items; file suites are English, as the study's.
    """
    name, path = parse_spec(spec)
    if is_generated(name):
        if path is not None:
            raise ValueError(f"generated suite {spec!r} takes no path")
        suite = _generated_suite(name, DEFAULT_GEN_N if gen_n is None else gen_n,
                                 DEFAULT_GEN_SEED if gen_seed is None else gen_seed, lang)
        return replace(suite, items=tuple(_spread(suite.items, limit)))
    found = find_suite(name)
    if found is None:
        known = list(all_suites())
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise KeyError(f"unknown suite {name!r}.{hint} Known: {', '.join(known)}, gen:DOMAIN:LEVELS")
    domain, definition = found
    file = (
        Path(path).expanduser()
        if path
        else (data_root(root) / definition.default_path if definition.default_path else None)
    )
    if file is not None and not file.exists():
        raise DataError(
            f"suite {name!r}: data file {file} not found (set --data-root, $MDRL_DATA, or give {name}=PATH)"
        )
    problems = _read(definition, {reader.name: reader for reader in domain.readers}, file)
    groups: list[str | None] = [definition.group(p) if definition.group else None for p in problems]
    if definition.group_column and file is not None and file.suffix == ".parquet":
        column, to_group = definition.group_column
        values = _column(file, column)
        if values is not None and len(values) == len(problems):
            groups = [to_group(value) for value in values]
    kept = [(p, g) for p, g in zip(problems, groups) if definition.keep is None or definition.keep(p)]
    make_id = definition.item_id or (lambda index, _problem: str(index))
    items = [
        EvalItem(f"{name}/{make_id(index, problem)}", problem, group)
        for index, (problem, group) in enumerate(kept)
    ]
    ids = [item.item_id for item in items]
    if len(set(ids)) != len(ids):
        raise DataError(f"suite {name!r}: item ids are not unique in {file}")
    if not items:
        raise DataError(
            f"suite {name!r}: no items in {file} (of {len(problems)} rows) match the suite's filter"
        )
    return Suite(
        name=name,
        source=str(file) if file else definition.reader,
        items=tuple(_spread(items, limit)),
        description=definition.description,
        skipped=len(problems) - len(kept),
    )


def _generated_suite(name: str, n: int, seed: int, lang: str) -> Suite:
    from mdrl.data.sources import generate, parse_generated

    spec = parse_generated(name)
    options = dict(spec.options)
    unknown = sorted(set(options) - {"n", "seed", "lang"})
    if unknown:
        raise ValueError(f"generated suite {name!r}: unknown option(s) {unknown}; known: n, seed, lang")
    domain = get_domain(spec.domain)
    if domain.generate is None:
        raise ValueError(f"domain {spec.domain!r} has no generator")
    levels = spec.levels or domain.difficulties
    n = int(options.get("n", spec.n if spec.n is not None else n))
    seed = int(options.get("seed", spec.seed if spec.seed is not None else seed))
    lang = options.get("lang", lang)
    problems = generate(domain.name, n, seed=seed, difficulties=levels, lang=lang, split="eval")
    level_text = ",".join(map(str, levels))
    canonical = f"gen:{domain.name}:{level_text}:{n}:{seed}" + (f":{lang}" if lang != "en" else "")
    items = []
    per_level: dict[int, int] = {}
    for problem in problems:
        index = per_level.get(problem.difficulty, 0)
        per_level[problem.difficulty] = index + 1
        items.append(
            EvalItem(
                f"{canonical}/{problem.difficulty}-{index}",
                problem,
                f"level {problem.difficulty}" if len(levels) > 1 else None,
            )
        )
    return Suite(
        name=canonical,
        source=f"{domain.name}.generate(seed={seed})",
        items=tuple(items),
        description=f"{n} generated {domain.name} items at difficulty {level_text} (held-out split)",
    )


def user_message(item: EvalItem, lang: str = "en") -> str:
    """What the user says: the task followed by its domain's answer-format instruction in `lang`.
    Templates wrap it; the replay server and the runner both build prompts from it."""
    return get_domain(item.problem.domain).render_question(item.problem, lang)
