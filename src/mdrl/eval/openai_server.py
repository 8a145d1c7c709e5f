"""An OpenAI-compatible server for a Hugging Face model: /v1/models, /v1/completions and
/v1/chat/completions, greedy when temperature is 0.

It is what `vllm serve` is on a GPU, for a laptop: the tiny model (or any HF folder) behind the real
protocol, so the `openai` backend can be checked against the in-process `hf` backend. Both use
`HFGenerator`, so greedy responses agree. Generation is serialised (one batch at a time); each
request's prompts and samples are generated together as one batch.

    mdrl eval serve-model --model runs/tiny --port 8000
"""

from __future__ import annotations

import logging
import time
import uuid
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


def create_app(generator: HFGenerator, model_name: str, batch_size: int = 16) -> Any:
    """The FastAPI app around a loaded `HFGenerator`."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    app = FastAPI(title="mdrl OpenAI-compatible server")

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
        outputs = generator.complete(texts, sampling, batch_size)
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
        samples = generator.complete(texts, sampling, batch_size)[0]
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
    """Load a model folder or hub name and return the app serving it."""
    generator = HFGenerator(model, device=device, dtype=dtype)
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
