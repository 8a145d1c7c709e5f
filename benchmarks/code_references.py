"""Score every reference solution of the study's code test set, HumanEval and MBPP through
`mdrl.compute_score`-equivalent batch scoring, and list each failure with its reason.

    python benchmarks/code_references.py [--only code|humaneval|mbpp] [--json out.json]

A reference that fails is either a broken reference (e.g. Python 2 syntax in TACO) or a sandbox
problem; the list says which test failed and why.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from mdrl.domains.code import load_humaneval, load_mbpp, load_row, score_many, verify_many  # noqa: E402

SHARED = Path(os.environ.get("MDRL_SHARED_DATA", REPO.parent / "shared" / "data"))


def study_problems():
    import pandas as pd

    path = SHARED / "paper" / "code-r1-12k" / "test.parquet"
    rows = pd.read_parquet(path).to_dict("records")
    return [load_row(row, f"{path.name}:{i}") for i, row in enumerate(rows)]


def run(name: str, problems) -> dict:
    start = time.perf_counter()
    results = score_many([p.reference for p in problems], [p.ground_truth for p in problems])
    wall = time.perf_counter() - start
    failures = []
    bad = [i for i, result in enumerate(results) if not result["acc"]]
    # The same programs again, for the verdicts' details (e.g. the syntax error's message).
    verdicts = verify_many([problems[i].reference for i in bad], [problems[i].ground_truth for i in bad])
    for i, verdict in zip(bad, verdicts):
        problem = problems[i]
        failures.append({"index": i, "source": problem.extra_info.get("dataset") or problem.data_source,
                         "task_id": problem.extra_info.get("task_id"), "reason": results[i]["reason"],
                         "detail": verdict.details.get("error", "")})
    passed = len(problems) - len(failures)
    print(f"{name}: {passed}/{len(problems)} references pass ({100 * passed / len(problems):.2f}%) "
          f"in {wall:.1f} s", flush=True)
    for failure in failures:
        print("   ", json.dumps(failure))
    return {"name": name, "total": len(problems), "passed": passed, "wall_s": round(wall, 2), "failures": failures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("code", "humaneval", "mbpp"), default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    suites = {
        "code": study_problems,
        "humaneval": load_humaneval,
        "mbpp": lambda: load_mbpp(SHARED / "mbpp" / "mbpp.jsonl"),
    }
    report = [run(name, load()) for name, load in suites.items() if args.only in (None, name)]
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
