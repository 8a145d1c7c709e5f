"""Score JSONL lines of {data_source, solution_str, ground_truth, extra_info?}; one JSON line out per input."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from mdrl.verify.api import compute_score
from mdrl.verify.shaping import RewardConfig


def score(
    input: Optional[Path] = typer.Option(None, "--input", "-i", help="JSONL file; stdin when omitted."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="JSONL file; stdout when omitted."),
    reward: Optional[str] = typer.Option(None, "--reward", help="binary | proportional (default: per domain)."),
    format_reward: Optional[float] = typer.Option(None, "--format-reward", help="Weight W of the format reward."),
) -> None:
    """Score JSONL lines of {data_source, solution_str, ground_truth, extra_info?}; one JSON line out per input."""
    overrides = {k: v for k, v in (("mode", reward), ("format_weight", format_reward)) if v is not None}
    config = RewardConfig(**overrides) if overrides else None
    source = input.open(encoding="utf-8") if input else sys.stdin
    sink = output.open("w", encoding="utf-8") if output else sys.stdout
    where = str(input) if input else "<stdin>"
    n = correct = 0
    total = 0.0
    try:
        for lineno, line in enumerate(source, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError("line is not a JSON object")
                missing = [k for k in ("data_source", "solution_str", "ground_truth") if k not in row]
                if missing:
                    raise ValueError(f"missing field(s) {missing}")
                result = compute_score(row["data_source"], row["solution_str"], row["ground_truth"],
                                       row.get("extra_info"), reward=config)
            except (ValueError, KeyError) as exc:
                raise typer.BadParameter(f"{where}:{lineno}: {exc}") from None
            sink.write(json.dumps(result, ensure_ascii=False) + "\n")
            n += 1
            correct += bool(result["acc"])
            total += float(result["score"])
    finally:
        if input:
            source.close()
        if output:
            sink.close()
    typer.echo(f"scored {n} rows: acc {correct}/{n}, mean score {total / max(n, 1):.4f}", err=True)
