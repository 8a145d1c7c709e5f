"""The tiny model through both backends: in-process `hf` (batched, left padding) and `openai` against
mdrl's own OpenAI-compatible server on a local port. Greedy responses and scores must agree exactly."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from mdrl.eval.backends.hf import HFBackend, HFGenerator
from mdrl.eval.backends.openai import OpenAIBackend, ServerError
from mdrl.eval.openai_server import create_app
from mdrl.eval.runner import EvalOptions, evaluate
from mdrl.eval.serving import BackgroundServer
from mdrl.eval.suites import load_suite, user_message
from mdrl.eval.types import GenRequest, SamplingConfig
from mdrl.templates import TEMPLATES, Template

SUITE = "gen:countdown:3-4:6"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    from mdrl.tiny import TinyModelConfig, build_tiny

    suite = load_suite(SUITE)
    corpus = []
    for item in suite.items:
        for name in TEMPLATES:
            if name != "chat":
                corpus.append(Template(name).render(user_message(item)))
        corpus.append(item.problem.reference or "")
    config = TinyModelConfig(
        vocab_size=400,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        seed=3,
    )
    path = build_tiny(tmp_path_factory.mktemp("tiny"), config, corpus=corpus)
    _widen_init(path, std=0.15)
    return path


def _widen_init(path, std):
    """Redraw the matrices with a larger spread. At the usual 0.02 a random model's greedy output
    depends on the last prompt tokens only, and every item of a suite ends the same way: all items would
    get one identical response and a backend comparison would prove nothing."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() >= 2:
                param.copy_(torch.randn(param.shape, generator=generator) * std)
    model.save_pretrained(path)


@pytest.fixture(scope="session")
def tiny_server(tiny_model):
    with BackgroundServer(create_app(HFGenerator(tiny_model), "tiny")) as server:
        yield server


def _samples(run):
    return [json.loads(line) for line in Path(run["samples_file"]).read_text().splitlines()]


@pytest.mark.parametrize("template", ["plain", "chat", "r1-base"])
def test_hf_and_openai_server_give_the_same_greedy_responses(template, tiny_model, tiny_server, tmp_path):
    sampling = SamplingConfig(max_new_tokens=20)
    options = EvalOptions(progress=False)
    hf = HFBackend(tiny_model, batch_size=4)  # batched with left padding; the server answers one at a time
    via_hf = evaluate(hf, [SUITE], template, sampling, tmp_path / "hf", options=options)["runs"][0]
    api = OpenAIBackend(tiny_server.url, concurrency=3, max_retries=0)
    try:
        via_api = evaluate(api, [SUITE], template, sampling, tmp_path / "api", options=options)["runs"][0]
    finally:
        api.close()
    left, right = _samples(via_hf), _samples(via_api)
    assert [s["item_id"] for s in left] == [s["item_id"] for s in right]
    assert [s["response"] for s in left] == [s["response"] for s in right]
    assert [s["score"] for s in left] == [s["score"] for s in right]
    assert [s["n_tokens"] for s in left] == [s["n_tokens"] for s in right]
    assert via_hf["accuracy"] == via_api["accuracy"]
    # A comparison of identical strings would prove nothing: the random model must say different things.
    assert len({s["response"] for s in left}) > 1
    assert all(0 < s["n_tokens"] <= 20 for s in left)
    if template != "chat":
        assert left[0]["prompt"] == right[0]["prompt"]  # same text over /v1/completions


def test_batch_size_does_not_change_greedy_output(tiny_model):
    suite = load_suite(SUITE)
    requests = [GenRequest(user_message(item), Template("plain"), key=item.item_id) for item in suite.items]
    sampling = SamplingConfig(max_new_tokens=12)
    one = HFBackend(tiny_model, batch_size=1).generate(requests, sampling)
    many = HFBackend(tiny_model, batch_size=6).generate(requests, sampling)
    assert [g.completions[0].text for g in one] == [g.completions[0].text for g in many]


def test_sampling_n_per_prompt_is_seeded(tiny_model, tmp_path):
    backend = HFBackend(tiny_model, batch_size=8)
    suite = load_suite("gen:countdown:3:3")
    requests = [GenRequest(user_message(item), Template("plain"), key=item.item_id) for item in suite.items]
    sampling = SamplingConfig(n=3, temperature=1.0, max_new_tokens=10, seed=7)
    first = backend.generate(requests, sampling)
    again = backend.generate(requests, sampling)
    other = backend.generate(requests, SamplingConfig(n=3, temperature=1.0, max_new_tokens=10, seed=8))
    texts = [[c.text for c in g.completions] for g in first]
    assert all(len(samples) == 3 for samples in texts)
    assert texts == [[c.text for c in g.completions] for g in again]
    assert texts != [[c.text for c in g.completions] for g in other]
    assert len({t for samples in texts for t in samples}) > 3  # samples differ within a prompt
    run = evaluate(backend, [suite], "plain", sampling, tmp_path, options=EvalOptions(progress=False))[
        "runs"
    ][0]
    assert run["n_samples"] == 9 and {"pass@1", "pass@2", "pass@3"} <= set(run)


def test_server_protocol(tiny_server):
    models = httpx.get(f"{tiny_server.url}/v1/models").json()
    assert models["data"][0]["id"] == "tiny"
    body = {"model": "tiny", "prompt": ["1 + 1 =", "2 + 2 ="], "max_tokens": 5, "temperature": 0}
    reply = httpx.post(f"{tiny_server.url}/v1/completions", json=body, timeout=60).json()
    assert [c["index"] for c in reply["choices"]] == [0, 1]
    assert 0 < reply["usage"]["completion_tokens"] <= 10
    wrong_model = httpx.post(f"{tiny_server.url}/v1/completions", json={**body, "model": "gpt-4"}, timeout=60)
    assert wrong_model.status_code == 400 and "tiny" in wrong_model.json()["error"]["message"]
    greedy_n = httpx.post(f"{tiny_server.url}/v1/completions", json={**body, "n": 2}, timeout=60)
    assert greedy_n.status_code == 400  # n copies of one greedy answer would fake pass@k
    chat = httpx.post(
        f"{tiny_server.url}/v1/chat/completions",
        timeout=60,
        json={
            "model": "tiny",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 4,
            "temperature": 0,
        },
    )
    assert chat.json()["choices"][0]["message"]["role"] == "assistant"


def test_openai_backend_retries_transient_errors_then_gives_up():
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    calls = {"n": 0}
    app = FastAPI()

    @app.get("/v1/models")
    def models():
        return {"data": [{"id": "flaky"}]}

    @app.post("/v1/completions")
    def completions(body: dict):
        calls["n"] += 1
        if calls["n"] <= 2 or "always fails" in body["prompt"]:
            return JSONResponse(status_code=503, content={"error": {"message": "busy"}})
        return {
            "choices": [{"index": 0, "text": "ok", "finish_reason": "stop"}],
            "usage": {"completion_tokens": 1},
        }

    with BackgroundServer(app) as server:
        backend = OpenAIBackend(server.url, max_retries=3, backoff=0.01, concurrency=1)
        out = backend.generate([GenRequest("x", Template("plain"))], SamplingConfig(max_new_tokens=4))
        assert out[0].completions[0].text == "ok" and calls["n"] == 3
        with pytest.raises(ServerError, match="4 attempts"):
            backend.generate(
                [GenRequest("always fails", Template("plain"))], SamplingConfig(max_new_tokens=4)
            )
        backend.close()


def test_openai_backend_fails_fast_when_no_server_listens():
    import socket

    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ServerError, match="ConnectError"):
        OpenAIBackend(f"http://127.0.0.1:{port}", model=None, max_retries=1, backoff=0.01)


def test_vllm_backend_explains_itself_when_vllm_is_missing():
    from mdrl.eval.backends import make_backend
    from mdrl.eval.backends.vllm import vllm_available

    if vllm_available():
        pytest.skip("vLLM is installed here")
    with pytest.raises(ImportError, match="--backend openai"):
        make_backend("vllm", "some/model")


def test_the_server_batches_concurrent_greedy_requests_and_runs_sampled_ones_alone():
    from concurrent.futures import ThreadPoolExecutor

    from mdrl.eval.openai_server import GreedyBatcher

    class Recording:
        def __init__(self):
            self.calls = []

        def complete(self, texts, sampling, batch_size):
            self.calls.append([text for text, _ in texts])
            time.sleep(0.05)
            return [[f"answer to {text}"] for text, _ in texts]

    generator = Recording()
    batcher = GreedyBatcher(generator, batch_size=4, batch_wait=0.5)
    greedy = SamplingConfig(max_new_tokens=8)
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda i: batcher.complete([(f"p{i}", False)], greedy), range(6)))
    assert answers == [[[f"answer to p{i}"]] for i in range(6)]              # each request gets its own
    assert sorted(len(call) for call in generator.calls) == [2, 4]             # up to batch_size together
    generator.calls.clear()
    sampled = SamplingConfig(max_new_tokens=8, temperature=1.0, seed=3)
    batcher.complete([("s", False)], sampled)
    assert generator.calls == [["s"]]
