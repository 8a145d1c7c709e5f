"""A replay "model": an OpenAI-compatible server that answers each prompt with a stored response.

It speaks the same protocol as `vllm serve` (/v1/models, /v1/completions, /v1/chat/completions), so
the `openai` backend, the runner and the scorers are exercised end to end with known answers: serve
every item's reference and a suite must score ~100%; serve wrong answers and it must score 0.
Lookup is by the exact prompt text (completions) or the exact message list (chat); an unknown
prompt is a 404, never a silent empty answer.
"""

from __future__ import annotations

import json
import time
from typing import Any, Mapping

from mdrl.eval.types import GenRequest


def chat_key(messages: Any) -> str:
    return json.dumps(messages, ensure_ascii=False, sort_keys=True)


class ReplayStore:
    """Stored responses by prompt, filled from the same GenRequests the runner sends."""

    def __init__(self) -> None:
        self.completions: dict[str, str] = {}
        self.chat: dict[str, str] = {}
        self.hits = 0

    def add(self, request: GenRequest, response: str) -> None:
        template = request.template
        if template.uses_chat_template:
            self.chat[chat_key(template.messages(request.user_message))] = response
        else:
            self.completions[template.render(request.user_message)] = response

    def __len__(self) -> int:
        return len(self.completions) + len(self.chat)


def _error(status: int, message: str) -> Any:
    from fastapi.responses import JSONResponse

    return JSONResponse(
        status_code=status, content={"error": {"message": message, "type": "invalid_request_error"}}
    )


def replay_app(store: ReplayStore, model: str = "replay") -> Any:
    """A FastAPI app serving `store`."""
    from fastapi import FastAPI

    app = FastAPI(title="mdrl replay server")

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": model, "object": "model", "owned_by": "mdrl"}]}

    @app.post("/v1/completions")
    def completions(body: dict[str, Any]) -> Any:
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            return _error(400, "replay serves one string prompt per request")
        response = store.completions.get(prompt)
        if response is None:
            return _error(404, f"no stored response for prompt {prompt[:80]!r}")
        store.hits += 1
        n = int(body.get("n") or 1)
        return {
            "id": f"cmpl-replay-{store.hits}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": i, "text": response, "finish_reason": "stop", "logprobs": None} for i in range(n)
            ],
        }

    @app.post("/v1/chat/completions")
    def chat(body: dict[str, Any]) -> Any:
        response = store.chat.get(chat_key(body.get("messages")))
        if response is None:
            return _error(404, "no stored response for these messages")
        store.hits += 1
        n = int(body.get("n") or 1)
        return {
            "id": f"chatcmpl-replay-{store.hits}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": i, "message": {"role": "assistant", "content": response}, "finish_reason": "stop"}
                for i in range(n)
            ],
        }

    return app


def store_from_mapping(pairs: Mapping[GenRequest, str]) -> ReplayStore:
    store = ReplayStore()
    for request, response in pairs.items():
        store.add(request, response)
    return store
