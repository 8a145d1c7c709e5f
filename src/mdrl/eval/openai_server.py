"""An OpenAI-compatible server for a Hugging Face model: /v1/models, /v1/completions and
/v1/chat/completions, greedy when temperature is 0.

It is what `vllm serve` is on a GPU, for a laptop: the tiny model (or any HF folder) behind the real
protocol, so the `openai` backend can be checked against the in-process `hf` backend. Both use
`HFGenerator`, so greedy responses agree. Generation is serialised (one batch at a time). Greedy
requests that arrive together are batched together (up to `batch_size` sequences, waiting at most
`batch_wait` seconds for company), as vLLM batches concurrent requests: one prompt per request would
otherwise run at batch 1, several times slower on a CPU. A sampled request runs alone, so its seed
alone decides its samples.

    mdrl eval serve-model --model runs/tiny --port 8000
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from mdrl.eval.backends.hf import HFGenerator
from mdrl.eval.types import SamplingConfig

log = logging.getLogger(__name__)

#: OpenAI's documented default for /v1/completions when max_tokens is absent.
DEFAULT_MAX_TOKENS = 16


class RequestError(ValueError):
    """A request the server cannot honour (answered with HTTP 400)."""


def _sampling(body: dict[str, Any], chat: bool) -> SamplingConfig:
    max_tokens = body.get("max_completion_tokens") if chat else None
    max_tokens = max_tokens or body.get("max_tokens") or DEFAULT_MAX_TOKENS
    stop = body.get("stop") or ()
    if isinstance(stop, str):
        stop = (stop,)
    try:
        temperature = float(body["temperature"]) if body.get("temperature") is not None else 1.0
        return SamplingConfig(
            n=int(body.get("n") or 1),
            temperature=temperature,
            top_p=float(body.get("top_p") if body.get("top_p") is not None else 1.0),
            max_new_tokens=int(max_tokens),
            seed=int(body.get("seed") or 0),
            stop=tuple(stop),
        )
    except (TypeError, ValueError) as exc:
        raise RequestError(str(exc)) from None


def _usage(prompt_tokens: int, completions: list[Any]) -> dict[str, int]:
    generated = int(sum(c.n_tokens or 0 for c in completions))
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": generated,
        "total_tokens": prompt_tokens + generated,
    }


class GreedyBatcher:
    """Collects greedy prompts of concurrent requests into shared `HFGenerator.complete` calls."""

    def __init__(self, generator: HFGenerator, batch_size: int, batch_wait: float) -> None:
        self.generator, self.batch_size, self.batch_wait = generator, batch_size, batch_wait
        self.pending: queue.Queue[tuple[list[tuple[str, bool]], SamplingConfig, Future[Any]]] = queue.Queue()
        threading.Thread(target=self._loop, name="greedy-batcher", daemon=True).start()

    def complete(self, texts: list[tuple[str, bool]], sampling: SamplingConfig) -> list[list[Any]]:
        if not sampling.greedy:
            return self.generator.complete(texts, sampling, self.batch_size)
        done: Future[Any] = Future()
        self.pending.put((texts, sampling, done))
        return done.result()

    def _loop(self) -> None:
        while True:
            first = self.pending.get()
            group, others = [first], []
            deadline = time.monotonic() + self.batch_wait
            size = len(first[0])
            while size < self.batch_size:
                try:
                    item = self.pending.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item[1] == first[1]:  # one generate call shares its max_new_tokens and stop strings
                    group.append(item)
                    size += len(item[0])
                else:
                    others.append(item)
            for item in others:
                self.pending.put(item)
            texts = [text for item in group for text in item[0]]
            try:
                outputs = self.generator.complete(texts, first[1], self.batch_size)
            except Exception as exc:  # noqa: BLE001  # each waiting request gets the error; the loop goes on
                for item in group:
                    item[2].set_exception(exc)
                continue
            start = 0
            for item in group:
                item[2].set_result(outputs[start:start + len(item[0])])
                start += len(item[0])


def create_app(generator: HFGenerator, model_name: str, batch_size: int = 16, batch_wait: float = 0.05) -> Any:
    """The FastAPI app around a loaded `HFGenerator`."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    app = FastAPI(title="mdrl OpenAI-compatible server")
    batcher = GreedyBatcher(generator, batch_size, batch_wait)

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse(
            status_code=status, content={"error": {"message": message, "type": "invalid_request_error"}}
        )

    def check_model(body: dict[str, Any]) -> None:
        asked = body.get("model")
        if asked not in (None, "", model_name):
            raise RequestError(f"this server serves {model_name!r}, not {asked!r}")

    def prompt_tokens(texts: list[tuple[str, bool]]) -> int:
        return sum(
            len(generator.tokenizer(text, add_special_tokens=flag)["input_ids"]) for text, flag in texts
        )

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": model_name, "object": "model", "owned_by": "mdrl", "created": int(time.time())}],
        }

    # Plain `def` handlers run in FastAPI's thread pool; HFGenerator's lock serialises the model.
    @app.post("/v1/completions")
    def completions(body: dict[str, Any]) -> Any:
        try:
            check_model(body)
            sampling = _sampling(body, chat=False)
            prompt = body.get("prompt")
            prompts = [prompt] if isinstance(prompt, str) else prompt
            if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
                raise RequestError("prompt must be a string or a list of strings")
        except RequestError as exc:
            return error(400, str(exc))
        texts = [(p, True) for p in prompts]
        outputs = batcher.complete(texts, sampling)
        choices, flat = [], []
        for i, samples in enumerate(outputs):
            for completion in samples:
                choices.append(
                    {
                        "index": len(choices),
                        "text": completion.text,
                        "logprobs": None,
                        "finish_reason": completion.finish_reason,
                    }
                )
                flat.append(completion)
        return {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": model_name,
            "choices": choices,
            "usage": _usage(prompt_tokens(texts), flat),
        }

    @app.post("/v1/chat/completions")
    def chat_completions(body: dict[str, Any]) -> Any:
        try:
            check_model(body)
            sampling = _sampling(body, chat=True)
            messages = body.get("messages")
            if not isinstance(messages, list) or not all(
                isinstance(m, dict) and "role" in m for m in messages
            ):
                raise RequestError("messages must be a list of {role, content} objects")
            if getattr(generator.tokenizer, "chat_template", None) is None:
                raise RequestError("this model's tokenizer has no chat template")
        except RequestError as exc:
            return error(400, str(exc))
        text = generator.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        texts = [(text, False)]
        samples = batcher.complete(texts, sampling)[0]
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": c.text},
                "finish_reason": c.finish_reason,
            }
            for i, c in enumerate(samples)
        ]
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model_name,
            "choices": choices,
            "usage": _usage(prompt_tokens(texts), samples),
        }

    return app


def build_app(
    model: str | Path,
    served_name: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    batch_size: int = 16,
) -> Any:
    """Load a model folder, hub name or packaged model (smollm2) and return the app serving it."""
    from mdrl.pretrained import resolve_model

    generator = HFGenerator(resolve_model(str(model)), device=device, dtype=dtype)
    return create_app(generator, served_name or Path(str(model)).name or str(model), batch_size)


def serve(
    model: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    served_name: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    batch_size: int = 16,
) -> None:
    """Serve in the foreground until interrupted."""
    import uvicorn

    app = build_app(model, served_name, device, dtype, batch_size)
    log.warning("serving %s on http://%s:%d/v1", model, host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning")
