r"""Math verifier throughput: mdrl's math verifier against math-verify called directly, same items, same run.

Items, from the study's deepscaler test set (MATH-500 + AIME, 530 rows):
  reference   "<think>..</think>\n<answer> \boxed{GT} </answer>" built from the row's ground truth
  wrong       another item's answer (one math-verify does not find equivalent), and for numeric golds
              the value off by one

Modes, each over every item:
  mdrl          mdrl.compute_score(data_source, response, ground_truth): fast path, then math-verify in a
                helper process under mdrl's timeout (gold parses cached per helper)
  mdrl-no-fast  the same verifier with the fast path off: its verdicts must equal mdrl's (asserted)
  math-verify   verify(parse("\boxed{GT}"), parse(response)) in this process, math-verify's default
                (signal-based, main-thread-only) timeouts
  mdrl-N-threads  mdrl in a ThreadPoolExecutor of N threads, one helper each (math-verify's own timeouts
                cannot run there); its verdicts must equal mdrl's (asserted)

Two settings: cold (every parse cache, ours, math-verify's and sympy's, cleared before each chunk of
items and mode) and warm (parse caches kept across rounds, as over a training run where each gold recurs;
mdrl's cache of whole verdicts is still cleared, so nothing is answered from it). The modes are
interleaved chunk by chunk, --rounds times, and each chunk counts with its fastest round per mode (a
shared machine's load changes under a run). Compare overall items/s: the reference/wrong split moves
the gold parse of a row between the two (mdrl parses it at the row's first wrong answer, the other modes
at its reference).

Then the fast-path sweep: layout variants and near misses of every gold (and of a sample of training
golds); wherever the fast path says "equal", math-verify must say so too (asserted).

Usage: python benchmarks/math_verify_ratio.py [--data DIR] [--rounds R] [--threads N] [--train-sample N]
                                              [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

from mdrl import compute_score
from mdrl.domains import get_domain
from mdrl.domains.math import MathConfig, MathVerifier
from mdrl.verify.math_equiv import (
    clear_caches,
    clear_verdict_cache,
    compare_with_math_verify,
    fast_equal,
    parse_input,
)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("MDRL_SHARED_DATA", REPO.parent / "shared" / "data")) / "paper" / "deepscaler"
EXTRACTION = (LatexExtractionConfig(), ExprExtractionConfig())


def response_with(answer: str) -> str:
    return f"<think>\nworking\n</think>\n<answer> \\boxed{{{answer}}} </answer>"


def off_by_one(gold: str) -> str | None:
    try:
        return str(int(gold) + 1)
    except ValueError:
        pass
    try:
        return repr(float(gold) + 1)
    except ValueError:
        return None


def build_items(rows: list[dict]) -> list[dict]:
    math = get_domain("math")
    items = []
    for i, row in enumerate(rows):
        gold = row["reward_model"]["ground_truth"]
        problem = math.load_row(row, f"test.parquet:{i}")
        items.append({"row": i, "kind": "reference", "source": row["data_source"], "gold": gold,
                      "response": problem.reference})
        for step in range(1, len(rows)):
            other = rows[(i + step) % len(rows)]["reward_model"]["ground_truth"]
            if compare_with_math_verify((parse_input(gold),), parse_input(other)) != "ok":
                items.append({"row": i, "kind": "wrong", "source": row["data_source"], "gold": gold,
                              "response": response_with(other)})
                break
        wrong = off_by_one(gold)
        if wrong is not None:
            items.append({"row": i, "kind": "wrong", "source": row["data_source"], "gold": gold,
                          "response": response_with(wrong)})
    return items


def time_modes(items: list[dict], modes: dict[str, Callable[[dict], bool]], rounds: int, cold: bool = True,
               chunk: int = 30) -> dict[str, dict]:
    """Run every mode on every item, interleaved chunk by chunk in rotating order, `rounds` times; each
    chunk counts with its fastest round per mode, so that load spikes on a shared machine drop out and
    hit all modes alike. Verdicts come from the first round.

    cold: before each chunk and mode every parse cache is cleared (ours, math-verify's, sympy's; here and
    in the helper): within a chunk each mode may reuse only its own parses (a row's gold recurs).
    warm: parse caches are kept across rounds, as over a training run where every gold recurs; mdrl's
    cache of whole verdicts is still cleared, so every item is decided by math-verify or the fast path.
    """
    names = list(modes)
    starts = list(range(0, len(items), chunk))
    verdicts = {name: [False] * len(items) for name in names}
    # timing[name][c] = list over rounds of {"reference": s, "wrong": s}
    timing = {name: [[] for _ in starts] for name in names}
    for round_ in range(rounds):
        for c, start in enumerate(starts):
            shift = (c + round_) % len(names)
            for name in names[shift:] + names[:shift]:
                if cold:
                    clear_caches()
                else:
                    clear_verdict_cache()
                spent = {"reference": 0.0, "wrong": 0.0}
                for k in range(start, min(start + chunk, len(items))):
                    began = time.perf_counter()
                    verdict = bool(modes[name](items[k]))
                    spent[items[k]["kind"]] += time.perf_counter() - began
                    if round_ == 0:
                        verdicts[name][k] = verdict
                timing[name][c].append(spent)
    counts = {kind: sum(item["kind"] == kind for item in items) for kind in ("reference", "wrong")}
    results = {}
    for name in names:
        best = [min(runs, key=lambda t: t["reference"] + t["wrong"]) for runs in timing[name]]
        ref, wrong = sum(t["reference"] for t in best), sum(t["wrong"] for t in best)
        v = verdicts[name]
        results[name] = {
            "mode": name, "verdicts": v, "seconds": ref + wrong, "items_per_s": len(items) / (ref + wrong),
            "reference_items_per_s": counts["reference"] / ref, "wrong_items_per_s": counts["wrong"] / wrong,
            "reference_acc": sum(x for x, it in zip(v, items) if it["kind"] == "reference") / counts["reference"],
            "wrong_accepted": sum(x for x, it in zip(v, items) if it["kind"] == "wrong"),
        }
    return results


def layout_variants(gold: str) -> list[str]:
    variants = {gold, f" {gold} ", f"${gold}$", f"$ {gold} $", f"$$ {gold} $$", f"$$${gold}$$$", gold.replace(" ", ""),
                f"${gold.replace('frac', 'dfrac')}$", f"\\left({gold}\\right)", f"({gold})", "$" + gold,
                gold.replace("\\dfrac", "\\frac"), gold.replace("\\frac", "\\dfrac"),
                gold.replace("(", "\\left(").replace(")", "\\right)"), gold.replace("\\left", "").replace("\\right", ""),
                gold.replace("+", " + "), gold.replace("-", " - "), gold.replace("=", " = "),
                gold.replace(",", ", "), gold.replace(", ", ","), gold.replace("{", " {"), gold.replace("}", "} "),
                gold.replace("^", " ^ "), gold.replace("\\", " \\"), "  ".join(gold.split(" ")),
                gold + "0", "0" + gold, gold.replace("1", "7"), gold + "^2", "-" + gold, gold.replace("\\", ""),
                gold.replace("{", "").replace("}", ""), gold.replace(" ", "\\,"), gold.replace(",", "")}
    return sorted(v for v in variants if v.strip())


def fast_path_sweep(golds: list[str]) -> dict:
    checked = hits = 0
    disagreements = []
    for gold in golds:
        for variant in layout_variants(gold):
            checked += 1
            if not fast_equal([gold], variant):
                continue
            hits += 1
            if compare_with_math_verify((parse_input(gold),), parse_input(variant)) != "ok":
                disagreements.append((gold, variant))
    return {"golds": len(golds), "variants": checked, "fast_path_hits": hits, "disagreements": disagreements}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with test.parquet, train.parquet")
    parser.add_argument("--train-sample", type=int, default=2000, help="training golds in the fast-path sweep")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; each mode's fastest counts")
    parser.add_argument("--threads", type=int, default=2, help="also time mdrl in a thread pool (1: skip)")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    rows = pd.read_parquet(args.data / "test.parquet").to_dict("records")
    items = build_items(rows)
    print(f"items: {len(items)} ({sum(i['kind'] == 'reference' for i in items)} reference, "
          f"{sum(i['kind'] == 'wrong' for i in items)} wrong) from {len(rows)} rows")

    started = time.perf_counter()
    compute_score("math500", response_with("1"), "2")  # start the helper outside the timed loops
    print(f"helper start-up (interpreter + math-verify import): {time.perf_counter() - started:.2f} s")
    no_fast = MathVerifier(MathConfig(fast_path=False))

    def direct(item: dict) -> bool:
        gold = parse("\\boxed{" + item["gold"] + "}", extraction_config=EXTRACTION)
        return verify(gold, parse(item["response"], extraction_config=EXTRACTION))

    def threaded(name: str, workers: int) -> dict:
        # math-verify's own timeouts cannot run off the main thread; ours can, one helper per thread.
        clear_caches()
        barrier = threading.Barrier(workers)

        def warm(_: int) -> None:
            compute_score("math500", response_with("1"), "2")  # this thread's helper starts now
            barrier.wait()

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(warm, range(workers)))
            started = time.perf_counter()
            verdicts = list(pool.map(lambda it: compute_score(it["source"], it["response"], it["gold"])["acc"],
                                     items))
            seconds = time.perf_counter() - started
        return {"mode": name, "verdicts": verdicts, "seconds": seconds, "items_per_s": len(items) / seconds}

    def ours_mode(item: dict) -> bool:
        return compute_score(item["source"], item["response"], item["gold"])["acc"]

    best = time_modes(items, {
        "mdrl": ours_mode,
        "mdrl-no-fast": lambda it: no_fast(it["response"], it["gold"], None).acc,
        "math-verify": direct,
    }, rounds=args.rounds, cold=True)
    results = list(best.values())
    warm = time_modes(items, {"mdrl": ours_mode, "math-verify": direct}, rounds=args.rounds, cold=False)
    assert warm["mdrl"]["verdicts"] == best["mdrl"]["verdicts"], "warm verdicts differ"
    if args.threads > 1:
        pooled = threaded(f"mdrl-{args.threads}-threads", args.threads)
        assert pooled["verdicts"] == best["mdrl"]["verdicts"], "threaded verdicts differ"
    ours, slow, baseline = results
    changed = [items[k]["row"] for k, (a, b) in enumerate(zip(ours["verdicts"], slow["verdicts"])) if a != b]
    differ = [(items[k]["row"], items[k]["kind"], items[k]["gold"])
              for k, (a, b) in enumerate(zip(ours["verdicts"], baseline["verdicts"])) if a != b]

    header = f"{'mode':14} {'items/s':>9} {'ref items/s':>12} {'wrong items/s':>14} {'ref acc':>8} {'wrong accepted':>15}"
    print(f"\ncold parse caches (cleared before every chunk of 30 items)\n{header}")
    for r in results:
        print(f"{r['mode']:14} {r['items_per_s']:9.1f} {r['reference_items_per_s']:12.1f} "
              f"{r['wrong_items_per_s']:14.1f} {r['reference_acc']:8.4f} {r['wrong_accepted']:15d}")
    if args.threads > 1:
        print(f"{pooled['mode']:14} {pooled['items_per_s']:9.1f}   (same verdicts as mdrl)")
    print(f"\nwarm parse caches (kept across rounds, as over a training run)\n{header}")
    for r in warm.values():
        print(f"{r['mode']:14} {r['items_per_s']:9.1f} {r['reference_items_per_s']:12.1f} "
              f"{r['wrong_items_per_s']:14.1f} {r['reference_acc']:8.4f} {r['wrong_accepted']:15d}")
    ratios = {}
    for label, mine, theirs in (("cold", ours, baseline), ("warm", warm["mdrl"], warm["math-verify"])):
        ratios[label] = mine["items_per_s"] / theirs["items_per_s"]
        print(f"ratio mdrl / math-verify, {label}: {ratios[label]:.2f}x overall, "
              f"{mine['reference_items_per_s'] / theirs['reference_items_per_s']:.1f}x on references, "
              f"{mine['wrong_items_per_s'] / theirs['wrong_items_per_s']:.2f}x on wrong answers")
    ratio = ratios["cold"]
    print(f"verdicts changed by the fast path: {len(changed)}")
    print(f"verdicts where mdrl and direct math-verify on the whole response differ: {len(differ)} {differ[:10]}")
    misses = [(items[k]["row"], items[k]["gold"]) for k, v in enumerate(ours["verdicts"])
              if items[k]["kind"] == "reference" and not v]
    print(f"reference misses: {misses}")

    golds = sorted({row["reward_model"]["ground_truth"] for row in rows})
    train_path = args.data / "train.parquet"
    if args.train_sample and train_path.is_file():
        train = [r["ground_truth"] for r in pd.read_parquet(train_path, columns=["reward_model"])["reward_model"]]
        golds += random.Random(0).sample(sorted(set(train)), min(args.train_sample, len(set(train))))
    sweep = fast_path_sweep(golds)
    print(f"fast-path sweep: {sweep['golds']} golds, {sweep['variants']} variants, "
          f"{sweep['fast_path_hits']} fast-path hits, {len(sweep['disagreements'])} disagreements with "
          f"math-verify {sweep['disagreements'][:10]}")

    if args.json:
        args.json.write_text(json.dumps({
            "items": len(items), "modes": [{k: v for k, v in r.items() if k != "verdicts"} for r in results]
            + ([{k: v for k, v in pooled.items() if k != "verdicts"}] if args.threads > 1 else []),
            "ratio": ratio, "ratios": ratios,
            "warm_modes": [{k: v for k, v in r.items() if k != "verdicts"} for r in warm.values()], "fast_path_changed_verdicts": len(changed), "differs_from_direct": differ,
            "sweep": {k: v for k, v in sweep.items()}}, indent=2))
    if changed or sweep["disagreements"]:
        print("FAIL: the fast path changed a verdict", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
