"""Evaluation: suites over the domains, inference backends (hf, openai-compatible, vllm), unbiased
pass@k and the other metrics, a resumable cache, and reports.

    from mdrl.eval import evaluate, SamplingConfig, EvalOptions
    summary = evaluate("runs/tiny", ["math500", "kk", "gen:countdown:3"], template="r1-base,chat",
                       sampling=SamplingConfig(n=4, temperature=0.6), out_dir="eval_out",
                       options=EvalOptions(limit=50))
    summary["table"]  # the model x template accuracy table, as markdown
"""

from mdrl.eval.backends import BACKENDS, make_backend
from mdrl.eval.cache import ResultCache
from mdrl.eval.metrics import aggregate, pass_at_k
from mdrl.eval.runner import EvalOptions, evaluate, run_suite
from mdrl.eval.scoring import Scorer, score_response
from mdrl.eval.suites import EvalItem, Suite, data_root, list_suites, load_suite
from mdrl.eval.types import Backend, Completion, GenRequest, Generation, SamplingConfig

__all__ = [
    "BACKENDS",
    "Backend",
    "Completion",
    "EvalItem",
    "EvalOptions",
    "GenRequest",
    "Generation",
    "ResultCache",
    "SamplingConfig",
    "Scorer",
    "Suite",
    "aggregate",
    "data_root",
    "evaluate",
    "list_suites",
    "load_suite",
    "make_backend",
    "pass_at_k",
    "run_suite",
    "score_response",
]
