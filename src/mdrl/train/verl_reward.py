"""veRL custom reward function: mdrl's verifiers behind veRL's `compute_score` interface.

Point veRL at this module as a package, so every Ray node finds it where mdrl is installed:
    reward.custom_reward_function.path=pkg://mdrl.train.verl_reward
    reward.custom_reward_function.name=compute_score
and, to choose reward variants per domain, {domain: {mode, format_weight}} as inline JSON (or the path
of a JSON file):
    +reward.custom_reward_function.reward_kwargs.reward_config='{"knights_knaves":{"mode":"proportional"}}'
(`mdrl train --engine verl` writes both into launch.sh.)

veRL's reward loop builds its extra-info arrays from the keys of the first result in a batch, so every
call returns the same keys: score, acc, fraction, format, domain, reason (strings are skipped by veRL's
metric aggregation). Malformed ground truths raise `DataError` (a data bug must stop the run);
whatever the model wrote only ever costs reward.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from mdrl.domains.registry import domain_for_source
from mdrl.reward import compute_score as mdrl_compute_score
from mdrl.verify.extract import as_text, has_think_answer_format
from mdrl.verify.shaping import RewardConfig

log = logging.getLogger(__name__)

RESULT_KEYS = ("score", "acc", "fraction", "format", "domain", "reason")


@lru_cache(maxsize=8)
def _configs_from_text(text: str) -> dict[str, RewardConfig]:
    """Inline JSON (what launch.sh passes) or the path of a JSON file."""
    if text.lstrip().startswith("{"):
        return _configs_from_mapping(json.loads(text), "inline JSON")
    return _configs_from_mapping(json.loads(Path(text).read_text(encoding="utf-8")), text)


def _configs_from_mapping(data: Any, where: str) -> dict[str, RewardConfig]:
    if not isinstance(data, Mapping):
        raise ValueError(f"reward_config {where}: expected a mapping of domain -> {{mode, format_weight}}")
    return {str(domain): RewardConfig.from_mapping(dict(options)) for domain, options in data.items()}


def configs_from_kwargs(reward_config: str | Mapping[str, Any] | None) -> dict[str, RewardConfig]:
    """Per-domain reward configs from inline JSON, a JSON file path or a mapping (None: every domain's
    default)."""
    if reward_config is None:
        return {}
    if isinstance(reward_config, (str, Path)):
        return _configs_from_text(str(reward_config))
    return _configs_from_mapping(reward_config, "mapping")


def compute_score(
    data_source: str,
    solution_str: Any,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    reward_config: str | Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """veRL's reward-function signature. Extra keyword arguments veRL adds are accepted and ignored."""
    domain = domain_for_source(data_source).name
    reward = configs_from_kwargs(reward_config).get(domain)
    result = mdrl_compute_score(data_source, solution_str, ground_truth, extra_info, reward=reward)
    text = as_text(solution_str)
    fmt = result.get("format")
    if fmt is None:
        fmt = 1.0 if text is not None and has_think_answer_format(text) else 0.0
    return {
        "score": float(result["score"]),
        "acc": bool(result["acc"]),
        "fraction": float(result["fraction"]),
        "format": float(fmt),
        "domain": domain,
        "reason": str(result["reason"]),
    }
