"""What every verifier shares: extraction, verdicts, reward shaping, timeouts, and `compute_score`."""

from mdrl.verify.result import Verdict
from mdrl.verify.shaping import RewardConfig

__all__ = ["RewardConfig", "Verdict", "compute_score"]


def __getattr__(name: str):
    # Lazy so that domain files can import verify.* without importing the registry (and themselves).
    if name == "compute_score":
        from mdrl.verify.api import compute_score

        return compute_score
    raise AttributeError(name)
