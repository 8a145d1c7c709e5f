"""`mdrl serve`: the reward server. A trainer on GPU nodes posts responses; CPU machines score them.

Endpoints (JSON over HTTP, FastAPI on uvicorn):

- ``POST /score``: a list of ``{data_source, solution_str, ground_truth, extra_info?}`` (or
  ``{"items": [...], "reward": {"mode": ..., "format_weight": ...}}``) in; a list of
  ``mdrl.compute_score`` results (``score, acc, reason, fraction[, format]``) out, in order.
- ``POST /get_reward``: OpenRLHF's remote reward protocol (``--reward.remote_url``):
  ``{"query": [...], "prompts": [...], "labels": [...]}`` in,
  ``{"rewards": [...], "scores": [...], "extra_logs": {"acc": [...]}}`` out. A label is either a JSON
  object ``{"data_source": ..., "ground_truth": ..., "extra_info"?: ...}`` (object or JSON string) or
  the bare ground truth, routed by the request's ``data_source`` or the server's ``--data-source``.
- ``GET /health``, ``GET /domains``.

Errors are whole-request: one malformed item (unknown data_source, missing ground truth, malformed
ground truth) fails the request with a 4xx naming the item's index, rather than a silent zero in a
training batch. Bodies that are not JSON get 400, oversized bodies and batches 413, wrong shapes 422.

Scoring is CPU-bound and runs in a process pool (``workers`` processes), never on the event loop;
rows of all requests share one queue, cut into tasks spread over the pool (see `Scorer`). Rows of a
domain with a batch scorer (`Domain.score_batch`: code, which runs in the sandbox) go to ``code_workers`` threads instead, each driving one fork server of the sandbox (which
runs the programs in its own processes): one sandbox per pool process would multiply fork servers past
the cores. Every row goes through ``mdrl.compute_score``, so verdicts are those of the Python API and
of ``mdrl score``; a partial ``reward`` spec fills the rest from RewardConfig's defaults, as there.

Not covered: authentication and TLS. Bind to loopback (the default) or put it behind a proxy.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from mdrl import __version__
from mdrl.domains.base import DataError, Domain
from mdrl.domains.registry import all_domains, domain_for_source, known_sources
from mdrl.reward import compute_score
from mdrl.specs import SANDBOX_WORKERS_ENV, ServeConfig
from mdrl.verify.shaping import RewardConfig

log = logging.getLogger(__name__)

#: Environment variable carrying the config (JSON) to uvicorn worker processes (`--http-workers` > 1).
CONFIG_ENV = "MDRL_SERVE_CONFIG"
ITEM_FIELDS = ("data_source", "solution_str", "ground_truth", "extra_info")
#: Idle keep-alive connections are closed after this long. Longer than clients' own idle expiry (httpx
#: and aiohttp: 5 s, uvicorn's default too), so a pooled connection is never closed by the server at the
#: moment the client reuses it (the client would see a ReadError on a healthy server).
KEEP_ALIVE_S = 65




#: Refusal reasons are cut to this length: they may quote what the client sent.
MAX_DETAIL_CHARS = 500


class RequestError(Exception):
    """A request the server refuses; becomes a JSON {"detail": ...} response with this status."""

    def __init__(self, status: int, detail: str, **extra: Any) -> None:
        detail = detail if len(detail) <= MAX_DETAIL_CHARS else detail[:MAX_DETAIL_CHARS] + "..."
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.extra = extra


# ---------------------------------------------------------------------------------------------------
# Request parsing: cheap checks on the event loop, so that a bad item fails fast and names its index.
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One row to score, validated: its data_source routes to `domain`."""

    data_source: str
    solution_str: Any
    ground_truth: Any
    extra_info: Mapping[str, Any] | None
    domain: Domain


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _route(index: int, data_source: Any) -> Domain:
    if not isinstance(data_source, str):
        raise RequestError(422, f"item {index}: data_source must be a string, got {_type_name(data_source)}",
                           index=index)
    try:
        return domain_for_source(data_source)
    except KeyError as exc:
        raise RequestError(422, f"item {index}: {exc.args[0]}", index=index,
                           known_sources=known_sources()) from None


def make_item(index: int, data_source: Any, solution_str: Any, ground_truth: Any, extra_info: Any) -> Item:
    domain = _route(index, data_source)
    if ground_truth is None:
        raise RequestError(422, f"item {index}: missing ground_truth (data_source {data_source!r})", index=index)
    if extra_info is not None and not isinstance(extra_info, Mapping):
        raise RequestError(422, f"item {index}: extra_info must be an object or null, got "
                                f"{_type_name(extra_info)}", index=index)
    return Item(data_source, solution_str, ground_truth, extra_info, domain)


def parse_item(index: int, raw: Any) -> Item:
    if not isinstance(raw, dict):
        raise RequestError(422, f"item {index}: expected an object with {list(ITEM_FIELDS[:3])}, got "
                                f"{_type_name(raw)}", index=index)
    missing = [k for k in ITEM_FIELDS[:2] if k not in raw]
    if missing:
        raise RequestError(422, f"item {index}: missing field(s) {missing}", index=index)
    return make_item(index, raw["data_source"], raw["solution_str"], raw.get("ground_truth"),
                     raw.get("extra_info"))


def parse_reward(request_reward: Any, default: Mapping[str, Any] | None) -> RewardConfig | None:
    """Request options over the server's defaults. A partial spec fills the rest from RewardConfig's
    defaults, exactly as `compute_score(reward=...)` and `mdrl score --reward/--format-weight` do;
    no options at all means each domain's default."""
    if request_reward is not None and not isinstance(request_reward, dict):
        raise RequestError(422, f"reward must be an object like {{\"mode\": \"binary\", \"format_weight\": 0.0}}, "
                                f"got {_type_name(request_reward)}")
    merged = {**(default or {}), **(request_reward or {})}
    if not merged:
        return None
    try:
        return RewardConfig.from_mapping(merged)
    except (TypeError, ValueError) as exc:
        raise RequestError(422, f"reward: {exc}") from None


def parse_score_request(body: Any, config: ServeConfig) -> tuple[list[Item], RewardConfig | None]:
    """A JSON list of items, or {"items": [...], "reward": {...}}."""
    if isinstance(body, list):
        raw_items, raw_reward = body, None
    elif isinstance(body, dict) and "items" in body:
        unknown = sorted(set(body) - {"items", "reward"})
        if unknown:
            raise RequestError(422, f"unknown top-level field(s) {unknown}; expected 'items' and 'reward'")
        raw_items, raw_reward = body["items"], body.get("reward")
        if not isinstance(raw_items, list):
            raise RequestError(422, f"'items' must be a list, got {_type_name(raw_items)}")
    else:
        raise RequestError(422, "expected a JSON list of items {data_source, solution_str, ground_truth, "
                                "extra_info?} or an object {\"items\": [...], \"reward\": {...}}, got "
                                + _type_name(body))
    _check_count(len(raw_items), config)
    reward = parse_reward(raw_reward, config.reward)
    return [parse_item(i, raw) for i, raw in enumerate(raw_items)], reward


def _check_count(n: int, config: ServeConfig) -> None:
    if n > config.max_batch:
        raise RequestError(413, f"too many items: {n} > max_batch {config.max_batch}; split the batch",
                           max_batch=config.max_batch)


def _label_fields(label: Any) -> tuple[Any, Any, Any] | None:
    """(data_source, ground_truth, extra_info) when the label is an mdrl envelope, else None."""
    envelope = label
    if isinstance(label, str) and label.lstrip().startswith("{"):
        try:
            envelope = json.loads(label)
        except json.JSONDecodeError:
            return None  # not JSON: a bare ground truth that happens to start with '{'
    if isinstance(envelope, dict) and "ground_truth" in envelope:
        return envelope.get("data_source"), envelope["ground_truth"], envelope.get("extra_info")
    return None


def parse_openrlhf_request(body: Any, config: ServeConfig) -> tuple[list[Item], RewardConfig | None]:
    """OpenRLHF's {"query": [...], "prompts": [...], "labels": [...]} (+ mdrl's optional "data_source"
    and "reward"). The response is the query with its prompt cut off when the prompt is a prefix of it;
    otherwise the whole query, whose assistant turn compute_score finds itself."""
    if not isinstance(body, dict):
        raise RequestError(422, f"expected an object {{\"query\": [...], \"labels\": [...]}}, got {_type_name(body)}")
    queries, prompts, labels = body.get("query"), body.get("prompts"), body.get("labels")
    if isinstance(queries, str):
        queries = [queries]
    if not isinstance(queries, list):
        raise RequestError(422, f"'query' must be a list of strings, got {_type_name(queries)}")
    _check_count(len(queries), config)
    if labels is None:
        raise RequestError(422, "'labels' missing: rule-based rewards need each query's ground truth "
                                "(OpenRLHF sends them from --data.label_key)")
    if not isinstance(labels, list) or len(labels) != len(queries):
        raise RequestError(422, f"'labels' must be a list as long as 'query' ({len(queries)})")
    if prompts is not None and (not isinstance(prompts, list) or len(prompts) != len(queries)):
        raise RequestError(422, f"'prompts' must be a list as long as 'query' ({len(queries)})")
    request_source = body.get("data_source")
    if request_source is not None and not isinstance(request_source, (str, list)):
        raise RequestError(422, "'data_source' must be a string or a list of strings")
    if isinstance(request_source, list) and len(request_source) != len(queries):
        raise RequestError(422, f"'data_source' list must be as long as 'query' ({len(queries)})")
    reward = parse_reward(body.get("reward"), config.reward)

    items = []
    for i, (query, label) in enumerate(zip(queries, labels)):
        envelope = _label_fields(label)
        source, truth, extra = envelope if envelope is not None else (None, label, None)
        if source is None:
            source = request_source[i] if isinstance(request_source, list) else request_source
        if source is None:
            source = config.data_source
        if source is None:
            raise RequestError(422, f"item {i}: no data_source: send labels as {{\"data_source\": ..., "
                                    "\"ground_truth\": ...}}, a request-level \"data_source\", or start the "
                                    "server with --data-source", index=i, known_sources=known_sources())
        prompt = prompts[i] if prompts is not None else None
        response = query
        if isinstance(query, str) and isinstance(prompt, str) and prompt and query.startswith(prompt):
            response = query[len(prompt):]
        items.append(make_item(i, source, response, truth, extra))
    return items, reward


# ---------------------------------------------------------------------------------------------------
# Scoring in worker processes
# ---------------------------------------------------------------------------------------------------

#: What a worker returns per row: ("ok", result) or ("data_error" | "error", message).
Outcome = tuple[str, Any]
#: (data_source, solution_str, ground_truth, extra_info, reward): rows of different requests share tasks.
Row = tuple[str, Any, Any, Any, "RewardConfig | None"]


def _init_worker(server_pid: int) -> None:
    # Ctrl-C goes to the server, which shuts the pool down; workers printing KeyboardInterrupt is noise.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_server(server_pid)
    warm_up(code=False)


def warm_up(code: bool) -> dict[str, str]:
    """Score one generated problem per domain (its reference and a wrong answer), so that lazy imports
    and caches (math equivalence takes ~2 s on its first call; the sandbox starts its fork servers)
    are paid at start-up, not by the first request. Returns "ok" or what went wrong, per domain."""
    status = {}
    for domain in all_domains().values():
        if (domain.score_batch is not None) != code or domain.generate is None or not domain.difficulties:
            continue
        try:
            problem = domain.generate(0, 0, min(domain.difficulties), "en")
            right = compute_score(problem.data_source, problem.reference, problem.ground_truth, problem.extra_info)
            compute_score(problem.data_source, "<answer>0</answer>", problem.ground_truth, problem.extra_info)
            status[domain.name] = "ok" if right["acc"] else f"its reference scored 0: {right['reason']}"
        except Exception as exc:  # a warm-up failure must not take the worker down
            status[domain.name] = f"warm-up failed: {type(exc).__name__}: {exc}"
        if status[domain.name] != "ok":
            log.warning("domain %s: %s", domain.name, status[domain.name])
    return status


def _exit_with_server(server_pid: int) -> None:
    """End this worker soon after the server ends, however it ends (SIGKILL included).

    Workers are children of the forkserver, and the forkserver lives as long as any worker does, so
    neither notices the server's death by itself: a daemon thread polls the server's pid instead.
    """

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(server_pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:
                continue  # it exists, under another user: not our concern

    threading.Thread(target=watch, name="mdrl-serve-watchdog", daemon=True).start()


def score_rows(rows: Sequence[Row]) -> list[Outcome]:
    """Score rows in this process through compute_score (runs inside the pool's workers)."""
    out: list[Outcome] = []
    for data_source, solution_str, ground_truth, extra_info, reward in rows:
        try:
            out.append(("ok", compute_score(data_source, solution_str, ground_truth, extra_info, reward=reward)))
        except (DataError, KeyError) as exc:
            out.append(("data_error", exc.args[0] if exc.args else repr(exc)))
        except Exception as exc:  # a bug, not the model's fault: report it rather than reward it
            log.exception("scoring failed for data_source %r", data_source)
            out.append(("error", f"{type(exc).__name__}: {exc}"))
    return out


def score_row(row: Row) -> Outcome:
    return score_rows([row])[0]


def _pool_context() -> multiprocessing.context.BaseContext:
    # Not fork: the server has threads (event loop executors), and forking a threaded process can
    # deadlock. A forkserver that has imported mdrl once makes each worker start cheap.
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["mdrl.serve"])
        return ctx
    return multiprocessing.get_context("spawn")


DISCONNECT_POLL_S = 0.5


class CodeQueue:
    """Code rows waiting for a code thread. The next row goes to the waiting client that has used the
    least code-thread time (a client that arrives starts level with the least-served waiting one),
    then round robin over that client's requests. A flood of programs that run to the sandbox's
    limit thus costs another client at most the rows already running, not the flood's backlog.
    Rows whose future is done (dropped with their request) are skipped."""

    def __init__(self) -> None:
        self._waiting: dict[str, deque[deque[tuple[Row, asyncio.Future]]]] = {}
        self._used: dict[str, float] = {}

    def add(self, client: str, rows: list[tuple[Row, asyncio.Future]]) -> None:
        if client not in self._waiting:
            floor = min((self._used[c] for c in self._waiting), default=0.0)
            self._used[client] = max(self._used.get(client, 0.0), floor)
            self._waiting[client] = deque()
        self._waiting[client].append(deque(rows))

    def charge(self, client: str, seconds: float) -> None:
        self._used[client] = self._used.get(client, 0.0) + seconds

    def next(self) -> tuple[str, Row, asyncio.Future] | None:
        while self._waiting:
            client = min(self._waiting, key=lambda c: self._used[c])
            requests = self._waiting[client]
            rows = requests.popleft()
            entry = None
            while rows and entry is None:
                candidate = rows.popleft()
                if not candidate[1].done():
                    entry = candidate
            if rows:
                requests.append(rows)
            if not requests:
                del self._waiting[client]
            if entry is not None:
                return client, entry[0], entry[1]
        return None


class Scorer:
    """Scores the rows of every request in two lanes, without blocking the event loop:

    - "cpu": a process pool (`workers` processes) for every domain but code; the verifiers are pure
      Python, so only processes give parallelism. Rows wait in one queue shared by all requests, and
      at most two tasks per worker are in flight: when the pool is idle a row leaves at once, under load
      the rows that queued meanwhile leave together in one task (a big batch is cut into about four
      tasks per worker). Many small requests (OpenRLHF sends one query per request) thus cost a few
      inter-process round trips rather than one each.
    - "code": threads of this process, one per sandbox fork server, one row each. The programs run in
      the sandbox's own processes and the threads mostly wait on them; a process pool here would start
      one sandbox per process and multiply fork servers past the cores (its time limits are wall-clock).
      Rows wait in a fair queue (`CodeQueue`): the client that has used the least code time goes
      next, so one client's flood of slow programs delays another client's row by at most the rows
      already running.

    A request past its deadline, or whose client disconnected, is dropped: its rows that have not
    started never start (a row already in the sandbox finishes within the sandbox's limits).
    """

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self._sizes = {"cpu": config.scoring_processes, "code": config.code_concurrency}
        self._process_pool: ProcessPoolExecutor | None = None
        self._threads: ThreadPoolExecutor | None = None
        self._queue: deque[tuple[Row, asyncio.Future]] = deque()
        self._in_flight = 0
        self._code = CodeQueue()
        self._code_running = 0
        self.dropped_rows = 0
        self.warm: dict[str, str] = {}

    async def start(self) -> None:
        os.environ[SANDBOX_WORKERS_ENV] = str(self._sizes["code"])
        self._process_pool = self._new_process_pool()
        self._threads = ThreadPoolExecutor(max_workers=self._sizes["code"], thread_name_prefix="mdrl-code")
        loop = asyncio.get_running_loop()
        # Start (and warm) every cpu worker now rather than on the first request; start the sandbox.
        cpu = [loop.run_in_executor(self._process_pool, score_rows, []) for _ in range(self._sizes["cpu"])]
        code = loop.run_in_executor(self._threads, warm_up, True)
        *_, self.warm = await asyncio.gather(*cpu, code)

    def _new_process_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self._sizes["cpu"], mp_context=_pool_context(),
                                   initializer=_init_worker, initargs=(os.getpid(),))

    def close(self) -> None:
        # wait=True: the workers must be joined before the server exits, or they outlive it.
        for pool in (self._process_pool, self._threads):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def sizes(self) -> dict[str, int]:
        return dict(self._sizes)

    async def score(self, items: Sequence[Item], reward: RewardConfig | None, client: str = "",
                    deadline_s: float | None = None, gone: Callable[[], Awaitable[bool]] | None = None,
                    ) -> list[dict[str, Any]]:
        """Score a request's items. `client` keys the fair queue of code rows; past `deadline_s`
        (the server's request_timeout_s at most) or once `gone()` says the client disconnected, the
        request's rows that have not started are dropped."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future] = []
        code_rows: list[tuple[Row, asyncio.Future]] = []
        for item in items:
            row = (item.data_source, item.solution_str, item.ground_truth, item.extra_info, reward)
            future = loop.create_future()
            (code_rows if item.domain.score_batch is not None else self._queue).append((row, future))
            futures.append(future)
        if code_rows:
            self._code.add(client, code_rows)
            self._pump_code()
        self._pump()
        limit = min(deadline_s or self.config.request_timeout_s, self.config.request_timeout_s)
        await self._wait(futures, loop.time() + limit, gone)
        outcomes = [f.exception() or f.result() for f in futures]
        if any(isinstance(outcome, BrokenProcessPool) for outcome in outcomes):
            raise RequestError(503, "a scoring process died (out of memory or killed); the pool was "
                                    "restarted: retry the request")
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        errors = [(i, status, value) for i, (status, value) in enumerate(outcomes) if status != "ok"]
        if errors:
            i, status, message = errors[0]
            listed = [{"index": j, "error": m} for j, _, m in errors[:10]]
            if status == "data_error":
                raise RequestError(422, f"item {i}: {message}", index=i, errors=listed)
            raise RequestError(500, f"item {i}: scoring failed: {message}", index=i, errors=listed)
        return [value for _, value in outcomes]

    async def _wait(self, futures: list[asyncio.Future], deadline: float,
                    gone: Callable[[], Awaitable[bool]] | None) -> None:
        """Wait for every row; drop the rest at the deadline or when the client is gone."""
        loop = asyncio.get_running_loop()
        pending = {f for f in futures if not f.done()}
        while pending:
            left = deadline - loop.time()
            if left <= 0:
                self._drop(futures)
                raise RequestError(504, f"request deadline passed ({len(pending)} of {len(futures)} rows "
                                        "not scored); send fewer rows or a longer X-Mdrl-Deadline-S")
            _, pending = await asyncio.wait(pending, timeout=min(left, DISCONNECT_POLL_S))
            if pending and gone is not None and await gone():
                self._drop(futures)
                raise RequestError(499, "client disconnected")  # nobody reads it; the rows are dropped

    def _drop(self, futures: list[asyncio.Future]) -> None:
        dropped = sum(f.cancel() for f in futures)  # a row already running is not stopped
        self.dropped_rows += dropped
        if dropped:
            log.info("dropped %d rows of an abandoned request", dropped)

    def _pump_code(self) -> None:
        """Start queued code rows, fairly across clients, while a code thread is free."""
        loop = asyncio.get_running_loop()
        while self._code_running < self._sizes["code"]:
            entry = self._code.next()
            if entry is None:
                return
            client, row, future = entry
            task = loop.run_in_executor(self._threads, score_row, row)
            self._code_running += 1
            started = time.monotonic()
            task.add_done_callback(lambda done, client=client, future=future, started=started:
                                   self._code_finished(client, future, done, started))

    def _code_finished(self, client: str, future: asyncio.Future, task: asyncio.Future, started: float) -> None:
        self._code_running -= 1
        self._code.charge(client, time.monotonic() - started)
        if not future.done():
            if task.cancelled():
                future.cancel()
            elif task.exception() is not None:
                future.set_exception(task.exception())
            else:
                future.set_result(task.result())
        self._pump_code()

    def _pump(self) -> None:
        """Send queued rows to the pool while fewer than two tasks per worker are in flight."""
        workers = self._sizes["cpu"]
        loop = asyncio.get_running_loop()
        while self._queue and self._queue[0][1].done():
            self._queue.popleft()  # dropped with their request
        while self._queue and self._in_flight < 2 * workers:
            size = self.config.chunk_size or min(256, max(1, math.ceil(len(self._queue) / (4 * workers))))
            batch = [self._queue.popleft() for _ in range(min(size, len(self._queue)))]
            batch = [(row, future) for row, future in batch if not future.done()]
            if not batch:
                continue
            pool = self._process_pool
            try:
                task = loop.run_in_executor(pool, score_rows, [row for row, _ in batch])
            except BrokenProcessPool as exc:  # submit() raises once the pool knows a worker died
                self._fail(batch, exc, pool)
                continue
            self._in_flight += 1
            task.add_done_callback(lambda done, batch=batch, pool=pool: self._finished(batch, done, pool))

    def _finished(self, batch: list[tuple[Row, asyncio.Future]], task: asyncio.Future,
                  pool: ProcessPoolExecutor) -> None:
        self._in_flight -= 1
        error = task.exception() if not task.cancelled() else BrokenProcessPool("task cancelled")
        if error is not None:
            self._fail(batch, error, pool)
        else:
            for (_, future), outcome in zip(batch, task.result()):
                if not future.done():
                    future.set_result(outcome)
        self._pump()

    def _fail(self, batch: list[tuple[Row, asyncio.Future]], error: BaseException,
              pool: ProcessPoolExecutor) -> None:
        for _, future in batch:
            if not future.done():
                future.set_exception(error)
        # Replace a broken pool once: requests that saw the same breakage find the new one current.
        if isinstance(error, BrokenProcessPool) and pool is self._process_pool:
            log.error("a scoring process died; starting a new pool")
            pool.shutdown(wait=False, cancel_futures=True)
            self._process_pool = self._new_process_pool()


# ---------------------------------------------------------------------------------------------------
# The app
# ---------------------------------------------------------------------------------------------------


def client_key(request: Request) -> str:
    """Whose request this is, for the fair queue: the X-Mdrl-Client header, else the peer's address."""
    named = request.headers.get("x-mdrl-client")
    if named:
        return "name:" + named[:100]
    return "host:" + (request.client.host if request.client else "?")


def deadline_of(request: Request) -> float | None:
    raw = request.headers.get("x-mdrl-deadline-s")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not value > 0:
        raise RequestError(400, f"X-Mdrl-Deadline-S must be a positive number of seconds, got {raw[:40]!r}")
    return value


async def read_json(request: Request, limit: int) -> Any:
    """The body as JSON, refusing bodies over `limit` bytes before reading them whole."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise RequestError(400, f"bad Content-Length {declared!r}") from None
        if size > limit:
            raise RequestError(413, f"body of {size} bytes > max {limit} bytes (--max-body-mb)",
                               max_body_bytes=limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RequestError(413, f"body > max {limit} bytes (--max-body-mb)", max_body_bytes=limit)
    return decode_body(bytes(body))


def decode_body(body: bytes) -> Any:
    """A request body as JSON, or a 400 saying why not."""
    if not body:
        raise RequestError(400, "empty body: expected JSON")
    try:
        return json.loads(body)
    except RecursionError:
        raise RequestError(400, "body is not valid JSON: nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError; integers over the digit limit
        raise RequestError(400, f"body is not valid JSON: {exc}") from None


def domains_summary() -> list[dict[str, Any]]:
    return [{"name": d.name, "group": d.group, "data_sources": sorted({d.name, *d.data_sources}),
             "default_reward": asdict(d.default_reward), "description": d.description}
            for d in all_domains().values()]


def create_app(config: ServeConfig) -> FastAPI:
    """The FastAPI app; one scorer (two process pools) per app."""
    scorer = Scorer(config)

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        await scorer.start()
        log.info("scoring pools ready: %s", scorer.sizes())
        try:
            yield
        finally:
            scorer.close()

    app = FastAPI(title="mdrl reward server", version=__version__, lifespan=lifespan)

    @app.exception_handler(RequestError)
    async def _refuse(request: Request, exc: RequestError) -> JSONResponse:
        log.warning("%s %s -> %d: %s", request.method, request.url.path, exc.status, exc.detail)
        return JSONResponse({"detail": exc.detail, **exc.extra}, status_code=exc.status)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "pid": os.getpid(), "workers": scorer.sizes(),
                "code_domains": scorer.warm, "dropped_rows": scorer.dropped_rows,
                "request_timeout_s": config.request_timeout_s,
                "max_batch": config.max_batch, "max_body_bytes": config.max_body_bytes,
                "data_source": config.data_source, "reward": config.reward}

    @app.get("/domains")
    async def domains() -> dict[str, Any]:
        return {"domains": domains_summary(), "data_sources": known_sources()}

    async def score_request(request: Request, items: Sequence[Item], reward: RewardConfig | None):
        return await scorer.score(items, reward, client=client_key(request), deadline_s=deadline_of(request),
                                  gone=request.is_disconnected)

    @app.post("/score")
    async def score(request: Request) -> JSONResponse:
        items, reward = parse_score_request(await read_json(request, config.max_body_bytes), config)
        return JSONResponse(await score_request(request, items, reward))

    @app.post("/get_reward")
    async def get_reward(request: Request) -> JSONResponse:
        items, reward = parse_openrlhf_request(await read_json(request, config.max_body_bytes), config)
        results = await score_request(request, items, reward)
        rewards = [r["score"] for r in results]
        extra_logs: dict[str, list[float]] = {"acc": [float(r["acc"]) for r in results]}
        if any("format" in r for r in results):
            extra_logs["format"] = [float(r.get("format", 0.0)) for r in results]
        return JSONResponse({"rewards": rewards, "scores": rewards, "extra_logs": extra_logs})

    return app


def app_from_env() -> FastAPI:
    """uvicorn factory for `--http-workers` > 1: each worker process rebuilds the app from the env."""
    return create_app(ServeConfig.from_json(os.environ.get(CONFIG_ENV, "{}")))


def bind(config: ServeConfig) -> socket.socket:
    """Bind and listen before serving, so `--port 0` can report the port it got, tests have no port
    race, and a client that connects once the banner is out is queued, never refused."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((config.host, config.port))
    sock.listen(LISTEN_BACKLOG)
    sock.set_inheritable(True)
    return sock


LISTEN_BACKLOG = 2048


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(config: ServeConfig, on_bound: Callable[[str], None] | None = None) -> None:
    """Run the server until interrupted. `on_bound(url)` runs once the socket accepts connections
    (they wait until the scoring pools are up; `GET /health` answers from then on)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    sock = bind(config)
    if on_bound is not None:
        on_bound(url_of(sock))
    os.environ[CONFIG_ENV] = config.to_json()
    uv_config = uvicorn.Config("mdrl.serve:app_from_env", factory=True, host=config.host,
                               port=sock.getsockname()[1], workers=config.http_workers,
                               log_level=config.log_level, access_log=config.access_log,
                               timeout_graceful_shutdown=5, timeout_keep_alive=KEEP_ALIVE_S)
    if config.http_workers > 1:
        Multiprocess(uv_config, sockets=[sock]).run()
    else:
        uvicorn.Server(uv_config).run(sockets=[sock])


__all__ = [
    "RequestError",
    "ServeConfig",
    "create_app",
    "parse_openrlhf_request",
    "parse_score_request",
    "score_rows",
    "serve",
]
