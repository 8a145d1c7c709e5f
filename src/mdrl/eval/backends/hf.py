"""The `hf` backend: transformers `generate` with LEFT padding and the KV cache, batched, on CPU or GPU.

Prompts of one call are sorted by length and cut into batches of at most `batch_size` sequences
(prompts x samples), which keeps padding small. Generation stops at the model's EOS token(s); the
text is decoded *without* skipping special tokens (some tokenizers, the tiny one included, mark
<think>/<answer> as special) and cut at the first stop token instead.

`HFGenerator` is shared with `mdrl.eval.openai_server`, so a model served over HTTP and the same
model run in-process produce the same greedy responses.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path
from typing import Any, Sequence

from mdrl.eval.types import Completion, GenRequest, Generation, SamplingConfig
from mdrl.modelref import loading

log = logging.getLogger(__name__)

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".json", ".model", ".txt", ".jinja")


def model_fingerprint(model: str | Path, revision: str | None = None) -> str:
    """Identity of a model for the cache: a local folder hashes its files' names, sizes and mtimes
    (rebuilt or retrained weights get a new identity); a hub name uses name@revision."""
    path = Path(model).expanduser()
    if path.is_dir():
        digest = hashlib.sha256()
        for file in sorted(path.rglob("*")):
            if file.is_file() and file.suffix in _WEIGHT_SUFFIXES:
                stat = file.stat()
                digest.update(f"{file.relative_to(path)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
        return f"{path.resolve()}#{digest.hexdigest()[:12]}"
    return f"{model}@{revision or 'main'}"


def _sampling_seed(base: int, keys: Sequence[str]) -> int:
    """A batch's seed from the run's seed and its requests, so a resumed run samples its remaining
    items the way a fresh run would sample that same batch."""
    digest = hashlib.sha256(("\x1f".join([str(base), *keys])).encode()).digest()
    return int.from_bytes(digest[:4], "little")


class HFGenerator:
    """A causal LM and its tokenizer, able to complete rendered prompts in batches."""

    def __init__(
        self,
        model: str | Path,
        device: str = "auto",
        dtype: str = "auto",
        revision: str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        if dtype == "auto":
            torch_dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        else:
            torch_dtype = getattr(torch, dtype)
        with loading(str(model)):
            self.tokenizer = AutoTokenizer.from_pretrained(
                str(model), revision=revision, trust_remote_code=trust_remote_code
            )
            self.model = AutoModelForCausalLM.from_pretrained(
                str(model), revision=revision, dtype=torch_dtype, trust_remote_code=trust_remote_code
            )
        self.tokenizer.padding_side = "left"  # decoder-only batching: new tokens follow every prompt
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model.to(device).eval()
        self.stop_ids = self._stop_ids()
        # The weights' dtype is part of the identity: bf16 on a GPU and fp32 on a CPU answer differently.
        self.identity = f"{model_fingerprint(model, revision)}|{str(torch_dtype).replace('torch.', '')}"
        # One generate at a time: the server calls from several threads and torch's global RNG is shared.
        self.lock = threading.Lock()

    def _stop_ids(self) -> list[int]:
        ids: set[int] = set()
        for value in (self.model.generation_config.eos_token_id, self.tokenizer.eos_token_id):
            if isinstance(value, int):
                ids.add(value)
            elif value:
                ids.update(int(v) for v in value)
        if not ids:
            raise ValueError("the model has no EOS token: generation could not stop")
        return sorted(ids)

    def render(self, request: GenRequest) -> tuple[str, bool]:
        """(prompt text, whether the tokenizer should add its special tokens such as BOS).

        Chat-template text already carries them; raw text gets them, as vLLM's completions endpoint does.
        """
        template = request.template
        if template.uses_chat_template:
            return template.render(request.user_message, self.tokenizer), False
        return template.render(request.user_message), True

    def complete(
        self,
        prompts: Sequence[tuple[str, bool]],
        sampling: SamplingConfig,
        batch_size: int,
        keys: Sequence[str] | None = None,
    ) -> list[list[Completion]]:
        """n completions for each (text, add_special_tokens) prompt, batched by length."""
        keys = list(keys) if keys is not None else [text for text, _ in prompts]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i][0]))
        per_batch = max(1, batch_size // sampling.n)
        results: list[list[Completion] | None] = [None] * len(prompts)
        for start in range(0, len(order), per_batch):
            chunk = order[start : start + per_batch]
            # Special-token handling must be uniform inside one tokenizer call.
            for flag in (True, False):
                part = [i for i in chunk if prompts[i][1] == flag]
                if part:
                    outputs = self._generate(
                        [prompts[i][0] for i in part],
                        flag,
                        sampling,
                        _sampling_seed(sampling.seed, [keys[i] for i in part]),
                    )
                    for i, completions in zip(part, outputs):
                        results[i] = completions
        return [r or [] for r in results]

    def _generate(
        self, texts: list[str], add_special_tokens: bool, sampling: SamplingConfig, seed: int
    ) -> list[list[Completion]]:
        torch = self.torch
        encoded = self.tokenizer(
            texts, return_tensors="pt", padding=True, add_special_tokens=add_special_tokens
        )
        encoded = {key: value.to(self.device) for key, value in encoded.items()}
        kwargs: dict[str, Any] = {
            "max_new_tokens": sampling.max_new_tokens,
            "num_return_sequences": sampling.n,
            "pad_token_id": self.tokenizer.pad_token_id,
            "eos_token_id": self.stop_ids,
            "use_cache": True,
        }
        if sampling.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=None)
        if sampling.stop:
            kwargs.update(stop_strings=list(sampling.stop), tokenizer=self.tokenizer)
        with self.lock, torch.inference_mode():
            if not sampling.greedy:
                torch.manual_seed(seed)
            output = self.model.generate(**encoded, **kwargs)
        new_tokens = output[:, encoded["input_ids"].shape[1] :].tolist()
        completions = [self._decode(ids, sampling) for ids in new_tokens]
        return [completions[i * sampling.n : (i + 1) * sampling.n] for i in range(len(texts))]

    def _decode(self, ids: list[int], sampling: SamplingConfig) -> Completion:
        stops = set(self.stop_ids) | {self.tokenizer.pad_token_id}
        cut = next((i for i, token in enumerate(ids) if token in stops), None)
        if cut is None:
            body, n_tokens, finish = ids, len(ids), "length"
        else:
            # Count the stop token, as OpenAI-compatible servers do in usage.completion_tokens.
            body, n_tokens, finish = ids[:cut], cut + 1, "stop"
        text = self.tokenizer.decode(body, skip_special_tokens=False)
        for stop in sampling.stop:
            pos = text.find(stop)
            if pos >= 0:
                text, finish = text[:pos], "stop"
        return Completion(text=text, n_tokens=n_tokens, finish_reason=finish)


class HFBackend:
    """`hf`: evaluate a local folder or hub model in-process."""

    def __init__(
        self,
        model: str | Path,
        batch_size: int = 16,
        device: str = "auto",
        dtype: str = "auto",
        revision: str | None = None,
        trust_remote_code: bool = False,
        model_id: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.generator = HFGenerator(
            model, device=device, dtype=dtype, revision=revision, trust_remote_code=trust_remote_code
        )
        self.batch_size = batch_size
        self.name = model_id or Path(str(model)).name or str(model)
        self.identity = f"hf:{model_id or self.generator.identity}"

    def generate(self, requests: Sequence[GenRequest], sampling: SamplingConfig) -> list[Generation]:
        prompts = [self.generator.render(request) for request in requests]
        outputs = self.generator.complete(
            prompts,
            sampling,
            self.batch_size,
            keys=[request.key or text for request, (text, _) in zip(requests, prompts)],
        )
        return [
            Generation(prompt=text, completions=completions)
            for (text, _), completions in zip(prompts, outputs)
        ]

    def close(self) -> None:
        pass
