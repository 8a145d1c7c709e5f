"""What every verifier shares: extraction, verdicts, reward shaping, timeouts. A leaf: it imports no
domain (`mdrl.compute_score`, in `mdrl.reward`, routes a data_source to its domain)."""

from mdrl.verify.result import DataError, Verdict, VerifierUnavailable, parse_json_field
from mdrl.verify.shaping import RewardConfig, RewardSpec

__all__ = ["DataError", "RewardConfig", "RewardSpec", "Verdict", "VerifierUnavailable", "parse_json_field"]
