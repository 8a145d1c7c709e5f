"""The small vocabulary every part of the harness shares: sampling settings, a generation request,
a completion, and the protocol a backend implements."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, Sequence

from mdrl.templates import Template


@dataclass(frozen=True)
class SamplingConfig:
    """How responses are sampled. Every field is part of the cache key: change one, recompute."""

    n: int = field(default=1, metadata={"help": "Samples per prompt (pass@k needs k <= n)."})
    temperature: float = field(default=0.0, metadata={"help": "0 means greedy decoding."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling mass (ignored when greedy)."})
    max_new_tokens: int = field(default=1024, metadata={"help": "Longest response, in tokens."})
    seed: int = field(
        default=0, metadata={"help": "Sampling seed (batches and requests derive theirs from it)."}
    )
    stop: tuple[str, ...] = field(
        default=(),
        metadata={"help": "Extra stop strings (cut, not included); generation always stops at EOS."},
    )

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature == 0 and self.n > 1:
            # Greedy decoding gives n copies of the same response: pass@k would be meaningless.
            raise ValueError("n > 1 needs temperature > 0 (greedy decoding repeats one response)")
        object.__setattr__(self, "stop", tuple(self.stop))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stop"] = list(self.stop)
        return data


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
