"""A launch's overrides checked by the installed veRL itself, before any cluster time is spent.

`verl_launch_config(overrides)` composes them against veRL's own Hydra config (verl/trainer/config/
ppo_trainer.yaml): an unknown key fails here, as it would in main_ppo. `check_launch(overrides)` then
runs veRL's `validate_config`, the checks main_ppo runs before it starts Ray (batch sizes against GPUs,
micro batches, typed dataclasses). Both import veRL; `verl_installed()` says whether they can run.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class VerlConfigError(ValueError):
    """veRL rejected a launch's overrides; the message is veRL's (or Hydra's) own."""


def verl_installed() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("verl", "hydra", "omegaconf"))


def verl_launch_config(overrides: Sequence[str]) -> Any:
    """The DictConfig main_ppo would receive for these overrides."""
    import verl
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    config_dir = Path(verl.__file__).parent / "trainer" / "config"
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base=None):
            return compose("ppo_trainer", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        raise VerlConfigError(f"veRL {verl.__version__} rejects the launch overrides: {exc}") from exc


def check_launch(overrides: Sequence[str]) -> Any:
    """Compose and validate as main_ppo does; returns the composed config."""
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    config = verl_launch_config(overrides)
    out = io.StringIO()
    try:
        # veRL prints its verdict and warns about disabled parts; a library keeps that in its log.
        with contextlib.redirect_stdout(out), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            validate_config(config, need_reference_policy(config), need_critic(config))
    except (AssertionError, ValueError, TypeError) as exc:
        raise VerlConfigError(f"veRL's validate_config rejects the launch: {exc}") from exc
    log.debug("veRL validate_config: %s", out.getvalue().strip())
    return config
