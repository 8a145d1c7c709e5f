"""Countdown: combine the given numbers with + - * / into an equation that equals the target.

The study's data (Jiayi-Pan/Countdown-Tasks-3to4, veRL parquet with data_source "countdown") has
ground truths ``{"numbers": [...], "target": int}``. This file holds the whole domain:

* **verifier** — reads the last ``<answer>`` block (spanning lines; the study read only the last line
  of the response), cleans it, parses it with a small recursive-descent parser (never ``eval``),
  checks that every given number is used exactly once and evaluates with exact ``Fraction`` arithmetic.
* **solver** — finds an equation for any numbers/target (subset search, memoised), used for the
  reference responses of loaded rows.
* **generator** — seeded items with 3..6 numbers whose target comes from a random expression.
* **loader** — one study parquet row to a `Problem`.

What an answer may contain (the study's rules, with its bugs fixed):

* non-negative number literals (``7``, ``7.0``; a literal counts as the given number of equal value),
  binary ``+ - * /``, parentheses, and unary minus or plus (``-71 + 88``, ``-(3 - 5)``): the study's
  ``eval`` accepted them, and a sign changes nothing about which numbers were used.
* ``×``, ``÷``, ``·``, ``−``, full-width digits/operators, and LaTeX ``\\times``, ``\\div``, ``\\cdot``,
  ``\\left(``/``\\right)`` are read as their ASCII operators.
* ``//``, ``**``, ``^``, ``%``, names, calls, implicit multiplication ``2(3+4)``, and anything longer than
  `MAX_EQUATION_CHARS` / `MAX_TOKENS` tokens / `MAX_DEPTH` nesting are rejected before any
  arithmetic happens, so ``30 ** 71 ** 88 ** 2`` or 10k nested parentheses cost microseconds.
* wrappers are stripped: ``$..$``, ``$$..$$``, ``\\(..\\)``, ``\\[..\\]``, backticks and code fences,
  ``**bold**``, ``\\boxed{..}``, a leading label such as ``Equation:``, and a trailing full stop.
* one ``=`` is allowed when one side is a bare number: ``(1+2)*3 = 9`` (or ``9 = (1+2)*3``) is read as
  the claim "the expression equals 9"; the stated number must equal the target, and the expression is
  then checked like any other answer. Two expressions around ``=``, or several ``=``, are rejected.

Reward: binary. `Verdict.fraction` is the share right, so it is 0 or 1 here: a wrong equation built from
the right numbers is still wrong. The study paid 0.1 ("format score") for any extracted answer that was
not correct; mdrl keeps task credit and format credit apart, so that shape is `RewardConfig(
format_weight=0.1)` (0.1 for the <think>/<answer> format, 0.9 for the equation). The verdict's details
say whether the equation was well formed (parsed, and used exactly the given numbers) for analysis.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from mdrl.plain import plain
from mdrl.domains.base import DataError, Domain, Problem, SuiteDef, by_difficulty
from mdrl.domains.registry import register_domain
from mdrl.verify.extract import answer_block, last_boxed
from mdrl.verify.result import Verdict
from mdrl.verify.shaping import RewardConfig

log = logging.getLogger(__name__)

NAME = "countdown"
DATA_SOURCES = ("countdown_tasks", "countdown-tasks", "Jiayi-Pan/Countdown-Tasks-3to4")
DIFFICULTIES = (3, 4, 5, 6)

#: A 6-number equation with spaces is under 60 characters; anything far longer is not an answer.
MAX_EQUATION_CHARS = 400
MAX_TOKENS = 120
#: Nesting of parentheses and unary minus together; bounds the parser's recursion.
MAX_DEPTH = 40
#: Ground truths with more numbers than this are rejected as data errors (the solver is exponential).
MAX_NUMBERS = 12

QUESTION = {
    "en": "Using the numbers {numbers}, create an equation that equals {target}. You can use basic "
          "arithmetic operations (+, -, *, /) and each number can only be used once.",
    "zh": "使用数字 {numbers}，构造一个等于 {target} 的等式。可以使用基本算术运算（+、-、*、/），"
          "每个数字只能使用一次。",
}
INSTRUCTIONS = {
    "en": "Show your work in <think> </think> tags. And return the final answer in <answer> </answer> "
          "tags, for example <answer> (1 + 2) / 3 </answer>.",
    "zh": "请在 <think> </think> 标签中展示你的推理过程，并在 <answer> </answer> 标签中给出最终答案，"
          "例如 <answer> (1 + 2) / 3 </answer>。",
}


# --------------------------------------------------------------------------------------------------
# Ground truth
# --------------------------------------------------------------------------------------------------

def _as_int(value: Any, what: str) -> int:
    """An integer from JSON / numpy / parquet values; floats only when integral; bools never."""
    if isinstance(value, bool) or value is None:
        raise DataError(f"{what} must be an integer, got {value!r}")
    if hasattr(value, "item") and not isinstance(value, (list, tuple)):  # numpy scalar
        value = value.item()
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    raise DataError(f"{what} must be an integer, got {value!r}")


def parse_ground_truth(ground_truth: Any) -> tuple[tuple[int, ...], int]:
    """(numbers, target) from the study's ``{"numbers": [...], "target": t}`` (object or JSON string)."""
    if isinstance(ground_truth, (str, bytes)):
        text = ground_truth.decode() if isinstance(ground_truth, bytes) else ground_truth
        try:
            ground_truth = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"countdown ground_truth is not valid JSON: {exc}") from None
    if not isinstance(ground_truth, Mapping):
        raise DataError(f"countdown ground_truth must be {{'numbers': [...], 'target': int}}, "
                        f"got {type(ground_truth).__name__}")
    if "numbers" not in ground_truth or "target" not in ground_truth:
        raise DataError(f"countdown ground_truth needs 'numbers' and 'target', got keys {sorted(ground_truth)}")
    raw = plain(ground_truth["numbers"])  # numpy array from parquet
    if isinstance(raw, (str, bytes)) or not isinstance(raw, (list, tuple)):
        raise DataError(f"countdown ground_truth 'numbers' must be a list, got {type(raw).__name__}")
    if not 1 <= len(raw) <= MAX_NUMBERS:
        raise DataError(f"countdown ground_truth needs 1..{MAX_NUMBERS} numbers, got {len(raw)}")
    numbers = tuple(_as_int(n, "countdown number") for n in raw)
    if any(n < 0 for n in numbers):
        raise DataError(f"countdown numbers must be non-negative, got {list(numbers)}")
    return numbers, _as_int(ground_truth["target"], "countdown target")


# --------------------------------------------------------------------------------------------------
# Cleaning the answer text
# --------------------------------------------------------------------------------------------------

# Read as operators: typographic and full-width forms models (and Chinese ones especially) emit.
_SYMBOLS = str.maketrans({
    "×": "*", "✕": "*", "·": "*", "⋅": "*", "∗": "*", "÷": "/", "∕": "/", "−": "-", "–": "-",
    "＋": "+", "－": "-", "＊": "*", "／": "/", "（": "(", "）": ")", "＝": "=",
    **{chr(0xFF10 + d): str(d) for d in range(10)},
})
_LATEX = (("\\left(", "("), ("\\right)", ")"), ("\\times", "*"), ("\\div", "/"), ("\\cdot", "*"),
          ("\\,", " "), ("\\;", " "), ("\\!", ""))
_WRAPPERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"), ("**", "**"), ("`", "`"))
_FENCE_RE = re.compile(r"^```[A-Za-z]*\s*\n?(.*?)\n?```$", re.DOTALL)
_LABEL_RE = re.compile(r"^[A-Za-z\u4e00-\u9fff][A-Za-z\u4e00-\u9fff ]{0,29}[:：]\s*")
_OPEN_ANSWER_RE = re.compile(r"<answer>", re.IGNORECASE)


def clean_answer(answer: str) -> str:
    """The equation text inside an <answer> block, with markup and typography removed."""
    # A stray "<answer>" inside the block ("use <answer> tags ... <answer>1+2</answer>"): the last one opens it.
    answer = _OPEN_ANSWER_RE.split(answer)[-1].strip()
    fence = _FENCE_RE.match(answer)
    if fence:
        answer = fence.group(1).strip()
    answer = _LABEL_RE.sub("", answer, count=1)
    for _ in range(3):  # nested wrappers such as `$...$`
        before = answer
        if answer.startswith("\\boxed"):
            boxed = last_boxed(answer)
            if boxed is not None:
                answer = boxed.strip()
        for left, right in _WRAPPERS:
            if len(answer) > len(left) + len(right) and answer.startswith(left) and answer.endswith(right):
                answer = answer[len(left):-len(right)].strip()
                break
        answer = answer.rstrip(".。").strip()
        if answer == before:
            break
    for latex, text in _LATEX:
        answer = answer.replace(latex, text)
    return answer.translate(_SYMBOLS)


# --------------------------------------------------------------------------------------------------
# The safe arithmetic parser
# --------------------------------------------------------------------------------------------------

class EquationError(ValueError):
    """The answer is not an arithmetic expression that this domain accepts."""


@dataclass(frozen=True)
class Num:
    value: Fraction
    text: str


@dataclass(frozen=True)
class Neg:
    operand: Node


@dataclass(frozen=True)
class BinOp:
    op: str
    left: Node
    right: Node


Node = Num | Neg | BinOp

_TOKEN_RE = re.compile(r"\s*(?:(\d+(?:\.\d+)?)|(\*\*|//|[-+*/()])|(\S))")
_FORBIDDEN = {"**": "'**' (power) is not allowed", "//": "'//' (floor division) is not allowed",
              "^": "'^' (power) is not allowed", "%": "'%' (modulo) is not allowed"}
_MAX_LITERAL_DIGITS = 30


def tokenize(text: str) -> list[tuple[str, str, int]]:
    """(kind, text, position) with kind "num", "op" or "end"; raises EquationError on anything else."""
    if len(text) > MAX_EQUATION_CHARS:
        raise EquationError(f"longer than {MAX_EQUATION_CHARS} characters")
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    stripped_end = len(text.rstrip())
    while pos < stripped_end:
        match = _TOKEN_RE.match(text, pos)
        if match is None:  # only trailing whitespace is left; cannot happen before stripped_end
            break
        number, op, other = match.groups()
        start = match.start(1) if number else match.start(2) if op else match.start(3)
        if other is not None:
            raise EquationError(_FORBIDDEN.get(other, f"unexpected character {other!r} at {start}"))
        if op in _FORBIDDEN:
            raise EquationError(_FORBIDDEN[op])
        if number is not None and len(number) > _MAX_LITERAL_DIGITS:
            raise EquationError(f"number literal too long at {start}")
        tokens.append(("num", number, start) if number is not None else ("op", op, start))
        if len(tokens) > MAX_TOKENS:
            raise EquationError(f"more than {MAX_TOKENS} tokens")
        pos = match.end()
    tokens.append(("end", "", len(text)))
    return tokens


class _Parser:
    """expr := term (('+'|'-') term)* ; term := factor (('*'|'/') factor)* ;
    factor := ('-'|'+') factor | NUMBER | '(' expr ')'. Depth is bounded, so recursion is too."""

    def __init__(self, tokens: list[tuple[str, str, int]]) -> None:
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i]

    def take(self) -> tuple[str, str, int]:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def parse(self) -> Node:
        if self.peek()[0] == "end":
            raise EquationError("empty expression")
        node = self.expr()
        kind, text, pos = self.peek()
        if kind != "end":
            raise EquationError(f"unexpected {text!r} at {pos}")
        return node

    def expr(self) -> Node:
        node = self.term()
        while self.peek()[1] in ("+", "-") and self.peek()[0] == "op":
            op = self.take()[1]
            node = BinOp(op, node, self.term())
        return node

    def term(self) -> Node:
        node = self.factor()
        while self.peek()[1] in ("*", "/") and self.peek()[0] == "op":
            op = self.take()[1]
            node = BinOp(op, node, self.factor())
        return node

    def factor(self) -> Node:
        kind, text, pos = self.take()
        if kind == "num":
            if self.peek()[1] == "(":
                raise EquationError(f"implicit multiplication at {self.peek()[2]}")
            return Num(Fraction(text), text)
        if kind == "op" and text in ("-", "+", "("):
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise EquationError(f"nested deeper than {MAX_DEPTH}")
            if text == "-":
                node: Node = Neg(self.factor())
            elif text == "+":
                node = self.factor()
            else:
                node = self.expr()
                closing = self.take()
                if closing[1] != ")" or closing[0] != "op":
                    raise EquationError(f"missing ')' for '(' at {pos}")
            self.depth -= 1
            return node
        if kind == "end":
            raise EquationError("expression ends early")
        raise EquationError(f"unexpected {text!r} at {pos}")


def parse_expression(text: str) -> Node:
    """Parse arithmetic text into a tree; raises EquationError for anything outside the grammar."""
    return _Parser(tokenize(text)).parse()


def literals(node: Node) -> list[Fraction]:
    """The number literals of the tree, left to right (iterative: depth is bounded anyway)."""
    found: list[Fraction] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Num):
            found.append(item.value)
        elif isinstance(item, Neg):
            stack.append(item.operand)
        else:
            stack.extend((item.right, item.left))
    return found


def evaluate(node: Node) -> Fraction:
    """Exact value of the tree; raises ZeroDivisionError on division by zero."""
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Neg):
        return -evaluate(node.operand)
    left, right = evaluate(node.left), evaluate(node.right)
    if node.op == "+":
        return left + right
    if node.op == "-":
        return left - right
    if node.op == "*":
        return left * right
    if right == 0:
        raise ZeroDivisionError("division by zero")
    return left / right


def _show(value: Fraction | int) -> str:
    value = Fraction(value)
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def split_claim(text: str) -> tuple[str, Fraction | None]:
    """Split "EXPR = N" (or "N = EXPR") into the expression and the stated result N (None without '=')."""
    if "=" not in text:
        return text, None
    parts = text.split("=")
    if len(parts) > 2:
        raise EquationError("more than one '='")
    left, right = (part.strip() for part in parts)
    for expression, claim in ((left, right), (right, left)):
        if re.fullmatch(r"-?\s*\d+(?:\.\d+)?", claim) and len(claim) <= _MAX_LITERAL_DIGITS:
            return expression, Fraction(claim.replace(" ", ""))
    raise EquationError("neither side of '=' is a number")


def _numbers_reason(used: list[Fraction], given: tuple[int, ...]) -> str:
    used_count, given_count = Counter(used), Counter(given)
    for value, count in used_count.items():
        if count > given_count[value] and given_count[value] > 0:
            times = "twice" if count == 2 else f"{count} times"
            given_times = "" if given_count[value] == 1 else f" (given {given_count[value]} times)"
            return f"number {_show(value)} used {times}{given_times}"
    not_given = [v for v in used_count if given_count[v] == 0]
    if not_given:
        return f"number {_show(not_given[0])} is not one of the given numbers {_listed(list(given))}"
    return f"numbers do not match: used {_listed(sorted(used))} given {_listed(sorted(given))}"


def _listed(values: list[Fraction] | list[int]) -> str:
    return "[" + ", ".join(_show(v) for v in values) + "]"


def check_equation(answer: str, numbers: tuple[int, ...], target: int) -> Verdict:
    """Verdict for one cleaned answer text against the numbers and the target."""
    try:
        expression, claim = split_claim(answer)
        tree = parse_expression(expression)
    except EquationError as exc:
        return Verdict.fail(f"unparseable equation: {exc}", answer=answer[:200])
    used = literals(tree)
    if Counter(used) != Counter(numbers):
        return Verdict.fail(_numbers_reason(used, numbers), answer=answer[:200], well_formed=False)
    if claim is not None and claim != target:
        return Verdict.fail(f"stated result {_show(claim)} != target {target}", answer=answer[:200],
                            well_formed=True)
    try:
        value = evaluate(tree)
    except ZeroDivisionError:
        return Verdict.fail("division by zero", answer=answer[:200], well_formed=True)
    if value != target:
        return Verdict.fail(f"value {_show(value)} != target {target}", answer=answer[:200],
                            well_formed=True, value=_show(value))
    return Verdict.ok(answer=answer[:200], well_formed=True)


def verify(response: str, ground_truth: Any, extra_info: Mapping[str, Any] | None = None) -> Verdict:
    """The countdown verifier (Domain.verify): last <answer> block, safe parse, numbers, exact value."""
    numbers, target = parse_ground_truth(ground_truth)
    answer, reason = answer_block(response)
    if answer is None:
        return Verdict.fail(reason)
    cleaned = clean_answer(answer)
    if not cleaned:
        return Verdict.fail("empty <answer>")
    return check_equation(cleaned, numbers, target)


# --------------------------------------------------------------------------------------------------
# Solver
# --------------------------------------------------------------------------------------------------

#: An expression tree over the given numbers: an index into them, or (op, left, right).
Tree = int | tuple
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


def render(tree: Tree, numbers: tuple[int, ...] | list[int]) -> str:
    """The equation text of a tree, with only the parentheses that change the value's meaning."""
    if isinstance(tree, int):
        return str(numbers[tree])
    op, left, right = tree
    prec = _PRECEDENCE[op]
    left_text, right_text = render(left, numbers), render(right, numbers)
    if not isinstance(left, int) and _PRECEDENCE[left[0]] < prec:
        left_text = f"({left_text})"
    if not isinstance(right, int) and (_PRECEDENCE[right[0]] < prec
                                       or (_PRECEDENCE[right[0]] == prec and op in "-/")):
        right_text = f"({right_text})"
    return f"{left_text} {op} {right_text}"


def _combine(a: Fraction, b: Fraction) -> list[tuple[Fraction, str, bool]]:
    """(value, op, swapped) for every way to join a and b; swapped means "b op a"."""
    out = [(a + b, "+", False), (a - b, "-", False), (b - a, "-", True), (a * b, "*", False)]
    if b:
        out.append((a / b, "/", False))
    if a:
        out.append((b / a, "/", True))
    return out


class _Search:
    """Subset search: small subsets get every reachable value (a table), large ones are searched
    goal-first (for each value of the smaller side, the value the other side must reach)."""

    def __init__(self, numbers: tuple[int, ...]) -> None:
        self.values = [Fraction(n) for n in numbers]
        # Full tables up to this size; larger sets are searched towards a goal. Tuned: n-2 for 6 numbers
        # (15 tables of 4), 3 otherwise.
        self.table_size = max(3, len(numbers) - 2)
        self.tables: dict[int, dict[Fraction, Tree]] = {}
        self.goals: dict[tuple[int, Fraction], Tree | None] = {}

    def table(self, mask: int) -> dict[Fraction, Tree]:
        cached = self.tables.get(mask)
        if cached is not None:
            return cached
        if mask & (mask - 1) == 0:
            index = mask.bit_length() - 1
            result: dict[Fraction, Tree] = {self.values[index]: index}
        else:
            result = {}
            low = mask & -mask
            sub = (mask - 1) & mask
            while sub:
                if sub & low:  # each unordered split once: the side holding the lowest bit is "a"
                    rest = mask ^ sub
                    right_table = self.table(rest)
                    for a, tree_a in self.table(sub).items():
                        for b, tree_b in right_table.items():
                            for value, op, swapped in _combine(a, b):
                                if value not in result:
                                    result[value] = (op, tree_b, tree_a) if swapped else (op, tree_a, tree_b)
                sub = (sub - 1) & mask
        self.tables[mask] = result
        return result

    def find(self, mask: int, goal: Fraction) -> Tree | None:
        size = mask.bit_count()
        if size <= self.table_size:
            return self.table(mask).get(goal)
        key = (mask, goal)
        if key in self.goals:
            return self.goals[key]
        found = self._find_split(mask, goal, size)
        self.goals[key] = found
        return found

    def _find_split(self, mask: int, goal: Fraction, size: int) -> Tree | None:
        sub = (mask - 1) & mask
        while sub:
            rest = mask ^ sub
            if 2 * sub.bit_count() <= size:  # enumerate the smaller side, search the larger
                for a, tree_a in self.table(sub).items():
                    for need, build in self._needs(a, goal):
                        tree_b = self.find(rest, need)
                        if tree_b is not None:
                            return build(tree_a, tree_b)
            sub = (sub - 1) & mask
        return None

    @staticmethod
    def _needs(a: Fraction, goal: Fraction):
        """(b, how to build the tree) for each way "a op b" or "b op a" can equal the goal."""
        yield goal - a, lambda ta, tb: ("+", ta, tb)
        yield a - goal, lambda ta, tb: ("-", ta, tb)
        yield goal + a, lambda ta, tb: ("-", tb, ta)
        if a:
            yield goal / a, lambda ta, tb: ("*", ta, tb)
            yield goal * a, lambda ta, tb: ("/", tb, ta)
        if goal and a:  # a / b = goal; with a == 0 the goal would have to be 0
            yield a / goal, lambda ta, tb: ("/", ta, tb)


def solve_tree(numbers: tuple[int, ...] | list[int], target: int) -> Tree | None:
    """An expression tree using each number exactly once that equals target, or None if none exists."""
    numbers = tuple(numbers)
    if not numbers:
        return None
    search = _Search(numbers)
    return search.find((1 << len(numbers)) - 1, Fraction(target))


def solve(numbers: tuple[int, ...] | list[int], target: int) -> str | None:
    """An equation (text) using each number exactly once that equals target, or None if none exists.

    Exhaustive over all binary trees and operator choices (exact fractions), so None means unsolvable.
    Up to 4 numbers takes about a millisecond; 6 numbers well under a second even when unsolvable.
    """
    tree = solve_tree(numbers, target)
    return None if tree is None else render(tree, tuple(numbers))


# --------------------------------------------------------------------------------------------------
# Reference responses, questions, generator, loader
# --------------------------------------------------------------------------------------------------

def _steps(tree: Tree, numbers: tuple[int, ...]) -> tuple[Fraction, list[str]]:
    if isinstance(tree, int):
        return Fraction(numbers[tree]), []
    op, left, right = tree
    a, steps_a = _steps(left, numbers)
    b, steps_b = _steps(right, numbers)
    value = {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else Fraction(0)}[op]
    return value, steps_a + steps_b + [f"{_show(a)} {op} {_show(b)} = {_show(value)}"]


def reference_response(tree: Tree, numbers: tuple[int, ...], target: int, lang: str = "en") -> str:
    """A response body that scores 1: short worked steps in <think>, the equation in <answer>."""
    _, steps = _steps(tree, numbers)
    work = ", ".join(steps)
    if lang == "zh":
        think = f"依次组合这些数字：{work}。结果等于 {target}，每个数字恰好使用一次。"
    else:
        think = f"Combine the numbers step by step: {work}. That gives {target}, using each number once."
    return f"<think>{think}</think>\n<answer> {render(tree, numbers)} </answer>"


def question_text(numbers: tuple[int, ...] | list[int], target: int, lang: str = "en") -> str:
    """The study's task sentence (without the answer-format instruction, which is `INSTRUCTIONS`)."""
    listed = "[" + ", ".join(str(n) for n in numbers) + "]"
    return QUESTION[lang].format(numbers=listed, target=target)


#: Study-like ranges: numbers 1..100 and targets 10..100, as in Countdown-Tasks-3to4.
NUMBER_RANGE = (1, 100)
TARGET_RANGE = (10, 100)
_PRODUCT_CAP = 2000
_MAX_DRAWS = 1000


def _random_expression(rng: random.Random, numbers: list[int]) -> tuple[Tree, Fraction]:
    """Join random pairs with a random operator that keeps intermediate values positive integers
    (as a person playing Countdown would), until one expression remains."""
    pool: list[tuple[Fraction, Tree]] = [(Fraction(n), i) for i, n in enumerate(numbers)]
    while len(pool) > 1:
        i, j = rng.sample(range(len(pool)), 2)
        (a, tree_a), (b, tree_b) = pool[i], pool[j]
        if a < b:
            (a, tree_a), (b, tree_b) = (b, tree_b), (a, tree_a)
        choices: list[tuple[Fraction, Tree]] = [(a + b, ("+", tree_a, tree_b))]
        if a > b:
            choices.append((a - b, ("-", tree_a, tree_b)))
        if a * b <= _PRODUCT_CAP:
            choices.append((a * b, ("*", tree_a, tree_b)))
        if b > 1 and a % b == 0:
            choices.append((a / b, ("/", tree_a, tree_b)))
        joined = rng.choice(choices)
        pool = [item for k, item in enumerate(pool) if k not in (i, j)] + [joined]
    return pool[0][1], pool[0][0]


def generate(index: int, seed: int = 0, difficulty: int = 3, lang: str = "en") -> Problem:
    """Item `index` of the seeded stream: `difficulty` numbers in 1..100, target in 10..100, reachable
    by the reference equation. Deterministic in (seed, difficulty, index)."""
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"countdown difficulty must be one of {DIFFICULTIES}, got {difficulty}")
    if lang not in QUESTION:
        raise ValueError(f"countdown language must be one of {sorted(QUESTION)}, got {lang!r}")
    rng = random.Random(f"{NAME}-{seed}-{difficulty}-{index}")
    for _ in range(_MAX_DRAWS):  # almost every draw of numbers reaches the target range at once
        numbers = [rng.randint(*NUMBER_RANGE) for _ in range(difficulty)]
        for _ in range(50):
            tree, value = _random_expression(rng, numbers)
            if value.denominator == 1 and TARGET_RANGE[0] <= value <= TARGET_RANGE[1]:
                target = int(value)
                nums = tuple(numbers)
                return Problem(
                    domain=NAME, data_source=NAME, question=question_text(nums, target, lang),
                    ground_truth={"numbers": list(nums), "target": target}, difficulty=difficulty,
                    lang=lang, reference=reference_response(tree, nums, target, lang),
                    extra_info={"seed": seed, "index": index},
                )
    raise RuntimeError(f"countdown generator found no target in {_MAX_DRAWS} draws (seed {seed}, index {index})")


_USER_RE = re.compile(r"User:\s*(.*?)\s*\nAssistant:", re.DOTALL)


def _prompt_question(prompt: Any) -> str | None:
    """The task sentence from the study's prompt (between "User: " and "\\nAssistant:"), minus the
    instruction sentences, which `INSTRUCTIONS` holds; None when the prompt has another shape."""
    prompt = plain(prompt)
    if isinstance(prompt, (list, tuple)) and prompt and isinstance(prompt[-1], Mapping):
        prompt = prompt[-1].get("content")
    if not isinstance(prompt, str):
        return None
    match = _USER_RE.search(prompt)
    if match is None:
        return None
    text = match.group(1)
    cut = text.find(" Show your work")
    return (text[:cut] if cut >= 0 else text).strip() or None




def load_row(row: Mapping[str, Any], where: str = "?") -> Problem:
    """One row of the study's countdown parquet (target, nums, prompt, reward_model) as a Problem."""
    reward_model = row.get("reward_model")
    if not isinstance(reward_model, Mapping) or "ground_truth" not in reward_model:
        raise DataError(f"{where}: countdown row has no reward_model.ground_truth")
    try:
        numbers, target = parse_ground_truth(reward_model["ground_truth"])
    except DataError as exc:
        raise DataError(f"{where}: {exc}") from None
    if row.get("nums") is not None and [int(n) for n in plain(row["nums"])] != list(numbers):
        raise DataError(f"{where}: nums {plain(row['nums'])} disagree with ground_truth numbers {list(numbers)}")
    if row.get("target") is not None and int(row["target"]) != target:
        raise DataError(f"{where}: target {row['target']} disagrees with ground_truth target {target}")
    question = _prompt_question(row.get("prompt")) or question_text(numbers, target)
    tree = solve_tree(numbers, target) if len(numbers) <= 6 else None
    if tree is None:
        log.info("%s: countdown row has no solution (numbers %s, target %s)", where, list(numbers), target)
    data_source = row.get("data_source") or NAME
    return Problem(
        domain=NAME, data_source=str(data_source), question=question,
        ground_truth={"numbers": list(numbers), "target": target}, difficulty=len(numbers), lang="en",
        reference=None if tree is None else reference_response(tree, numbers, target),
        extra_info=plain(row.get("extra_info")) or {},
    )


DOMAIN = register_domain(Domain(
    name=NAME, group="math", data_sources=DATA_SOURCES, verify=verify, instructions=INSTRUCTIONS,
    default_reward=RewardConfig(mode="binary"), difficulties=DIFFICULTIES, generate=generate,
    load_row=load_row, released=("countdown",),
    suites=(SuiteDef("countdown", "CountDown test (3-4 numbers), by count of numbers",
                     "paper/countdown/test.parquet", group=by_difficulty("nums")),),
    description="Countdown (CountDown-Tasks): reach the target with + - * / using each number once.",
))
