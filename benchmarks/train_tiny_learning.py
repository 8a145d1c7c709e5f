"""Does GRPO learn on a CPU? Train the tiny preset and compare the first and last 10% of steps.

    python benchmarks/train_tiny_learning.py -o runs/tiny-learning [--set grpo.max_steps=120 ...]

Runs `mdrl train --preset tiny` (the tiny model is built and warmed up in the run directory unless
--set model.path=DIR points at one already warmed up), then reads metrics.jsonl and prints the mean
training reward, accuracy and completion length over the first and the last 10% of optimizer steps.
Re-running the same command resumes the run instead of starting over.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
from pathlib import Path

from mdrl.train import load_config, train
from mdrl.train.metrics import read_jsonl


def window_means(metrics: list[dict], keys: list[str], share: float = 0.1) -> dict[str, dict[str, float]]:
    k = max(1, round(len(metrics) * share))
    out = {}
    for name, rows in (("first", metrics[:k]), ("last", metrics[-k:])):
        out[name] = {
            key: round(statistics.fmean(r[key] for r in rows if r.get(key) is not None), 4)
            for key in keys
            if any(r.get(key) is not None for r in rows)
        }
        out[name]["steps"] = f"{rows[0]['step']}-{rows[-1]['step']}"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-o", "--output-dir", default="runs/tiny-learning")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="KEY=VALUE override")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config("tiny", overrides=[f"run.output_dir={args.output_dir}", *args.overrides])
    train(config)
    metrics = read_jsonl(Path(args.output_dir) / "metrics.jsonl")
    domains = sorted({key.split("/")[1] for row in metrics for key in row if key.startswith("data/")})
    keys = ["reward", "frac_reward_zero_std", "completions/mean_length"]
    keys += [f"rewards/{d}/{m}" for d in domains for m in ("mean", "acc", "length")]
    warmup = (
        json.loads((Path(args.output_dir) / "base_model" / "mdrl_warmup.json").read_text())
        if (Path(args.output_dir) / "base_model" / "mdrl_warmup.json").is_file()
        else None
    )
    report = {"steps": len(metrics), "windows": window_means(metrics, keys)}
    if warmup:
        report["warmup"] = {k: warmup[k] for k in ("steps", "initial_success", "final_success", "seconds")}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
