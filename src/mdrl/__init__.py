"""mdrl: multi-domain reinforcement learning with verifiable rewards."""

import logging

from mdrl.reward import compute_score
from mdrl.verify.result import Verdict
from mdrl.verify.shaping import RewardConfig, RewardSpec

logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"
__all__ = ["RewardConfig", "RewardSpec", "Verdict", "compute_score", "__version__"]
