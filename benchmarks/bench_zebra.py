"""zebra throughput: generated items/s per difficulty, and verified responses/s on the study's test rows.

    python benchmarks/bench_zebra.py [--items 200] [--data ../shared/data/paper/zebra/test.parquet]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import mdrl
from mdrl.domains import get_domain

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "paper" / "zebra" / "test.parquet"


def bench_generation(items: int) -> None:
    domain = get_domain("zebra")
    # CPU time as well as wall time: on a shared machine the CPU time is the cost of the work itself.
    print(f"{'difficulty':>10} {'grid':>6} {'items/s':>8} {'mean ms':>8} {'max ms':>8} {'cpu items/s':>12} {'clues':>6}")
    for difficulty in domain.difficulties:
        times, clues = [], []
        cpu_start = time.process_time()
        for index in range(items):
            start = time.perf_counter()
            problem = domain.generate(index, 0, difficulty, "en")
            times.append(time.perf_counter() - start)
            clues.append(problem.extra_info["clues"])
        cpu = time.process_time() - cpu_start
        print(f"{difficulty:>10} {difficulty}x{difficulty:<4} {items / sum(times):>8.1f} "
              f"{statistics.mean(times) * 1e3:>8.1f} {max(times) * 1e3:>8.1f} {items / cpu:>12.1f} "
              f"{statistics.mean(clues):>6.1f}")


def bench_verification(data: Path, repeats: int = 5) -> None:
    import pandas as pd

    domain = get_domain("zebra")
    rows = pd.read_parquet(data).to_dict("records")
    pairs = [(domain.load_row(row, f"{data.name}:{i}").reference, row["reward_model"]["ground_truth"])
             for i, row in enumerate(rows)]
    start, cpu_start = time.perf_counter(), time.process_time()
    correct = 0
    for _ in range(repeats):
        correct += sum(mdrl.compute_score("zebra", ref, gt)["acc"] for ref, gt in pairs)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    n = len(pairs) * repeats
    print(f"verified {len(pairs)} study rows x {repeats}: {n / elapsed:.0f} items/s wall, "
          f"{n / cpu:.0f} items/s CPU, acc {correct}/{n}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=200, help="generated items per difficulty")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the study's zebra test parquet")
    args = parser.parse_args()
    bench_generation(args.items)
    if args.data.is_file():
        bench_verification(args.data)
    else:
        print(f"skipping verification: {args.data} not found")


if __name__ == "__main__":
    main()
