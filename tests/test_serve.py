"""`mdrl serve`: a real uvicorn server in a subprocess, driven over HTTP with httpx.

The server is started once per module on a free loopback port (`--port 0`, the URL is read from its
first line of output) and stopped at teardown. Verdicts are compared with in-process compute_score on
the very same (JSON round-tripped) rows; malformed requests must get 4xx and leave the server serving.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from mdrl import compute_score
from mdrl.domains import all_domains, domain_for_source, known_sources
from mdrl.serve import RequestError, ServeConfig, parse_openrlhf_request

MAX_BATCH = 600
MAX_BODY_MB = 1
STARTUP_TIMEOUT_S = 90

COUNTDOWN_GT = {"numbers": [30, 71, 88, 2], "target": 45}
RIGHT = "<think>88 - 71 = 17, 17 + 30 = 47, 47 - 2 = 45</think>\n<answer>(88 - 71 + 30) - 2</answer>"
WRONG = "<think>guess</think>\n<answer>88 - 71 + 30</answer>"


def _countdown(solution: Any = RIGHT, **overrides: Any) -> dict[str, Any]:
    return {"data_source": "countdown", "solution_str": solution, "ground_truth": COUNTDOWN_GT, **overrides}


# ---------------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------------


def _read_url(proc: subprocess.Popen, timeout: float) -> str:
    """The URL from the server's first output line (read in a thread: readline has no timeout)."""
    found: list[str] = []

    def read() -> None:
        line = proc.stdout.readline()
        if line:
            found.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if not found or "http://" not in found[0]:
        raise RuntimeError(f"server printed no URL within {timeout}s: {found}")
    return found[0].split()[-1]


def _warm_up_in_process() -> None:
    """The expected verdicts come from compute_score in this process: pay its first-call costs (math
    equivalence imports) while the server starts."""
    for domain in all_domains().values():
        if domain.group != "code" and domain.generate is not None and domain.difficulties:
            problem = domain.generate(0, 0, min(domain.difficulties), "en")
            compute_score(problem.data_source, "<answer>0</answer>", problem.ground_truth)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    if "countdown" not in all_domains():
        pytest.skip("countdown domain not registered")
    log_path = tmp_path_factory.mktemp("serve") / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mdrl", "serve", "--port", "0", "--workers", "2", "--code-workers", "1",
             "--max-batch", str(MAX_BATCH), "--max-body-mb", str(MAX_BODY_MB), "--data-source", "countdown"],
            stdout=subprocess.PIPE, stderr=log, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        _warm_up_in_process()  # overlaps the server's start-up
        url = _read_url(proc, STARTUP_TIMEOUT_S)
        # The banner means the socket accepts: the first request, sent at once and never retried,
        # waits for the scoring pools instead of being refused.
        try:
            healthy = httpx.get(f"{url}/health", timeout=STARTUP_TIMEOUT_S).status_code == 200
        except httpx.TransportError as exc:
            raise RuntimeError(f"first request after the banner failed: {exc!r}\n"
                               f"{log_path.read_text()[-3000:]}") from None
        if not healthy:
            raise RuntimeError(f"server did not become healthy:\n{log_path.read_text()[-3000:]}")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=120) as c:
        yield c


def _post(client: httpx.Client, path: str, body: Any) -> httpx.Response:
    return client.post(path, json=body)


def _expected(items: list[dict[str, Any]], reward: Any = None) -> list[dict[str, Any]]:
    return [compute_score(it["data_source"], it["solution_str"], it["ground_truth"], it.get("extra_info"),
                          reward=reward) for it in items]


# ---------------------------------------------------------------------------------------------------
# Rows from the study's test sets: references from each domain's load_row, plus wrong responses
# ---------------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """Parquet values (numpy arrays and scalars) as JSON values."""
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


STUDY_SETS = {"countdown": "countdown", "kk": "knights_knaves", "zebra": "zebra", "deepscaler": "math",
              "code-r1-12k": "code"}


def study_items(paper: Path, folder: str, limit: int | None) -> list[dict[str, Any]]:
    """Per row: the reference, prompt + reference, the next row's reference (a well-formed wrong
    answer), and the reference cut in half (no closed answer). Skips when the domain is not here."""
    domain_name = STUDY_SETS[folder]
    domain = all_domains().get(domain_name)
    if domain is None or domain.load_row is None:
        pytest.skip(f"domain {domain_name} not registered (or has no loader)")
    pd = pytest.importorskip("pandas")
    frame = pd.read_parquet(paper / folder / "test.parquet")
    if limit is not None:
        frame = frame.iloc[:limit]
    rows = [row.to_dict() for _, row in frame.iterrows()]
    problems = [domain.load_row(row, f"{folder}/test.parquet:{i}") for i, row in enumerate(rows)]
    items = []
    for i, (row, problem) in enumerate(zip(rows, problems)):
        reference = problem.reference
        if reference is None:
            continue
        other = problems[(i + 1) % len(problems)].reference or ""
        prompt = _plain(row.get("prompt"))
        prompt_text = prompt[0]["content"] if isinstance(prompt, list) and prompt else ""
        base = {"data_source": row["data_source"], "ground_truth": _plain(row["reward_model"]["ground_truth"]),
                "extra_info": _plain(row.get("extra_info"))}
        for solution in (reference, prompt_text + reference, other, reference[: len(reference) // 2]):
            items.append({**base, "solution_str": solution})
    if not items:
        pytest.skip(f"{folder}: no reference responses")
    # What the server receives is JSON: compare against compute_score on the same round-tripped values.
    return json.loads(json.dumps(items))


# ---------------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------------


def test_health_and_domains(client):
    health = client.get("/health").json()
    assert health["status"] == "ok"
    assert health["workers"] == {"cpu": 2, "code": 1}
    assert set(health["code_domains"]) == {d.name for d in all_domains().values() if d.group == "code"}
    assert health["max_batch"] == MAX_BATCH and health["data_source"] == "countdown"
    listed = client.get("/domains").json()
    assert listed["data_sources"] == known_sources()
    assert {d["name"] for d in listed["domains"]} == set(all_domains())


def test_score_keeps_order_and_matches_compute_score(client):
    items = [_countdown(RIGHT), _countdown(WRONG), _countdown(None), _countdown("User: hi\nAssistant: " + RIGHT)]
    response = _post(client, "/score", items)
    assert response.status_code == 200, response.text
    results = response.json()
    assert [r["acc"] for r in results] == [True, False, False, True]
    assert results == _expected(items)
    assert _post(client, "/score", []).json() == []


@pytest.mark.parametrize("folder,rows", [("countdown", 25), ("kk", 25), ("zebra", 25), ("deepscaler", 8)])
def test_study_test_sets_score_as_in_process(client, paper_data, folder, rows):
    items = study_items(paper_data, folder, limit=rows)
    response = _post(client, "/score", {"items": items})
    assert response.status_code == 200, response.text[:500]
    results = response.json()
    assert results == _expected(items)
    # Both verdicts occur, so the comparison above is not between two columns of zeros.
    assert {r["acc"] for r in results} == {True, False}
    assert all(r["acc"] for r in results[::4]), "every reference should score as correct"


def test_code_rows_score_as_in_process(client, paper_data):
    items = study_items(paper_data, "code-r1-12k", limit=3)
    expected = _expected(items)
    if expected[0]["reason"].startswith("verifier error"):
        pytest.skip(f"the code sandbox does not run here: {expected[0]['reason']}")
    response = _post(client, "/score", items)
    assert response.status_code == 200, response.text[:500]
    assert response.json() == expected
    assert all(r["acc"] for r in expected[::4]) and not all(r["acc"] for r in expected)
    assert client.get("/health").json()["code_domains"] == {"code": "ok"}


def _swap_two_houses(reference: str) -> str:
    """A zebra reference with House 1 and House 2 trading their first attribute: most cells still right."""
    head, _, rest = reference.partition("<answer>")
    answer, _, tail = rest.partition("</answer>")
    grid = json.loads(answer)
    solution = grid["solution"]
    first = next(iter(solution["House 1"]))
    solution["House 1"][first], solution["House 2"][first] = solution["House 2"][first], solution["House 1"][first]
    return f"{head}<answer>{json.dumps(grid)}</answer>{tail}"


def test_reward_options_per_request(client, paper_data):
    items = study_items(paper_data, "zebra", limit=5)
    items += [{**it, "solution_str": _swap_two_houses(it["solution_str"])} for it in items[::4]]
    for reward in ({"mode": "proportional", "format_weight": 0.25}, {"mode": "binary"}):
        response = _post(client, "/score", {"items": items, "reward": reward})
        assert response.status_code == 200, response.text[:500]
        assert response.json() == _expected(items, reward)
    proportional = _post(client, "/score", {"items": items, "reward": {"mode": "proportional"}}).json()
    binary = _post(client, "/score", {"items": items, "reward": {"mode": "binary"}}).json()
    partial = [r["score"] for r in proportional if 0 < r["score"] < 1]
    assert partial and all(r["score"] == 0 for r in binary[-len(items[::4]):] if not r["acc"])
    assert [r["score"] for r in proportional] != [r["score"] for r in binary]


def test_openrlhf_protocol(client):
    prompt = "A conversation between User and Assistant.\nUser: use 30 71 88 2 to make 45\nAssistant: <think>"
    queries = [prompt + RIGHT[len("<think>"):], prompt + WRONG[len("<think>"):], RIGHT, RIGHT]
    labels = [
        json.dumps({"data_source": "countdown", "ground_truth": COUNTDOWN_GT}),  # envelope as JSON text
        {"data_source": "countdown", "ground_truth": COUNTDOWN_GT},              # envelope as an object
        json.dumps(COUNTDOWN_GT),                       # bare ground truth: the server's --data-source
        json.dumps({"numbers": [1, 2, 3], "target": 6}),
    ]
    response = _post(client, "/get_reward", {"query": queries, "prompts": [prompt, prompt, "", ""],
                                             "labels": labels})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["rewards"] == [1.0, 0.0, 1.0, 0.0]
    assert body["scores"] == body["rewards"]
    assert body["extra_logs"] == {"acc": [1.0, 0.0, 1.0, 0.0]}
    expected = _expected([_countdown(RIGHT[len("<think>"):]), _countdown(WRONG[len("<think>"):]), _countdown(RIGHT),
                          {"data_source": "countdown", "solution_str": RIGHT,
                           "ground_truth": {"numbers": [1, 2, 3], "target": 6}}])
    assert body["rewards"] == [r["score"] for r in expected]


def test_openrlhf_reward_options_and_format_log(client):
    body = {"query": [RIGHT, "<answer>(88 - 71 + 30) - 2</answer>"], "labels": [COUNTDOWN_GT, COUNTDOWN_GT],
            "reward": {"format_weight": 0.5}}
    result = _post(client, "/get_reward", body).json()
    assert result["rewards"] == [1.0, 0.5]
    assert result["extra_logs"] == {"acc": [1.0, 1.0], "format": [1.0, 0.0]}


def test_openrlhf_without_any_data_source_is_refused():
    body = {"query": [RIGHT], "labels": [json.dumps(COUNTDOWN_GT)]}
    with pytest.raises(RequestError) as refused:
        parse_openrlhf_request(body, ServeConfig(data_source=None))
    assert refused.value.status == 422 and "item 0: no data_source" in refused.value.detail
    items, _ = parse_openrlhf_request({**body, "data_source": "countdown"}, ServeConfig(data_source=None))
    assert items[0].domain.name == "countdown"


def _too_many() -> list[dict[str, Any]]:
    return [_countdown()] * (MAX_BATCH + 1)


MALFORMED = [
    # (id, raw body or JSON value, status, fragments the detail must contain)
    ("not-json", b"{this is not json", 400, ["not valid JSON"]),
    ("empty-body", b"", 400, ["empty body"]),
    ("not-utf8", b"\xff\xfe[1]", 400, ["not valid JSON"]),
    ("scalar", 42, 422, ["expected a JSON list"]),
    ("single-item-object", _countdown(), 422, ["expected a JSON list"]),
    ("wrong-types", [1, "a"], 422, ["item 0", "expected an object"]),
    ("missing-fields", [_countdown(), {"data_source": "countdown"}], 422, ["item 1", "solution_str"]),
    ("missing-ground-truth", [{"data_source": "countdown", "solution_str": RIGHT}], 422,
     ["item 0", "missing ground_truth"]),
    ("null-ground-truth", [_countdown(), _countdown(ground_truth=None)], 422, ["item 1", "missing ground_truth"]),
    ("unknown-data-source", [_countdown(), _countdown(data_source="countdwn")], 422,
     ["item 1", "unknown data_source 'countdwn'", "Did you mean", "kk_logic"]),
    ("data-source-not-string", [_countdown(data_source=7)], 422, ["item 0", "must be a string"]),
    ("extra-info-not-object", [_countdown(extra_info="x")], 422, ["item 0", "extra_info"]),
    ("malformed-ground-truth", [_countdown(), _countdown(ground_truth="{not json")], 422, ["item 1", "JSON"]),
    ("items-not-list", {"items": {"a": 1}}, 422, ["'items' must be a list"]),
    ("unknown-top-level", {"items": [], "rewards": {}}, 422, ["unknown top-level", "rewards"]),
    ("bad-reward-mode", {"items": [_countdown()], "reward": {"mode": "partial"}}, 422, ["reward", "partial"]),
    ("bad-reward-key", {"items": [_countdown()], "reward": {"weight": 1}}, 422, ["unknown reward option"]),
    ("bad-reward-type", {"items": [_countdown()], "reward": "binary"}, 422, ["reward must be an object"]),
    ("nested-100k-deep", b"[" * 100_000 + b"]" * 100_000, 400, ["not valid JSON", "nested too deeply"]),
    ("nested-solution", b'[{"data_source": "countdown", "ground_truth": 1, "solution_str": '
     + b"[" * 100_000 + b"]" * 100_000 + b"}]", 400, ["nested too deeply"]),
    ("5000-digit-integer", b'[{"data_source": "countdown", "solution_str": "1", "ground_truth": '
     + b"9" * 5000 + b"}]", 400, ["not valid JSON", "digits"]),
    ("format-weight-text", {"items": [_countdown()], "reward": {"format_weight": "abc"}}, 422,
     ["format_weight must be a number"]),
    ("too-many-items", _too_many(), 413, ["too many items", str(MAX_BATCH)]),
    ("oversized-body", [_countdown("x" * (MAX_BODY_MB << 20))], 413, ["max_body", "bytes"]),
]


@pytest.mark.parametrize("body,status,fragments", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_score_requests_get_4xx_and_server_stays_up(client, body, status, fragments):
    if isinstance(body, bytes):
        response = client.post("/score", content=body, headers={"content-type": "application/json"})
    else:
        response = _post(client, "/score", body)
    assert response.status_code == status, response.text[:300]
    payload = response.json()
    assert len(payload["detail"]) <= 503
    text = json.dumps(payload)
    for fragment in fragments:
        assert fragment in text or fragment in payload["detail"], (fragment, payload["detail"][:300])
    if "unknown data_source" in payload["detail"]:
        assert payload["index"] == 1 and payload["known_sources"] == known_sources()
    # Still serving, and still right.
    assert client.get("/health").json()["status"] == "ok"
    assert [r["acc"] for r in _post(client, "/score", [_countdown(RIGHT), _countdown(WRONG)]).json()] == [True, False]


def test_oversized_chunked_body_is_refused_while_streaming(client):
    chunk = b" " * (64 << 10)

    def body() -> Iterator[bytes]:  # no Content-Length: the server must count as it reads
        yield b"["
        for _ in range((MAX_BODY_MB << 20) // len(chunk) + 2):
            yield chunk
        yield b"]"

    response = client.post("/score", content=body(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert client.get("/health").json()["status"] == "ok"


@pytest.mark.parametrize("body,fragment", [
    ({"query": "x"}, "'labels' missing"),
    ({"query": ["a", "b"], "labels": ["1"]}, "as long as 'query'"),
    ({"query": ["a"], "labels": ["1"], "prompts": "p"}, "'prompts' must be a list"),
    ([1, 2], "expected an object"),
    ({"query": [RIGHT], "labels": [{"data_source": "nope", "ground_truth": "1"}]}, "item 0: unknown data_source"),
    ({"query": [RIGHT], "labels": [{"data_source": "countdown", "ground_truth": None}]}, "item 0: missing ground_truth"),
])
def test_malformed_openrlhf_requests_get_422(client, body, fragment):
    response = _post(client, "/get_reward", body)
    assert response.status_code == 422, response.text[:300]
    assert fragment in response.json()["detail"]


def test_scoring_runs_off_the_event_loop(client, paper_data):
    """While a large batch is being scored in the pool, /health still answers."""
    items = (study_items(paper_data, "kk", limit=60) * 3)[:MAX_BATCH]
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def big_batch() -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=120) as own:
            outcome["response"] = _post(own, "/score", items)
        done.set()

    worker = threading.Thread(target=big_batch)
    worker.start()
    answered_during = 0
    while not done.is_set():
        health = client.get("/health", timeout=30)
        if not done.is_set() and health.status_code == 200:
            answered_during += 1
        time.sleep(0.02)
    worker.join()
    assert outcome["response"].status_code == 200
    assert answered_during >= 1, "no /health answer while the batch was being scored"


def test_serve_cli_rejects_bad_options_before_binding():
    from typer.testing import CliRunner

    from mdrl.cli import app

    for args, message in ((["--data-source", "nope"], "unknown data_source 'nope'"),
                          (["--reward", "partial"], "reward mode must be"),
                          (["--max-batch", "0"], "max_batch must be >= 1")):
        result = CliRunner().invoke(app, ["serve", "--port", "0", *args])
        assert result.exit_code != 0
        assert message in " ".join(result.output.split()), result.output


def test_a_killed_worker_costs_one_503_then_the_pool_is_replaced(client):
    psutil = pytest.importorskip("psutil")
    server = psutil.Process(client.get("/health").json()["pid"])
    forkservers = [p for p in server.children() if "forkserver" in " ".join(p.cmdline())]
    assert len(forkservers) == 1
    workers = forkservers[0].children()
    assert len(workers) == 2
    workers[0].kill()
    workers[0].wait(timeout=10)
    time.sleep(0.5)  # let the pool notice
    refused = _post(client, "/score", [_countdown(RIGHT)])
    assert refused.status_code == 503 and "retry" in refused.json()["detail"]
    retried = _post(client, "/score", [_countdown(RIGHT), _countdown(WRONG)])
    assert retried.status_code == 200, retried.text
    assert [r["acc"] for r in retried.json()] == [True, False]
    assert all(not w.is_running() or w.status() == psutil.STATUS_ZOMBIE for w in workers)


@pytest.mark.slow
@pytest.mark.parametrize("folder", ["countdown", "kk", "zebra", "deepscaler", "code-r1-12k"])
def test_full_study_test_sets_match_the_score_cli(client, paper_data, folder, tmp_path):
    """Every row of each test set (code: 40 rows), through the server and through `mdrl score`."""
    items = study_items(paper_data, folder, limit=40 if folder == "code-r1-12k" else None)
    served: list[dict[str, Any]] = []
    for start in range(0, len(items), 100):  # 100 rows stay under the test server's 1 MiB body limit
        response = _post(client, "/score", items[start:start + 100])
        assert response.status_code == 200, response.text[:500]
        served.extend(response.json())
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(it) + "\n" for it in items))
    proc = subprocess.run([sys.executable, "-m", "mdrl", "score", "--input", str(rows)], capture_output=True,
                          text=True, timeout=1800, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    cli = [json.loads(line) for line in proc.stdout.splitlines()]
    assert served == cli
    assert any(r["acc"] for r in served)
    # Routing sanity: every data_source of the set resolves to the expected domain.
    assert {domain_for_source(it["data_source"]).name for it in items} == {STUDY_SETS[folder]}


# ---------------------------------------------------------------------------------------------------
# Fairness, deadlines and abandoned requests
# ---------------------------------------------------------------------------------------------------

LOOP_FOREVER = "<answer>\n```python\ndef f(x):\n    while True:\n        pass\n```\n</answer>"
CODE_GT = {"functional": "def check(candidate):\n    assert candidate(1) == 2\n\n\ncheck(f)"}
CODE_RIGHT = "<answer>\n```python\ndef f(x):\n    return x + 1\n```\n</answer>"


def _code(response: str) -> dict[str, Any]:
    return {"data_source": "code", "solution_str": response, "ground_truth": CODE_GT}


def test_code_queue_serves_the_least_served_client_then_round_robin_over_requests():
    import asyncio as aio

    from mdrl.serve import CodeQueue

    loop = aio.new_event_loop()
    try:
        def rows(tag: str, n: int):
            return [((tag, i), loop.create_future()) for i in range(n)]

        queue = CodeQueue()
        queue.add("flood", rows("a", 3))
        queue.add("flood", rows("b", 2))
        order = [queue.next()]  # the flood alone: its first row
        queue.charge("flood", 6.0)  # ... which ran to the sandbox's limit
        other = rows("c", 3)
        queue.add("other", other)  # arrives level with the least-served waiting client
        other[1][1].cancel()  # dropped with its request: never handed out
        while (entry := queue.next()) is not None:
            order.append(entry)
            queue.charge(entry[0], 6.0 if entry[0] == "flood" else 0.01)
        # the tie at arrival goes to the flood (waiting longer); then "other" has used less until done
        assert [(client, row) for client, row, _ in order] == [
            ("flood", ("a", 0)), ("flood", ("b", 0)), ("other", ("c", 0)), ("other", ("c", 2)),
            ("flood", ("a", 1)), ("flood", ("b", 1)), ("flood", ("a", 2))]
    finally:
        loop.close()


def test_one_clients_flood_does_not_starve_another(server):
    """Client A sends three programs that loop until the sandbox's limit; client B's correct row,
    sent just after, is answered before A's request (first in, first out would put it last), and
    when A disconnects its rows that have not started are dropped."""
    import asyncio as aio

    async def scenario() -> tuple[list[str], int]:
        finished: list[str] = []
        async with httpx.AsyncClient(base_url=server, timeout=300) as http:
            before = (await http.get("/health")).json()["dropped_rows"]

            async def send(name: str, items, headers):
                response = await http.post("/score", json=items, headers=headers)
                finished.append(name)
                return response

            flood = aio.create_task(send("flood", [_code(LOOP_FOREVER)] * 3, {"X-Mdrl-Client": "A"}))
            await aio.sleep(1.0)
            good = await send("good", [_code(CODE_RIGHT)], {"X-Mdrl-Client": "B"})
            assert good.status_code == 200 and good.json()[0]["acc"], good.text[:300]
            flood.cancel()  # client A goes away
            deadline = time.monotonic() + 60
            while True:
                dropped = (await http.get("/health")).json()["dropped_rows"] - before
                if dropped or time.monotonic() > deadline:
                    break
                await aio.sleep(0.5)
        return finished, dropped

    finished, dropped = aio.run(scenario())
    assert finished == ["good"]
    assert dropped >= 1


def test_a_request_past_its_deadline_gets_504(client):
    response = client.post("/score", json=[_code(LOOP_FOREVER)] * 2, headers={"X-Mdrl-Deadline-S": "1"})
    assert response.status_code == 504 and "deadline" in response.json()["detail"]
    bad = client.post("/score", json=[_code(CODE_RIGHT)], headers={"X-Mdrl-Deadline-S": "soon"})
    assert bad.status_code == 400
