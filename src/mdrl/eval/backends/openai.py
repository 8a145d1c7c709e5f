"""The `openai` backend: any OpenAI-compatible server (`vllm serve`, SGLang, `mdrl eval serve-model`).

Raw-text templates (r1-base, plain) go to /v1/completions with the rendered prompt, so the model sees
exactly the study's text; the chat template goes to /v1/chat/completions with the template's
messages and the server applies the model's own chat template. Requests run concurrently on a thread
pool (one request per prompt, `n` samples each); transient failures (connection errors, timeouts,
429 and 5xx answers) are retried with exponential backoff, other 4xx answers fail at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from mdrl.eval.types import Completion, GenRequest, Generation, SamplingConfig

log = logging.getLogger(__name__)

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class ServerError(RuntimeError):
    """The server answered with an error that retrying will not fix, or kept failing."""


class OpenAIBackend:
    """`openai`: evaluate a model behind an OpenAI-compatible HTTP server."""

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        api_key: str | None = None,
        concurrency: int = 8,
        timeout: float = 600.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        model_id: str | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        import httpx

        base = base_url.rstrip("/")
        self.base_url = base if base.endswith("/v1") else f"{base}/v1"
        self.concurrency = max(1, concurrency)
        self.max_retries = max(0, max_retries)
        self.backoff = backoff
        self.extra_body = dict(extra_body or {})
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        self.client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 30.0)), headers=headers, limits=limits
        )
        self.pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="mdrl-openai")
        try:
            self.model = model or self._served_model()
        except BaseException:
            self.close()
            raise
        self.name = model_id or self.model
        # A server's model may change behind the same URL: pass model_id to pin a version.
        self.identity = f"openai:{model_id or f'{self.base_url}|{self.model}'}"
        if self.extra_body:  # request options such as skip_special_tokens change the responses
            self.identity += "|" + json.dumps(self.extra_body, sort_keys=True)
        # The runner hands over enough prompts to keep every connection busy.
        self.batch_size = self.concurrency * 4

    def _served_model(self) -> str:
        data = self._request("GET", "/models", None)
        models = [entry.get("id") for entry in data.get("data", []) if isinstance(entry, dict)]
        if not models:
            raise ServerError(f"{self.base_url}/models lists no model; pass --served-model")
        if len(models) > 1:
            log.warning("server lists %d models; using the first, %s", len(models), models[0])
        return str(models[0])

    def _request(self, method: str, path: str, payload: dict[str, Any] | None) -> dict[str, Any]:
        import httpx

        url = self.base_url + path
        for attempt in range(self.max_retries + 1):
            try:
                response = self.client.request(method, url, json=payload)
            except httpx.TransportError as exc:  # connection refused/reset, timeouts
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 400:
                    return response.json()
                problem = f"HTTP {response.status_code}: {response.text[:300]}"
                if response.status_code not in RETRY_STATUS:
                    raise ServerError(f"{method} {url} failed: {problem}")
            if attempt == self.max_retries:
                raise ServerError(f"{method} {url} failed after {attempt + 1} attempts: {problem}")
            delay = self.backoff * (2**attempt) * (0.5 + random.random())  # jitter spreads retries out
            log.warning(
                "%s %s: %s; retry %d/%d in %.1fs", method, url, problem, attempt + 1, self.max_retries, delay
            )
            time.sleep(delay)
        raise AssertionError("unreachable")

    def _payload(self, request: GenRequest, sampling: SamplingConfig) -> tuple[str, dict[str, Any], str]:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": sampling.max_new_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "n": sampling.n,
        }
        if not sampling.greedy:
            key = request.key or request.user_message
            digest = hashlib.sha256(f"{sampling.seed}\x1f{key}".encode()).digest()
            body["seed"] = int.from_bytes(digest[:4], "little") >> 1
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        body.update(self.extra_body)
        template = request.template
        if template.uses_chat_template:
            messages = template.messages(request.user_message)
            body["messages"] = messages
            shown = "\n".join(f"[{m['role']}] {m['content']}" for m in messages)
            return "/chat/completions", body, shown
        prompt = template.render(request.user_message)
        body["prompt"] = prompt
        return "/completions", body, prompt

    def _one(self, request: GenRequest, sampling: SamplingConfig) -> Generation:
        path, body, shown = self._payload(request, sampling)
        data = self._request("POST", path, body)
        choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
        if len(choices) != sampling.n:
            raise ServerError(f"asked for {sampling.n} choices, the server returned {len(choices)}")
        usage = data.get("usage") or {}
        total = usage.get("completion_tokens")
        # usage is per request: exact per sample when n == 1, the per-sample mean otherwise.
        n_tokens = float(total) / sampling.n if isinstance(total, (int, float)) else None
        completions = []
        for choice in choices:
            if path == "/chat/completions":
                text = (choice.get("message") or {}).get("content") or ""
            else:
                text = choice.get("text") or ""
            completions.append(
                Completion(
                    text=text, n_tokens=n_tokens, finish_reason=str(choice.get("finish_reason") or "stop")
                )
            )
        return Generation(prompt=shown, completions=completions)

    def generate(self, requests: Sequence[GenRequest], sampling: SamplingConfig) -> list[Generation]:
        return list(self.pool.map(lambda request: self._one(request, sampling), requests))

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.client.close()
