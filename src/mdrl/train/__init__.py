"""GRPO training on two engines: TRL (one machine, CPU or GPU) and veRL (cluster launch).

    from mdrl.train import load_config, train
    config = load_config(preset="tiny", overrides=["grpo.max_steps=20"])
    train(config)                       # TRL engine; veRL: writes data + launch.sh and launches

Heavy libraries (torch, transformers, trl) load only when an engine runs.
"""

from __future__ import annotations

from typing import Any

from mdrl.train.config import (
    DataSettings,
    GRPOSettings,
    ModelSettings,
    RewardSettings,
    RunSettings,
    TrainConfig,
    VerlSettings,
    load_config,
    preset_names,
)
from mdrl.train.rewards import DomainReward, make_reward_funcs, reward_configs


def train(config: TrainConfig) -> dict[str, Any]:
    """Run `config` on its engine: TRL trains here; veRL prepares the launch and runs it where possible."""
    if config.engine == "trl":
        from mdrl.train.ranks import train_local

        return train_local(config)
    from mdrl.train.verl_engine import launch, prepare_verl, summary, verl_ready

    prep = prepare_verl(config)
    result = summary(prep)
    ready, why = verl_ready()
    result["launched"] = bool(ready and config.verl.launch)
    result["status"] = launch(prep) if result["launched"] else why
    return result


__all__ = [
    "DataSettings",
    "DomainReward",
    "GRPOSettings",
    "ModelSettings",
    "RewardSettings",
    "RunSettings",
    "TrainConfig",
    "VerlSettings",
    "load_config",
    "make_reward_funcs",
    "preset_names",
    "reward_configs",
    "train",
]
