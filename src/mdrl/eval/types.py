"""The small vocabulary every part of the harness shares: sampling settings, a generation request,
a completion, and the protocol a backend implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from mdrl.specs import SamplingConfig  # noqa: F401  (the eval vocabulary; declared in mdrl.specs)
from mdrl.templates import Template


@dataclass(frozen=True)
class GenRequest:
    """One prompt to complete: the domain's rendered user message under a template.

    Backends render it themselves because the chat template needs the model's tokenizer (hf, vllm)
    or is applied by the server (openai chat endpoint).
    """

    user_message: str
    template: Template
    #: Stable per-request key; backends derive per-request sampling seeds from it.
    key: str = ""


@dataclass(frozen=True)
class Completion:
    """One sampled response. `n_tokens` is None when the backend cannot tell."""

    text: str
    n_tokens: float | None = None
    finish_reason: str = "stop"


@dataclass(frozen=True)
class Generation:
    """All samples for one request, and the prompt exactly as the backend sent it."""

    prompt: str
    completions: list[Completion]


class Backend(Protocol):
    """What the runner needs from an inference engine."""

    #: Stable identity of the model *and* engine, part of the cache key.
    identity: str
    #: How many sequences (prompts x samples) the runner should hand over per call.
    batch_size: int

    def generate(self, requests: Sequence[GenRequest], sampling: SamplingConfig) -> list[Generation]: ...

    def close(self) -> None: ...
