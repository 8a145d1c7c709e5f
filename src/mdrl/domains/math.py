r"""Math: DeepScaleR for training, MATH-500 and AIME for evaluation; tiny generated arithmetic tasks.

Verifier: the final answer is the last \boxed{} of the last <answer>...</answer> block, or that block's
text; without a block, a \boxed{} after </think> counts too (instruct models box without tags).
`Verdict.details` reports both readings so an evaluation can show them side by side: "strict_acc" (right,
and inside an <answer> block) and "flexible_acc" (right, from a block or a bare box); "extraction" says
where the answer was found. There is no last-number fallback. Equivalence is math-verify's, behind an
exact-string fast path and a timeout that works in threads and worker processes
(mdrl.verify.math_equiv, mdrl.verify.timeout). Binary only: an answer is right or wrong.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from mdrl.plain import plain
from mdrl.domains.base import DataError, Domain, Problem, SuiteDef, source_is
from mdrl.domains.registry import register_domain
from mdrl.verify.extract import final_answer, last_boxed
from mdrl.verify.math_equiv import check_equivalence
from mdrl.verify.result import Verdict


def _default_timeout() -> float:
    return float(os.environ.get("MDRL_MATH_TIMEOUT_S", "5"))


@dataclass(frozen=True)
class MathConfig:
    """Knobs of the math verifier. `MathVerifier(MathConfig(...))` builds one with other settings."""

    timeout_s: float = field(
        default_factory=_default_timeout,
        metadata={"help": "Wall-clock limit in seconds for parsing and comparing one answer (helper process "
                          "killed past it; reason 'timeout'). Default 5, or $MDRL_MATH_TIMEOUT_S."},
    )
    max_answer_chars: int = field(
        default=1000,
        metadata={"help": "Longer extracted answers score 0 ('answer too long') without being parsed. The "
                          "longest gold in the study's data has 53 characters."},
    )
    flexible: bool = field(
        default=True,
        metadata={"help": "Accept a \\boxed{} answer without <answer> tags (instruct models). When False "
                          "only <answer> blocks count; details report both either way."},
    )
    fast_path: bool = field(
        default=True,
        metadata={"help": "Accept an answer identical to the gold up to layout without calling math-verify."},
    )

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {self.timeout_s!r}")
        if self.max_answer_chars < 1:
            raise ValueError(f"max_answer_chars must be at least 1, got {self.max_answer_chars!r}")


def gold_answers(ground_truth: Any) -> tuple[str, ...]:
    r"""The acceptable answers of a ground truth in the study's format (a LaTeX string).

    Also taken: numbers; lists of answers (any one counts); GSM8K's "... #### 72"; a full solution with
    a \boxed{} (MATH's `solution` field). Anything else is a data error.
    """
    if isinstance(ground_truth, bool):
        raise DataError(f"math ground_truth must be a string, got {ground_truth!r}")
    if isinstance(ground_truth, (int, float)):
        return (repr(ground_truth) if isinstance(ground_truth, float) else str(ground_truth),)
    if isinstance(ground_truth, bytes):
        ground_truth = ground_truth.decode("utf-8", errors="replace")
    if isinstance(ground_truth, str):
        text = ground_truth.strip()
        if "####" in text:
            text = text.rsplit("####", 1)[1].strip()
        elif "\\boxed" in text:
            text = (last_boxed(text) or "").strip()
        if not text:
            raise DataError(f"math ground_truth has no answer: {ground_truth!r}")
        return (text,)
    ground_truth = plain(ground_truth)  # numpy arrays from parquet
    if isinstance(ground_truth, (list, tuple)) and ground_truth:
        return tuple(answer for item in ground_truth for answer in gold_answers(item))
    raise DataError(f"math ground_truth must be a LaTeX string, got {type(ground_truth).__name__}: "
                    f"{ground_truth!r:.80}")


class MathVerifier:
    """(response, ground_truth, extra_info) -> Verdict, under one MathConfig."""

    def __init__(self, config: MathConfig | None = None) -> None:
        self.config = config or MathConfig()

    def __call__(self, response: str, ground_truth: Any, extra_info: dict[str, Any] | None = None) -> Verdict:
        golds = gold_answers(ground_truth)
        answer, source = final_answer(response)
        if answer is None:
            return Verdict.fail(source, extraction=None, strict_acc=False, flexible_acc=False)
        if source == "answer_tag":
            # A sentence-ending period after a bare answer ("<answer> 42. </answer>") is punctuation,
            # not math; math-verify cannot parse "42." inside a box.
            answer = answer.strip().removesuffix(".").removesuffix("。")
        details: dict[str, Any] = {"extraction": source, "answer": answer.strip()[:200]}
        if not answer.strip():
            return Verdict.fail("empty answer", strict_acc=False, flexible_acc=False, **details)
        if len(answer) > self.config.max_answer_chars:
            return Verdict.fail("answer too long", strict_acc=False, flexible_acc=False, **details)
        result = check_equivalence(golds, answer.strip(), timeout_s=self.config.timeout_s,
                                   fast_path=self.config.fast_path)
        details.update(path=result.path, strict_acc=result.equal and source != "boxed",
                       flexible_acc=result.equal)
        if source == "boxed" and not self.config.flexible:
            return Verdict.fail("no <answer> tag", **details)
        if result.equal:
            return Verdict.ok(**details)
        return Verdict.fail(result.reason, **details)


# ---------------------------------------------------------------------------------------------------------
# The study's parquet rows.

_USER_MARKERS = ("\nUser:", "\n用户：", "\n用户:")
_ASSISTANT_MARKERS = ("\nAssistant:", "\n助手：", "\n助手:")
#: Stated difficulty of sources without a per-item level: AIME sits above MATH's hardest level (5).
_SOURCE_DIFFICULTY = {"aime": 6, "aime24": 6, "aime25": 6}


def _prompt_text(prompt: Any, where: str) -> str:
    if isinstance(prompt, str):
        return prompt
    prompt = plain(prompt)
    if isinstance(prompt, (list, tuple)):
        for message in prompt:
            if isinstance(message, Mapping) and message.get("role", "user") == "user":
                content = message.get("content")
                if isinstance(content, str):
                    return content
    raise DataError(f"{where}: prompt has no user message with text content")


def question_from_prompt(content: str) -> str:
    """The task text of an R1-template prompt: after 'User:' and before 'Assistant:' (preamble dropped)."""
    start = max((content.find(m) + len(m) for m in _USER_MARKERS if m in content), default=0)
    ends = [content.rfind(m) for m in _ASSISTANT_MARKERS if content.rfind(m) >= start]
    end = min(ends) if ends else len(content)
    question = content[start:end].strip()
    for instruction in INSTRUCTIONS.values():  # our own exports append the answer-format instruction
        if question.endswith(instruction):
            question = question[: -len(instruction)].rstrip()
    return question




def _difficulty(data_source: str, extra: Mapping[str, Any]) -> int:
    level = extra.get("level", extra.get("difficulty"))
    if isinstance(level, str):  # MATH writes "Level 3"
        digits = "".join(ch for ch in level if ch.isdigit())
        level = int(digits) if digits else None
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    return _SOURCE_DIFFICULTY.get(data_source.strip().lower(), 0)


def reference_response(answer: str, work: str | None = None) -> str:
    """A response in the format the prompt asks for, with `answer` as the final answer."""
    work = work or f"The answer is {answer}."
    return f"<think>\n{work}\n</think>\n<answer> \\boxed{{{answer}}} </answer>"


def load_row(row: Mapping[str, Any], where: str) -> Problem:
    """One row of the study's deepscaler parquet (train: deepscaler; test: math500 and AIME)."""
    reward_model = plain(row.get("reward_model"), str_keys=True)
    if not isinstance(reward_model, Mapping) or "ground_truth" not in reward_model:
        raise DataError(f"{where}: reward_model.ground_truth is missing")
    ground_truth = reward_model["ground_truth"]
    if isinstance(ground_truth, (int, float)) and not isinstance(ground_truth, bool):
        ground_truth = str(ground_truth)
    if not isinstance(ground_truth, str) or not ground_truth.strip():
        raise DataError(f"{where}: math ground_truth must be a non-empty string, got {ground_truth!r:.80}")
    question = question_from_prompt(_prompt_text(row.get("prompt"), where))
    if not question:
        raise DataError(f"{where}: empty question")
    data_source = str(row.get("data_source") or "deepscaler")
    extra = plain(row.get("extra_info"), str_keys=True)
    extra = dict(extra) if isinstance(extra, Mapping) else {}
    return Problem(domain="math", data_source=data_source, question=question, ground_truth=ground_truth,
                   difficulty=_difficulty(data_source, extra), lang="en",
                   reference=reference_response(ground_truth), extra_info=extra)


# ---------------------------------------------------------------------------------------------------------
# Generated tasks: integer arithmetic (levels 0-2) and linear equations (level 3).

DIFFICULTIES = (0, 1, 2, 3)


def _paren(n: int) -> str:
    return f"({n})" if n < 0 else str(n)


def _latex_number(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    sign = "-" if value < 0 else ""
    return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


def _level0(rng: random.Random) -> tuple[str, int, str]:
    a, b = rng.randint(10, 99), rng.randint(2, 9)
    # The worked step adds the units digits first: a one-digit sum every training item shares, then a carry
    # into the tens, so a small model can learn a rule that holds for unseen questions, not a table of sums.
    units = a % 10
    return f"{a} + {b}", a + b, f"{units} + {b} = {units + b}, so {a} + {b} = {a + b}."


def _level1(rng: random.Random) -> tuple[str, int, str]:
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    op = rng.choice("+-*")
    if op == "+":
        return f"{a} + {b}", a + b, f"{a} + {b} = {a + b}."
    if op == "-":
        return f"{a} - {b}", a - b, f"{a} - {b} = {a - b}."
    a, b = rng.randint(2, 19), rng.randint(2, 19)
    return f"{a} \\times {b}", a * b, f"{a} \\times {b} = {a * b}."


def _level2(rng: random.Random) -> tuple[str, int, str]:
    a, b, c = rng.randint(-20, 30), rng.randint(2, 20), rng.randint(2, 12)
    form = rng.randrange(4)
    if form == 0:
        value = (a + b) * c
        return (f"({a} + {b}) \\times {c}", value,
                f"{a} + {b} = {a + b}, and {_paren(a + b)} \\times {c} = {value}.")
    if form == 1:
        value = a * c - b
        return (f"{_paren(a)} \\times {c} - {b}", value,
                f"{_paren(a)} \\times {c} = {a * c}, and {a * c} - {b} = {value}.")
    if form == 2:
        value = a - b * c
        return (f"{a} - {b} \\times {c}", value, f"{b} \\times {c} = {b * c}, and {a} - {b * c} = {value}.")
    quotient = rng.randint(-15, 15)
    total = quotient * c
    return (f"({total + b} - {b}) \\div {c}", quotient,
            f"{total + b} - {b} = {total}, and {_paren(total)} \\div {c} = {quotient}.")


def _linear_side(coef: int, const: int) -> str:
    x = "x" if coef == 1 else "-x" if coef == -1 else f"{coef}x"
    if const == 0:
        return x
    return f"{x} {'+' if const > 0 else '-'} {abs(const)}"


def _level3(rng: random.Random) -> tuple[str, Fraction, str]:
    a = rng.choice([k for k in range(-9, 10) if k != 0])
    c = rng.choice([k for k in range(-9, 10) if k not in (0, a)])
    b, d = rng.randint(-20, 20), rng.randint(-20, 20)
    x = Fraction(d - b, a - c)
    equation = f"{_linear_side(a, b)} = {_linear_side(c, d)}"
    work = (f"Collect the x terms on the left: ({a} - {_paren(c)})x = {d} - {_paren(b)}, so "
            f"{a - c}x = {d - b} and x = {_latex_number(x)}.")
    return equation, x, work


_QUESTION = {
    ("calc", "en"): "Compute ${expr}$.",
    ("calc", "zh"): "计算 ${expr}$ 的值。",
    ("solve", "en"): "Solve for $x$: ${expr}$.",
    ("solve", "zh"): "解关于 $x$ 的方程：${expr}$。",
}


def generate(index: int, seed: int, difficulty: int, lang: str = "en") -> Problem:
    """A deterministic arithmetic task: level 0 a two-digit plus a one-digit number (sized for the tiny
    models, docs/tiny-learning), 1 one operation on two numbers, 2 three numbers, 3 a linear equation."""
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"math difficulty must be one of {DIFFICULTIES}, got {difficulty!r}")
    if lang not in INSTRUCTIONS:
        raise ValueError(f"math language must be one of {tuple(INSTRUCTIONS)}, got {lang!r}")
    rng = random.Random(f"math-{seed}-{difficulty}-{index}")
    if difficulty == 3:
        expr, value, work = _level3(rng)
        kind = "solve"
    else:
        expr, value, work = (_level0, _level1, _level2)[difficulty](rng)
        kind = "calc"
    answer = _latex_number(Fraction(value))
    return Problem(domain="math", data_source="math", question=_QUESTION[kind, lang].format(expr=expr),
                   ground_truth=answer, difficulty=difficulty, lang=lang,
                   reference=reference_response(answer, work),
                   extra_info={"index": index, "seed": seed, "task": kind})


INSTRUCTIONS = {
    "en": "Put your final answer within <answer> </answer> tags, written as \\boxed{}, "
          "e.g. <answer> \\boxed{42} </answer>.",
    "zh": "请把最终答案写在 <answer> </answer> 标签内，并用 \\boxed{} 表示，例如 <answer> \\boxed{42} </answer>。",
}

SUITES = (
    SuiteDef("math500", "MATH-500 (the study's deepscaler test file, data_source math500)",
             "paper/deepscaler/test.parquet", keep=source_is("math500", "HuggingFaceH4/MATH-500")),
    SuiteDef("aime24", "AIME 2024 (the study's deepscaler test file, data_source AIME)",
             "paper/deepscaler/test.parquet", keep=source_is("aime", "aime24", "aime2024")),
)

DOMAIN = register_domain(Domain(
    released=("deepscaler",),
    suites=SUITES,
    name="math",
    group="math",
    data_sources=("deepscaler", "math500", "AIME", "aime24", "aime25", "HuggingFaceH4/MATH-500",
                  "openai/gsm8k", "gsm8k", "lighteval/MATH", "DigitalLearningGmbH/MATH-lighteval",
                  "math_dapo"),
    verify=MathVerifier(),
    instructions=INSTRUCTIONS,
    difficulties=DIFFICULTIES,
    generate=generate,
    load_row=load_row,
    description="Competition math (DeepScaleR, MATH-500, AIME) checked with math-verify; generated "
                "arithmetic and linear equations.",
))
