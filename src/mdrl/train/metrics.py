"""Run bookkeeping: metrics.jsonl, the consumed-data ledger, checkpoint markers, and resume.

metrics.jsonl holds one line per logged optimizer step, `{"step": N, ...TRL's logs}`; the end-of-run
summary goes to summary.json instead, so every line of metrics.jsonl is a training step.
consumed.jsonl holds one line per rollout batch: the rows (prompts) the trainer scored, with their
domain, difficulty and epoch, keyed by the first optimizer step that trains on them.

A checkpoint counts as complete only once `mdrl_checkpoint.json` is written into it, after TRL has
saved the model, optimizer, scheduler, RNG and trainer state: a run killed in the middle of a save
resumes from the previous checkpoint. On resume, lines of both JSONL files past the checkpoint's step
are dropped, because the resumed run logs those steps again.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from pathlib import Path
from typing import Any, Iterable

from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback

log = logging.getLogger(__name__)

CHECKPOINT_MARKER = "mdrl_checkpoint.json"
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def _finite(value: Any) -> Any:
    # JSON has no NaN/inf; TRL reports NaN for a domain absent from a batch.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({k: _finite(v) for k, v in record.items()}, ensure_ascii=False)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a JSONL file; a torn last line (a run killed mid-write) is skipped."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("%s: skipping a torn line", path)
    return records


def truncate_jsonl(path: Path, max_step: int) -> int:
    """Keep records with step <= max_step (and drop torn lines); returns how many were dropped."""
    if not path.is_file():
        return 0
    raw = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    kept = [r for r in read_jsonl(path) if int(r.get("step", 0)) <= max_step]
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept), encoding="utf-8")
    os.replace(tmp, path)
    return len(raw) - len(kept)


def complete_checkpoints(checkpoint_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of every checkpoint that finished saving, oldest first."""
    if not checkpoint_dir.is_dir():
        return []
    found = []
    for child in checkpoint_dir.iterdir():
        match = _CHECKPOINT_RE.match(child.name)
        if match and child.is_dir() and (child / CHECKPOINT_MARKER).is_file():
            found.append((int(match.group(1)), child))
    return sorted(found)


def last_complete_checkpoint(checkpoint_dir: Path) -> tuple[int, Path] | None:
    found = complete_checkpoints(checkpoint_dir)
    return found[-1] if found else None


class JsonlMetrics(TrainerCallback):
    """Appends TRL's logs to metrics.jsonl (one line per logged step) on the main process."""

    def __init__(self, path: Path, summary_path: Path) -> None:
        self.path = path
        self.summary_path = summary_path

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        if "train_runtime" in logs:  # the end-of-run summary, not a step
            summary = {"step": state.global_step, **{k: _finite(v) for k, v in logs.items()}}
            self.summary_path.write_text(json.dumps(summary, indent=2), encoding="utf-8")
            return
        append_jsonl(
            self.path,
            {"step": state.global_step, "epoch": state.epoch, "time": round(time.time(), 3), **logs},
        )


class CheckpointMarker(TrainerCallback):
    """Marks a checkpoint complete after TRL saved everything in it (see the module doc)."""

    def __init__(self, checkpoint_dir: Path, updates_per_rollout: int) -> None:
        self.checkpoint_dir = checkpoint_dir
        self.updates_per_rollout = updates_per_rollout

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        folder = self.checkpoint_dir / f"checkpoint-{state.global_step}"
        if folder.is_dir():
            marker = {
                "step": state.global_step,
                "rollout": state.global_step // self.updates_per_rollout,
                "epoch": state.epoch,
                "time": time.time(),
            }
            (folder / CHECKPOINT_MARKER).write_text(json.dumps(marker), encoding="utf-8")


class ConsumptionLedger:
    """Writes what the trainer consumed, one line per rollout batch (the `on_batch` hook of the scorer)."""

    def __init__(self, path: Path, updates_per_rollout: int) -> None:
        self.path = path
        self.updates_per_rollout = updates_per_rollout

    def __call__(self, trainer_state: Any, consumed: list[dict[str, Any]]) -> None:
        done = int(getattr(trainer_state, "global_step", 0) or 0)
        append_jsonl(
            self.path,
            {
                "step": done + 1,  # the first optimizer step that trains on this batch
                "rollout": done // self.updates_per_rollout + 1,
                "rows": [c["row"] for c in consumed],
                "epochs": [c["epoch"] for c in consumed],
                "domains": [c["domain"] for c in consumed],
                "difficulties": [c["difficulty"] for c in consumed],
            },
        )


def consumed_rows(path: Path) -> list[dict[str, Any]]:
    """Flatten consumed.jsonl into one dict per consumed prompt, in training order."""
    rows = []
    for record in read_jsonl(path):
        for row, epoch, domain, difficulty in zip(
            record["rows"], record["epochs"], record["domains"], record["difficulties"]
        ):
            rows.append(
                {
                    "step": record["step"],
                    "row": row,
                    "epoch": epoch,
                    "domain": domain,
                    "difficulty": difficulty,
                }
            )
    return rows


def domain_shares(rows: Iterable[dict[str, Any]]) -> dict[int, dict[str, float]]:
    """Per epoch: the share of consumed prompts of each domain."""
    counts: dict[int, dict[str, int]] = {}
    for row in rows:
        per_epoch = counts.setdefault(int(row["epoch"]), {})
        per_epoch[row["domain"]] = per_epoch.get(row["domain"], 0) + 1
    return {
        epoch: {d: c / sum(found.values()) for d, c in sorted(found.items())}
        for epoch, found in sorted(counts.items())
    }


class RewardProgress(ProgressCallback):
    """TRL's progress bar (steps, elapsed, ETA) with the latest reward and accuracy as its postfix,
    instead of printing every log dict below it: metrics.jsonl and TensorBoard have those. The bar
    names its run and counts optimizer updates; the postfix says which rollout batch they belong to
    (a rollout batch can hold several updates)."""

    def __init__(self, label: str = "", rollout_batches: int = 0) -> None:
        super().__init__()
        self.label = label
        self.rollout_batches = rollout_batches

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        super().on_train_begin(args, state, control, **kwargs)
        if self.training_bar is not None:
            self.training_bar.set_description(f"{self.label} updates" if self.label else "updates")

    def _batch(self, state: Any) -> str | None:
        if not self.rollout_batches or not state.max_steps:
            return None
        per_batch = max(1, state.max_steps // self.rollout_batches)
        return f"{min(self.rollout_batches, -(-state.global_step // per_batch))}/{self.rollout_batches}"

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero or self.training_bar is None or not logs:
            return
        shown = {"reward": logs.get("reward")}
        for key, value in logs.items():
            if key.startswith("rewards/") and key.endswith("/acc"):
                shown[key.split("/")[1] + " acc"] = value
        postfix = {k: f"{v:.3f}" for k, v in shown.items() if isinstance(v, (int, float))}
        batch = self._batch(state)
        if batch is not None:
            postfix = {"rollout batch": batch, **postfix}
        self.training_bar.set_postfix(postfix, refresh=False)
