"""`compute_score`: the veRL-signature entry point that every adapter (CLI, TRL, veRL, server) calls.

It sits above the domains (it routes a data_source to its domain through the registry) and below every
engine; `mdrl.verify` is the leaf the domains build on and imports no domain.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

from mdrl.domains.registry import domain_for_source
from mdrl.verify.extract import as_text, assistant_turn
from mdrl.verify.result import DataError, Verdict, VerifierUnavailable
from mdrl.verify.shaping import RewardConfig, shape

log = logging.getLogger(__name__)


def compute_score(
    data_source: str,
    solution_str: Any,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    reward: "RewardConfig | Mapping[str, Any] | str | None" = None,
) -> dict[str, Any]:
    """Score one response. Returns at least {"score": float, "acc": bool, "reason": str}.

    `solution_str` may be the response alone or prompt + response. `reward` overrides the domain's
    default reward config: a RewardConfig, a mapping of its fields, or a mode ("proportional"). Unknown data sources and malformed
    ground truths raise (they are data errors), and so does a verifier that cannot run here
    (`VerifierUnavailable`); anything the model wrote yields score 0 and a reason.
    """
    domain = domain_for_source(data_source)
    config = RewardConfig.from_mapping(reward) if reward is not None else domain.default_reward
    if ground_truth is None:
        raise DataError(f"missing ground_truth for data_source {data_source!r}")
    extra = dict(extra_info) if isinstance(extra_info, Mapping) else None
    text = as_text(solution_str)
    if text is None:
        verdict = Verdict.fail("response is not text")
    else:
        response = assistant_turn(text)
        if not response.strip():
            verdict = Verdict.fail("empty response")
        else:
            try:
                verdict = domain.verify(response, ground_truth, extra)
            except (DataError, VerifierUnavailable):
                raise
            except Exception as exc:  # a verifier bug must cost reward, never grant it
                log.warning("verifier %s raised on a response: %r", domain.name, exc, exc_info=True)
                verdict = Verdict.fail(f"verifier error: {type(exc).__name__}")
    return shape(verdict, text, config)
