"""The client side: a thread-safe pool of fork servers, and the results it returns."""

from __future__ import annotations

import atexit
import itertools
import json
import logging
import marshal
import os
import queue
import select
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from mdrl.sandbox import _proto, layers
from mdrl.verify.result import VerifierUnavailable
from mdrl.sandbox.config import SandboxConfig
from mdrl.sandbox.formats import (
    LEETCODE_PRELUDE,
    AssertTests,
    PytestTests,
    StdioTests,
    TestSpec,
    compile_asserts,
    compile_pytest,
)

log = logging.getLogger(__name__)

_POOL_NUMBERS = itertools.count()
_SERVER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_server.py")
_REPLY_GRACE_S = 15.0  # beyond the run limit, before a silent server is declared hung


class SandboxUnavailable(VerifierUnavailable):
    """The required isolation layers cannot work on this machine (and allow_insecure is off)."""


@dataclass(frozen=True)
class CaseResult:
    """One test case: an executed assert, a stdin input, or a test function."""

    index: int
    passed: bool
    reason: str = ""


@dataclass(frozen=True)
class RunResult:
    """The outcome of one program against one test suite.

    `status`: "ok" (every case ran), "syntax error", "program error", "timeout", "crashed",
    "aborted" (the test code stopped early) or "sandbox error" (our fault, not the program's).
    `reason`: "ok" or why the first case failed, e.g. "test 3 failed: AssertionError".
    """

    cases: tuple[CaseResult, ...]
    total: int
    status: str
    reason: str
    elapsed_s: float = 0.0
    details: dict = field(default_factory=dict)

    @property
    def passed(self) -> int:
        return sum(1 for c in self.cases if c.passed)

    @property
    def fraction(self) -> float:
        return self.passed / self.total if self.total else 0.0

    @property
    def all_passed(self) -> bool:
        return self.total > 0 and self.passed == self.total

    @classmethod
    def error(cls, status: str, reason: str, total: int = 1, elapsed_s: float = 0.0) -> RunResult:
        return cls(cases=(), total=max(total, 1), status=status, reason=reason, elapsed_s=elapsed_s)


# --- one fork server ---------------------------------------------------------------------------

class _Server:
    """A fork server process and the pipes to it. Used by one thread at a time (the pool's queue)."""

    def __init__(self, slot: int, argv: list[str]) -> None:
        self.slot = slot
        self.argv = argv
        self.proc: subprocess.Popen | None = None
        self.restarts = -1
        self.owner = os.getpid()

    def start(self) -> None:
        self.stop()
        # One unix socket for both directions: a job's tests travel as a memfd passed alongside it.
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.proc = subprocess.Popen(self.argv, stdin=theirs, stdout=theirs, cwd="/", close_fds=True,
                                         start_new_session=True, env=_server_env())
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.sock = ours
        self.owner = os.getpid()
        self.restarts += 1

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or self.owner != os.getpid():
            return  # a forked copy of the pool must not stop the parent's servers
        try:
            self.sock.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                log.warning("sandbox server %d did not exit", self.slot)

    def call(self, job: dict, timeout: float, tests: bytes | None = None) -> dict | None:
        """Send a job and wait for the reply; None when the server died or hung (it is then stopped).

        `tests` (a functional job's test payload) goes in a memfd that the server hands to its test
        child unread, so that nothing of the tests ever enters the process programs are forked from."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        assert self.proc is not None
        try:
            fds = []
            if tests is not None:
                fd = os.memfd_create("mdrl-tests", os.MFD_CLOEXEC)
                fds.append(fd)
                view = memoryview(tests)
                while view:
                    view = view[os.write(fd, view):]
                os.lseek(fd, 0, os.SEEK_SET)
            try:
                socket.send_fds(self.sock, [b"J"], fds)
            finally:
                for fd in fds:
                    os.close(fd)
            _proto.write_frame(self.sock.fileno(), job)
            reply = _read_frame_before(self.sock.fileno(), time.monotonic() + timeout)
        except (OSError, ValueError, EOFError) as exc:
            log.warning("sandbox server %d failed: %r; restarting it", self.slot, exc)
            reply = None
        if reply is None:
            self.stop()
            return None
        return reply  # type: ignore[return-value]


def _read_exact_before(fd: int, n: int, deadline: float) -> bytes | None:
    buf = bytearray()
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        if not poller.poll(left * 1000):
            continue
        chunk = os.read(fd, min(n - len(buf), 1 << 20))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _read_frame_before(fd: int, deadline: float) -> object | None:
    head = _read_exact_before(fd, 4, deadline)
    if head is None:
        return None
    body = _read_exact_before(fd, int.from_bytes(head, "little"), deadline)
    return None if body is None else marshal.loads(body)


def _server_env() -> dict:
    # -I ignores PYTHON* variables; keep the environment small and predictable.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}


# --- the pool ----------------------------------------------------------------------------------

class Sandbox:
    """A pool of fork servers that runs untrusted programs against tests. Thread-safe.

    >>> with Sandbox() as box:
    ...     result = box.run("def add(a, b): return a + b", mbpp_tests(["assert add(1, 2) == 3"]))
    ...     result.all_passed
    True
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        cfg = self.config
        self._python = cfg.python or sys.executable
        self._closed = False
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._tag = f"mdrl-sandbox-{os.getpid()}-{next(_POOL_NUMBERS)}"
        self._as_root = os.geteuid() == 0
        n = cfg.pool_size
        notes: dict[str, str] = {}

        self._cgroups = layers.CgroupSet()
        if cfg.use_cgroups:
            self._cgroups = layers.setup_cgroups(cfg, n, self._tag)
            if not self._cgroups.per_slot:
                notes["cgroups"] = self._cgroups.detail
        else:
            notes["cgroups"] = "disabled in config"

        bwrap_ok = False
        if cfg.use_bwrap:
            prefix = layers.bwrap_prefix(cfg, as_root=self._as_root, cgroup_dirs=[], python=self._python)
            if prefix is None:
                notes["namespaces"] = "bwrap is not installed"
            else:
                bwrap_ok, why = layers.bwrap_works(prefix, layers.inside_path(self._python))
                if not bwrap_ok:
                    notes["namespaces"] = why
        else:
            notes["namespaces"] = "disabled in config"
        self._bwrap = bwrap_ok

        nproc = cfg.max_processes
        if not self._as_root:
            nproc += layers.count_processes_of(os.geteuid())
        self._servers = [self._make_server(slot, nproc) for slot in range(n)]
        self._idle: queue.Queue[_Server] = queue.Queue()
        for server in self._servers:
            server.start()

        report = self._servers[0].call({"mode": "probe"}, timeout=60) or {"error": "probe got no reply"}
        self.layers = self._judge(report, notes)
        self.probe_report = report
        missing = {k: v for k, v in self.layers.items() if not v[0]}
        problems = [f"{layers.LAYERS[k]} [{v[1]}]" for k, v in missing.items()]
        if not report.get("stdlib_readable", True):
            problems.append("the sandbox uid cannot read the Python installation, so modules the "
                            "server did not preload fail to import")
        if problems:
            log.warning("mdrl sandbox: isolation layers missing: %s", "; ".join(problems))
        fatal = [k for k in layers.REQUIRED if k in missing]
        if fatal and not cfg.allow_insecure:
            self.close()
            raise SandboxUnavailable(
                f"required sandbox layers do not work here: {', '.join(fatal)} "
                f"({'; '.join(missing[k][1] for k in fatal)}). Pass SandboxConfig(allow_insecure=True) "
                "to run without them.")
        for server in self._servers:
            self._idle.put(server)
        _LIVE.add(self)

    def _make_server(self, slot: int, nproc: int) -> _Server:
        cfg = self.config
        cg_dirs = self._cgroups.per_slot[slot] if self._cgroups.per_slot else []
        if self._bwrap:
            inside = [f"{layers.SANDBOX_CGROUP_DIR}/{i}/cgroup.procs" for i in range(len(cg_dirs))]
        else:
            inside = [os.path.join(d, "cgroup.procs") for d in cg_dirs]
        server_cfg = {
            "uid": cfg.uid_base + slot,
            "limits": True,
            "seccomp": cfg.use_seccomp,
            "deny_fs_writes": not self._bwrap,
            "private_fs": self._bwrap,
            "private_tmp": self._bwrap,
            "cgroup_procs": inside,
            "address_space_mb": cfg.address_space_mb,
            "cpu_s": int(cfg.run_timeout_s) + 2,
            "file_size_bytes": cfg.max_output_bytes,
            "open_files": cfg.max_open_files,
            "nproc": nproc,
            "preludes": [LEETCODE_PRELUDE],
            "sys_path": [p for p in sys.path if p and os.path.isdir(p)],
        }
        script, python = _SERVER_SCRIPT, self._python
        if self._bwrap:
            # Host paths under /tmp are hidden by the private /tmp: use their alias inside.
            server_cfg["sys_path"] = [layers.inside_path(p) for p in server_cfg["sys_path"]]
            script, python = layers.inside_path(script), layers.inside_path(python)
        argv = [python, "-I", script, json.dumps(server_cfg)]
        if self._bwrap:
            prefix = layers.bwrap_prefix(cfg, as_root=self._as_root, cgroup_dirs=cg_dirs, python=self._python)
            assert prefix is not None
            argv = [*prefix, *argv]
        return _Server(slot, argv)

    def _judge(self, report: dict, notes: dict[str, str]) -> dict[str, tuple[bool, str]]:
        def from_report(key: str, fallback: str) -> tuple[bool, str]:
            value = report.get(key)
            if value is None:
                return False, notes.get(key) or report.get("error") or fallback
            return bool(value[0]), str(value[1])

        if self.config.use_seccomp:
            seccomp = from_report("seccomp", report.get("seccomp_error") or "not probed")
        else:
            seccomp = (False, "disabled in config")
        judged = {
            "limits": from_report("limits", "not probed"),
            "seccomp": seccomp,
            "namespaces": (from_report("namespaces", "not available") if self._bwrap
                           else (False, notes.get("namespaces", "not available"))),
            "cgroups": (from_report("cgroups", "not available") if self._cgroups.per_slot
                        else (False, notes.get("cgroups", "not available"))),
        }
        if judged["cgroups"][0]:
            judged["cgroups"] = (True, self._cgroups.detail)
        return judged

    # --- running -------------------------------------------------------------------------------

    def run(self, program: str, tests: TestSpec, *, test_timeout_s: float | None = None,
            run_timeout_s: float | None = None) -> RunResult:
        """Run one program against its tests; never raises for anything the program does.

        Raises `formats.MalformedTestsError` when the tests themselves cannot run (a data problem).
        """
        job, payload, static_total = self._job(program, tests, test_timeout_s, run_timeout_s)
        if self._closed:
            raise RuntimeError("sandbox is closed")
        if os.getpid() != self._pid:
            raise RuntimeError("a Sandbox cannot be used in a forked child; call get_sandbox() there")
        server = self._idle.get()
        try:
            reply = None
            for _attempt in range(2):  # a crashed server is restarted and the job run again
                reply = server.call(job, timeout=job["run_timeout"] + _REPLY_GRACE_S, tests=payload)
                if reply is not None and "unhealthy" in reply:
                    log.warning("sandbox server %d did not recover after a program (%s); replacing it",
                                server.slot, reply["unhealthy"])
                    server.start()
                if reply is not None and "error" not in reply:
                    break
                if reply is not None:
                    log.warning("sandbox server error: %s", reply["error"])
                server.start()
            else:
                return RunResult.error("sandbox error", "sandbox error: server crashed twice", static_total)
        finally:
            self._idle.put(server)
        return _result(reply, tests, static_total)

    def run_many(self, items: Iterable[tuple[str, TestSpec]], *, test_timeout_s: float | None = None,
                 run_timeout_s: float | None = None) -> list[RunResult]:
        """Run many (program, tests) pairs across the pool; results come back in input order.

        A pair whose tests are malformed gets a "sandbox error" result carrying the message, so one
        bad row does not lose the batch (call `run` to have it raised instead).
        """
        items = list(items)
        if not items:
            return []
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(len(self._servers), thread_name_prefix="mdrl-sandbox")
        executor = self._executor

        def one(item: tuple[str, TestSpec]) -> RunResult:
            try:
                return self.run(item[0], item[1], test_timeout_s=test_timeout_s, run_timeout_s=run_timeout_s)
            except ValueError as exc:
                return RunResult.error("sandbox error", f"bad tests: {exc}")

        return list(executor.map(one, items))

    def _job(self, program: str, tests: TestSpec, test_timeout_s,
             run_timeout_s) -> tuple[dict, bytes | None, int]:
        """The job for the fork server, the test payload for its test child (None for stdin/stdout
        jobs, whose expected outputs are compared here), and the number of cases counted statically."""
        cfg = self.config
        job = {
            "program": program if isinstance(program, str) else str(program),
            "test_timeout": float(test_timeout_s or cfg.test_timeout_s),
            "test_wall_timeout": float(max(cfg.test_wall_timeout_s, test_timeout_s or 0)),
            "run_timeout": float(run_timeout_s or cfg.run_timeout_s),
        }
        if isinstance(tests, StdioTests):
            job.update(mode="stdio", inputs=list(tests.inputs))
            return job, None, len(tests.inputs)
        if isinstance(tests, AssertTests):
            compiled = compile_asserts(tests.code, tests.entry_points)
            job.update(mode="asserts", prelude=tests.prelude)
            payload = {"mode": "asserts", "tests": compiled.code, "names": compiled.program_names,
                       "modules": compiled.modules}
            return job, marshal.dumps(payload), compiled.static_count
        if isinstance(tests, PytestTests):
            code, static = compile_pytest(tests.code)
            job.update(mode="pytest", prelude=tests.prelude, module=tests.module)
            return job, marshal.dumps({"mode": "pytest", "tests": code, "module": tests.module}), static
        raise TypeError(f"unknown test spec {type(tests).__name__}")

    # --- life cycle ----------------------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if os.getpid() != self._pid:
            return  # the servers and cgroups belong to the process that made them
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        for server in self._servers:
            server.stop()
        self._cgroups.cleanup()
        _LIVE.discard(self)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def workers(self) -> int:
        return len(self._servers)

    def restarts(self) -> int:
        return sum(max(s.restarts, 0) for s in self._servers)


# --- from a server reply to a RunResult --------------------------------------------------------

def _result(reply: dict, tests: TestSpec, static_total: int) -> RunResult:
    elapsed = float(reply.get("elapsed", 0.0))
    program = reply.get("program")
    end = reply.get("end", "")
    finished = reply.get("finished")
    details = {"end": end, "attempts": reply.get("attempts", 1)}
    if reply.get("tamper"):
        return RunResult.error("program error", "forged test results", static_total, elapsed)
    if program is None:
        if end == "timeout":
            return RunResult.error("timeout", "timeout", static_total, elapsed)
        return RunResult.error("crashed", f"program crashed before the tests: {end}", static_total, elapsed)
    if program:
        if program.startswith(("syntax error", "compile error")):
            status, reason = "syntax error", "syntax error"
        elif end == "timeout":
            status, reason = "timeout", "timeout"
        else:
            status, reason = "program error", program
        return RunResult(cases=(), total=max(static_total, 1), status=status, reason=reason,
                         elapsed_s=elapsed, details={**details, "error": program})

    raw = reply.get("cases", [])
    if isinstance(tests, StdioTests):
        cases = []
        for index, status, info in raw:
            if not 0 <= index < len(tests.inputs):
                continue
            if status == "O":
                ok = _proto.same_output(info, tests.outputs[index])
                cases.append(CaseResult(index, ok, "" if ok else "wrong answer"))
            elif status == "E":
                cases.append(CaseResult(index, False, info.split("\x00", 1)[0]))
            else:
                cases.append(CaseResult(index, False, info or "failed"))
        total = len(tests.inputs)
    else:
        cases = [CaseResult(index, status == "P", info) for index, status, info in raw]
        if finished is not None and not finished[1] and finished[0] >= len(cases):
            total = max(int(finished[0]), 1)
        else:
            reached = (max(c.index for c in cases) + 1) if cases else 0
            total = max(static_total, reached + 1, len(cases))
    cases.sort(key=lambda c: c.index)
    if end == "timeout":
        status, reason = "timeout", "timeout"
    elif finished is None:
        status = "crashed"
        reason = f"program crashed: {end}"
    elif finished[1]:
        status, reason = "aborted", finished[1]
    else:
        status, reason = "ok", "ok"
    first_bad = next((c for c in cases if not c.passed), None)
    if first_bad is not None and status in ("ok", "crashed", "aborted"):
        reason = f"test {first_bad.index + 1} failed: {first_bad.reason or 'failed'}"
    elif status == "ok" and len([c for c in cases if c.passed]) < total:
        reason = "some tests did not run"
    return RunResult(cases=tuple(cases), total=total, status=status, reason=reason, elapsed_s=elapsed,
                     details=details)


# --- a shared default instance -----------------------------------------------------------------

_LIVE: weakref.WeakSet[Sandbox] = weakref.WeakSet()
_DEFAULT: Sandbox | None = None
_DEFAULT_LOCK = threading.Lock()


def get_sandbox(config: SandboxConfig | None = None) -> Sandbox:
    """The process-wide sandbox the `code` domain uses, started on first use.

    With no config: the running shared instance, or a new one from `SandboxConfig.from_env()`.
    With a config that differs from the running instance's: that instance is closed and replaced
    (this is how tests and trainers choose the limits the `code` verifier runs under).
    """
    global _DEFAULT
    with _DEFAULT_LOCK:
        live = _DEFAULT is not None and not _DEFAULT._closed and _DEFAULT._pid == os.getpid()
        if live and (config is None or config == _DEFAULT.config):
            return _DEFAULT  # type: ignore[return-value]
        if _DEFAULT is not None:
            _DEFAULT.close()  # a no-op for an instance inherited through fork
        _DEFAULT = Sandbox(config or SandboxConfig.from_env())
        return _DEFAULT


def close_default_sandbox() -> None:
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is not None:
            _DEFAULT.close()
            _DEFAULT = None


def _close_all() -> None:
    for box in list(_LIVE):
        box.close()


atexit.register(_close_all)
