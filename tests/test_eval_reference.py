"""Reference check, end to end over the real OpenAI protocol.

A replay "model" (a FastAPI app on 127.0.0.1, a free port, started here) answers every prompt with a
stored response. The `openai` backend, the runner, the cache and the study's verifiers do the rest.
Serving each item's reference must score >= 99%; serving another item's reference (well-formed, but
the answer to a different question) must score 0%.

Default runs use a slice of each suite spread over its groups; `-m slow` runs the full suites.
Suites whose domain (or loader) has not landed yet are skipped.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mdrl.domains.base import DataError
from mdrl.eval.backends.openai import OpenAIBackend
from mdrl.eval.replay import ReplayStore, replay_app
from mdrl.eval.runner import EvalOptions, evaluate
from mdrl.eval.serving import BackgroundServer
from mdrl.eval.suites import Suite, load_suite, user_message
from mdrl.eval.types import GenRequest, SamplingConfig
from mdrl.templates import Template
from mdrl.verify.result import parse_json_field

#: suite -> items in the fast slice (code suites run every reference in the sandbox: keep them small).
FAST_SLICE = {
    "math500": 30,
    "aime24": 8,
    "countdown": 40,
    "kk": 36,
    "zebra": 30,
    "humaneval": 6,
    "mbpp": 6,
    "leetcode": 6,
    "taco": 6,
    "gen:countdown:3-4:20": None,
    "gen:knights_knaves:3-5:15": None,
    "gen:zebra:3-4:10": None,
    "gen:math:1-3:12": None,
}


def _suite_or_skip(spec: str, root, limit: int | None) -> Suite:
    try:
        return load_suite(spec, root=root, limit=limit)
    except (DataError, KeyError) as exc:  # domain, loader or data file not there (yet)
        pytest.skip(f"suite {spec!r} unavailable: {exc}")


def _answer_key(ground_truth) -> str:
    """The ground truth with notation-only differences removed, so that a donor answer is never the
    right answer written another way: MATH-500 has both "5" and "x=5" (the verifier rightly accepts
    one for the other), and LeetCode has "Minimum Number of Pushes to Type Word" I and II, whose
    general solution passes both. Code is keyed by the function under test."""
    parsed = parse_json_field(ground_truth, "ground truth")
    if isinstance(parsed, dict) and "functional" in parsed:
        called = re.findall(r"Solution\(\)\.(\w+)|check\((\w+)\)|assert\s+(\w+)\(", str(parsed["functional"]))
        return "fn:" + ",".join(sorted({name for group in called for name in group if name}))
    text = parsed if isinstance(parsed, str) else json.dumps(parsed, sort_keys=True, default=str)
    text = re.sub(r"\\(left|right|!|,|;)", "", text)
    text = re.sub(r"\\[dt]frac", r"\\frac", text)
    text = re.sub(r"^\s*[a-z]\s*=", "", text)
    return re.sub(r"\s+", "", text)


def _wrong_responses(suite: Suite) -> dict[str, str]:
    """For each item, the reference of the next item whose ground truth differs."""
    items = [item for item in suite.items if item.problem.reference]
    wrong = {}
    for i, item in enumerate(items):
        mine = _answer_key(item.problem.ground_truth)
        for step in range(1, len(items)):
            donor = items[(i + step) % len(items)]
            if _answer_key(donor.problem.ground_truth) != mine:
                wrong[item.item_id] = donor.problem.reference
                break
    return wrong


def _replay(suite: Suite, responses: dict[str, str], template: Template, out_dir) -> dict:
    """Evaluate `suite` against a replay server that knows `responses` (item id -> response)."""
    kept = Suite(suite.name, suite.source, tuple(i for i in suite.items if i.item_id in responses))
    store = ReplayStore()
    for item in kept.items:
        store.add(
            GenRequest(user_message(item, template.lang), template, key=item.item_id), responses[item.item_id]
        )
    with BackgroundServer(replay_app(store, model="replay")) as server:
        backend = OpenAIBackend(server.url, concurrency=4, max_retries=0, timeout=120)
        try:
            summary = evaluate(
                backend,
                [kept],
                template,
                SamplingConfig(max_new_tokens=64),
                out_dir,
                options=EvalOptions(progress=False, score_workers=4),
            )
        finally:
            backend.close()
    assert store.hits == len(kept.items)  # every answer really went over HTTP
    return summary["runs"][0]


def _check(spec: str, root, limit, tmp_path) -> None:
    suite = _suite_or_skip(spec, root, limit)
    references = {item.item_id: item.problem.reference for item in suite.items if item.problem.reference}
    assert len(references) >= 0.9 * len(suite.items), "most items must carry a reference"
    right = _replay(suite, references, Template("r1-base"), tmp_path / "right")
    assert right["n_items"] == len(references)
    assert right["accuracy"] >= 0.99, right.get("fail_reasons")
    assert right["format_error_rate"] == 0.0
    assert right["cached_items"] == 0
    wrong = _replay(suite, _wrong_responses(suite), Template("r1-base"), tmp_path / "wrong")
    assert wrong["n_items"] >= len(references) - 1
    print(f"\n{spec}: references {100 * right['accuracy']:.1f}% of {right['n_items']}, "
          f"wrong answers {100 * wrong['accuracy']:.1f}% of {wrong['n_items']}")
    assert wrong["accuracy"] == 0.0, "wrong answers scored"
    assert wrong["acc_flexible"] == 0.0


@pytest.mark.parametrize("spec", list(FAST_SLICE))
def test_references_score_and_wrong_answers_do_not(spec, tmp_path, paper_data):
    _check(spec, paper_data.parent, FAST_SLICE[spec], tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("spec", [s for s in FAST_SLICE if not s.startswith("gen:")])
def test_full_suites_against_references(spec, tmp_path, paper_data):
    _check(spec, paper_data.parent, None, tmp_path)


def test_chat_endpoint_replays_by_messages(tmp_path, paper_data):
    suite = _suite_or_skip("countdown", paper_data.parent, 8)
    references = {item.item_id: item.problem.reference for item in suite.items}
    run = _replay(suite, references, Template("chat"), tmp_path)
    assert run["accuracy"] == 1.0
    assert run["template"] == "chat"
    first = json.loads(Path(run["samples_file"]).read_text().splitlines()[0])
    assert first["prompt"].startswith("[system] ")  # what went over /v1/chat/completions


def test_unknown_prompt_is_an_error_not_an_empty_answer(tmp_path, paper_data):
    from mdrl.eval.backends.openai import ServerError

    suite = _suite_or_skip("countdown", paper_data.parent, 2)
    with BackgroundServer(replay_app(ReplayStore())) as server:
        backend = OpenAIBackend(server.url, max_retries=0)
        with pytest.raises(ServerError, match="404"):
            evaluate(
                backend,
                [suite],
                "r1-base",
                SamplingConfig(max_new_tokens=8),
                tmp_path,
                options=EvalOptions(progress=False),
            )
        backend.close()
