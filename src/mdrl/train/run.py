"""The run directory both engines write: resolved config, data, logs, checkpoints.

<run>/config.yaml        the fully resolved TrainConfig (preset + file + overrides)
<run>/data/              items.jsonl + manifest.json (TRL) or train/val parquet (veRL)
<run>/metrics.jsonl      one line per logged optimizer step
<run>/consumed.jsonl     one line per rollout batch: the prompts the trainer consumed
                         (run.nproc > 1: consumed.rank<r>.jsonl, each rank's share of every batch)
<run>/summary.json       end-of-run numbers
<run>/checkpoints/       checkpoint-<step>/ (TRL) or veRL's global_step_<n>/
<run>/tensorboard/       event files
<run>/final/             the trained model (TRL)
<run>/base_model/        the warmed-up tiny model, when model.path is 'tiny'
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mdrl.train.config import TrainConfig

log = logging.getLogger(__name__)

#: Settings that may change between a run and its resumption without changing what is trained.
RESUMABLE_CHANGES = {
    "run.resume",
    "run.logging_steps",
    "run.log_completions",
    "run.tensorboard",
    "run.progress",
    "run.save_total_limit",
    "verl.launch",
    "reward.workers",
}


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def consumed(self) -> Path:
        return self.root / "consumed.jsonl"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def final(self) -> Path:
        return self.root / "final"

    @property
    def base_model(self) -> Path:
        return self.root / "base_model"


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        flat: dict[str, Any] = {}
        for key, value in data.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat if flat else {prefix.rstrip("."): {}}
    return {prefix.rstrip("."): data}


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Dotted settings whose values differ (ignoring the ones a resumed run may change, and settings
    that a newer mdrl added, at their defaults: the run was made with what they default to)."""
    a, b = _flatten(old), _flatten(new)
    defaults = _flatten(TrainConfig().to_dict())
    added_at_default = {key for key in set(b) - set(a) if key in defaults and b[key] == defaults[key]}
    return sorted(key for key in set(a) | set(b)
                  if a.get(key) != b.get(key) and key not in RESUMABLE_CHANGES and key not in added_at_default)


def prepare_run_dir(config: TrainConfig, has_progress: bool) -> RunDir:
    """Create the run directory and save the resolved config.

    `has_progress` says whether the directory already holds training progress (checkpoints). A run
    with progress may only be continued with the same settings: changing the data, model or GRPO
    knobs mid-run would silently mix two experiments.
    """
    run = RunDir(config.output_dir)
    run.root.mkdir(parents=True, exist_ok=True)
    new = config.to_dict()
    if run.config.is_file() and has_progress:
        old = yaml.safe_load(run.config.read_text(encoding="utf-8")) or {}
        changed = config_differences(old, new)
        if changed:
            raise ValueError(
                f"{run.root} holds a run with different settings ({', '.join(changed)}); "
                f"continue it with its own config ({run.config}), or give another run.output_dir"
            )
    run.config.write_text(config.to_yaml(), encoding="utf-8")
    return run
