r"""Verifier throughput per domain on the study's released test sets, through `mdrl.compute_score`.

For every row: the reference response (which must score acc=True) and a wrong response (another
row's reference, which must not), so each domain is timed on both verdicts. Caches are cleared
before every timed pass. Code is scored one call at a time here (`mdrl.domains.code.score_many`
batches across the sandbox pool; see benchmarks/sandbox.py). For math, math-verify
called directly (parse + verify of "\boxed{gold}" against the response) on the same items, in the
same run, gives the ratio, and every verdict of ours must equal math-verify's.

Usage: python benchmarks/verifiers.py [--domains countdown,math,...] [--rounds 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAPER = Path(os.environ.get("MDRL_SHARED_DATA", REPO.parent / "shared" / "data")) / "paper"
FILES = {
    "countdown": "countdown/test.parquet",
    "math": "deepscaler/test.parquet",
    "knights_knaves": "kk/test.parquet",
    "zebra": "zebra/test.parquet",
    "code": "code-r1-12k/test.parquet",
}


def cases(domain: str):
    from mdrl.data import load_verl_parquet

    problems = [p for p in load_verl_parquet(PAPER / FILES[domain]) if p.reference]
    items = []
    for i, p in enumerate(problems):
        other = problems[(i + len(problems) // 2) % len(problems)]
        items.append((p.data_source, p.reference, p.ground_truth, p.extra_info, True))
        if other.ground_truth != p.ground_truth:
            items.append((p.data_source, other.reference, p.ground_truth, p.extra_info, None))
    return items


def cold_caches() -> None:
    """Every timed pass starts cold: the math verifier caches verdicts and parses, and so does
    math-verify itself; a warm second pass would measure dictionary look-ups."""
    from mdrl.verify.math_equiv import clear_caches, clear_parse_caches

    clear_caches()
    clear_parse_caches()


def time_mdrl(items, rounds: int):
    from mdrl import compute_score

    best, verdicts = float("inf"), []
    for _ in range(rounds):
        cold_caches()
        start = time.perf_counter()
        verdicts = [compute_score(ds, resp, gt, extra)["acc"] for ds, resp, gt, extra, _ in items]
        best = min(best, time.perf_counter() - start)
    return best, verdicts


def time_math_verify(items, rounds: int):
    from math_verify import parse, verify

    best, verdicts = float("inf"), []
    for _ in range(rounds):
        cold_caches()
        start = time.perf_counter()
        verdicts = [bool(verify(parse(f"\\boxed{{{gt}}}"), parse(resp))) for _, resp, gt, _, _ in items]
        best = min(best, time.perf_counter() - start)
    return best, verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domains", default=",".join(FILES))
    parser.add_argument("--rounds", type=int, default=3, help="Best of R timed passes (code: 1).")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    report = {"load_avg_1m": os.getloadavg()[0], "domains": {}}
    print(f"{'domain':16} {'items':>6} {'items/s':>10} {'ref acc':>9} {'wrong acc':>10}  notes")
    for domain in args.domains.split(","):
        items = cases(domain)
        seconds, verdicts = time_mdrl(items, 1 if domain == "code" else args.rounds)
        refs = [v for v, item in zip(verdicts, items) if item[4]]
        wrong = [v for v, item in zip(verdicts, items) if not item[4]]
        row = {"items": len(items), "items_per_s": len(items) / seconds, "reference_acc": sum(refs) / len(refs),
               "wrong_accepted": sum(wrong)}
        notes = ""
        if domain == "math":
            mv_seconds, mv_verdicts = time_math_verify(items, args.rounds)
            disagreements = [i for i, (a, b) in enumerate(zip(verdicts, mv_verdicts)) if a != b]
            row.update(math_verify_items_per_s=len(items) / mv_seconds, ratio_vs_math_verify=mv_seconds / seconds,
                       verdicts_differing_from_math_verify=len(disagreements))
            notes = (f"math-verify direct {len(items) / mv_seconds:.0f}/s, ratio {mv_seconds / seconds:.2f}x, "
                     f"{len(disagreements)} verdicts differ")
        report["domains"][domain] = row
        print(f"{domain:16} {len(items):6d} {row['items_per_s']:10.0f} {row['reference_acc']:9.2%} "
              f"{row['wrong_accepted']:10d}  {notes}")
    print(f"load average (1 min) at start: {report['load_avg_1m']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
