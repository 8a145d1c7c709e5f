"""The domain contract: what one domain file provides, and the item every loader or generator yields."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from mdrl.verify.result import Verdict, VerifierUnavailable  # noqa: F401  (re-exported)
from mdrl.verify.shaping import RewardConfig

LANGUAGES = ("en", "zh")
GROUPS = ("math", "code", "puzzle")


class DataError(ValueError):
    """A malformed data row or ground truth. The message names the file and row where known."""


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


@dataclass(frozen=True)
class Domain:
    """Everything mdrl knows about one domain. Each `domains/<name>.py` builds one and registers it."""

    name: str
    group: str
    data_sources: tuple[str, ...]
    verify: Verifier
    instructions: Mapping[str, str]
    default_reward: RewardConfig = RewardConfig()
    difficulties: tuple[int, ...] = ()
    generate: Generator | None = None
    load_row: RowLoader | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise TypeError(f"domain {self.name!r}: group must be one of {GROUPS}, got {self.group!r}")
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
