"""Property-based tests (hypothesis) of everything that reads untrusted input: the JSONL reader of
`mdrl score`, the reward server's body parser, and every domain's `compute_score`.

Arbitrary bytes, text, nesting, numbers and unicode must never raise anything but the refusal the
interface documents, never take more than a bounded time, and never pay reward for a response
that does not hold the reference answer. The default suite runs a few dozen examples per property;
`pytest -m slow tests/test_properties.py` runs the long fuzzing profile.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mdrl
from mdrl.commands.score import BadLine, score_line
from mdrl.domains import all_domains
from mdrl.serve import RequestError, ServeConfig, decode_body, parse_openrlhf_request, parse_score_request
from mdrl.verify.extract import last_answer_tag

QUICK = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LONG = settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: A hang, not a speed target: the slowest legitimate call (a code sample in the sandbox) takes ~10 ms.
BOUND_S = 20.0

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=25)
ROW_KEYS = st.sampled_from(["data_source", "solution_str", "ground_truth", "extra_info", "reward"])
SOURCES = st.sampled_from(["countdown", "kk_logic", "zebra", "math500", "mbpp", "humaneval", "nope", ""])
ROWS = st.dictionaries(ROW_KEYS, JSON_VALUES | SOURCES, max_size=5)
NESTED = st.integers(min_value=1, max_value=200_000).map(lambda n: b"[" * n + b"]" * n)
LINES = st.one_of(st.binary(max_size=300), ROWS.map(lambda r: json.dumps(r).encode()), NESTED,
                  st.integers(min_value=3000, max_value=6000).map(lambda n: b'{"x": ' + b"9" * n + b"}"))

#: Pieces of answer formats, none of them an answer: responses built from these and arbitrary text
#: probe extraction (many tags, empty tags, unclosed tags, fences, boxes) without ever being right.
FORMAT_PIECES = ["<answer>", "</answer>", "<think>", "</think>", "\\boxed{", "}", "```python\n", "```",
                 "\n", " ", "Assistant:", "<|im_start|>assistant\n", "{", "[", "]", '"House 1": ', "is a",
                 "knight", "knave", "def f(x):\n    return ", "print(", ")", "import sys\nsys.exit(0)\n"]
RESPONSES = st.one_of(
    st.text(max_size=400),
    st.lists(st.sampled_from(FORMAT_PIECES) | st.text(max_size=8), max_size=40).map("".join),
)


def _bounded(call):
    start = time.monotonic()
    out = call()
    assert time.monotonic() - start < BOUND_S, "took longer than the bound"
    return out


# --- the JSONL reader of `mdrl score` ---------------------------------------------------------------

def _check_line(raw: bytes) -> None:
    try:
        result = _bounded(lambda: score_line(raw, None))
    except BadLine as exc:
        assert str(exc)
        return
    assert 0.0 <= result["score"] <= 1.0 and isinstance(result["acc"], bool) and isinstance(result["reason"], str)


@QUICK
@given(LINES)
def test_any_line_is_scored_or_refused_with_a_reason(raw):
    _check_line(raw)


@pytest.mark.slow
@LONG
@given(LINES)
def test_any_line_is_scored_or_refused_with_a_reason_long(raw):
    _check_line(raw)


# --- the reward server's body parser --------------------------------------------------------------------

def _check_body(body: bytes) -> None:
    config = ServeConfig(data_source="countdown")
    try:
        value = decode_body(body)
        for parse in (parse_score_request, parse_openrlhf_request):
            try:
                parse(value, config)
            except RequestError as exc:
                assert 400 <= exc.status < 500 and len(exc.detail) <= 503
    except RequestError as exc:
        assert exc.status == 400 and len(exc.detail) <= 503


BODIES = st.one_of(st.binary(max_size=300), NESTED, JSON_VALUES.map(lambda v: json.dumps(v).encode()),
                   st.lists(ROWS, max_size=4).map(lambda v: json.dumps(v).encode()),
                   st.fixed_dictionaries({"items": st.lists(ROWS, max_size=3), "reward": JSON_VALUES})
                   .map(lambda v: json.dumps(v).encode()))


@QUICK
@given(BODIES)
def test_any_body_is_parsed_or_refused_with_a_4xx(body):
    _check_body(body)


@pytest.mark.slow
@LONG
@given(BODIES)
def test_any_body_is_parsed_or_refused_with_a_4xx_long(body):
    _check_body(body)


# --- every domain's compute_score ---------------------------------------------------------------------------

def _problems():
    out = []
    for domain in all_domains().values():
        if domain.generate is not None:
            out.append(domain.generate(3, 11, min(domain.difficulties), "en"))
    return out


PROBLEMS = _problems()


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _check_response(problem, response: str) -> None:
    for reward in ("binary", "proportional"):
        result = _bounded(lambda: mdrl.compute_score(problem.data_source, response, problem.ground_truth,
                                                     reward=reward))
        assert 0.0 <= result["score"] <= 1.0 and isinstance(result["reason"], str) and result["reason"]
        if result["score"] > 0:
            answer = last_answer_tag(problem.reference)
            assert answer is not None and _squash(answer) in _squash(response), (response, result)


@pytest.mark.parametrize("problem", PROBLEMS, ids=[p.domain for p in PROBLEMS])
@QUICK
@given(response=RESPONSES)
def test_no_reward_without_the_answer(problem, response):
    _check_response(problem, response)


@pytest.mark.slow
@pytest.mark.parametrize("problem", PROBLEMS, ids=[p.domain for p in PROBLEMS])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(response=RESPONSES)
def test_no_reward_without_the_answer_long(problem, response):
    _check_response(problem, response)


@pytest.mark.parametrize("problem", PROBLEMS, ids=[p.domain for p in PROBLEMS])
def test_the_reference_itself_is_paid(problem):
    """The control for the property above: the property's own check accepts the reference."""
    result = mdrl.compute_score(problem.data_source, problem.reference, problem.ground_truth)
    assert result["acc"], result
