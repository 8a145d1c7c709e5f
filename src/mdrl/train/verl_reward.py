"""veRL custom reward function: mdrl's verifiers behind veRL's `compute_score` interface.

Point veRL at this file:
    reward.custom_reward_function.path=/.../mdrl/train/verl_reward.py
    reward.custom_reward_function.name=compute_score
and, to choose reward variants per domain, a JSON file {domain: {mode, format_weight}}:
    +reward.custom_reward_function.reward_kwargs.reward_config=/.../reward.json
(`mdrl train --engine verl` writes both into launch.sh.) veRL loads the file by path, so this module
imports mdrl absolutely; mdrl must be installed in the environment of veRL's reward workers.

veRL's reward loop builds its extra-info arrays from the keys of the first result in a batch, so every
call returns the same keys: score, acc, fraction, format, reason (strings are skipped by veRL's
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

RESULT_KEYS = ("score", "acc", "fraction", "format", "reason")


@lru_cache(maxsize=8)
def _configs_from_file(path: str) -> dict[str, RewardConfig]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return _configs_from_mapping(data, path)


def _configs_from_mapping(data: Any, where: str) -> dict[str, RewardConfig]:
    if not isinstance(data, Mapping):
        raise ValueError(f"reward_config {where}: expected a mapping of domain -> {{mode, format_weight}}")
    return {str(domain): RewardConfig.from_mapping(dict(options)) for domain, options in data.items()}


def configs_from_kwargs(reward_config: str | Mapping[str, Any] | None) -> dict[str, RewardConfig]:
    """Per-domain reward configs from a JSON file path or a mapping (None: every domain's default)."""
    if reward_config is None:
        return {}
    if isinstance(reward_config, (str, Path)):
        return _configs_from_file(str(reward_config))
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
        "reason": str(result["reason"]),
    }
