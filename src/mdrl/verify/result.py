"""The verdict every verifier returns, and the dict shape of the public API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class VerifierUnavailable(RuntimeError):
    """A verifier cannot run on this machine (e.g. no usable code sandbox). Raised, never scored:
    silently giving every sample 0 would train on noise (the study's firejail fault)."""


@dataclass(frozen=True)
class Verdict:
    """Outcome of checking one response against one ground truth.

    `fraction` is the share of the task that is right (people, cells, tests) in [0, 1];
    `acc` is True only when the whole task is right. Reward shaping turns these into `score`.
    """

    acc: bool
    fraction: float
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fail(cls, reason: str, **details: Any) -> "Verdict":
        return cls(acc=False, fraction=0.0, reason=reason, details=details)

    @classmethod
    def ok(cls, **details: Any) -> "Verdict":
        return cls(acc=True, fraction=1.0, reason="ok", details=details)

    @classmethod
    def partial(cls, fraction: float, reason: str, **details: Any) -> "Verdict":
        fraction = min(max(float(fraction), 0.0), 1.0)
        return cls(acc=fraction >= 1.0, fraction=fraction, reason="ok" if fraction >= 1.0 else reason,
                   details=details)
