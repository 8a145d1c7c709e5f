"""A cheap but real CellRunner for the study tests, and the tests that it is real.

"Training" writes a checkpoint: a JSON file of how many items of each domain's suite the model
answers correctly. The "model" answers those items with their reference response and every other
item with a wrong answer, and it is evaluated through mdrl.eval.evaluate, so every accuracy in the
study's tables went through the real verifiers (mdrl.compute_score). The rule that turns a mixture
into skills is simple and known, so tests can predict every number:

    starting model: BASE_CORRECT[model kind][domain] items right (of N_ITEMS per suite)
    training on a mixture with keys K (domain names here), seed s:
        + 4 on a domain in K when K has one key, + 3 when K has more (its share is diluted)
        + 1 on a domain not in K (a little transfer)
        + s on every domain; capped at N_ITEMS

The subprocess used by the kill-and-resume test imports this module (`--runner
test_study_support:make_runner`); MDRL_STUDY_TEST_SLEEP slows training down so the test has time to
kill it, and MDRL_STUDY_TEST_LOG collects one line per train() call.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

N_ITEMS = 8
SUITES = {"countdown": f"gen:countdown:3:{N_ITEMS}", "knights_knaves": f"gen:knights_knaves:2:{N_ITEMS}"}
BASE_CORRECT = {"base": {"countdown": 2, "knights_knaves": 1}, "instruct": {"countdown": 3, "knights_knaves": 2}}
WRONG = "<think>I am not sure.</think>\n<answer>no idea</answer>"


def trained_correct(kind: str, keys: Sequence[str], seed: int) -> dict[str, int]:
    """Items right per domain after training on `keys` with `seed` (the rule in the module doc)."""
    out = {}
    for domain, start in BASE_CORRECT[kind].items():
        gain = (4 if len(keys) == 1 else 3) if domain in keys else 1
        out[domain] = min(N_ITEMS, start + gain + seed)
    return out


class StoredBackend:
    """An mdrl.eval Backend that answers each item (by its id) with a stored response."""

    batch_size = 16

    def __init__(self, responses: Mapping[str, str], identity: str) -> None:
        self.responses = dict(responses)
        self.identity = identity
        self.name = identity

    def generate(self, requests: Sequence[Any], sampling: Any) -> list[Any]:
        from mdrl.eval.types import Completion, Generation

        return [Generation(prompt=request.user_message,
                           completions=[Completion(self.responses[request.key])] * sampling.n)
                for request in requests]

    def close(self) -> None:
        pass


def stored_responses(correct: Mapping[str, int], suites: Sequence[str], lang: str = "en") -> dict[str, str]:
    """item id -> response: the first `correct[domain]` items of each suite get their reference."""
    from mdrl.eval import load_suite

    responses = {}
    for spec in suites:
        suite = load_suite(spec, lang=lang)
        for index, item in enumerate(suite.items):
            right = index < correct.get(item.problem.domain, 0)
            responses[item.item_id] = item.problem.reference if right else WRONG
    return responses


class StoredResponseRunner:
    """CellRunner whose train() writes a skill checkpoint and evaluate() runs mdrl.eval on it."""

    def __init__(self, config: Any, sleep: float = 0.0, log_path: Path | None = None) -> None:
        self.config = config
        self.sleep = sleep
        self.log_path = log_path

    def model_path(self, model: Any, work_dir: Path) -> str:
        path = work_dir / "models" / f"{model.name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"correct": BASE_CORRECT[model.kind], "from": model.path}))
        return str(path)

    def train(self, cell: Any, model_path: str, settings: Mapping[str, Any], work_dir: Path) -> dict[str, Any]:
        time.sleep(self.sleep)
        correct = trained_correct(cell.model.kind, cell.mixture.keys, cell.seed)
        checkpoint = work_dir / "checkpoint.json"
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        checkpoint.write_text(json.dumps({"correct": correct, "from": model_path, "mix": settings["data"]["mix"]}))
        if self.log_path is not None:
            with open(self.log_path, "a", encoding="utf-8") as handle:
                handle.write(cell.cell_id + "\n")
        return {"checkpoint": str(checkpoint), "steps": 1}

    def evaluate(self, model_path: str, suites: Sequence[str], template: str, lang: str, work_dir: Path
                 ) -> dict[str, dict[str, Any]]:
        from mdrl.eval import EvalOptions, evaluate
        from mdrl.study.runner import scores_from_summary
        from mdrl.templates import Template

        correct = json.loads(Path(model_path).read_text())["correct"]
        backend = StoredBackend(stored_responses(correct, suites, lang), identity=f"stored:{model_path}")
        summary = evaluate(backend, list(suites), template=Template(template, lang), out_dir=work_dir,
                           options=EvalOptions(lang=lang, progress=False, score_workers=1))
        return scores_from_summary(summary, suites)


def make_runner(config: Any) -> StoredResponseRunner:
    """Factory for `mdrl study --runner test_study_support:make_runner`."""
    log = os.environ.get("MDRL_STUDY_TEST_LOG")
    return StoredResponseRunner(config, float(os.environ.get("MDRL_STUDY_TEST_SLEEP", "0")),
                                Path(log) if log else None)


# --------------------------------------------------------------------------- the runner is real


def test_stored_model_scores_through_the_verifiers(tmp_path):
    """References score 1 and the wrong answer 0 under the real verifiers, item by item."""
    runner = StoredResponseRunner(config=None)
    checkpoint = tmp_path / "m.json"
    checkpoint.write_text(json.dumps({"correct": {"countdown": 3, "knights_knaves": 8}}))
    scores = runner.evaluate(str(checkpoint), list(SUITES.values()), "r1-base", "en", tmp_path / "eval")
    assert scores[SUITES["countdown"]]["accuracy"] == 3 / N_ITEMS
    assert scores[SUITES["knights_knaves"]]["accuracy"] == 1.0
    samples = [json.loads(line) for line in
               Path(scores[SUITES["countdown"]]["samples_file"]).read_text().splitlines()]
    assert [s["acc"] for s in samples] == [True] * 3 + [False] * 5
    assert all(s["reason"] != "ok" for s in samples[3:])  # the verifier says why the wrong ones failed


def test_trained_correct_rule():
    assert trained_correct("base", ("countdown",), 0) == {"countdown": 6, "knights_knaves": 2}
    assert trained_correct("base", ("countdown", "knights_knaves"), 1) == {"countdown": 6, "knights_knaves": 5}
    assert trained_correct("instruct", ("knights_knaves",), 1) == {"countdown": 5, "knights_knaves": 7}
