r"""Mathematical equivalence: a cheap exact-string fast path in front of math-verify, under our timeout.

The answer goes to math-verify as the model wrote it. The study ran a lossy string normaliser first and
corrupted right answers (`1 \pm \sqrt{19}` lost its \pm, `\text{east}` became empty, `(a+5)(b+2)` lost
its a); math-verify's own LaTeX normalisation knows these forms, so nothing of ours runs before it.

Fast path: when gold and answer are the same string up to surrounding whitespace, one pair of `$`,
`\left`/`\right` and `\dfrac`/`\tfrac`, the answer is accepted without math-verify. It only ever says
"equal", never "different", and it is checked against math-verify on every gold of the study's test set,
a sample of its training golds and perturbations of them (tests/test_math.py,
benchmarks/math_verify_ratio.py). One case it decides differently on purpose: a gold
whose own comparison with itself makes sympy run past the time limit.

math-verify runs with its own timeouts off (they use signal.alarm: main thread only) inside a helper
process of `mdrl.verify.timeout`, which works on any thread and in any worker process.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from mdrl.verify.timeout import CallTimeout, HelperConfig, HelperError, TimeLimiter

log = logging.getLogger(__name__)

#: Outcomes of one comparison; `reason` of a Verdict.
EQUAL = "ok"
NOT_EQUIVALENT = "not equivalent"
UNPARSEABLE_GOLD = "unparseable gold"
UNPARSEABLE_ANSWER = "unparseable answer"
TIMEOUT = "timeout"
CRASHED = "verifier crashed"

_LIMITER = TimeLimiter(HelperConfig(preload=("math_verify", "mdrl.verify.math_equiv")))


@dataclass(frozen=True)
class Equivalence:
    """Whether an answer matches the gold, why, and which path decided ("fast", "math-verify", "cache")."""

    equal: bool
    reason: str
    path: str


# ---------------------------------------------------------------------------------------------------------
# Fast path.

_DOLLAR = re.compile(r"(?<!\\)\$")  # an unescaped $ (\$ is a currency sign, not math mode)
_LEFT_RIGHT = re.compile(r"\\(?:left|right)(?=[()\[\]]|\\[{}])")
_WRAPPERS = re.compile(r"\\(?:text[a-z]*|mbox|math[a-z]*|operatorname|displaystyle|[,;:!]|quad|qquad)")


def fast_path_key(answer: str) -> str | None:
    r"""The answer with layout-only differences removed, or None when the fast path must not decide.

    Deliberately small. math-verify is sensitive to whitespace in ways LaTeX is not (`106 ^ \circ` is
    not read as degrees, `\frac{a} {b}` and `\dfrac  3  8` are not fractions, `58, 500` is a pair), so
    inner whitespace is left alone: the sweep in benchmarks/math_verify_ratio.py found each of these.
    """
    text = _strip_math_dollars(answer.strip())
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    text = _LEFT_RIGHT.sub("", text)
    # Nothing to compare (e.g. "\text{ }"): math-verify would find no answer and reject it. Math mode
    # left inside ("-$$x$$") is for math-verify to find.
    if not any(ch.isalnum() for ch in _WRAPPERS.sub("", text)) or _DOLLAR.search(text):
        return None
    return text


def _strip_math_dollars(text: str) -> str:
    """`$x$` -> `x`. Not `$$x$$`: math-verify reads display math differently (units are lost there)."""
    inner = text[1:-1]
    if (len(text) > 2 and text.startswith("$") and text.endswith("$") and not text.startswith("$$")
            and not inner.endswith("\\") and not _DOLLAR.search(inner)):
        return inner
    return text


def fast_equal(golds: Sequence[str], answer: str) -> bool:
    key = fast_path_key(answer)
    return key is not None and any(fast_path_key(gold) == key for gold in golds)


# ---------------------------------------------------------------------------------------------------------
# math-verify (runs in the helper process).

_MATH_DELIMITERS = re.compile(r"(?<!\\)\$|\\\(|\\\[")


def parse_input(answer: str) -> str:
    r"""What math-verify parses for an extracted answer.

    An answer with its own math delimiters (`$...$`, `\(...\)`) goes as it is, so math-verify finds the
    math in it; otherwise the whole answer is one expression and is wrapped in \boxed{} (unwrapped, a
    bare `\frac{\sqrt{3}}{2}` is found by none of math-verify's patterns).
    """
    if _MATH_DELIMITERS.search(answer):
        return answer
    return "\\boxed{" + answer + "}"


class _QuietTimeoutWarning(logging.Filter):
    # math-verify warns once per process that its timeout is off: it is off on purpose, ours is on.
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Timeout is disabled")


for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_QuietTimeoutWarning())


@functools.lru_cache(maxsize=4096)
def _parsed_gold(text: str) -> tuple:
    # RL scores many samples per prompt: the gold is parsed once per helper, not once per sample.
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    return tuple(parse(text, extraction_config=(LatexExtractionConfig(), ExprExtractionConfig()),
                       parsing_timeout=None))


def compare_with_math_verify(gold_inputs: tuple[str, ...], answer_input: str) -> str:
    """math-verify's verdict on `parse(answer_input)` against each gold; one of the reasons above.

    Without a time limit of its own: call it through `check_equivalence` (or another guard).
    """
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    golds = [parsed for parsed in (_parsed_gold(text) for text in gold_inputs) if parsed]
    if not golds:
        return UNPARSEABLE_GOLD
    answer = parse(answer_input, extraction_config=(LatexExtractionConfig(), ExprExtractionConfig()),
                   parsing_timeout=None)
    if not answer:
        return UNPARSEABLE_ANSWER
    for gold in golds:
        if verify(list(gold), answer, timeout_seconds=None):
            return EQUAL
    return NOT_EQUIVALENT


class _VerdictCache:
    """Recent math-verify outcomes by (golds, answer). GRPO scores several samples per prompt and wrong
    samples often repeat an answer; math-verify is deterministic, so a repeat is answered from here.
    Timeouts and crashes depend on load and are never cached."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[tuple[str, ...], str], str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[tuple[str, ...], str]) -> str | None:
        with self._lock:
            reason = self._entries.get(key)
            if reason is not None:
                self._entries.move_to_end(key)
            return reason

    def put(self, key: tuple[tuple[str, ...], str], reason: str) -> None:
        with self._lock:
            self._entries[key] = reason
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_CACHE = _VerdictCache(size=16_384)
_DETERMINISTIC = (EQUAL, NOT_EQUIVALENT, UNPARSEABLE_GOLD, UNPARSEABLE_ANSWER)


def clear_parse_caches() -> None:
    """Forget every cached parse in this process: our gold parses, math-verify's and sympy's caches."""
    import math_verify.parser
    from sympy.core.cache import clear_cache

    _parsed_gold.cache_clear()
    for name in ("parse_latex_cached", "parse_expr_cached", "extract_latex"):
        cached = getattr(math_verify.parser, name, None)
        if hasattr(cached, "cache_clear"):
            cached.cache_clear()
    clear_cache()


def clear_verdict_cache() -> None:
    """Forget cached whole verdicts (parses stay cached)."""
    _CACHE.clear()


def clear_caches(limiter: TimeLimiter | None = None) -> None:
    """Forget cached outcomes and parses, here and in this thread's helper (benchmarks time cold runs)."""
    _CACHE.clear()
    clear_parse_caches()
    (limiter or _LIMITER).call(clear_parse_caches, timeout_s=60)


def check_equivalence(golds: Sequence[str], answer: str, timeout_s: float = 5.0,
                      fast_path: bool = True, limiter: TimeLimiter | None = None) -> Equivalence:
    """Is `answer` (an extracted final answer, e.g. a \\boxed{} content) equivalent to one of `golds`?

    `path` of the result: "fast", "math-verify" or "cache" (an earlier math-verify outcome). Never raises
    for anything the answer contains: a timeout or a crashed helper is a reason.
    """
    if fast_path and fast_equal(golds, answer):
        return Equivalence(True, EQUAL, "fast")
    # Gold and answer go through the same wrapping, so that equal strings always parse alike.
    key = (tuple(parse_input(gold) for gold in golds), parse_input(answer))
    cached = _CACHE.get(key)
    if cached is not None:
        return Equivalence(cached == EQUAL, cached, "cache")
    try:
        reason = (limiter or _LIMITER).call(compare_with_math_verify, *key, timeout_s=timeout_s)
    except CallTimeout:
        return Equivalence(False, TIMEOUT, "math-verify")
    except HelperError as exc:
        log.warning("math-verify helper failed: %s", exc)
        return Equivalence(False, CRASHED, "math-verify")
    except (RecursionError, MemoryError) as exc:  # raised in the helper by deep or huge expressions
        log.info("math-verify gave up on an answer: %s", type(exc).__name__)
        return Equivalence(False, UNPARSEABLE_ANSWER, "math-verify")
    if reason in _DETERMINISTIC:
        _CACHE.put(key, reason)
    return Equivalence(reason == EQUAL, reason, "math-verify")
