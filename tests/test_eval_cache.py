"""The resumable cache: torn lines, partial items, changed items and changed configs; the runner's
resume after a crash, with an in-process stub backend (the SIGKILL subprocess test is in
test_eval_resume.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mdrl.domains.base import Problem
from mdrl.eval.cache import CacheBusy, ResultCache
from mdrl.eval.runner import EvalOptions, evaluate
from mdrl.eval.suites import EvalItem, Suite
from mdrl.eval.types import Completion, Generation, SamplingConfig

KEY = {"model": "m", "suite": "s", "template": "r1-base", "lang": "en", "sampling": {"n": 2}}


def _rec(item, index, fingerprint="f"):
    return {"item_id": item, "sample_index": index, "fingerprint": fingerprint, "acc": True}


def test_cache_reuses_only_complete_items_with_the_same_fingerprint(tmp_path):
    with ResultCache(tmp_path, KEY) as cache:
        cache.append([_rec("a", 0), _rec("a", 1)])  # complete
        cache.append([_rec("b", 0)])  # one of two samples: not reusable
        cache.append([_rec("c", 0, "old"), _rec("c", 1, "old")])  # the item changed since
    reusable = ResultCache(tmp_path, KEY).complete_items(2, {"a": "f", "b": "f", "c": "new"})
    assert sorted(reusable) == ["a"]
    assert [r["sample_index"] for r in reusable["a"]] == [0, 1]


def test_torn_last_line_is_ignored_then_cut_before_appending(tmp_path):
    with ResultCache(tmp_path, KEY) as cache:
        cache.append([_rec("a", 0), _rec("a", 1)])
    path = ResultCache(tmp_path, KEY).path
    with path.open("ab") as handle:  # what SIGKILL in the middle of a write leaves
        handle.write(b'{"item_id": "b", "sample_ind')
    cache = ResultCache(tmp_path, KEY)
    assert sorted(cache.load()) == ["a"]
    assert cache.torn_lines == 1
    with cache:
        cache.append([_rec("b", 0), _rec("b", 1)])
    lines = path.read_text().splitlines()
    assert [json.loads(line)["item_id"] for line in lines] == ["a", "a", "b", "b"]
    assert sorted(ResultCache(tmp_path, KEY).complete_items(2, {"a": "f", "b": "f"})) == ["a", "b"]


def test_a_changed_config_gets_another_file(tmp_path):
    first = ResultCache(tmp_path, KEY)
    other = ResultCache(tmp_path, {**KEY, "sampling": {"n": 2, "temperature": 0.7}})
    assert first.path != other.path
    assert json.loads((tmp_path / f"{other.key}.key.json").read_text())["sampling"]["temperature"] == 0.7


def test_two_writers_on_one_cache_are_refused(tmp_path):
    with ResultCache(tmp_path, KEY):
        with pytest.raises(CacheBusy):
            ResultCache(tmp_path, KEY).open()


# --------------------------------------------------------------------------- runner resume


class Crash(RuntimeError):
    pass


class ScriptedBackend:
    """Answers every countdown item with its reference; raises after `crash_after` calls."""

    batch_size = 2

    def __init__(self, crash_after=None, identity="stub:model"):
        self.identity = identity
        self.name = "stub"
        self.crash_after = crash_after
        self.calls = 0
        self.prompts_seen = 0

    def generate(self, requests, sampling):
        if self.crash_after is not None and self.calls >= self.crash_after:
            raise Crash("simulated crash")
        self.calls += 1
        self.prompts_seen += len(requests)
        out = []
        for request in requests:
            reference = REFERENCES[request.key]
            out.append(
                Generation(
                    prompt=request.user_message,
                    completions=[Completion(reference, n_tokens=7) for _ in range(sampling.n)],
                )
            )
        return out

    def close(self):
        pass


REFERENCES: dict[str, str] = {}


def _suite(n=6):
    items = []
    for i in range(n):
        a, b = 10 + i, 3
        problem = Problem(
            domain="countdown",
            data_source="countdown",
            question=f"Using the numbers [{a}, {b}], create an equation that equals {a + b}.",
            ground_truth={"numbers": [a, b], "target": a + b},
            difficulty=2,
        )
        item = EvalItem(f"toy/{i}", problem, group="2nums")
        REFERENCES[item.item_id] = f"<think>add</think>\n<answer>{a} + {b}</answer>"
        items.append(item)
    return Suite(name="toy-countdown", source="test", items=tuple(items))


@pytest.fixture()
def countdown_domain():
    from mdrl.domains import get_domain

    domain = get_domain("countdown")
    if domain.load_row is None and domain.generate is None:
        pytest.skip("countdown domain not landed")
    return domain


def test_runner_resumes_after_a_crash_without_recomputing(tmp_path, countdown_domain):
    suite = _suite(6)
    options = EvalOptions(progress=False, score_workers=1)
    crashing = ScriptedBackend(crash_after=2)  # 2 batches of 2 items land in the cache, then it dies
    with pytest.raises(Crash):
        evaluate(crashing, [suite], "r1-base", SamplingConfig(), tmp_path, options=options)
    resumed = ScriptedBackend()
    summary = evaluate(resumed, [suite], "r1-base", SamplingConfig(), tmp_path, options=options)
    run = summary["runs"][0]
    assert run["cached_items"] == 4 and run["generated_items"] == 2
    assert resumed.prompts_seen == 2
    assert run["accuracy"] == 1.0 and run["n_items"] == 6
    samples = [json.loads(line) for line in Path(run["samples_file"]).read_text().splitlines()]
    assert [s["item_id"] for s in samples] == [item.item_id for item in suite.items]

    again = ScriptedBackend()
    rerun = evaluate(again, [suite], "r1-base", SamplingConfig(), tmp_path, options=options)["runs"][0]
    assert rerun["cached_items"] == 6 and again.prompts_seen == 0

    other_config = ScriptedBackend()
    changed = evaluate(
        other_config, [suite], "r1-base", SamplingConfig(temperature=0.7), tmp_path, options=options
    )["runs"][0]
    assert changed["cached_items"] == 0 and other_config.prompts_seen == 6

    other_template = ScriptedBackend()
    evaluate(other_template, [suite], "plain", SamplingConfig(), tmp_path, options=options)
    assert other_template.prompts_seen == 6


def test_runner_recomputes_an_item_whose_ground_truth_changed(tmp_path, countdown_domain):
    suite = _suite(3)
    options = EvalOptions(progress=False, score_workers=1)
    evaluate(ScriptedBackend(), [suite], "r1-base", SamplingConfig(), tmp_path, options=options)
    item = suite.items[0]
    edited = EvalItem(
        item.item_id,
        Problem(**{**item.problem.__dict__, "ground_truth": {"numbers": [10, 3], "target": 7}}),
        item.group,
    )
    REFERENCES[item.item_id] = "<think>sub</think>\n<answer>10 - 3</answer>"
    backend = ScriptedBackend()
    run = evaluate(
        backend,
        [Suite("toy-countdown", "test", (edited, *suite.items[1:]))],
        "r1-base",
        SamplingConfig(),
        tmp_path,
        options=options,
    )["runs"][0]
    assert backend.prompts_seen == 1 and run["cached_items"] == 2
