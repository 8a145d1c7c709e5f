"""Load test of `mdrl serve`: N requests over C concurrent connections; throughput and latency.

    python benchmarks/serve_load.py                       # 5000 requests x 8 items, 32 connections
    python benchmarks/serve_load.py --batch 1 --endpoint get_reward   # OpenRLHF-style, one query each
    python benchmarks/serve_load.py --url http://host:8000            # an already running server

Starts a server on loopback (`mdrl serve --port 0`) unless --url is given, builds a pool of rows from
the study's test sets (each domain's reference response, plus wrong and unanswered ones; generated
problems where the data is absent), scores the pool in-process once for the expected verdicts, then
sends the requests with httpx.AsyncClient limited to C connections. Every response is checked against
the expected verdicts. Bounded in count (--requests) and time (--max-seconds): it stops by itself.
The client runs on the same machine and takes its share of the CPU: the figures are a lower bound.
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
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from mdrl import compute_score
from mdrl.domains import all_domains

REPO = Path(__file__).resolve().parents[1]
PAPER = Path(os.environ.get("MDRL_SHARED_DATA", REPO.parent / "shared" / "data")) / "paper"
STUDY_SETS = {"countdown": "countdown", "kk": "knights_knaves", "zebra": "zebra", "deepscaler": "math",
              "code-r1-12k": "code"}


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def rows_from_study(folder: str, limit: int) -> list[dict[str, Any]]:
    import pandas as pd

    domain = all_domains()[STUDY_SETS[folder]]
    frame = pd.read_parquet(PAPER / folder / "test.parquet").iloc[:limit]
    rows = [row.to_dict() for _, row in frame.iterrows()]
    problems = [domain.load_row(row, f"{folder}:{i}") for i, row in enumerate(rows)]
    items = []
    for i, (row, problem) in enumerate(zip(rows, problems)):
        if problem.reference is None:
            continue
        base = {"data_source": row["data_source"], "ground_truth": _plain(row["reward_model"]["ground_truth"]),
                "extra_info": _plain(row.get("extra_info"))}
        other = problems[(i + 1) % len(problems)].reference or ""
        for solution in (problem.reference, other, problem.reference[: len(problem.reference) // 2]):
            items.append({**base, "solution_str": solution})
    return items


def rows_from_generator(name: str, limit: int) -> list[dict[str, Any]]:
    domain = all_domains()[name]
    items = []
    for i in range(limit):
        problem = domain.generate(i, 0, domain.difficulties[i % len(domain.difficulties)], "en")
        for solution in (problem.reference, "<answer>0</answer>"):
            items.append({"data_source": problem.data_source, "solution_str": solution,
                          "ground_truth": problem.ground_truth, "extra_info": problem.extra_info})
    return items


def build_pool(folders: list[str], per_set: int) -> list[dict[str, Any]]:
    pool: list[dict[str, Any]] = []
    for folder in folders:
        name = STUDY_SETS[folder]
        if name not in all_domains():
            print(f"  {folder}: domain {name} not registered, skipped", file=sys.stderr)
            continue
        if (PAPER / folder / "test.parquet").is_file():
            pool += rows_from_study(folder, per_set)
        elif all_domains()[name].generate is not None:
            pool += rows_from_generator(name, per_set)
    # Interleave domains so every batch mixes them, as a multi-domain training batch does.
    by_source: dict[str, list[dict[str, Any]]] = {}
    for item in pool:
        by_source.setdefault(item["data_source"], []).append(item)
    mixed = []
    while any(by_source.values()):
        for rows in by_source.values():
            if rows:
                mixed.append(rows.pop(0))
    return json.loads(json.dumps(mixed))


def start_server(workers: int, code_workers: int, log_file: Any) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "mdrl", "serve", "--port", "0", "--workers", str(workers)]
    if code_workers:
        cmd += ["--code-workers", str(code_workers)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log_file, text=True)
    url = proc.stdout.readline().split()[-1]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=30).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
        if proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit(f"server did not start; see {log_file.name}")


def request_body(endpoint: str, batch: list[dict[str, Any]]) -> dict[str, Any] | list[dict[str, Any]]:
    if endpoint == "score":
        return batch
    return {"query": [it["solution_str"] for it in batch],
            "labels": [{"data_source": it["data_source"], "ground_truth": it["ground_truth"],
                        "extra_info": it["extra_info"]} for it in batch]}


def check(endpoint: str, body: Any, expected: list[dict[str, Any]]) -> bool:
    if endpoint == "score":
        return body == expected
    return body["rewards"] == [e["score"] for e in expected]


class CpuMeter:
    """CPU seconds used by a process and its descendants (the server, its forkserver, workers and
    their helpers), and by this client: on a shared machine, CPU per request is steadier than wall time."""

    def __init__(self, server_pid: int | None) -> None:
        try:
            import psutil
        except ImportError:
            self._psutil = None
            return
        self._psutil = psutil
        self._server = psutil.Process(server_pid) if server_pid else None

    def _cpu(self, proc: Any) -> float:
        try:
            times = proc.cpu_times()
        except self._psutil.Error:
            return 0.0
        return times.user + times.system

    def snapshot(self) -> tuple[float | None, float | None, float | None]:
        """(server tree, server main process: the event loop and its threads, this client) CPU seconds."""
        client = self._cpu(self._psutil.Process()) if self._psutil else None
        if self._psutil is None or self._server is None:
            return None, None, client
        tree = sum(self._cpu(p) for p in [self._server, *self._server.children(recursive=True)])
        return tree, self._cpu(self._server), client


async def run_load(url: str, endpoint: str, pool: list[dict[str, Any]], expected: list[dict[str, Any]],
                   requests: int, batch: int, concurrency: int, max_seconds: float,
                   meter: CpuMeter) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    failures: dict[str, int] = {}
    next_index = 0

    def take() -> int | None:
        nonlocal next_index
        if next_index >= requests:
            return None
        next_index += 1
        return next_index - 1

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:
        async def one(index: int) -> None:
            start = (index * batch) % len(pool)
            picked = [(start + k) % len(pool) for k in range(batch)]
            body = request_body(endpoint, [pool[k] for k in picked])
            began = time.perf_counter()
            try:
                response = await client.post(f"/{endpoint}", json=body)
            except httpx.HTTPError as exc:
                failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
                return
            latencies.append(time.perf_counter() - began)
            if response.status_code != 200:
                failures[f"HTTP {response.status_code}"] = failures.get(f"HTTP {response.status_code}", 0) + 1
            elif not check(endpoint, response.json(), [expected[k] for k in picked]):
                failures["wrong verdicts"] = failures.get("wrong verdicts", 0) + 1

        async def connection() -> None:
            while (index := take()) is not None:
                await one(index)

        for index in range(concurrency):  # warm the connections and the workers; not timed
            await one(index)
        cpu0 = meter.snapshot()
        began = time.perf_counter()
        tasks = [asyncio.create_task(connection()) for _ in range(concurrency)]
        _, pending = await asyncio.wait(tasks, timeout=max_seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        wall = time.perf_counter() - began
        cpu1 = meter.snapshot()
    latencies = latencies[concurrency:]  # drop the warm-up requests
    completed = len(latencies)
    ordered = sorted(latencies) or [float("nan")]

    def quantile(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {
        "endpoint": endpoint, "requests": completed, "items_per_request": batch, "concurrency": concurrency,
        "wall_s": round(wall, 2), "stopped_by_time": bool(pending),
        "requests_per_s": round(completed / wall, 1), "items_per_s": round(completed * batch / wall, 1),
        "latency_ms": {"p50": round(quantile(0.50), 1), "p90": round(quantile(0.90), 1),
                       "p99": round(quantile(0.99), 1), "max": round(ordered[-1] * 1000, 1),
                       "mean": round(statistics.fmean(latencies) * 1000, 1) if latencies else None},
        "failures": failures,
        **{f"{name}_cpu_ms_per_request": (round((after - before) / max(completed, 1) * 1000, 2)
                                          if before is not None else None)
           for name, before, after in zip(("server", "server_main", "client"), cpu0, cpu1)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="Requests to send (timed).")
    parser.add_argument("--concurrency", type=int, default=32, help="Concurrent connections.")
    parser.add_argument("--batch", type=int, default=8, help="Items per request.")
    parser.add_argument("--endpoint", choices=("score", "get_reward"), default="score")
    parser.add_argument("--sets", default="countdown,kk,zebra,deepscaler",
                        help="Study test sets to draw rows from (code-r1-12k adds sandboxed code rows).")
    parser.add_argument("--per-set", type=int, default=60, help="Rows taken from each test set.")
    parser.add_argument("--workers", type=int, default=0, help="Server scoring processes (0 = cores).")
    parser.add_argument("--code-workers", type=int, default=0, help="Server code threads (0 = default).")
    parser.add_argument("--url", default=None, help="Use this running server instead of starting one.")
    parser.add_argument("--max-seconds", type=float, default=600, help="Stop sending after this long.")
    args = parser.parse_args()

    pool = build_pool([s for s in args.sets.split(",") if s], args.per_set)
    if not pool:
        raise SystemExit("no rows: no registered domain has data or a generator")
    t0 = time.perf_counter()
    expected = [compute_score(it["data_source"], it["solution_str"], it["ground_truth"], it["extra_info"])
                for it in pool]
    print(f"pool: {len(pool)} rows from {args.sets}, scored in-process in {time.perf_counter() - t0:.1f}s "
          f"({sum(e['acc'] for e in expected)} correct)", file=sys.stderr)

    proc = None
    with tempfile.NamedTemporaryFile("w", prefix="serve_load_", suffix=".log", delete=False) as log_file:
        try:
            if args.url:
                url = args.url
            else:
                t0 = time.perf_counter()
                proc, url = start_server(args.workers, args.code_workers, log_file)
                print(f"server {url} healthy after {time.perf_counter() - t0:.1f}s "
                      f"({httpx.get(f'{url}/health').json()['workers']})", file=sys.stderr)
            meter = CpuMeter(proc.pid if proc is not None else None)
            report = asyncio.run(run_load(url, args.endpoint, pool, expected, args.requests, args.batch,
                                          args.concurrency, args.max_seconds, meter))
        finally:
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    report["cpu_cores"] = os.cpu_count()
    report["load_average_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(report, indent=1))
    lat = report["latency_ms"]
    print(f"{report['requests']} requests x {args.batch} items over {args.concurrency} connections in "
          f"{report['wall_s']}s: {report['requests_per_s']} req/s, {report['items_per_s']} items/s, "
          f"p50 {lat['p50']} ms, p99 {lat['p99']} ms, failures {report['failures'] or 'none'}", file=sys.stderr)


if __name__ == "__main__":
    main()
