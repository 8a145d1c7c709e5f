"""`mdrl serve` under a flood of programs that loop forever: is another client still answered?

    python benchmarks/serve_flood.py [--flood 64] [--seconds 30] [--test-timeout 1] [--src DIR]

Starts `mdrl serve --port 0` (from this checkout, or from the source tree DIR given with --src, to
compare with an older version) with the sandbox's per-test CPU limit set to --test-timeout. Client
A (header X-Mdrl-Client: A) sends --flood concurrent requests, one looping program each. Half a
second later client B sends one correct code request every 0.5 s for --seconds. Then every flood
connection is closed, and client B's next request measures the drain: how long until the server
answers a new request once the flood's clients are gone. Reported: B's latency p50/p99 (also in
units of the per-test limit), how many of B's requests were answered, and the drain time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
LOOP = "<answer>\n```python\ndef f(x):\n    while True:\n        pass\n```\n</answer>"
RIGHT = "<answer>\n```python\ndef f(x):\n    return x + 1\n```\n</answer>"
GT = {"functional": "def check(candidate):\n    assert candidate(1) == 2\n\n\ncheck(f)"}


def start_server(src: Path, test_timeout: float) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": str(src / "src"), "PYTHONUNBUFFERED": "1",
           "MDRL_SANDBOX_TEST_TIMEOUT_S": str(test_timeout)}
    proc = subprocess.Popen([sys.executable, "-m", "mdrl", "serve", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env, cwd=src)
    url = proc.stdout.readline().split()[-1]
    httpx.get(f"{url}/health", timeout=120)  # waits for the scoring pools
    return proc, url


def row(response: str) -> dict:
    return {"data_source": "code", "solution_str": response, "ground_truth": GT}


async def run(url: str, flood: int, seconds: float) -> dict:
    limits = httpx.Limits(max_connections=flood + 8)
    async with httpx.AsyncClient(base_url=url, timeout=3600, limits=limits) as http:
        floods = [asyncio.create_task(http.post("/score", json=[row(LOOP)], headers={"X-Mdrl-Client": "A"}))
                  for _ in range(flood)]
        await asyncio.sleep(0.5)
        latencies: list[float] = []
        waiting: list[asyncio.Task] = []
        start = time.monotonic()

        async def good() -> None:
            t = time.monotonic()
            response = await http.post("/score", json=[row(RIGHT)], headers={"X-Mdrl-Client": "B"})
            if response.status_code == 200 and response.json()[0]["acc"]:
                latencies.append(time.monotonic() - t)

        while time.monotonic() - start < seconds:
            waiting.append(asyncio.create_task(good()))
            await asyncio.sleep(0.5)
        _, still = await asyncio.wait(waiting, timeout=5)
        for task in [*floods, *still]:
            task.cancel()
        await asyncio.gather(*floods, *still, return_exceptions=True)
    # The flood's connections are closed now; a new client asks once.
    async with httpx.AsyncClient(base_url=url, timeout=3600) as http:
        t = time.monotonic()
        response = await http.post("/score", json=[row(RIGHT)], headers={"X-Mdrl-Client": "C"})
        drain = time.monotonic() - t
        health = (await http.get("/health")).json()
    return {"sent": len(waiting), "answered": len(latencies), "latencies": latencies, "drain_s": drain,
            "drain_ok": response.status_code == 200, "dropped_rows": health.get("dropped_rows")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flood", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--test-timeout", type=float, default=1.0, help="sandbox CPU seconds per test case")
    parser.add_argument("--src", type=Path, default=REPO, help="source tree of the server to measure")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    proc, url = start_server(args.src.resolve(), args.test_timeout)
    try:
        out = asyncio.run(run(url, args.flood, args.seconds))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    lat = sorted(out["latencies"])
    summary = {"server": str(args.src), "flood": args.flood, "test_timeout_s": args.test_timeout,
               "good_sent": out["sent"], "good_answered_in_time": out["answered"],
               "p50_s": round(statistics.median(lat), 2) if lat else None,
               "p99_s": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 2) if lat else None,
               "drain_s": round(out["drain_s"], 2), "dropped_rows": out["dropped_rows"]}
    if lat:
        summary["p50_in_test_timeouts"] = round(summary["p50_s"] / args.test_timeout, 1)
        summary["p99_in_test_timeouts"] = round(summary["p99_s"] / args.test_timeout, 1)
    print(json.dumps(summary, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
