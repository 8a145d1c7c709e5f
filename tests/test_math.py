r"""The math domain: extraction, equivalence through math-verify, the fast path, loading and generation.

The table follows Math-Verify's `gold, pred, expected` style: golds are taken from the study's
MATH-500/AIME test set, predictions are shapes real models write (r1-template <answer> blocks, boxed
instruct answers, plain text), and hack attempts.
"""

from __future__ import annotations

import random
import re

import pandas as pd
import pytest

from mdrl import compute_score
from mdrl.domains import DataError, domain_for_source, get_domain
from mdrl.domains.math import (
    INSTRUCTIONS,
    MathConfig,
    MathVerifier,
    gold_answers,
    question_from_prompt,
)
from mdrl.verify.extract import final_answer
from mdrl.verify.math_equiv import compare_with_math_verify, fast_equal, fast_path_key, parse_input

MATH = get_domain("math")


def r1(answer: str) -> str:
    """A response to the r1 template (which ends in 'Assistant: <think>'): boxed inside <answer>."""
    return f"Let me work through this.\n</think>\n<answer> \\boxed{{{answer}}} </answer>"


def tagged(text: str) -> str:
    return f"Some reasoning.\n</think>\n<answer>{text}</answer>"


TABLE = [
    # fractions and decimals
    (r"\frac{3}{2}", r1("1.5"), True),
    (r"\frac{3}{2}", r1(r"\frac{2}{3}"), False),
    (r"\frac{1}{3}", r1("0.3333333"), True),
    (r"\frac{1}{3}", r1("0.333"), False),
    ("0.15", r1(r"\frac{3}{20}"), True),
    (r"\dfrac{17}{50}", r1("0.34"), True),
    (r"\frac 59", r1(r"\frac{5}{9}"), True),
    (r"1\frac{4}{5}", r1(r"\frac{9}{5}"), True),
    (".0000672", r1(r"6.72 \times 10^{-5}"), True),
    (r"-\frac{35}{9}", r1("-35/9"), True),
    (r"-\frac{35}{9}", r1(r"\frac{35}{9}"), False),
    # tuples, intervals, sets
    (r"\left( 3, \frac{\pi}{2} \right)", r1(r"(3, \frac{\pi}{2})"), True),
    (r"\left( 3, \frac{\pi}{2} \right)", r1(r"(3, \frac{\pi}{3})"), False),
    ("(6,31,-1)", r1("(6, 31, -1)"), True),
    ("(6,31,-1)", r1("(6, -1, 31)"), False),
    ("(3,4]", r1("(3, 4]"), True),
    ("(3,4]", r1("(3,4)"), False),
    (r"x \in [-2,7]", r1("[-2,7]"), True),
    (r"(0,9) \cup (9,36)", r1("(0,36)"), False),
    ("1,-2", r1("-2, 1"), True),
    ("1,-2", r1("1"), False),
    ("3, 5, 7", r1(r"\{3,5,7\}"), True),
    ("3, 5, 7", r1("3, 5"), False),
    # matrices
    (r"\begin{pmatrix} -1/3 \\ 2/3 \\ 5/3 \end{pmatrix}",
     r1(r"\begin{pmatrix} -\frac13 \\ \frac23 \\ \frac53 \end{pmatrix}"), True),
    (r"\begin{pmatrix} -1/3 \\ 2/3 \\ 5/3 \end{pmatrix}", r1(r"\begin{pmatrix} -1/3 \\ 2/3 \\ 4/3 \end{pmatrix}"),
     False),
    (r"\begin{pmatrix} -1 & 0 \\ 0 & -1 \end{pmatrix}", r1(r"\begin{bmatrix} -1 & 0 \\ 0 & -1 \end{bmatrix}"), True),
    (r"\begin{pmatrix} -1 & 0 \\ 0 & -1 \end{pmatrix}", r1(r"\begin{pmatrix} -1 & 0 \\ 0 & 1 \end{pmatrix}"), False),
    # degrees and units
    (r"90^\circ", r1("90"), True),
    (r"90^\circ", r1(r"90^{\circ}"), True),
    (r"30^\circ", r1(r"\frac{\pi}{6}"), False),
    (r"\frac{270}7\text{ degrees}", r1(r"\frac{270}{7}^\circ"), True),
    (r"5.4 \text{ cents}", r1("5.4"), True),
    (r"864 \mbox{ inches}^2", r1("864"), True),
    # \text{} answers (the study's normaliser emptied \text{east})
    (r"\text{east}", r1(r"\text{east}"), True),
    (r"\text{east}", r1("east"), True),
    (r"\text{east}", r1(r"\text{west}"), False),
    (r"\text{Evelyn}", r1("Evelyn"), True),
    (r"\text{(C)}", r1("C"), True),
    (r"\text{(C)}", r1("(D)"), False),
    (r"\text{even}", r1(r"\text{odd}"), False),
    # thousands separators
    (r"10,\!080", r1("10080"), True),
    (r"10,\!080", r1("10,080"), True),
    (r"10,\!080", r1("10081"), False),
    (r"\$32,\!348", r1("32348"), True),
    (r"\$32,\!348", r1(r"\$32,\!348"), True),
    (r"11,\! 111,\! 111,\! 100", r1("11,111,111,100"), True),
    ("58,500", r1("58500"), True),
    # equations and assignments
    ("x=5", r1("5"), True),
    ("5", r1("x = 5"), True),
    ("5", r1("x = 6"), False),
    ("5x - 7y + 11z + 4 = 0", r1("-5x + 7y - 11z - 4 = 0"), True),
    # \pm (the study's normaliser dropped it)
    (r"1 \pm \sqrt{19}", r1(r"1 \pm \sqrt{19}"), True),
    (r"1 \pm \sqrt{19}", r1(r"1 - \sqrt{19}, 1 + \sqrt{19}"), True),
    (r"1 \pm \sqrt{19}", r1(r"1 + \sqrt{19}"), False),
    (r"3 \pm 2 \sqrt{2}", r1(r"3\pm 2\sqrt{2}"), True),
    # products and polynomials (the study's normaliser turned (a+5)(b+2) into (5)(b+2))
    ("(a+5)(b+2)", r1("(a+5)(b+2)"), True),
    ("(a+5)(b+2)", r1("(b+2)(a+5)"), True),
    ("(a+5)(b+2)", r1("ab+2a+5b+10"), True),
    ("(a+5)(b+2)", r1("(5)(b+2)"), False),
    ("6r^2-4r-24", r1("2(3r^2-2r-12)"), True),
    ("6r^2-4r-24", r1("6r^2-4r+24"), False),
    (r"\frac{11+9a}{20}", r1(r"\frac{9a+11}{20}"), True),
    # radicals, pi, complex numbers, bases
    (r"3\sqrt{13}", r1(r"\sqrt{117}"), True),
    (r"\pi", r1("3.14"), False),
    ("6 - 5i", r1("6-5i"), True),
    ("6 - 5i", r1("6+5i"), False),
    ("52_8", r1("52_8"), True),
    ("52_8", r1("42"), False),
    # answer shapes: plain text in <answer>, $...$, boxed without tags, multi-line, upper case
    ("204", tagged(" 204 "), True),
    ("204", tagged(" 204. "), True),
    (r"\frac{1}{2}", tagged(r"$\frac{1}{2}$"), True),
    (r"\frac{\sqrt{3}}{2}", tagged(r" \frac{\sqrt{3}}{2} "), True),
    (r"\frac{1}{2}", "Some reasoning.</think>\n<answer>\n\\frac{1}{2}\n</answer>", True),
    (r"\frac{1}{2}", r"</think> <ANSWER>\boxed{\frac12}</ANSWER>", True),
    ("42", "Step 1 ... Step 9. So the final answer is \\boxed{42}.", True),
    ("42", tagged("The answer is $42$."), True),
    # hack attempts and broken outputs
    ("42", tagged(r"\boxed{1} \boxed{2} \boxed{42} \boxed{43}"), False),  # the last box counts
    ("42", tagged(r"\boxed{43} \boxed{42}"), True),
    ("42", r"<think>it is \boxed{42}</think><answer>\boxed{41}</answer>", False),
    ("42", r"<think>maybe \boxed{42}</think> I am not sure.", False),  # scratch work is not an answer
    ("42", tagged(r"\boxed{42, 43}"), False),
    ("3", tagged(r"\boxed{1, 2, 3, 4, 5, 6, 7, 8, 9}"), False),
    ("42", tagged(r"\boxed{42 \text{ or } 43}"), False),
    ("42", tagged(r"\boxed{x}"), False),
    ("42", "After a long computation the result is 42", False),  # no last-number fallback
    ("42", tagged("The answer is 42"), False),  # a bare block is one expression: box it or use $..$
    ("42", tagged(""), False),
    ("42", tagged(r"\boxed{}"), False),
    ("42", tagged(r"\boxed{ }"), False),
    ("42", "</think> <answer> 42", False),  # unclosed tag, no box
    ("42", r"</think> <answer> \boxed{42", False),  # unclosed box
    ("42", tagged("四十二"), False),  # right number, wrong language
    ("42", tagged("forty-two"), False),
    ("42", tagged("\x00\x01\xff\ufffd 4\x002"), False),
    ("42", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 50, False),
    ("42", tagged("\\boxed{" + "1" * 5000 + "}"), False),
]


@pytest.mark.parametrize("gold,pred,expected", TABLE)
def test_math_table(gold: str, pred: str, expected: bool) -> None:
    result = compute_score("math500", pred, gold)
    assert result["acc"] is expected, result
    assert result["score"] == (1.0 if expected else 0.0)
    assert result["fraction"] in (0.0, 1.0)  # binary only


def test_table_is_large_and_balanced() -> None:
    assert len(TABLE) >= 60
    assert sum(expected for *_, expected in TABLE) >= 25
    assert sum(not expected for *_, expected in TABLE) >= 25


@pytest.mark.parametrize(
    "response,reason",
    [
        ("I think it is 42.", "no <answer> tag"),
        ("</think> <answer> 42", "unclosed <answer> tag"),
        (r"</think> <answer> \boxed{42", "unclosed \\boxed{}"),
        ("<answer>   </answer>", "empty answer"),
        (r"<answer>\boxed{}</answer>", "empty answer"),
        (r"<answer>\boxed{41}</answer>", "not equivalent"),
        ("<answer>\\boxed{" + "7" * 2000 + "}</answer>", "answer too long"),
        (r"<answer>\boxed{42}</answer>", "ok"),
    ],
)
def test_reasons(response: str, reason: str) -> None:
    assert compute_score("deepscaler", response, "42")["reason"] == reason


def test_prompt_plus_response_is_accepted() -> None:
    prompt = "A conversation between User and Assistant...\nUser: What is 6*7?\nAssistant: <think>"
    assert compute_score("AIME", prompt + "6*7=42</think>\n<answer>\\boxed{42}</answer>", "42")["acc"]


@pytest.mark.parametrize(
    "response,extraction,strict",
    [
        (r"</think><answer>\boxed{42}</answer>", "answer_tag_boxed", True),
        ("</think><answer> 42 </answer>", "answer_tag", True),
        (r"The final answer is \boxed{42}.", "boxed", False),
    ],
)
def test_strict_and_flexible_are_reported(response: str, extraction: str, strict: bool) -> None:
    verdict = MATH.verify(response, "42", None)
    assert verdict.acc
    assert verdict.details["extraction"] == extraction
    assert verdict.details["strict_acc"] is strict
    assert verdict.details["flexible_acc"] is True


def test_strict_only_mode_rejects_boxed_without_tags() -> None:
    strict = MathVerifier(MathConfig(flexible=False))
    verdict = strict(r"So the answer is \boxed{42}.", "42", None)
    assert not verdict.acc and verdict.reason == "no <answer> tag"
    assert verdict.details["flexible_acc"] is True
    assert strict(r"</think><answer>\boxed{42}</answer>", "42", None).acc


def test_final_answer_takes_the_last_block_then_its_last_box() -> None:
    text = (r"<answer>\boxed{1}</answer> wait, no. <answer>So \boxed{2} or rather \boxed{3}</answer>"
            "\n\\boxed{4}")
    assert final_answer(text) == ("3", "answer_tag_boxed")
    assert final_answer("<answer>\nx = 5\n</answer>") == ("\nx = 5\n", "answer_tag")


# --- the study's data sources and rows ------------------------------------------------------------------

@pytest.mark.parametrize("source", ["deepscaler", "math500", "AIME", "aime", "HuggingFaceH4/MATH-500",
                                    "openai/gsm8k", "gsm8k", "aime24", "lighteval/MATH", "math_dapo", "math"])
def test_sources_route_to_math(source: str) -> None:
    assert domain_for_source(source).name == "math"


@pytest.mark.parametrize(
    "ground_truth,golds",
    [
        (r"\frac{3}{7}", (r"\frac{3}{7}",)),
        ("  204 ", ("204",)),
        (72, ("72",)),
        ("Natalia sold 48/2 = 24 clips in May.\n#### 72", ("72",)),
        (r"so the area is $\boxed{18\pi}$.", (r"18\pi",)),
        (["2", "-2"], ("2", "-2")),
    ],
)
def test_gold_answers(ground_truth, golds) -> None:
    assert gold_answers(ground_truth) == golds


@pytest.mark.parametrize("bad", ["", "   ", None, {"a": 1}, True, [], "#### "])
def test_malformed_ground_truth_is_a_data_error(bad) -> None:
    with pytest.raises(DataError):
        gold_answers(bad)


def test_compute_score_raises_on_empty_gold() -> None:
    with pytest.raises(DataError):
        compute_score("math500", r"<answer>\boxed{1}</answer>", "")


def test_gsm8k_gold_scores() -> None:
    assert compute_score("openai/gsm8k", "</think><answer>\\boxed{72}</answer>", "48/2 = 24\n#### 72")["acc"]


def test_question_from_prompt_strips_the_preamble() -> None:
    content = ("A conversation between User and Assistant. The User asks a question ... clearly state the "
               "identity of each character within <answer> </answer> tags.\nUser: Find $x$ if $2x=4$.\n"
               "Assistant: <think>")
    assert question_from_prompt(content) == "Find $x$ if $2x=4$."
    assert question_from_prompt("What is 1+1?") == "What is 1+1?"
    # our own exports append the answer-format instruction; loading them back drops it
    rendered = MATH.render_question(MATH.generate(0, 0, 1, "zh"))
    assert question_from_prompt(f"前言\n用户：{rendered}\n助手：<think>") == MATH.generate(0, 0, 1, "zh").question


def _rows(paper_data, split: str) -> list[dict]:
    return pd.read_parquet(paper_data / "deepscaler" / f"{split}.parquet").to_dict("records")


def test_load_row_on_the_study_test_set(paper_data) -> None:
    rows = _rows(paper_data, "test")
    assert len(rows) == 530
    problems = [MATH.load_row(row, f"test.parquet:{i}") for i, row in enumerate(rows)]
    assert {p.data_source for p in problems} == {"math500", "AIME"}
    for problem, row in zip(problems, rows):
        assert problem.ground_truth == row["reward_model"]["ground_truth"]
        assert "A conversation between" not in problem.question and "Assistant:" not in problem.question
        assert problem.question and not problem.question.startswith("User:")
        assert problem.difficulty == (6 if problem.data_source == "AIME" else 0)
        assert isinstance(problem.extra_info["index"], int)
    first = problems[0]
    assert first.question.startswith("Convert the point $(0,3)$")
    assert first.reference.endswith(r"<answer> \boxed{\left( 3, \frac{\pi}{2} \right)} </answer>")


def test_load_row_reports_where(paper_data) -> None:
    row = dict(_rows(paper_data, "train")[0])
    assert MATH.load_row(row, "train.parquet:0").data_source == "deepscaler"
    row["reward_model"] = {"ground_truth": ""}
    with pytest.raises(DataError, match="train.parquet:0"):
        MATH.load_row(row, "train.parquet:0")


def _wrong_answer(rows: list[dict], i: int) -> str:
    """Another item's gold that math-verify does not consider equal to this one's."""
    gold = rows[i]["reward_model"]["ground_truth"]
    for step in range(1, len(rows)):
        other = rows[(i + step) % len(rows)]["reward_model"]["ground_truth"]
        if compare_with_math_verify((parse_input(gold),), parse_input(other)) != "ok":
            return other
    raise AssertionError("no non-equivalent answer found")


def _off_by_one(gold: str) -> str | None:
    try:
        return str(int(gold) + 1)
    except ValueError:
        pass
    try:
        return repr(float(gold) + 1)
    except ValueError:
        return None


def _acceptance(paper_data, every: int) -> None:
    rows = _rows(paper_data, "test")
    misses = []
    for i in range(0, len(rows), every):
        row = rows[i]
        gold = row["reward_model"]["ground_truth"]
        reference = MATH.load_row(row, f"test:{i}").reference
        result = compute_score(row["data_source"], reference, gold)
        if not result["acc"]:
            misses.append((i, gold, result["reason"]))
        wrong = [_wrong_answer(rows, i)] + ([_off_by_one(gold)] if _off_by_one(gold) else [])
        for answer in wrong:
            result = compute_score(row["data_source"], f"</think>\n<answer> \\boxed{{{answer}}} </answer>", gold)
            assert not result["acc"], (i, gold, answer)
    checked = len(range(0, len(rows), every))
    assert len(misses) <= 0.005 * checked, misses


def test_reference_scores_and_wrong_answers_fail_on_a_sample(paper_data) -> None:
    _acceptance(paper_data, every=10)


@pytest.mark.slow
def test_reference_scores_and_wrong_answers_fail_on_the_whole_test_set(paper_data) -> None:
    _acceptance(paper_data, every=1)


# --- fast path: it may only say "equal" where math-verify says so too ------------------------------------

def layout_variants(gold: str) -> list[str]:
    """Rewritings a model produces and the fast path may accept, plus near misses it must not."""
    variants = {gold, f" {gold} ", f"${gold}$", gold.replace(" ", ""), gold.replace("\\dfrac", "\\frac"),
                gold.replace("(", "\\left(").replace(")", "\\right)"), gold.replace("+", " + "),
                gold.replace("=", " = "), gold.replace(",", ", "), gold.replace("{", " {"),
                gold + "0", gold.replace("1", "7"), gold + "^2", "-" + gold, gold.replace("\\", "")}
    return sorted(variants)


def _fast_path_agrees(golds: list[str]) -> int:
    fast = 0
    for gold in golds:
        for variant in layout_variants(gold):
            if fast_equal([gold], variant):
                fast += 1
                verdict = compare_with_math_verify((parse_input(gold),), parse_input(variant))
                assert verdict == "ok", (gold, variant, fast_path_key(variant), verdict)
    return fast


def test_fast_path_agrees_with_math_verify_on_a_sample(paper_data) -> None:
    golds = [row["reward_model"]["ground_truth"] for row in _rows(paper_data, "test")]
    sample = random.Random(0).sample(golds, 40) + [r"1 \pm \sqrt{19}", r"\text{east}", "(a+5)(b+2)",
                                                   r"\$32,\!348", "58,500", r"\left( 3, \frac{\pi}{2} \right)"]
    assert _fast_path_agrees(sample) > len(sample) * 2  # it does fire, on several variants per gold


@pytest.mark.slow
def test_fast_path_agrees_with_math_verify_on_every_test_gold(paper_data) -> None:
    golds = sorted({row["reward_model"]["ground_truth"] for row in _rows(paper_data, "test")})
    assert _fast_path_agrees(golds) > len(golds) * 2


@pytest.mark.parametrize(
    "gold,pred,fast",
    [
        ("204", "204", True),
        ("204", " $204$ ", True),
        (r"\frac{3}{2}", r"$\dfrac{3}{2}$", True),
        (r"\left( 3, \frac{\pi}{2} \right)", r"( 3, \dfrac{\pi}{2} )", True),
        # whitespace inside is math-verify's to judge: each of these parses differently there
        (r"\left( 3, \frac{\pi}{2} \right)", r"(3,\frac{\pi}{2})", False),
        (r"90^\circ", r"90 ^ \circ", False),  # not read as degrees
        (r"\frac 3 8", r"\frac  3  8", False),
        ("58,500", "58, 500", False),  # a pair
        ("10,080", "10080", False),  # equal, but for math-verify to say
        (r"\text{}", r"\text{}", False),  # nothing to compare
        (r"-$$\frac{7}{9}$$", r"-$$\frac{7}{9}$$", False),  # math mode inside: math-verify finds it
        (r"\pi r", r"\pir", False),
    ],
)
def test_fast_path_is_conservative(gold: str, pred: str, fast: bool) -> None:
    assert fast_equal([gold], pred) is fast


def test_fast_path_off_gives_the_same_verdicts() -> None:
    slow = MathVerifier(MathConfig(fast_path=False))
    for gold, pred, expected in TABLE[:20]:
        assert slow(pred, gold, None).acc is expected
        assert MATH.verify(pred, gold, None).acc is expected


# --- generator --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("difficulty", [0, 1, 2, 3])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_generated_references_score_one(difficulty: int, lang: str) -> None:
    for index in range(15):
        problem = MATH.generate(index, 7, difficulty, lang)
        assert problem.domain == "math" and problem.difficulty == difficulty and problem.lang == lang
        assert isinstance(problem.ground_truth, str)
        assert compute_score(problem.data_source, problem.reference, problem.ground_truth)["acc"], problem
        # an answer off by one is wrong
        wrong = problem.reference.replace("\\boxed{" + problem.ground_truth + "}",
                                          "\\boxed{" + problem.ground_truth + "+1}")
        assert not compute_score(problem.data_source, wrong, problem.ground_truth)["acc"]


def test_generator_is_deterministic_and_varied() -> None:
    assert MATH.generate(3, 11, 2, "en") == MATH.generate(3, 11, 2, "en")
    questions = {MATH.generate(i, 11, 2, "en").question for i in range(50)}
    assert len(questions) > 40
    assert MATH.generate(3, 11, 2, "en").question != MATH.generate(3, 12, 2, "en").question
    assert "x" in MATH.generate(0, 0, 3, "en").question
    assert MATH.generate(0, 0, 1, "zh").question.startswith("计算")
    # level 0: a two-digit plus a one-digit number, 720 questions, so the held-out tenth still has ~70
    sums = {MATH.generate(i, 0, 0, "en").question for i in range(3000)}
    assert all(re.fullmatch(r"Compute \$[1-9]\d \+ [2-9]\$\.", q) for q in sums) and len(sums) > 650
    # its worked step adds the units digits before the whole numbers: 47 + 8 -> "7 + 8 = 15, so 47 + 8 = 55."
    for i in range(50):
        problem = MATH.generate(i, 0, 0, "en")
        a, b = map(int, re.findall(r"\d+", problem.question))
        assert f"{a % 10} + {b} = {a % 10 + b}, so {a} + {b} = {a + b}." in problem.reference
        assert problem.ground_truth == str(a + b)


def test_generator_rejects_unknown_levels_and_languages() -> None:
    with pytest.raises(ValueError):
        MATH.generate(0, 0, 4, "en")
    with pytest.raises(ValueError):
        MATH.generate(0, 0, -1, "en")
    with pytest.raises(ValueError):
        MATH.generate(0, 0, 1, "fr")


def test_instructions_ask_for_answer_tags_not_kk_text() -> None:
    for lang in ("en", "zh"):
        text = INSTRUCTIONS[lang]
        assert "<answer>" in text and "</answer>" in text and "\\boxed{42}" in text
        assert "identity" not in text and "character" not in text
    assert MATH.instructions is INSTRUCTIONS
