"""Speed of the knights_knaves domain: puzzle generation per difficulty, and verification of the study's
600 KK test rows (their references), cold (first sight of each puzzle) and warm (caches hot).

Reported with the machine's load average, since the numbers move with what else runs.

    python benchmarks/knights_knaves.py [--per-difficulty 500] [--data PATH/test.parquet]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import mdrl
from mdrl.domains import knights_knaves as kk

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "paper" / "kk" / "test.parquet"


def bench_generation(per_difficulty: int) -> None:
    for lang in ("en", "zh"):
        cells = []
        for difficulty in kk.DIFFICULTIES:
            start = time.perf_counter()
            for index in range(per_difficulty):
                kk.generate(index, 123, difficulty, lang)
            cells.append(f"{difficulty}p {per_difficulty / (time.perf_counter() - start):6.0f}/s")
        print(f"generate {lang}: " + "  ".join(cells))


def bench_verification(data: Path) -> None:
    import pandas as pd

    rows = pd.read_parquet(data).to_dict("records")
    items = [(kk.load_row(row, f"{data.name}:{i}").reference, row["reward_model"]["ground_truth"])
             for i, row in enumerate(rows)]
    for label in ("cold", "warm"):
        if label == "cold":
            kk.parse_solution_text.cache_clear()
        start = time.perf_counter()
        right = sum(mdrl.compute_score("kk_logic", response, gold)["acc"] for response, gold in items)
        elapsed = time.perf_counter() - start
        print(f"verify {len(items)} study rows ({label}): {len(items) / elapsed:7.0f} items/s, "
              f"acc {right}/{len(items)}")
    start = time.perf_counter()
    for row in rows:
        kk.solve(row["statements"])
    print(f"solve {len(rows)} study puzzles: {len(rows) / (time.perf_counter() - start):7.0f} puzzles/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-difficulty", type=int, default=500)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    bench_generation(args.per_difficulty)
    if args.data.is_file():
        bench_verification(args.data)
    else:
        print(f"study data not found at {args.data}: verification skipped")


if __name__ == "__main__":
    main()
