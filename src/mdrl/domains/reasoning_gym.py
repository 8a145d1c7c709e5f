"""reasoning-gym's tasks as mdrl domains: `rg:<task>`, e.g. `rg:basic_arithmetic`, `rg:graph_color`.

One adapter for the whole `reasoning-gym` package (pip install 'mdrl[rg]'): a domain family, so a task
becomes a domain the first time a name such as `rg:gcd` is asked for (in a mixture, a `gen:` source or
suite, a data_source), and importing mdrl never imports reasoning-gym (1-3 s).

* Items: the task's own generator. Item `index` of (seed, level) is item `index % DATASET_SIZE` of a
  reasoning-gym dataset whose seed is a hash of (seed, level, index // DATASET_SIZE); datasets are
  cached, so 100 items of a simple task take milliseconds (after the one-off 1-3 s import). Difficulty
  levels 1..L are the task's curriculum global levels 0..L-1 in reasoning-gym's default (inclusive)
  mode, so level k also draws the easier levels' ranges; L is the longest attribute ladder, at most
  MAX_LEVELS, cut before the first level whose config reasoning-gym itself rejects. A task without a
  (usable) curriculum has level 1 only, its default config.
* Prompts: the task's English question + mdrl's answer instruction. Questions exist in English only,
  so generating `lang="zh"` raises a DataError instead of wrapping English questions in Chinese.
* Ground truth: JSON {"task", "seed" (the dataset seed), "level", "entry"}; the entry is the item
  (question, answer, metadata) with tuples, sets and non-string keys tagged so that the scorer gets
  them back as they were (`encode_entry`; objects JSON cannot hold become strings).
* Verdict: the last <answer> block (mdrl's one extraction rule), stripped, at most MAX_ANSWER_CHARS
  (or 4x the reference), scored by the task's own `score_answer` on the entry from the ground truth,
  in a helper process under SCORE_TIMEOUT_S (some scorers run sympy); the scorer's construction has a
  limit of its own and, failing, raises VerifierUnavailable instead of scoring 0. acc needs a score of
  1. The reward is binary by default; the proportional reward passes partial credit through only from
  tasks that score answers themselves: reasoning-gym's default scorer pays len(oracle)/len(answer) to
  any answer that contains the oracle (a list of every candidate), and that counts as 0 here.
* Reference: the item's answer, or the example answer its metadata holds for tasks with many right
  answers (graph_color's `possible_answer`, propositional_logic's `example_answer`) when the task's
  scorer gives it 1; otherwise None (propositional_logic: ~1% of items; boxnet: every item).

Not covered: only the tasks in TESTED_TASKS are checked (tests/test_reasoning_gym.py: 100 items each,
every level). Others may fail: an item whose metadata does not survive the JSON round trip would score 0
on its own reference; a task without a stated answer has no references (boxnet, rubiks_cube, rush_hour:
their scorers simulate the answer); some generators take seconds per item (sokoban, zebra_puzzles,
n_queens) or fail at some levels (jugs, countdown). `composite` (a mix of tasks) is not supported. The
proportional reward inherits each task's own partial credit, some of it unearned (propositional_logic
pays 0.25 for any tautology and 0.05 for any well-formed formula): use the binary default to train.
Task quality is reasoning-gym's: propositional_logic accepts any implied non-trivial formula, so
restating a premise is right on about half its items, and about a quarter of its items have
contradictory premises that imply everything. Some easiest levels hold few distinct questions
(propositional_logic level 1: 4, so none is held out and `gen:rg:propositional_logic:1` as an eval
suite fails; leg_counting level 1: ~110; chain_sum level 1: ~200).
Malformed ground truth raises DataError; a response never raises.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
from collections.abc import Mapping
from functools import cache, lru_cache
from typing import Any

from mdrl.domains.base import DataError, Domain, Problem
from mdrl.domains.registry import Family, register_family
from mdrl.verify.extract import answer_block
from mdrl.verify.result import Verdict, VerifierUnavailable
from mdrl.verify.shaping import RewardConfig
from mdrl.verify.timeout import CallTimeout, HelperConfig, HelperError, TimeLimiter

log = logging.getLogger(__name__)

PREFIX = "rg"
GROUP = "reasoning_gym"
MAX_LEVELS = 5
#: Item `index` is dataset[index % DATASET_SIZE] of a dataset whose seed is hashed from (seed, level,
#: index // DATASET_SIZE). Not `seed + index`: reasoning-gym's item i of dataset seed s is drawn from
#: Random(s + i), so consecutive seeds would give the same items shifted by one. Kept small because some
#: tasks work per item at construction (acre builds all its items, word_ladder refuses more than 20,000).
DATASET_SIZE = 1_000
#: Dataset seeds lie below 2**31, so seed + index stays a valid numpy seed (pool_matrix seeds numpy with it).
_SEED_SPACE = 2**31
#: Longer answers score 0 unread (4x the reference's length where that is longer).
MAX_ANSWER_CHARS = 2_000
SCORE_TIMEOUT_S = 5.0
#: Building a task's scorer in the helper (once per task and level) is not the answer's time.
PREPARE_TIMEOUT_S = 120.0
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


#: reasoning-gym's registered names that are not tasks of their own (`composite` mixes tasks by config).
UNSUPPORTED = {"composite": "it mixes other tasks; name them in an mdrl mixture instead (rg:gcd:1,rg:lcm:1)"}


def task_names() -> list[str]:
    return sorted(name for name in _factory().DATASETS if name not in UNSUPPORTED)


@cache
def _curriculum_levels(task: str) -> int:
    """How many of the task's curriculum levels (from the easiest, at most MAX_LEVELS) give a valid
    config; 0 without a curriculum. Some ladders are broken in reasoning-gym itself (caesar_cipher
    from its 3rd level, survo from its 3rd, rubiks_cube at its 5th, knight_swap at its 1st)."""
    factory = _factory()
    if not factory.has_curriculum(task):
        return 0
    curriculum = factory.create_curriculum(task)
    ladder = min(MAX_LEVELS, max((len(a.levels) for a in curriculum.attributes.values()), default=1))
    for level in range(1, ladder + 1):
        try:
            _config(task, level, 0, DATASET_SIZE, curriculum_levels=level)
        except Exception as exc:  # noqa: BLE001  (the config's own validation: this level is unusable)
            log.info("rg:%s: curriculum level %d is invalid in reasoning-gym (%s: %s); levels 1..%d only",
                     task, level, type(exc).__name__, exc, level - 1)
            return level - 1
    return ladder


def _levels(task: str) -> int:
    return max(1, _curriculum_levels(task))


def _config(task: str, level: int, seed: int, size: int, curriculum_levels: int | None = None) -> Any:
    """The task's config at mdrl level `level`: its curriculum at global level `level - 1`, or its
    default config when it has no usable curriculum (then level 1 is the only level)."""
    factory = _factory()
    usable = _curriculum_levels(task) if curriculum_levels is None else curriculum_levels
    if usable:
        curriculum = factory.create_curriculum(task)
        curriculum.set_global_level(level - 1)
        config = curriculum.generate_configuration({"seed": seed, "size": size})
    else:
        config = factory.DATASETS[task][1](seed=seed, size=size)
    if hasattr(config, "validate"):
        config.validate()
    return config


def _dataset_seed(seed: int, level: int, chunk: int) -> int:
    digest = hashlib.sha256(f"{seed}:{level}:{chunk}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % _SEED_SPACE


@lru_cache(maxsize=256)
def _dataset(task: str, seed: int, level: int) -> Any:
    """The task's dataset of DATASET_SIZE items for one dataset seed and level (cached: building one
    per item would cost more than the item)."""
    return _factory().DATASETS[task][0](config=_config(task, level, seed, DATASET_SIZE))


@lru_cache(maxsize=64)
def _scorer(task: str, level: int) -> Any:
    """A dataset of the task at this level, for its score_answer (which reads the config, never the
    seed or size; one per task and level, so a helper holds a handful, not one per generated chunk)."""
    return _factory().DATASETS[task][0](config=_config(task, level, 0, 1))


_TAGS = ("__tuple__", "__set__", "__items__")


def encode_entry(value: Any) -> Any:
    """An item as JSON values that `decode_entry` turns back into the same types: scorers compare
    tuples (arc_agi's boards) and read int keys, so tuples, sets and dicts with other than string
    keys travel tagged ({"__tuple__": [...]}); numpy scalars become numbers, anything else its string."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [encode_entry(v) for v in value]
    if isinstance(value, tuple):
        return {"__tuple__": [encode_entry(v) for v in value]}
    if isinstance(value, (set, frozenset)):
        return {"__set__": [encode_entry(v) for v in sorted(value, key=repr)]}
    if isinstance(value, Mapping):
        if all(isinstance(k, str) for k in value) and not any(k in _TAGS for k in value):
            return {k: encode_entry(v) for k, v in value.items()}
        return {"__items__": [[encode_entry(k), encode_entry(v)] for k, v in value.items()]}
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        try:
            return encode_entry(value.item())
        except (TypeError, ValueError):
            pass
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy array
        return encode_entry(value.tolist())
    return str(value)


def decode_entry(value: Any) -> Any:
    """The inverse of `encode_entry` (on JSON values; a malformed tag raises DataError)."""
    if isinstance(value, list):
        return [decode_entry(v) for v in value]
    if not isinstance(value, Mapping):
        return value
    if len(value) == 1:
        (tag, inner), = value.items()
        if tag in _TAGS:
            if not isinstance(inner, list) or (tag == "__items__" and not all(
                    isinstance(pair, list) and len(pair) == 2 for pair in inner)):
                raise DataError(f"reasoning-gym ground_truth holds a malformed {tag} value")
            try:
                if tag == "__tuple__":
                    return tuple(decode_entry(v) for v in inner)
                if tag == "__set__":
                    return {decode_entry(v) for v in inner}
                return {decode_entry(k): decode_entry(v) for k, v in inner}
            except TypeError as exc:  # an unhashable set member or key
                raise DataError(f"reasoning-gym ground_truth holds a malformed {tag} value: {exc}") from None
    return {k: decode_entry(v) for k, v in value.items()}


def _reference_answer(entry: Mapping[str, Any]) -> str | None:
    answer = entry.get("answer")
    if answer is None:
        metadata = entry.get("metadata") or {}
        answer = metadata.get("possible_answer", metadata.get("example_answer"))
    if answer is None:
        return None
    return answer if isinstance(answer, str) else json.dumps(answer, default=str)


def _ground_truth(ground_truth: Any, task: str, levels: int) -> dict[str, Any]:
    """The ground truth of an item of `task` as a dict (task, seed, level, entry); DataError otherwise."""
    if isinstance(ground_truth, (str, bytes)):
        try:
            ground_truth = json.loads(ground_truth)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(f"reasoning-gym ground_truth is not valid JSON: {exc}") from None
    needed = ("task", "level", "entry")
    if not isinstance(ground_truth, Mapping) or any(key not in ground_truth for key in needed):
        raise DataError(f"reasoning-gym ground_truth must be a JSON object with {', '.join(needed)}")
    if ground_truth["task"] != task:
        raise DataError(f"reasoning-gym ground_truth is an item of {str(ground_truth['task'])[:80]!r}, "
                        f"scored as {PREFIX}:{task}")
    level = ground_truth["level"]
    if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= levels:
        raise DataError(f"reasoning-gym ground_truth level must be an integer in 1..{levels} for "
                        f"{PREFIX}:{task}, got {str(level)[:40]!r}")
    entry = decode_entry(ground_truth["entry"])
    if not isinstance(entry, dict) or not isinstance(entry.get("question"), str):
        raise DataError("reasoning-gym ground_truth entry must hold the item (question, answer, metadata)")
    return {**ground_truth, "entry": entry}


def prepare_in_helper(task: str, level: int) -> None:
    """Build the task's scorer in the time-limit helper process (its own, longer, limit)."""
    _scorer(task, level)


def score_in_helper(task: str, level: int, answer: str, entry: dict[str, Any]) -> float:
    """The task's own score of `answer` (runs in the time-limit helper process).

    reasoning-gym's default scorer (tasks that do not write their own) pays len(oracle)/len(answer)
    for an answer that merely contains the oracle: a list of every candidate would earn it. That is
    taken as 0; partial credit from a task's own scorer passes through.
    """
    from reasoning_gym.dataset import ProceduralDataset

    scorer = _scorer(task, level)
    score = float(scorer.score_answer(answer, entry))
    if score < 1.0 and type(scorer).score_answer is ProceduralDataset.score_answer:
        return 0.0
    return score


def _make(task: str) -> Domain:
    if task in UNSUPPORTED:
        raise KeyError(f"{PREFIX}:{task} is not supported: {UNSUPPORTED[task]}")
    names = task_names()
    if task not in names:
        close = difflib.get_close_matches(task, names, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(f'{PREFIX}:{c}' for c in close)}?" if close else ""
        raise KeyError(f"reasoning-gym has no task {task!r}.{hint} Tasks: {', '.join(names)}")
    name = f"{PREFIX}:{task}"
    levels = tuple(range(1, _levels(task) + 1))

    def generate(index: int, seed: int, difficulty: int, lang: str = "en") -> Problem:
        if lang != "en":
            raise DataError(f"{name}: reasoning-gym questions are English only, not {lang!r}")
        if difficulty not in levels:
            raise ValueError(f"{name} difficulty must be one of {levels}, got {difficulty!r}")
        dataset_seed = _dataset_seed(seed, difficulty, index // DATASET_SIZE)
        encoded = encode_entry(_dataset(task, dataset_seed, difficulty)[index % DATASET_SIZE])
        entry = decode_entry(encoded)  # what the verifier will see: the reference is checked on it
        reference = _reference_answer(entry)
        if reference is not None and entry.get("answer") is None and not _scores_one(difficulty, reference, entry):
            # an example answer from the metadata that the task's own scorer rejects (reasoning-gym's
            # propositional_logic offers a bare variable the premises do not imply for ~1% of items)
            reference = None
        return Problem(
            domain=name, data_source=name, question=entry["question"], difficulty=difficulty, lang="en",
            ground_truth=json.dumps({"task": task, "seed": dataset_seed, "level": difficulty, "entry": encoded},
                                    ensure_ascii=False),
            reference=f"<answer>{reference}</answer>" if reference is not None else None,
            extra_info={"seed": seed, "index": index},
        )

    def _scores_one(level: int, reference: str, entry: dict[str, Any]) -> bool:
        try:
            return float(_scorer(task, level).score_answer(reference, entry)) >= 1.0
        except Exception:  # noqa: BLE001  (a reference the scorer cannot read is no reference)
            return False

    def verify(response: str, ground_truth: Any, extra_info: Mapping[str, Any] | None = None) -> Verdict:
        truth = _ground_truth(ground_truth, task, len(levels))
        answer, reason = answer_block(response)
        if answer is None:
            return Verdict.fail(reason)
        answer = answer.strip()
        if not answer:
            return Verdict.fail("empty answer")
        limit = max(MAX_ANSWER_CHARS, 4 * len(_reference_answer(truth["entry"]) or ""))
        if len(answer) > limit:
            return Verdict.fail(f"answer longer than {limit} characters")
        try:  # no answer is involved yet: a failure here is the machine's, not the response's
            _LIMITER.call(prepare_in_helper, task, truth["level"], timeout_s=PREPARE_TIMEOUT_S)
        except (CallTimeout, HelperError, Exception) as exc:  # noqa: BLE001  (any failure: cannot score here)
            raise VerifierUnavailable(f"{name}: cannot build the task's scorer: {type(exc).__name__}: {exc}") from None
        try:
            score = _LIMITER.call(score_in_helper, task, truth["level"], answer, dict(truth["entry"]),
                                  timeout_s=SCORE_TIMEOUT_S)
        except CallTimeout:
            return Verdict.fail(f"{name}: scoring timed out")
        except HelperError as exc:
            return Verdict.fail(f"{name}: scorer process failed: {exc}")
        except Exception as exc:  # noqa: BLE001  (the task's scorer choking on an answer is a miss, never a pass)
            return Verdict.fail(f"{name}: scorer raised {type(exc).__name__}")
        if score >= 1.0:
            return Verdict.ok()
        if score > 0:
            return Verdict.partial(score, f"partial credit {score:.3g} from the task's scorer")
        return Verdict.fail("wrong answer")

    return Domain(
        name=name, group=GROUP, data_sources=(), verify=verify, instructions=INSTRUCTIONS,
        default_reward=RewardConfig(mode="binary"), difficulties=levels,
        generate=generate, ability="reasoning",
        description=f"reasoning-gym's {task} task (its generator and scorer; English only).",
    )


FAMILY = register_family(Family(prefix=PREFIX, make=_make, members=task_names, description="reasoning-gym task"))
