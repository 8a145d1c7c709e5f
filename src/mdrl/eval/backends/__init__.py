"""Inference backends: `hf` (transformers, in-process), `openai` (any OpenAI-compatible server) and
`vllm` (in-process, where installed). Each is imported only when asked for."""

from __future__ import annotations

from typing import Any

from mdrl.eval.types import Backend
from mdrl.modelref import check_model_reference
from mdrl.pretrained import resolve_model

BACKENDS = ("hf", "openai", "vllm")


def make_backend(kind: str, target: str, **options: Any) -> Backend:
    """Build a backend by name. `target` is a path or hub name (hf, vllm) or the server URL (openai).

    Options that are None are dropped, so CLI defaults stay with each backend.
    """
    options = {key: value for key, value in options.items() if value is not None}
    if kind in ("hf", "vllm"):
        target = resolve_model(target)  # a packaged model's name (smollm2) -> its converted folder
        check_model_reference(target)
    if kind == "hf":
        from mdrl.eval.backends.hf import HFBackend

        return HFBackend(target, **options)
    if kind == "openai":
        from mdrl.eval.backends.openai import OpenAIBackend

        return OpenAIBackend(target, **options)
    if kind == "vllm":
        from mdrl.eval.backends.vllm import VLLMBackend

        return VLLMBackend(target, **options)
    raise ValueError(f"unknown backend {kind!r}; known: {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "make_backend"]
