"""The `code` domain: extraction, ground-truth formats, verdicts, loaders, generator, references."""

from __future__ import annotations

import json
import sys

import pytest

import mdrl
from mdrl.domains import DataError, domain_for_source
from mdrl.domains.code import (
    DOMAIN,
    extract_program,
    generate,
    load_humaneval,
    load_mbpp,
    load_row,
    parse_ground_truth,
    score_many,
    verify,
)
from mdrl.sandbox import AssertTests, PytestTests, StdioTests

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox needs Linux")

LEETCODE_GT = json.dumps({"functional": "def check(candidate):\n    assert candidate(nums = [3,1,5,4,2], k = 2) == 4\n"
                                        "    assert candidate(nums = [3,1,5,4,2], k = 5) == 5\n"
                                        "    assert candidate(nums = [3,2,5,3,1], k = 3) == 4\n\n\n"
                                        "check(Solution().minOperations)"})
LEETCODE_RIGHT = """class Solution:
    def minOperations(self, nums: List[int], k: int) -> int:
        seen = set()
        for i in range(len(nums) - 1, -1, -1):
            if nums[i] <= k:
                seen.add(nums[i])
            if len(seen) == k:
                return len(nums) - i
"""
TACO_GT = json.dumps({"inputs": ["2\n6 9\n", "3\n1 2 3\n", "4\n2 5 6 8\n"], "outputs": ["15\n", "6\n", "21\n"]})
TACO_RIGHT = """n = int(input())
print(sum(map(int, input().split()[:n])))
"""
MBPP_GT = {"test_list": ["assert similar([3, 4, 5], [5, 7, 4]) == (4, 5)", "assert similar([1, 2], [3]) == ()"],
           "test_setup_code": ""}
HUMANEVAL_GT = {"test": "def check(candidate):\n    assert candidate('abc') == 'cba'\n    assert candidate('') == ''\n",
                "entry_point": "reverse"}


def answer(code: str, think: str = "Let me think.") -> str:
    return f"<think>\n{think}\n</think>\n<answer>\n```python\n{code}```\n</answer>"


# --- extraction -----------------------------------------------------------------------------------

@pytest.mark.parametrize("response,program", [
    (answer("print(1)\n"), "print(1)\n"),
    # the last python block inside the last <answer> wins over blocks in the reasoning
    ("<think>\n```python\nprint('draft')\n```\n</think>\n<answer>\nFinal:\n```python\nprint('final')\n```\n</answer>",
     "print('final')\n"),
    ("<answer>\n```python\na = 1\n```\nand then\n```python\nb = 2\n```\n</answer>", "b = 2\n"),
    # a closing fence glued to the tag, as models write it
    ("<answer>\n```python\nx = 1\n```</answer>", "x = 1\n"),
    # no <answer>: the last python block of the response
    ("Here is my solution:\n```python\ndef f():\n    return 2\n```\nDone.", "def f():\n    return 2\n"),
    # untagged fence accepted; other languages are not Python
    ("<answer>\n```\nprint(3)\n```\n</answer>", "print(3)\n"),
    ("<answer>\n```cpp\nint main() {}\n```\n</answer>", None),
    # an <answer> without a fence falls back to a block elsewhere
    ("<think>\n```py\nprint(4)\n```\n</think>\n<answer>print(4)</answer>", "print(4)\n"),
    ("<answer>print(5)</answer>", None),
    ("<answer>\n```python\nprint('truncated')", None),
])
def test_extract_program(response, program):
    assert extract_program(response) == program


# --- verdicts (gold, pred, expected) --------------------------------------------------------------

@pytest.mark.parametrize("gold,pred,expected", [
    (LEETCODE_GT, answer(LEETCODE_RIGHT), (1.0, "ok")),
    # the study's LeetCode rows rely on the prelude: `List` without an import works
    (LEETCODE_GT, answer(LEETCODE_RIGHT.replace("len(seen) == k", "len(seen) == k - 1")),
     (0.0, "test 1 failed: AssertionError")),
    (LEETCODE_GT, answer("class Solution:\n    def minOperations(self, nums, k):\n        return 4\n"),
     (2 / 3, "test 2 failed: AssertionError")),
    (LEETCODE_GT, answer("class Solution:\n    def minOperations(self, nums, k):\n        return nums[10]\n"),
     (0.0, "test 1 failed: IndexError: list index out of range")),
    (LEETCODE_GT, answer("class Solution:\n    def minOperations(self, nums, k)\n        return 4\n"),
     (0.0, "syntax error")),
    (LEETCODE_GT, "I think the answer is 4.", (0.0, "no code block")),
    (LEETCODE_GT, answer("\n"), (0.0, "empty code block")),
    (TACO_GT, answer(TACO_RIGHT), (1.0, "ok")),
    (TACO_GT, answer("input()\ninput()\nprint(15)\n"), (1 / 3, "test 2 failed: wrong answer")),
    (TACO_GT, answer("n = int(input())\nprint(6 // (n - 2))\n"),
     (1 / 3, "test 1 failed: ZeroDivisionError: integer division or modulo by zero")),
    (json.dumps(MBPP_GT), answer("def similar(a, b):\n    return tuple(sorted(set(a) & set(b)))\n"), (1.0, "ok")),
    (MBPP_GT, answer("def similar(a, b):\n    return (4, 5)\n"), (0.5, "test 2 failed: AssertionError")),
    (HUMANEVAL_GT, answer("def reverse(s):\n    return s[::-1]\n"), (1.0, "ok")),
    (HUMANEVAL_GT, answer("def reverse(s):\n    return s\n"), (0.5, "test 1 failed: AssertionError")),
])
def test_verify(gold, pred, expected):
    verdict = verify(pred, gold)
    assert (verdict.fraction, verdict.reason) == (pytest.approx(expected[0]), expected[1])
    assert verdict.acc == (expected[0] == 1.0)


def test_default_reward_is_binary_and_proportional_on_request():
    pred = answer("class Solution:\n    def minOperations(self, nums, k):\n        return 4\n")
    assert mdrl.compute_score("code", pred, LEETCODE_GT)["score"] == 0.0
    assert mdrl.compute_score("code", pred, LEETCODE_GT, reward={"mode": "proportional"})["score"] == pytest.approx(2 / 3)


def test_prompt_plus_response_is_accepted():
    text = "<|im_start|>user\nSolve it with ```python blocks```<|im_end|>\n<|im_start|>assistant\n" + answer(TACO_RIGHT)
    assert mdrl.compute_score("code", text, TACO_GT)["score"] == 1.0


# --- ground truth formats -------------------------------------------------------------------------

@pytest.mark.parametrize("gt,kind", [
    (LEETCODE_GT, AssertTests), (TACO_GT, StdioTests), (MBPP_GT, AssertTests), (HUMANEVAL_GT, AssertTests),
    ({"fn_name": "add", "inputs": [[1, 2], [3, 4]], "outputs": [[3], [7]]}, AssertTests),
    ({"pytest": "from solution import f\n\ndef test_f():\n    assert f() == 1\n"}, PytestTests),
])
def test_parse_ground_truth(gt, kind):
    assert isinstance(parse_ground_truth(gt), kind)


def test_prelude_only_for_leetcode_style_checks():
    assert "SortedList" in parse_ground_truth(LEETCODE_GT).prelude
    taco_call_based = {"functional": "_inputs = [[8]]\n_outputs = [[True]]\nfor i, o in zip(_inputs, _outputs):\n"
                                     "    assert f(*i) == o[0]\n"}
    assert parse_ground_truth(taco_call_based).prelude == ""


def test_taco_call_based_and_pytest_formats_score():
    gt = {"fn_name": "add", "inputs": [[1, 2], [3, 4], [0.1, 0.2]], "outputs": [[3], [7], [0.3]]}
    assert verify(answer("def add(a, b):\n    return a + b\n"), gt).acc
    assert verify(answer("def add(a, b):\n    return 3\n"), gt).fraction == pytest.approx(1 / 3)
    pytest_gt = {"pytest": "from solution import f\n\ndef test_one():\n    assert f(1) == 2\n\n"
                           "def test_two():\n    assert f(2) == 3\n"}
    assert verify(answer("def f(x):\n    return x + 1\n"), pytest_gt).acc


@pytest.mark.parametrize("gt", [
    "not json", "[1, 2]", {"inputs": ["1"]}, {"inputs": ["1"], "outputs": ["1", "2"]}, {"inputs": [], "outputs": []},
    {"functional": "def check(candidate):\n    assert candidate(1 ==\n"}, {"functional": "x = 1\n"},
    {"functional": ""}, {"test_list": "assert f() == 1"}, {"test": "def check(c): assert c()", "entry_point": "a b"},
    {"unknown": 1}, {"inputs": [[1]], "outputs": ["1"]},
])
def test_malformed_ground_truth_raises_data_error(gt):
    with pytest.raises(DataError):
        mdrl.compute_score("code", answer("print(1)\n"), gt)


@pytest.mark.parametrize("source", ["code", "humaneval", "openai_humaneval", "mbpp", "leetcode", "taco",
                                    "codeR1", "LeetCodeDataset", "likaixin/TACO-verified"])
def test_data_sources_route_to_code(source):
    assert domain_for_source(source) is DOMAIN


# --- batch scoring ----------------------------------------------------------------------------------

def test_score_many_matches_compute_score():
    preds = [answer(LEETCODE_RIGHT), "no code here", answer(TACO_RIGHT), answer("input()\nprint(6)\n"), None, ""]
    golds = [LEETCODE_GT, LEETCODE_GT, TACO_GT, TACO_GT, TACO_GT, TACO_GT]
    batch = score_many(preds, golds, reward={"mode": "proportional"})
    single = [mdrl.compute_score("code", p, g, reward={"mode": "proportional"}) if p is not None
              else {"score": 0.0, "acc": False, "reason": "response is not text", "fraction": 0.0}
              for p, g in zip(preds, golds)]
    assert batch == single
    assert [r["score"] for r in batch] == [1.0, 0.0, 1.0, pytest.approx(1 / 3), 0.0, 0.0]


def test_score_many_raises_on_malformed_ground_truth():
    with pytest.raises(DataError, match="item 1"):
        score_many([answer("print(1)\n")] * 2, [TACO_GT, {"bad": 1}])


# --- loaders and generator ----------------------------------------------------------------------

def _study_rows(paper_data, n_per_source: int = 10):
    import pandas as pd

    frame = pd.read_parquet(paper_data / "code-r1-12k" / "test.parquet")
    rows = frame.to_dict("records")
    leetcode = [i for i, r in enumerate(rows) if r["extra_info"]["dataset"] == "LeetCodeDataset"][:n_per_source]
    taco = [i for i, r in enumerate(rows) if r["extra_info"]["dataset"] != "LeetCodeDataset"]
    taco = taco[:: max(1, len(taco) // n_per_source)][:n_per_source]
    return [(i, rows[i]) for i in leetcode + taco]


def test_study_references_pass_on_a_sample(paper_data):
    problems = [load_row(row, f"test.parquet:{i}") for i, row in _study_rows(paper_data)]
    assert len(problems) == 20
    assert all(p.reference and p.question and not p.question.startswith("Please solve") for p in problems)
    results = score_many([p.reference for p in problems], [p.ground_truth for p in problems])
    assert [r["reason"] for r in results] == ["ok"] * 20


def test_load_row_rejects_rows_without_ground_truth():
    with pytest.raises(DataError, match="row 7"):
        load_row({"reward_model": {}, "extra_info": {"prompt": "x"}}, "file:row 7")


def test_load_mbpp_and_humaneval_shapes(mbpp_path):
    mbpp = load_mbpp(mbpp_path)
    assert len(mbpp) == 974 and mbpp[0].data_source == "mbpp" and "test_list" in mbpp[0].ground_truth
    humaneval = load_humaneval()
    assert len(humaneval) == 164 and humaneval[0].ground_truth["entry_point"] == "has_close_elements"
    sample = mbpp[:5] + humaneval[:5]
    assert all(r["acc"] for r in score_many([p.reference for p in sample], [p.ground_truth for p in sample]))


@pytest.mark.parametrize("difficulty", [1, 2, 3])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_generator(difficulty, lang):
    problems = [generate(i, seed=7, difficulty=difficulty, lang=lang) for i in range(6)]
    again = [generate(i, seed=7, difficulty=difficulty, lang=lang) for i in range(6)]
    assert problems == again
    assert len({p.question for p in problems}) > 1
    assert all(json.loads(json.dumps(p.ground_truth))["functional"].startswith("def check(candidate):") for p in problems)
    results = score_many([p.reference for p in problems], [p.ground_truth for p in problems])
    assert all(r["acc"] for r in results), results
    wrong = answer("def f(x):\n    return None\n\ndef solve(nums):\n    return None\n")
    assert not any(r["acc"] for r in score_many([wrong] * 6, [p.ground_truth for p in problems]))


def test_instructions_ask_for_a_python_block_in_answer():
    for text in DOMAIN.instructions.values():
        assert "<answer>" in text and "```python" in text


# --- the full reference runs (minutes): pytest -m slow ---------------------------------------------

@pytest.mark.slow
def test_all_study_references(paper_data):
    import pandas as pd

    rows = pd.read_parquet(paper_data / "code-r1-12k" / "test.parquet").to_dict("records")
    problems = [load_row(row, f"test.parquet:{i}") for i, row in enumerate(rows)]
    results = score_many([p.reference for p in problems], [p.ground_truth for p in problems])
    failed = {i: r["reason"] for i, r in enumerate(results) if not r["acc"]}
    # Known: four TACO references are not valid Python 3 ('return' outside function, a bad nonlocal).
    assert set(failed.values()) <= {"syntax error"}, failed
    assert len(results) - len(failed) >= 0.99 * len(results)


@pytest.mark.slow
def test_all_humaneval_canonical_solutions():
    problems = load_humaneval()
    results = score_many([p.reference for p in problems], [p.ground_truth for p in problems])
    assert sum(r["acc"] for r in results) == 164, [r for r in results if not r["acc"]]


@pytest.mark.slow
def test_all_mbpp_references(mbpp_path):
    problems = load_mbpp(mbpp_path)
    results = score_many([p.reference for p in problems], [p.ground_truth for p in problems])
    assert sum(r["acc"] for r in results) >= 0.99 * len(problems)
