"""Speed of the code sandbox on the study's 712 code test items (reference solutions).

Three ways to run the same items, side by side in one run (interleaved in chunks, so that the
load other processes put on a shared machine falls on all three alike):

- sandbox:  `mdrl.sandbox.Sandbox` with every isolation layer that works here;
- baseline: a fresh `python3` per sample, and per stdin case (what the study did, minus firejail);
- floor:    in-process `exec` in a pool of pre-forked worker processes, no isolation at all.

Reported: wall time, samples/s, per-sample latency p50/p99, passes, verdict differences between
the sandbox and the baseline (with the cases listed), the cost of one call to the program across
the pipe (the split harness), and the machine's load average.

    python benchmarks/sandbox.py [--limit N] [--workers N] [--chunks 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from mdrl.domains.code import load_row, parse_ground_truth  # noqa: E402
from mdrl.sandbox import AssertTests, Sandbox, SandboxConfig, StdioTests  # noqa: E402
from mdrl.sandbox._proto import normalize_output  # noqa: E402
from mdrl.sandbox.config import usable_cores  # noqa: E402

DATA = Path(os.environ.get("MDRL_SHARED_DATA", REPO.parent / "shared" / "data")) / "paper" / "code-r1-12k" / "test.parquet"
BASELINE_TIMEOUT_S = 60.0


def load_items(limit: int | None) -> list[dict]:
    import pandas as pd

    items = []
    for i, row in enumerate(pd.read_parquet(DATA).to_dict("records")):
        problem = load_row(row, f"{DATA.name}:{i}")
        program = row["completion"] if isinstance(row.get("completion"), str) else problem.extra_info["reference"]
        items.append({"index": i, "program": program, "tests": parse_ground_truth(problem.ground_truth),
                      "dataset": problem.extra_info.get("dataset", "")})
    return items[:limit] if limit else items


# --- sandbox ------------------------------------------------------------------------------------

def run_sandbox(box: Sandbox, items: list[dict], workers: int) -> tuple[dict, float]:
    def one(item):
        t = time.perf_counter()
        result = box.run(item["program"], item["tests"])
        return item["index"], result.all_passed, time.perf_counter() - t, result.reason

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        out = {i: (ok, lat, reason) for i, ok, lat, reason in pool.map(one, items)}
    return out, time.perf_counter() - start


# --- baseline: a fresh interpreter per sample (and per stdin case) -----------------------------

def _baseline_item(item: dict) -> tuple[int, bool, float, str]:
    t = time.perf_counter()
    tests = item["tests"]
    env = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "prog.py")
        if isinstance(tests, StdioTests):
            with open(path, "w") as f:
                f.write(item["program"])
            for k, (inp, out) in enumerate(zip(tests.inputs, tests.outputs)):
                try:
                    proc = subprocess.run([sys.executable, path], input=inp.encode(), capture_output=True,
                                          timeout=BASELINE_TIMEOUT_S, cwd=tmp, env=env)
                except subprocess.TimeoutExpired:
                    return item["index"], False, time.perf_counter() - t, f"test {k + 1}: timeout"
                if proc.returncode != 0:
                    return item["index"], False, time.perf_counter() - t, f"test {k + 1}: exit {proc.returncode}"
                got = normalize_output(proc.stdout.decode("utf-8", "replace"))
                if got != normalize_output(out):
                    return item["index"], False, time.perf_counter() - t, f"test {k + 1}: wrong answer"
            return item["index"], True, time.perf_counter() - t, "ok"
        assert isinstance(tests, AssertTests)
        with open(path, "w") as f:
            f.write(tests.prelude + "\n" + item["program"] + "\n\n" + tests.code)
        try:
            proc = subprocess.run([sys.executable, path], capture_output=True, timeout=BASELINE_TIMEOUT_S,
                                  cwd=tmp, env=env)
        except subprocess.TimeoutExpired:
            return item["index"], False, time.perf_counter() - t, "timeout"
        ok = proc.returncode == 0
        return item["index"], ok, time.perf_counter() - t, "ok" if ok else proc.stderr.decode()[-200:]


def run_baseline(items: list[dict], workers: int) -> tuple[dict, float]:
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        out = {i: (ok, lat, reason) for i, ok, lat, reason in pool.map(_baseline_item, items)}
    return out, time.perf_counter() - start


# --- floor: in-process exec, no isolation (benchmarks/_sandbox_floor.py) ------------------------

def _floor_payload(item: dict) -> dict:
    tests = item["tests"]
    if isinstance(tests, StdioTests):
        return {"index": item["index"], "mode": "stdio", "program": item["program"],
                "inputs": list(tests.inputs), "outputs": list(tests.outputs)}
    return {"index": item["index"], "mode": "asserts", "program": item["program"], "prelude": tests.prelude,
            "code": tests.code}


def run_floor(pool, items: list[dict]) -> tuple[dict, float]:
    from _sandbox_floor import floor_item

    payloads = [_floor_payload(item) for item in items]
    start = time.perf_counter()
    out = {i: (ok, lat, reason) for i, ok, lat, reason in pool.imap(floor_item, payloads, chunksize=1)}
    return out, time.perf_counter() - start


# --- the cost of one call to the program across the pipe ---------------------------------------

def call_cost(box: Sandbox, calls: int = 2000, repeats: int = 5) -> dict:
    """Seconds per call of a trivial function: a run with `calls` calls minus a run with one,
    the median of `repeats` pairs. Every call goes test process -> fork server -> program and back."""
    from mdrl.sandbox import mbpp_tests

    program = "def f(x):\n    return x\n"
    many = mbpp_tests([f"for i in range({calls}):\n    assert f(i) == i"])
    one = mbpp_tests(["assert f(1) == 1"])
    costs = []
    for _ in range(repeats):
        t = time.perf_counter()
        assert box.run(program, many).passed == calls
        t_many = time.perf_counter() - t
        t = time.perf_counter()
        box.run(program, one)
        costs.append((t_many - (time.perf_counter() - t)) / (calls - 1))
    return {"calls": calls, "us_per_call": round(statistics.median(costs) * 1e6, 1)}


# --- report -------------------------------------------------------------------------------------

def summary(name: str, results: dict, wall: float) -> dict:
    lat = sorted(v[1] for v in results.values())
    n = len(lat)
    return {
        "mode": name, "samples": n, "wall_s": round(wall, 2), "samples_per_s": round(n / wall, 1),
        "p50_ms": round(statistics.median(lat) * 1000, 1), "p99_ms": round(lat[min(n - 1, int(n * 0.99))] * 1000, 1),
        "passed": sum(1 for v in results.values() if v[0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="first N items only")
    parser.add_argument("--workers", type=int, default=0, help="parallelism for all three (0 = cores)")
    parser.add_argument("--chunks", type=int, default=4, help="interleave the three modes over this many chunks")
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--modes", default="sandbox,baseline,floor", help="comma-separated subset to run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    workers = args.workers or usable_cores()
    modes = set(args.modes.split(","))
    items = load_items(args.limit)
    load_before = os.getloadavg()

    box = Sandbox(SandboxConfig(workers=workers))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _sandbox_floor import warm_up

    # Fresh small interpreters, warmed up like a fork server (same imports, frozen GC).
    floor_pool = multiprocessing.get_context("spawn").Pool(workers)
    floor_pool.map(warm_up, range(workers))
    results = {"sandbox": {}, "baseline": {}, "floor": {}}
    walls = {"sandbox": 0.0, "baseline": 0.0, "floor": 0.0}
    size = -(-len(items) // args.chunks)
    for c in range(args.chunks):
        chunk = items[c * size:(c + 1) * size]
        order = ["sandbox", "baseline", "floor"]
        order = [m for m in order[c % 3:] + order[:c % 3] if m in modes]  # rotate which mode goes first
        for mode in order:
            if mode == "sandbox":
                out, wall = run_sandbox(box, chunk, workers)
            elif mode == "baseline":
                out, wall = run_baseline(chunk, workers)
            else:
                out, wall = run_floor(floor_pool, chunk)
            results[mode].update(out)
            walls[mode] += wall
        print(f"chunk {c + 1}/{args.chunks}: " + ", ".join(f"{m} {walls[m]:.1f}s" for m in walls if m in modes),
              flush=True)
    floor_pool.close()
    layers = {k: v[0] for k, v in box.layers.items()}
    per_call = call_cost(box) if "sandbox" in modes else None
    box.close()
    load_after = os.getloadavg()

    ran = [m for m in ("sandbox", "baseline", "floor") if m in modes]
    rows = [summary(m, results[m], walls[m]) for m in ran]
    diffs = []
    if {"sandbox", "baseline"} <= modes:
        for i in sorted(results["sandbox"]):
            s, b = results["sandbox"][i], results["baseline"][i]
            if s[0] != b[0]:
                diffs.append({"index": i, "sandbox": s[0], "sandbox_reason": s[2], "baseline": b[0],
                              "baseline_reason": b[2], "floor": results["floor"].get(i, (None,))[0]})
    report = {
        "items": len(items), "workers": workers, "cores": usable_cores(), "layers": layers,
        "loadavg_before": [round(x, 2) for x in load_before], "loadavg_after": [round(x, 2) for x in load_after],
        "modes": rows, "verdict_differences": diffs, "call_across_the_pipe": per_call,
    }
    print(f"{'mode':10} {'wall s':>8} {'samples/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'passed':>7}")
    for r in rows:
        print(f"{r['mode']:10} {r['wall_s']:8.2f} {r['samples_per_s']:10.1f} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f} "
              f"{r['passed']:7d}")
    if {"sandbox", "floor"} <= modes:
        report["sandbox_wall_over_floor_wall"] = round(walls["sandbox"] / walls["floor"], 2)
        print(f"sandbox wall / floor wall = {report['sandbox_wall_over_floor_wall']}  (target <= 1.5)")
    if {"sandbox", "baseline"} <= modes:
        report["sandbox_sps_over_baseline_sps"] = round(walls["baseline"] / walls["sandbox"], 2)
        print(f"sandbox samples/s / baseline samples/s = {report['sandbox_sps_over_baseline_sps']}  (target >= 2.5)")
        print(f"verdict differences sandbox vs baseline: {len(diffs)}")
        for d in diffs:
            print("  ", json.dumps(d))
    if per_call:
        print(f"one call across the pipe (test process -> program -> back): {per_call['us_per_call']} us")
    print(f"layers: {layers}; load average before {report['loadavg_before']}, after {report['loadavg_after']}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
