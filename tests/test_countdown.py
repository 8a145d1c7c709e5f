"""Countdown: verifier table of realistic outputs, safe parser limits, solver, generator, study rows."""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

import mdrl
from mdrl.domains import DataError, domain_for_source, get_domain
from mdrl.domains import countdown as cd

G = {"numbers": [30, 71, 88, 2], "target": 45}  # study test row 0
G3 = {"numbers": [1, 2, 3], "target": 6}
G24 = {"numbers": [3, 8, 3, 8], "target": 24}  # needs a fraction on the way: 8 / (3 - 8 / 3)
GZ = {"numbers": [5, 5, 3], "target": 3}
GDUP = {"numbers": [5, 9, 4], "target": 45}
THINK = "<think>\n88 - 2 = 86, 86 + 30 = 116, 116 - 71 = 45.\n</think>\n"
STUDY_PROMPT = (
    "A conversation between User and Assistant. ... i.e., <answer> </answer>.\nUser: Using the numbers "
    "[30, 71, 88, 2], create an equation that equals 45. You can use basic arithmetic operations (+, -, *, /) "
    "and each number can only be used once. Show your work in <think> </think> tags. And return the final "
    "answer in <answer> </answer> tags, for example <answer> (1 + 2) / 3 </answer>.\nAssistant: <think>"
)


# expected: "ok" for a correct answer, otherwise the start of the failure reason.
@pytest.mark.parametrize(
    "gold,pred,expected",
    [
        # correct answers in the shapes models write them
        (G, THINK + "<answer>88 - 2 + 30 - 71</answer>", "ok"),
        (G, THINK + "<answer>\n(88 + 30)\n - (71 + 2)\n</answer>", "ok"),  # on its own lines: study scored 0
        (G, THINK + "<answer> 88 - 2 + 30 - 71 </answer>\nThis uses each number exactly once.", "ok"),
        (G, THINK + "<answer> 88 - 2 + 30 - 71 = 45 </answer>", "ok"),
        (G, THINK + "<answer> 45 = (88 + 30) - (71 + 2) </answer>", "ok"),
        (G, THINK + "<answer> $(88 + 30) - (71 + 2)$ </answer>", "ok"),
        (G, THINK + "<answer> \\( 88 - 2 + 30 - 71 \\) </answer>", "ok"),
        (G, THINK + "<answer> `88 - 2 + 30 - 71` </answer>", "ok"),
        (G, THINK + "<answer>\n```\n88 - 2 + 30 - 71\n```\n</answer>", "ok"),
        (G, THINK + "<answer> **88 - 2 + 30 - 71** </answer>", "ok"),
        (G, THINK + "<answer> \\boxed{88 - 2 + 30 - 71} </answer>", "ok"),
        (G, THINK + "<answer> Equation: 88 - 2 + 30 - 71. </answer>", "ok"),
        (G, THINK + "<answer> -71 + 88 - 2 + 30 </answer>", "ok"),  # unary minus is allowed
        (G, THINK + "<answer> 88 - 2.0 + 30 - 71 </answer>", "ok"),  # 2.0 is the given 2
        (G, STUDY_PROMPT + "\n88 - 2 = 86 ...</think>\n<answer>88 - 2 + 30 - 71</answer>", "ok"),
        (G, "<think>I will write it in <answer> tags.</think>\n<answer>88 - 2 + 30 - 71</answer>", "ok"),
        (G, "<answer>1 + 2</answer> wait, that is wrong.\n<answer>88 - 2 + 30 - 71</answer>", "ok"),
        (G, "<think>" + "Let me try again. " * 200_000 + "</think><answer>88 - 2 + 30 - 71</answer>", "ok"),
        (G, "<think>先算 88 - 2 = 86，再加 30 得 116，最后减 71 得 45。</think>\n<answer>（88 − 2）＋ 30 − 71</answer>",
         "ok"),
        (G3, "<think>1 乘 2 乘 3 等于 6。</think><answer> 1 × 2 × 3 </answer>", "ok"),
        (G3, "<answer> $1 \\times 2 \\times 3$ </answer>", "ok"),
        (G3, "<answer> 3 ÷ 1 × 2 </answer>", "ok"),
        (G24, "<think>fractions</think><answer> 8 / (3 - 8 / 3) </answer>", "ok"),
        (json.dumps(G), "<answer>88 - 2 + 30 - 71</answer>", "ok"),  # JSON-string ground truth
        ({"numbers": np.array([30, 71, 88, 2]), "target": np.int64(45)}, "<answer>88-2+30-71</answer>", "ok"),
        # wrong: value, stated result, numbers
        (G, THINK + "<answer> 88 + 2 + 30 - 71 </answer>", "value 49 != target 45"),
        (G, THINK + "<answer> 88 - 2 + 30 - 71 = 46 </answer>", "stated result 46 != target 45"),
        (G24, "<answer> 8 / 3 - 8 / 3 </answer>", "value 0 != target 24"),
        (G24, "<answer> (8 + 8) * 3 / 3 </answer>", "value 16 != target 24"),
        (GDUP, "<answer> 5 * 9 + 4 - 4 </answer>", "number 4 used twice"),
        (GDUP, "<answer> 5 * 9 </answer>", "numbers do not match: used [5, 9] given [4, 5, 9]"),
        (G, THINK + "<answer> 88 - 43 </answer>", "number 43 is not one of the given numbers"),
        (G, THINK + "<answer> 88 - 2.5 + 30 - 71 </answer>", "number 5/2 is not one of"),
        (G, "<answer> 45 </answer>", "number 45 is not one of"),
        (G, "<answer>88 - 2 + 30 - 71</answer> wait, no:\n<answer>88 + 2 + 30 - 71</answer>", "value 49"),
        (GZ, "<answer> 3 / (5 - 5) </answer>", "division by zero"),
        # wrong: not an arithmetic expression we accept
        (G, "<answer> (88 // 2) + 71 - 30 - 2 </answer>", "unparseable equation: '//'"),
        (G, "<answer> 30 ** 71 ** 88 ** 2 </answer>", "unparseable equation: '**'"),
        (G, "<answer> 30 ^ 71 - 88 + 2 </answer>", "unparseable equation: '^'"),
        (G, "<answer> 88 % 71 + 30 - 2 </answer>", "unparseable equation: '%'"),
        (G, "<answer>" + "9**" * 10_000 + "9</answer>", "unparseable equation: longer than"),
        (G, "<answer>" + "(" * 10_000 + "88 - 2 + 30 - 71" + ")" * 10_000 + "</answer>",
         "unparseable equation: longer than"),
        (G, "<answer>" + "(" * 50 + "88 - 2 + 30 - 71" + ")" * 50 + "</answer>",
         "unparseable equation: nested deeper than"),
        (G, "<answer>" + "-" * 300 + "88 - 2 + 30 - 71</answer>", "unparseable equation: more than"),
        (G, "<answer> (88 + 30 - (71 + 2) </answer>", "unparseable equation: missing ')'"),
        (G, "<answer> 2(88 - 71) + 30 </answer>", "unparseable equation: implicit multiplication"),
        (G, "<answer> __import__('os').system('rm -rf /') </answer>", "unparseable equation: unexpected"),
        (G, "<answer> eval('88 - 2 + 30 - 71') </answer>", "unparseable equation: unexpected"),
        (G, "<answer> x = 45 </answer>", "unparseable equation"),
        (G, "<answer>88 - 2 = 86\n86 + 30 = 116\n116 - 71 = 45</answer>", "unparseable equation: more than one '='"),
        (G, "<answer> 88 - 2 + 30 = 45 + 71 </answer>", "unparseable equation: neither side"),
        (G, "<answer> The answer is 45 </answer>", "unparseable equation"),
        (G, "<answer>\x00\x01\x02</answer>", "unparseable equation: unexpected character"),
        # wrong: no usable answer block
        (G, "<answer></answer>", "empty <answer>"),
        (G, "<answer> $$ $$ </answer>", "empty <answer>"),
        (G, THINK + "<answer> 88 - 2 + 30 - 71", "unclosed <answer> tag"),
        (G, "The equation is 88 - 2 + 30 - 71 = 45.", "no <answer> tag"),
        (G, "88 - 2 + 30 - 71", "no <answer> tag"),
        (G, bytes(range(256)) * 4, "no <answer> tag"),
        (G, None, "response is not text"),
        (G, 45, "response is not text"),
        (G, "", "empty response"),
    ],
)
def test_verifier_on_realistic_outputs(gold, pred, expected):
    result = mdrl.compute_score("countdown", pred, gold)
    assert result["reason"].startswith(expected), result
    assert result["acc"] is (expected == "ok")
    assert result["score"] == (1.0 if expected == "ok" else 0.0)
    assert result["fraction"] == result["score"]


@pytest.mark.parametrize("source", ["countdown", "COUNTDOWN", "countdown_tasks", "Jiayi-Pan/Countdown-Tasks-3to4"])
def test_study_names_route_here(source):
    assert domain_for_source(source) is get_domain("countdown")
    assert mdrl.compute_score(source, "<answer>1+2+3</answer>", G3)["acc"] is True


@pytest.mark.parametrize(
    "ground_truth",
    [
        {"numbers": [], "target": 5},
        {"nums": [1, 2, 3], "target": 6},
        {"numbers": [1, 2, 3]},
        {"numbers": [1, "a"], "target": 3},
        {"numbers": [1, 2.5], "target": 3},
        {"numbers": [True, 2], "target": 3},
        {"numbers": "1 2 3", "target": 6},
        {"numbers": [1, 2, 3], "target": None},
        {"numbers": [1, -2, 3], "target": 6},
        [1, 2, 3],
        "not json",
        '{"numbers": [1, 2,',
    ],
)
def test_malformed_ground_truth_is_a_data_error(ground_truth):
    with pytest.raises(DataError):
        mdrl.compute_score("countdown", "<answer>1+2+3</answer>", ground_truth)


def test_partial_credit_shape_is_the_format_weight_not_the_fraction():
    wrong_but_well_formed = "<think>t</think><answer>88 + 2 + 30 - 71</answer>"
    verdict = cd.verify(wrong_but_well_formed, G)
    assert verdict.fraction == 0.0 and verdict.details["well_formed"] is True
    assert cd.verify("<answer>88 - 43</answer>", G).details["well_formed"] is False
    # the study's 0.1-for-a-wrong-answer shape: format credit on the side, never task credit
    study_like = {"mode": "binary", "format_weight": 0.1}
    assert mdrl.compute_score("countdown", wrong_but_well_formed, G, reward=study_like)["score"] == pytest.approx(0.1)
    right = "<think>t</think><answer>88 - 2 + 30 - 71</answer>"
    assert mdrl.compute_score("countdown", right, G, reward=study_like)["score"] == pytest.approx(1.0)
    assert mdrl.compute_score("countdown", right, G, reward={"mode": "proportional"})["score"] == 1.0


# ------------------------------------------------------------------------------------------------
# The parser on its own
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text,value",
    [("1 + 2 * 3", 7), ("(1 + 2) * 3", 9), ("8 / (3 - 8 / 3)", 24), ("10 - 4 - 3", 3), ("10 - (4 - 3)", 9),
     ("12 / 4 / 3", 1), ("12 / (4 / 3)", 9), ("-(3 - 5)", 2), ("2 * -3", -6), ("7 / 2", Fraction(7, 2))],
)
def test_parser_follows_precedence_and_associativity(text, value):
    assert cd.evaluate(cd.parse_expression(text)) == value


@pytest.mark.parametrize("text", ["", "1 +", "(1 + 2", "1 + 2)", "1 2", "() + 1", "1 +* 2", "1e3", "0x10", "1_000"])
def test_parser_rejects_malformed_expressions(text):
    with pytest.raises(cd.EquationError):
        cd.parse_expression(text)


def test_parser_limits_hold_just_under_and_over():
    nested_ok = "(" * cd.MAX_DEPTH + "1" + ")" * cd.MAX_DEPTH
    assert cd.evaluate(cd.parse_expression(nested_ok)) == 1
    with pytest.raises(cd.EquationError, match="nested deeper"):
        cd.parse_expression("(" + nested_ok + ")")
    with pytest.raises(cd.EquationError, match="tokens"):
        cd.parse_expression("+".join(["1"] * 100))


# ------------------------------------------------------------------------------------------------
# Solver
# ------------------------------------------------------------------------------------------------

_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
        "/": lambda a, b: a / b if b else None}


def _brute_force_values(numbers: list[int]) -> set[Fraction]:
    """Every value of every expression over the numbers, by a different method from the solver:
    permutations of the numbers, operator triples and the five tree shapes of 4 leaves (or 2 of 3)."""
    def apply(op, a, b):
        return None if a is None or b is None else _OPS[op](a, b)

    values: set[Fraction] = set()
    for perm in itertools.permutations([Fraction(n) for n in numbers]):
        for ops in itertools.product(_OPS, repeat=len(numbers) - 1):
            if len(numbers) == 3:
                a, b, c = perm
                x, y = ops
                shapes = [apply(y, apply(x, a, b), c), apply(x, a, apply(y, b, c))]
            else:
                a, b, c, d = perm
                x, y, z = ops
                shapes = [apply(z, apply(y, apply(x, a, b), c), d), apply(z, apply(x, a, apply(y, b, c)), d),
                          apply(y, apply(x, a, b), apply(z, c, d)), apply(x, a, apply(z, apply(y, b, c), d)),
                          apply(x, a, apply(y, b, apply(z, c, d)))]
            values.update(v for v in shapes if v is not None)
    return values


@pytest.mark.parametrize("count", [3, 4])
def test_solver_is_exhaustive_against_brute_force(count):
    rng = random.Random(count)
    for _ in range(6 if count == 4 else 20):
        numbers = [rng.randint(1, 13) for _ in range(count)]
        reachable = _brute_force_values(numbers)
        for target in range(60):
            equation = cd.solve(numbers, target)
            assert (equation is not None) == (Fraction(target) in reachable), (numbers, target)
            if equation is not None:
                assert cd.check_equation(equation, tuple(numbers), target).acc, (numbers, target, equation)


@pytest.mark.parametrize(
    "numbers,target,solvable",
    [([1, 1, 1], 100, False),  # at most (1 + 1) + 1 = 3
     ([3, 8, 3, 8], 24, True),  # 8 / (3 - 8 / 3)
     ([1, 5, 5, 5], 24, True),  # 5 * (5 - 1 / 5)
     ([100] * 6, 4, True),  # (100 + 100) / 100 + (100 + 100) / 100
     ([97, 89, 83, 79, 73, 71], 1, True),  # (97 - 89) / ((83 - 79) * (73 - 71))
     ([1] * 6, 1000, False),  # six ones reach at most (1 + 1 + 1) * (1 + 1 + 1) = 9
     ([7], 7, True), ([7], 8, False)],
)
def test_solver_known_cases(numbers, target, solvable):
    equation = cd.solve(numbers, target)
    assert (equation is not None) is solvable
    if solvable:
        assert cd.check_equation(equation, tuple(numbers), target).acc, equation


# ------------------------------------------------------------------------------------------------
# Generator
# ------------------------------------------------------------------------------------------------

def _check_generated(problem, difficulty):
    numbers, target = problem.ground_truth["numbers"], problem.ground_truth["target"]
    assert len(numbers) == difficulty == problem.difficulty
    assert all(cd.NUMBER_RANGE[0] <= n <= cd.NUMBER_RANGE[1] for n in numbers)
    assert cd.TARGET_RANGE[0] <= target <= cd.TARGET_RANGE[1]
    # the ground truth survives a JSON round trip (veRL parquet export) and the reference scores 1
    result = mdrl.compute_score("countdown", problem.reference, json.loads(json.dumps(problem.ground_truth)))
    assert result["score"] == 1.0, (problem, result)


@pytest.mark.parametrize("difficulty", cd.DIFFICULTIES)
def test_generated_items_score_with_their_references(difficulty):
    for index in range(50):
        _check_generated(cd.generate(index, seed=11, difficulty=difficulty), difficulty)


@pytest.mark.slow
@pytest.mark.parametrize("difficulty", cd.DIFFICULTIES)
def test_thousand_generated_items_per_difficulty(difficulty):
    for index in range(1000):
        problem = cd.generate(index, seed=2024, difficulty=difficulty)
        _check_generated(problem, difficulty)
        # the solver, searching on its own, agrees that the item is solvable
        equation = cd.solve(problem.ground_truth["numbers"], problem.ground_truth["target"])
        assert equation is not None and cd.check_equation(
            equation, tuple(problem.ground_truth["numbers"]), problem.ground_truth["target"]).acc


def test_generator_is_deterministic_per_seed_index_and_difficulty():
    first = [cd.generate(i, seed=5, difficulty=4) for i in range(20)]
    assert first == [cd.generate(i, seed=5, difficulty=4) for i in range(20)]
    assert len({json.dumps(p.ground_truth) for p in first}) > 15  # items differ by index
    other_seed = [cd.generate(i, seed=6, difficulty=4) for i in range(20)]
    assert [p.ground_truth for p in first] != [p.ground_truth for p in other_seed]
    # and across processes (no dependence on hash randomisation or global random state)
    random.seed(123)
    code = ("import json; from mdrl.domains import countdown as cd; "
            "print(json.dumps([cd.generate(i, seed=5, difficulty=4).reference for i in range(5)]))")
    env = dict(os.environ, PYTHONHASHSEED="987")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert json.loads(out.stdout) == [p.reference for p in first[:5]]


def test_generator_languages_and_bad_arguments():
    en, zh = cd.generate(3, seed=1, difficulty=5, lang="en"), cd.generate(3, seed=1, difficulty=5, lang="zh")
    assert en.ground_truth == zh.ground_truth
    assert en.question.startswith("Using the numbers [") and "each number can only be used once" in en.question
    assert "使用数字" in zh.question and "每个数字只能使用一次" in zh.question
    assert re.search(r"[\u4e00-\u9fff]", zh.reference) and mdrl.compute_score("countdown", zh.reference,
                                                                              zh.ground_truth)["acc"]
    domain = get_domain("countdown")
    assert domain.render_question(zh).endswith(domain.instructions["zh"])
    assert "<answer> (1 + 2) / 3 </answer>" in domain.instructions["en"]
    with pytest.raises(ValueError):
        cd.generate(0, seed=0, difficulty=7)
    with pytest.raises(ValueError):
        cd.generate(0, seed=0, difficulty=3, lang="fr")


# ------------------------------------------------------------------------------------------------
# The study's rows
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def study_test_rows(paper_data):
    pandas = pytest.importorskip("pandas")
    return pandas.read_parquet(paper_data / "countdown" / "test.parquet").to_dict("records")


def _swap_first_number(reference: str) -> str:
    """The reference with its first number literal replaced by that number + 1."""
    head, body = reference.split("<answer>")
    return head + "<answer>" + re.sub(r"\d+", lambda m: str(int(m.group()) + 1), body, count=1)


def test_study_test_rows_references_score_and_wrong_ones_never_do(study_test_rows):
    problems = [cd.load_row(row, f"test.parquet:{i}") for i, row in enumerate(study_test_rows)]
    misses = []
    for i, (problem, row) in enumerate(zip(problems, study_test_rows)):
        truth = row["reward_model"]["ground_truth"]
        assert problem.question == cd.question_text(truth["numbers"].tolist(), int(truth["target"]))
        assert problem.ground_truth == {"numbers": truth["numbers"].tolist(), "target": int(truth["target"])}
        if problem.reference is None:
            misses.append((i, "no solution found"))
            continue
        result = mdrl.compute_score("countdown", problem.reference, truth)
        if not result["acc"]:
            misses.append((i, result["reason"]))
        off_by_one = {"numbers": truth["numbers"], "target": int(truth["target"]) + 1}
        assert not mdrl.compute_score("countdown", problem.reference, off_by_one)["acc"], i
        assert not mdrl.compute_score("countdown", _swap_first_number(problem.reference), truth)["acc"], i
        other = problems[(i + 1) % len(problems)]
        if sorted(other.ground_truth["numbers"]) != sorted(problem.ground_truth["numbers"]) and other.reference:
            assert not mdrl.compute_score("countdown", other.reference, truth)["acc"], i
    assert len(misses) <= 0.005 * len(problems), misses


def test_study_rows_score_as_prompt_plus_response(study_test_rows):
    row = study_test_rows[0]
    problem = cd.load_row(row, "test.parquet:0")
    prompt = row["prompt"][0]["content"]
    response = problem.reference.removeprefix("<think>")  # the study's prompt already ends with "<think>"
    assert mdrl.compute_score(row["data_source"], prompt + response, row["reward_model"]["ground_truth"])["acc"]


def test_load_row_rejects_inconsistent_rows(study_test_rows):
    row = dict(study_test_rows[0])
    with pytest.raises(DataError, match="test.parquet:0"):
        cd.load_row({**row, "nums": np.array([1, 2, 3])}, "test.parquet:0")
    with pytest.raises(DataError, match="test.parquet:0"):
        cd.load_row({**row, "reward_model": {"ground_truth": {"numbers": [], "target": 1}}}, "test.parquet:0")
    with pytest.raises(DataError, match="reward_model"):
        cd.load_row({"target": 3}, "x:1")
    bare = cd.load_row({"reward_model": {"ground_truth": {"numbers": [4, 5, 6], "target": 26}}}, "x:2")
    assert bare.question == cd.question_text([4, 5, 6], 26) and bare.reference is not None
