"""Reward shaping: from a Verdict to the scalar reward, under a per-domain reward config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from mdrl.verify.extract import has_think_answer_format
from mdrl.verify.result import Verdict

RewardMode = Literal["binary", "proportional"]

#: Reasons are cut to this length: they may quote the response or the ground truth (a 4000-digit target).
MAX_REASON_CHARS = 300


@dataclass(frozen=True)
class RewardSpec:
    """How a verdict becomes a reward: the reward vocabulary of every command (`mdrl.specs.RewardSpec`;
    `RewardConfig` is its older name). The same knobs exist on the CLI (`--reward`, `--format-weight`)."""

    mode: RewardMode = field(
        default="binary",
        metadata={"help": "binary: 1 only when fully correct; proportional: share of people/cells/tests right."},
    )
    format_weight: float = field(
        default=0.0,
        metadata={"help": "Weight of the separate format reward (<think>..</think><answer>..</answer>); "
                          "0 (off) as in the study. The score is (1-w)*task + w*format."},
    )

    def __post_init__(self) -> None:
        if self.mode not in ("binary", "proportional"):
            raise ValueError(f"reward mode must be 'binary' or 'proportional', got {self.mode!r}")
        weight = self.format_weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 <= weight <= 1.0:
            raise ValueError(f"format_weight must be a number in [0, 1], got {str(weight)[:40]!r}")

    @classmethod
    def from_mapping(cls, value: "RewardSpec | Mapping[str, Any] | str | None") -> "RewardSpec":
        """A spec from a RewardSpec, a mapping of its fields, or a mode name ("proportional")."""
        if value is None:
            return cls()
        if isinstance(value, RewardSpec):
            return value
        if isinstance(value, str):
            return cls(mode=value)  # type: ignore[arg-type]
        known = {f.name for f in fields(cls)}
        unknown = set(value) - known
        if unknown:
            raise ValueError(f"unknown reward option(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**value)


#: The older name of RewardSpec (`from mdrl.verify import RewardConfig` keeps working).
RewardConfig = RewardSpec


def shape(verdict: Verdict, solution: object, config: RewardSpec) -> dict[str, Any]:
    """The public result dict: score, acc, reason, plus the components that made the score."""
    task = verdict.fraction if config.mode == "proportional" else float(verdict.acc)
    reason = verdict.reason if len(verdict.reason) <= MAX_REASON_CHARS else verdict.reason[:MAX_REASON_CHARS] + "..."
    result: dict[str, Any] = {"score": task, "acc": bool(verdict.acc), "reason": reason,
                              "fraction": verdict.fraction}
    if config.format_weight > 0:
        fmt = 1.0 if has_think_answer_format(solution) else 0.0
        result["format"] = fmt
        result["score"] = (1.0 - config.format_weight) * task + config.format_weight * fmt
    return result
