"""Score sampled responses with the study's verifiers (`mdrl.compute_score`) and add the evaluation
extras: strict vs flexible extraction, format errors and response length.

Definitions (the same for every domain, so columns compare across suites):
  * accuracy      the verifier's own verdict (`acc`);
  * strict        correct *and* the answer sits in a complete <answer> block;
  * flexible      correct as is, or correct once a bare \\boxed{} is taken as the answer
                  (`verify.extract.boxed_as_answer`; not tried for code, where a box means nothing);
  * format error  no complete, non-empty <answer> block (`verify.extract.answer_block`).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from mdrl.domains.base import Problem
from mdrl.domains.registry import domain_for_source
from mdrl.reward import compute_score
from mdrl.verify.extract import answer_block, boxed_as_answer
from mdrl.verify.shaping import RewardConfig

log = logging.getLogger(__name__)


def score_response(problem: Problem, response: str, reward: RewardConfig | None = None) -> dict[str, Any]:
    """One response -> {score, acc, reason, fraction, acc_strict, acc_flexible, format_error}."""
    result = compute_score(
        problem.data_source, response, problem.ground_truth, problem.extra_info, reward=reward
    )
    answer, _ = answer_block(response)
    format_error = answer is None
    acc = bool(result["acc"])
    flexible = acc
    # a costly domain (one with a batch scorer: code runs in the sandbox) is not scored a second time
    if not acc and domain_for_source(problem.data_source).score_batch is None:
        lifted = boxed_as_answer(response)
        if lifted is not None:
            flexible = bool(
                compute_score(
                    problem.data_source, lifted, problem.ground_truth, problem.extra_info, reward=reward
                )["acc"]
            )
    return {
        "score": float(result["score"]),
        "acc": acc,
        "reason": str(result.get("reason", "")),
        "fraction": float(result.get("fraction", float(acc))),
        "acc_strict": acc and not format_error,
        "acc_flexible": flexible,
        "format_error": format_error,
    }


class Scorer:
    """Scores batches of (problem, response) pairs.

    Code responses are scored on a thread pool: their time goes to waiting on sandbox subprocesses.
    Everything else is scored on the calling thread: those verifiers are pure Python (threads only
    queue on the GIL), and the math verifier's time limit starts a helper interpreter per calling
    thread, which a short-lived pool would pay for again and again.
    """

    def __init__(self, reward: RewardConfig | None = None, workers: int = 4) -> None:
        self.reward = reward
        self.workers = max(1, workers)
        self._pool: ThreadPoolExecutor | None = None

    def _score(self, job: tuple[Problem, str]) -> dict[str, Any]:
        return score_response(job[0], job[1], self.reward)

    def score(self, jobs: Sequence[tuple[Problem, str]]) -> list[dict[str, Any]]:
        results: list[dict[str, Any] | None] = [None] * len(jobs)
        threaded = [
            i for i, (problem, _) in enumerate(jobs) if domain_for_source(problem.data_source).score_batch is not None
        ]
        if self.workers > 1 and len(threaded) > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="mdrl-score")
            for i, result in zip(threaded, self._pool.map(self._score, [jobs[i] for i in threaded])):
                results[i] = result
        for i, job in enumerate(jobs):
            if results[i] is None:
                results[i] = self._score(job)
        return [r for r in results if r is not None]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
