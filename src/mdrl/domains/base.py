"""The domain contract: what one domain file provides, and the item every loader or generator yields."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from mdrl.verify.result import DataError, Verdict, VerifierUnavailable  # noqa: F401  (re-exported)
from mdrl.verify.shaping import RewardConfig

LANGUAGES = ("en", "zh")
#: A domain or group name: letters, digits, `_`, `-`, `.`; a family prefix such as `rg:` may lead it.
_NAME = re.compile(r"^(?:[a-z][a-z0-9_]*:)?[A-Za-z0-9][A-Za-z0-9_.\-]*$")


@dataclass(frozen=True)
class Problem:
    """One task, loaded from the study's files or generated; both paths give the same fields.

    `question` is the task text alone (no system preamble, no chat markup): templates wrap it.
    `ground_truth` is in the study's released format, so it can be written back to veRL parquet as-is.
    `reference` is a response body that must score 1 (used by tests, the replay backend and SFT).
    """

    domain: str
    data_source: str
    question: str
    ground_truth: Any
    difficulty: int = 0
    lang: str = "en"
    reference: str | None = None
    extra_info: dict[str, Any] = field(default_factory=dict)


#: (response, ground_truth, extra_info) -> Verdict. `response` is already the assistant turn.
Verifier = Callable[[str, Any, "dict[str, Any] | None"], Verdict]
#: (index, seed, difficulty, lang) -> Problem, deterministic in (seed, index).
Generator = Callable[[int, int, int, str], Problem]
#: (row as a dict, where "file:row" for error messages) -> Problem.
RowLoader = Callable[[Mapping[str, Any], str], Problem]
#: A reader of a released file in its own format (MBPP's jsonl, HumanEval's package file): the file's
#: path, or None for the reader's own default copy -> Problems.
FileReader = Callable[["Path | None"], Iterable[Problem]]
#: compute_score for a batch of one domain's rows: (solution_strs, ground_truths, extra_infos, reward)
#: -> the same dicts as compute_score, in order.
BatchScorer = Callable[..., "list[dict[str, Any]]"]
ProblemFilter = Callable[[Problem], bool]
Grouper = Callable[[Problem], "str | None"]


@dataclass(frozen=True)
class Reader:
    """A named reader of released files in a format of their own; its name is a data source kind
    (`mbpp`, `mbpp:PATH`) and suites may read through it."""

    name: str
    read: FileReader
    #: Where its default copy lies, relative to the data root (None: the reader knows, e.g. a package file).
    default_path: str | None = None
    description: str = ""


@dataclass(frozen=True)
class SuiteDef:
    """A named evaluation suite of a domain: which file (relative to the data root), how to read it,
    which rows to keep and how to bucket them for the breakdown."""

    name: str
    description: str
    #: The file, relative to the data root; None for a reader with a default copy of its own.
    default_path: str | None
    #: The name of one of the domain's readers; None: a veRL parquet (or jsonl) file.
    reader: str | None = None
    keep: ProblemFilter | None = None
    group: Grouper | None = None
    item_id: Callable[[int, Problem], str] | None = None
    #: (parquet column, value -> group) for a breakdown the Problem does not carry (the row's own field).
    group_column: tuple[str, Callable[[Any], "str | None"]] | None = None


def source_is(*names: str) -> ProblemFilter:
    """A suite filter: rows whose data_source is one of `names` (case-insensitive)."""
    wanted = {name.lower() for name in names}
    return lambda problem: problem.data_source.lower() in wanted


def dataset_is(fragment: str) -> ProblemFilter:
    """A suite filter: rows whose extra_info `dataset` contains `fragment` (case-insensitive)."""
    def keep(problem: Problem) -> bool:
        return fragment.lower() in str(problem.extra_info.get("dataset", "")).lower()

    return keep


def by_difficulty(suffix: str) -> Grouper:
    """A suite breakdown by the problem's difficulty: 3 -> "3<suffix>"."""
    return lambda problem: f"{problem.difficulty}{suffix}" if problem.difficulty else None


def id_from_task(index: int, problem: Problem) -> str:
    """A suite item id from the row's extra_info `task_id`, else its position."""
    task = problem.extra_info.get("task_id")
    return str(task) if task is not None else str(index)


@dataclass(frozen=True)
class Domain:
    """Everything mdrl knows about one domain. Each `domains/<name>.py` builds one and registers it;
    data sources, eval suites, study tables, CLI help, the server and the reward adapters read it from
    the registry and list no domain themselves."""

    name: str
    #: The family the study's tables group it in (math, code, puzzle, or any name of your own).
    group: str
    #: data_source values (besides `name`) whose rows this domain scores.
    data_sources: tuple[str, ...]
    verify: Verifier
    #: The answer-format instruction appended to every question, per language (en, zh).
    instructions: Mapping[str, str]
    default_reward: RewardConfig = RewardConfig()
    difficulties: tuple[int, ...] = ()
    generate: Generator | None = None
    load_row: RowLoader | None = None
    description: str = ""
    #: The study's released dataset folders (under <data root>/paper/) that hold this domain's rows;
    #: `paper:<folder>` and `paper:<domain name>` (its first folder) read them.
    released: tuple[str, ...] = ()
    #: Readers of released files in formats of their own (each name is a source kind too).
    readers: tuple[Reader, ...] = ()
    #: Named evaluation suites (besides the generated `gen:<name>:LEVELS`).
    suites: tuple[SuiteDef, ...] = ()
    #: A batch form of compute_score. A domain that has one is costly to score (code runs in a
    #: sandbox): training scores its rows as one batch, the server queues them fairly, evaluation
    #: scores them in threads.
    score_batch: BatchScorer | None = None
    #: veRL's `ability` column for its rows (the study wrote math / logic / coding); default: the group.
    ability: str = ""

    def __post_init__(self) -> None:
        for what, value in (("name", self.name), ("group", self.group)):
            if not isinstance(value, str) or not _NAME.match(value):
                raise TypeError(f"domain {self.name!r}: {what} must be a name such as 'science' or "
                                f"'rg:sudoku' (letters, digits, _ - .), got {value!r}")
        suite_names = [suite.name for suite in self.suites]
        reader_names = {reader.name for reader in self.readers}
        if len(set(suite_names)) != len(suite_names):
            raise TypeError(f"domain {self.name!r}: suite names repeat: {suite_names}")
        bad_readers = [s.name for s in self.suites if s.reader is not None and s.reader not in reader_names]
        if bad_readers:
            raise TypeError(f"domain {self.name!r}: suites {bad_readers} name a reader it does not declare")
        if not callable(self.verify):
            raise TypeError(f"domain {self.name!r}: verify must be callable")
        missing = [lang for lang in LANGUAGES if lang not in self.instructions]
        if missing:
            raise TypeError(f"domain {self.name!r}: instructions missing for languages {missing}")
        if self.generate is not None and not self.difficulties:
            raise TypeError(f"domain {self.name!r}: a generator needs its difficulty levels")

    def render_question(self, problem: Problem, lang: str | None = None) -> str:
        """The user message: the task text followed by this domain's answer-format instruction."""
        lang = lang or problem.lang
        return f"{problem.question}\n\n{self.instructions[lang]}"
