"""The `vllm` backend: vLLM's offline `LLM` engine in-process, where vLLM is installed (GPU machines).

vLLM schedules its own batches, so the runner hands over large chunks. Prompts are rendered here
(the chat template with vLLM's tokenizer) and passed as text. Decoding keeps special tokens for the
same reason as the `hf` backend: some tokenizers mark <think>/<answer> as special.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, Sequence

from mdrl.eval.backends.hf import model_fingerprint
from mdrl.eval.types import Completion, GenRequest, Generation, SamplingConfig

log = logging.getLogger(__name__)


def vllm_available() -> bool:
    try:
        import vllm  # noqa: F401
    except ImportError:
        return False
    return True


class VLLMBackend:
    """`vllm`: evaluate with an in-process vLLM engine."""

    def __init__(
        self, model: str | Path, batch_size: int = 1024, model_id: str | None = None, **engine_args: Any
    ) -> None:
        try:
            from vllm import LLM
        except ImportError:
            raise ImportError(
                "the vllm backend needs vLLM (pip install vllm, on a GPU machine); "
                "or serve the model with `vllm serve` and use --backend openai"
            ) from None
        self.llm = LLM(model=str(model), **engine_args)
        self.tokenizer = self.llm.get_tokenizer()
        self.batch_size = batch_size
        self.name = model_id or Path(str(model)).name
        self.identity = f"vllm:{model_id or model_fingerprint(model)}"

    def _render(self, request: GenRequest) -> str:
        template = request.template
        if template.uses_chat_template:
            return template.render(request.user_message, self.tokenizer)
        return template.render(request.user_message)

    def generate(self, requests: Sequence[GenRequest], sampling: SamplingConfig) -> list[Generation]:
        from vllm import SamplingParams

        prompts = [self._render(request) for request in requests]
        params = []
        for request in requests:
            key = request.key or request.user_message
            seed = int.from_bytes(hashlib.sha256(f"{sampling.seed}\x1f{key}".encode()).digest()[:4], "little")
            params.append(
                SamplingParams(
                    n=sampling.n,
                    temperature=sampling.temperature,
                    top_p=sampling.top_p,
                    max_tokens=sampling.max_new_tokens,
                    stop=list(sampling.stop) or None,
                    seed=None if sampling.greedy else seed,
                    skip_special_tokens=False,
                )
            )
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        generations = []
        for prompt, output in zip(prompts, outputs):
            completions = [
                Completion(
                    text=_strip_eos(choice.text, self.tokenizer),
                    n_tokens=len(choice.token_ids),
                    finish_reason=str(choice.finish_reason or "stop"),
                )
                for choice in output.outputs
            ]
            generations.append(Generation(prompt=prompt, completions=completions))
        return generations

    def close(self) -> None:
        pass


def _strip_eos(text: str, tokenizer: Any) -> str:
    eos = getattr(tokenizer, "eos_token", None)
    if eos and text.endswith(eos):
        return text[: -len(eos)]
    return text
