"""reasoning-gym's tasks as mdrl domains: `rg:<task>`, e.g. `rg:basic_arithmetic`, `rg:graph_color`.

One adapter for the whole `reasoning-gym` package (pip install 'mdrl[rg]'): a domain family, so a task
becomes a domain the first time a name such as `rg:gcd` is asked for (in a mixture, a `gen:` source or
suite, a data_source), and importing mdrl never imports reasoning-gym (2-3 s).

* Items: the task's own generator, seeded per item (`seed + index` picks a dataset seed, the item is
  that dataset's index, as reasoning-gym's own datasets are addressed). Difficulty levels 1..L are the
  task's curriculum global levels 0..L-1 (L = the longest attribute ladder, at most MAX_LEVELS); a task
  without a curriculum has level 1 only, its default config.
* Prompts: the task's English question + mdrl's answer instruction. Questions exist in English only,
  so generating `lang="zh"` raises a DataError instead of wrapping English questions in Chinese.
* Verdict: the last <answer> block (mdrl's one extraction rule), scored by the task's own
  `score_answer` on the item rebuilt from the ground truth, in a helper process under a time limit
  (some scorers run sympy). acc needs a score of exactly 1; the proportional reward passes the task's
  own partial credit through (reasoning-gym's default gives len(oracle)/len(answer) to an answer that
  contains the oracle, which is why the default reward here is binary).
* Reference: the item's answer, or the example answer its metadata holds for tasks with many right
  answers (graph_color's `possible_answer`, propositional_logic's `example_answer`).

Not covered: tasks whose items or metadata do not survive a JSON round trip score 0 on their own
references; tests/test_reasoning_gym.py checks the tasks named in TESTED_TASKS.
"""

from __future__ import annotations

import difflib
import json
import logging
from functools import lru_cache
from typing import Any, Mapping

from mdrl.domains.base import DataError, Domain, Problem
from mdrl.domains.registry import Family, register_family
from mdrl.verify.extract import answer_block
from mdrl.verify.result import Verdict
from mdrl.verify.shaping import RewardConfig
from mdrl.verify.timeout import CallTimeout, HelperConfig, HelperError, TimeLimiter

log = logging.getLogger(__name__)

PREFIX = "rg"
GROUP = "reasoning_gym"
MAX_LEVELS = 5
#: Items are addressed as dataset[index % DATASET_SIZE] of dataset seed `seed + index // DATASET_SIZE`.
DATASET_SIZE = 100_000
#: Longer answers score 0 unread (4x the reference's length where that is longer).
MAX_ANSWER_CHARS = 2_000
SCORE_TIMEOUT_S = 5.0
#: Tasks whose references score 1.0 on 100 generated items in the tests (any task of the package works
#: the same way; these are the ones checked).
TESTED_TASKS = ("basic_arithmetic", "chain_sum", "gcd", "lcm", "leg_counting", "letter_counting",
                "number_sorting", "spell_backward", "word_sorting", "graph_color", "propositional_logic",
                "base_conversion", "prime_factorization", "count_bits")

INSTRUCTIONS = {
    "en": "Give only your final answer inside <answer></answer> tags, e.g. <answer>42</answer>.",
    "zh": "只把最终答案写在 <answer></answer> 标签中，例如 <answer>42</answer>。",
}

_LIMITER = TimeLimiter(HelperConfig(preload=("reasoning_gym", __name__)))


def _factory() -> Any:
    try:
        from reasoning_gym import factory
    except ImportError as exc:
        raise ImportError("rg:<task> domains need the reasoning-gym package: pip install 'mdrl[rg]'") from exc
    return factory


def task_names() -> list[str]:
    return sorted(_factory().DATASETS)


def _levels(task: str) -> int:
    factory = _factory()
    if not factory.has_curriculum(task):
        return 1
    curriculum = factory.create_curriculum(task)
    return max(1, min(MAX_LEVELS, max((len(a.levels) for a in curriculum.attributes.values()), default=1)))


@lru_cache(maxsize=256)
def _dataset(task: str, seed: int, level: int) -> Any:
    factory = _factory()
    if factory.has_curriculum(task):
        curriculum = factory.create_curriculum(task)
        curriculum.set_global_level(level - 1)
        config = curriculum.generate_configuration({"seed": seed, "size": DATASET_SIZE})
        dataset_cls, _ = factory.DATASETS[task]
        return dataset_cls(config=config)
    return factory.create_dataset(task, seed=seed, size=DATASET_SIZE)


def _json_safe(value: Any) -> Any:
    """Metadata as JSON: tuples and sets become lists, anything else unknown its string."""
    return json.loads(json.dumps(value, default=lambda v: sorted(v, key=str) if isinstance(v, (set, frozenset))
                                 else str(v)))


def _reference_answer(entry: Mapping[str, Any]) -> str | None:
    answer = entry.get("answer")
    if answer is None:
        metadata = entry.get("metadata") or {}
        answer = metadata.get("possible_answer", metadata.get("example_answer"))
    if answer is None:
        return None
    return answer if isinstance(answer, str) else json.dumps(answer)


def _ground_truth(ground_truth: Any) -> dict[str, Any]:
    if isinstance(ground_truth, (str, bytes)):
        try:
            ground_truth = json.loads(ground_truth)
        except json.JSONDecodeError as exc:
            raise DataError(f"reasoning-gym ground_truth is not valid JSON: {exc}") from None
    needed = ("task", "seed", "level", "entry")
    if not isinstance(ground_truth, Mapping) or any(key not in ground_truth for key in needed):
        raise DataError(f"reasoning-gym ground_truth must be a JSON object with {', '.join(needed)}")
    entry = ground_truth["entry"]
    if not isinstance(entry, Mapping) or "question" not in entry:
        raise DataError("reasoning-gym ground_truth entry must hold the item (question, answer, metadata)")
    return dict(ground_truth)


def score_in_helper(task: str, seed: int, level: int, answer: str, entry: dict[str, Any]) -> float:
    """The task's own score of `answer` (runs in the time-limit helper process)."""
    return float(_dataset(task, seed, level).score_answer(answer, entry))


def _make(task: str) -> Domain:
    names = task_names()
    if task not in names:
        close = difflib.get_close_matches(task, names, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(f'{PREFIX}:{c}' for c in close)}?" if close else ""
        raise KeyError(f"reasoning-gym has no task {task!r}.{hint} Tasks: {', '.join(names)}")
    name = f"{PREFIX}:{task}"

    def generate(index: int, seed: int, difficulty: int, lang: str = "en") -> Problem:
        if lang != "en":
            raise DataError(f"{name}: reasoning-gym questions are English only, not {lang!r}")
        dataset_seed = seed + index // DATASET_SIZE
        entry = _json_safe(_dataset(task, dataset_seed, difficulty)[index % DATASET_SIZE])
        reference = _reference_answer(entry)
        return Problem(
            domain=name, data_source=name, question=entry["question"], difficulty=difficulty, lang="en",
            ground_truth=json.dumps({"task": task, "seed": dataset_seed, "level": difficulty, "entry": entry},
                                    ensure_ascii=False),
            reference=f"<answer>{reference}</answer>" if reference is not None else None,
        )

    def verify(response: str, ground_truth: Any, extra_info: Mapping[str, Any] | None = None) -> Verdict:
        truth = _ground_truth(ground_truth)
        answer, reason = answer_block(response)
        if answer is None:
            return Verdict.fail(reason)
        answer = answer.strip()
        if not answer:
            return Verdict.fail("empty answer")
        limit = max(MAX_ANSWER_CHARS, 4 * len(_reference_answer(truth["entry"]) or ""))
        if len(answer) > limit:
            return Verdict.fail(f"answer longer than {limit} characters")
        try:
            score = _LIMITER.call(score_in_helper, truth["task"], int(truth["seed"]), int(truth["level"]), answer,
                                  dict(truth["entry"]), timeout_s=SCORE_TIMEOUT_S)
        except CallTimeout:
            return Verdict.fail(f"{name}: scoring timed out")
        except HelperError as exc:
            return Verdict.fail(f"{name}: scorer process failed: {exc}")
        except Exception as exc:  # the task's scorer choking on an answer is a miss, never a pass
            return Verdict.fail(f"{name}: scorer raised {type(exc).__name__}")
        if score >= 1.0:
            return Verdict.ok()
        if score > 0:
            return Verdict.partial(score, f"partial credit {score:.3g} from the task's scorer")
        return Verdict.fail("wrong answer")

    return Domain(
        name=name, group=GROUP, data_sources=(), verify=verify, instructions=INSTRUCTIONS,
        default_reward=RewardConfig(mode="binary"), difficulties=tuple(range(1, _levels(task) + 1)),
        generate=generate, ability="reasoning",
        description=f"reasoning-gym's {task} task (its generator and scorer; English only).",
    )


FAMILY = register_family(Family(prefix=PREFIX, make=_make, members=task_names, description="reasoning-gym task"))
