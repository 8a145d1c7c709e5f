"""Evaluation scoring: the verifier's verdict plus strict (answer tag) and flexible (tag or bare
\\boxed) extraction side by side, and format errors. Realistic model outputs, Math-Verify style."""

from __future__ import annotations

import pytest

from mdrl.domains.base import Problem
from mdrl.eval.scoring import Scorer, score_response

AIME = Problem(domain="math", data_source="AIME", question="Find the number of minutes.", ground_truth="204")
CD = Problem(
    domain="countdown",
    data_source="countdown",
    question="Make 13 from [10, 3].",
    ground_truth={"numbers": [10, 3], "target": 13},
)


@pytest.mark.parametrize(
    "problem,pred,acc,strict,flexible,format_error",
    [
        # the answer where the template asks for it
        (
            AIME,
            "<think>\n9/s + t/60 = 4 ... so 204 minutes\n</think>\n<answer> \\boxed{204} </answer>",
            True,
            True,
            True,
            False,
        ),
        (AIME, "<think>walk</think> <answer>204</answer>", True, True, True, False),
        # chat-style answer with a bare box: the math verifier accepts it, strict extraction does not
        (AIME, "The walk takes $3.4$ hours, i.e. $\\boxed{204}$ minutes.", True, False, True, True),
        # wrong in the tag, right in a box after it: the tag decides, both ways
        (AIME, "<answer>205</answer>\nWait, recheck: \\boxed{204}", False, False, False, False),
        (AIME, "<answer>205</answer>", False, False, False, False),
        (AIME, "<think>so the answer is 204", False, False, False, True),  # cut off: no answer at all
        # countdown needs the tag; flexible extraction takes the box when the tag is missing
        (CD, "<think>10 + 3 = 13</think>\n<answer> 10 + 3 </answer>", True, True, True, False),
        (CD, "10 + 3 = 13, so the equation is \\boxed{10 + 3}", False, False, True, True),
        (CD, "<answer>10 - 3</answer>", False, False, False, False),
        (CD, "<answer>", False, False, False, True),  # unclosed tag: a format error
    ],
)
def test_strict_and_flexible_side_by_side(problem, pred, acc, strict, flexible, format_error):
    scored = score_response(problem, pred)
    assert (scored["acc"], scored["acc_strict"], scored["acc_flexible"], scored["format_error"]) == (
        acc,
        strict,
        flexible,
        format_error,
    )
    assert scored["score"] == float(acc)
    assert isinstance(scored["reason"], str) and scored["reason"]


def test_scorer_keeps_order_across_threaded_and_inline_domains():
    code = Problem(
        domain="code",
        data_source="mbpp",
        question="Write add(a, b).",
        ground_truth={"functional": "assert add(1, 2) == 3"},
    )
    jobs = [
        (AIME, "<answer>204</answer>"),
        (code, "<answer>\n```python\ndef add(a, b):\n    return a + b\n```\n</answer>"),
        (CD, "<answer>10 - 3</answer>"),
        (code, "<answer>\n```python\ndef add(a, b):\n    return a - b\n```\n</answer>"),
    ]
    scorer = Scorer(workers=2)
    try:
        results = scorer.score(jobs)
    except KeyError as exc:  # the code domain is not registered in this checkout
        pytest.skip(f"code domain unavailable: {exc}")
    finally:
        scorer.close()
    assert [r["acc"] for r in results] == [True, True, False, False]
