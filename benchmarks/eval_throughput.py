"""Throughput of the `hf` eval backend: batched (left padding, KV cache) vs one prompt at a time.

Same model, same items, same greedy settings, in one run; prints samples/s for each batch size and
the speed-up over batch size 1, plus the machine's load average (the numbers move with it).

    python benchmarks/eval_throughput.py                     # builds the tiny model in a temp dir
    python benchmarks/eval_throughput.py --model runs/tiny --items 64 --batch-sizes 1,8,32

Note: a randomly initialised model rarely emits EOS, so every response runs to --max-new-tokens;
batches are then perfectly aligned, which is the best case for batching. Trained models stop at
different lengths and gain less from large batches.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="model folder (default: build the tiny model)")
    parser.add_argument("--suite", default="gen:countdown:3-4", help="suite spec for the prompts")
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--template", default="r1-base")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-sizes", default="1,16", help="comma list; the first is the baseline")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's own choice, one per core)",
    )
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from mdrl.eval.backends.hf import HFBackend
    from mdrl.eval.suites import load_suite, user_message
    from mdrl.eval.types import GenRequest, SamplingConfig
    from mdrl.templates import Template

    model = args.model
    if model is None:
        from mdrl.tiny import build_tiny

        model = build_tiny(tempfile.mkdtemp(prefix="mdrl-bench-tiny-"))
    suite = load_suite(args.suite, gen_n=args.items)
    template = Template(args.template)
    requests = [GenRequest(user_message(item), template, key=item.item_id) for item in suite.items]
    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens)
    sizes = [int(size) for size in args.batch_sizes.split(",")]

    results = {}
    outputs = {}
    for size in sizes:
        backend = HFBackend(model, batch_size=size, device=args.device)
        backend.generate(requests[: min(size, len(requests))], SamplingConfig(max_new_tokens=4))  # warm-up
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        generations = backend.generate(requests, sampling)
        seconds = time.perf_counter() - start
        tokens = sum(c.n_tokens or 0 for g in generations for c in g.completions)
        outputs[size] = [g.completions[0].text for g in generations]
        results[size] = {
            "seconds": round(seconds, 2),
            "samples_per_s": round(len(requests) / seconds, 2),
            "tokens_per_s": round(tokens / seconds, 1),
            "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        }
        print(
            f"batch_size={size:3d}: {len(requests)} samples in {seconds:6.1f}s = "
            f"{results[size]['samples_per_s']:6.2f} samples/s, {results[size]['tokens_per_s']:7.1f} tokens/s "
            f"(load avg {load_before:.1f} -> {os.getloadavg()[0]:.1f})",
            flush=True,
        )
    base = sizes[0]
    same = all(outputs[size] == outputs[base] for size in sizes)
    report = {
        "model": str(model),
        "items": len(requests),
        "max_new_tokens": args.max_new_tokens,
        "template": args.template,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "results": results,
        "speedup_vs_first": {
            size: round(results[size]["samples_per_s"] / results[base]["samples_per_s"], 2) for size in sizes
        },
        "greedy_outputs_identical": same,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
