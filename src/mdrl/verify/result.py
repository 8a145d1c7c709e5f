"""The verdict every verifier returns, and the dict shape of the public API."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


class DataError(ValueError):
    """A malformed data row or ground truth. The message names the file and row where known."""


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


def parse_json_field(value: Any, what: str) -> Any:
    """Ground truths arrive as JSON strings or as objects (parquet structs, numpy arrays): accept both."""
    if isinstance(value, (str, bytes)):
        text = value.decode() if isinstance(value, bytes) else value
        stripped = text.strip()
        if stripped[:1] in ("{", "["):
            try:
                return json.loads(stripped)
            except json.JSONDecodeError as exc:
                raise DataError(f"{what} is not valid JSON: {exc}") from None
        return text
    return value
