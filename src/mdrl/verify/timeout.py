"""Time limits that work on any thread and inside any worker process.

Why not `signal.alarm`, as math-verify does: an alarm can only be set from the main thread of the main
interpreter (reward functions run in ThreadPoolExecutor workers and in Ray/multiprocessing workers), and
a signal handler only runs between bytecodes, so it cannot stop a long C-level computation such as the
big-integer power sympy evaluates for `9^{9^{9^{9}}}`. A process can always be killed.

So a guarded call runs in a small persistent helper process, one per calling thread (threads then verify
in parallel instead of queueing on the GIL). The call and its result travel over a pipe; when the time is
up the helper is killed and a replacement is started at once, so the next call only waits for it if it
comes before the replacement has finished importing. Helpers are fresh interpreters started with
`subprocess`, not `multiprocessing`: multiprocessing refuses to start children from daemonic pool workers,
and fork() from a multi-threaded process can deadlock on a lock another thread held.

Not covered: the function and its arguments must be picklable by reference (module-level functions of
importable modules, not lambdas or functions of `__main__`). A helper is a separate interpreter, so the
function cannot see or change the caller's memory. This bounds time and (optionally) address space; it is
not a security sandbox (see mdrl.sandbox for untrusted code). POSIX only (pipes passed by descriptor).
"""

from __future__ import annotations

import atexit
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class CallTimeout(BaseException):
    """The guarded call ran past its time limit (its helper process was killed).

    A BaseException, as math-verify's own TimeoutException is: a timeout must not be swallowed by the
    `except Exception` that wraps most verifier code, or a stuck answer would be scored as a plain miss
    while the worker keeps hanging.
    """


class HelperError(RuntimeError):
    """The helper process died (killed by the OS, out of memory, crashed) or could not start."""


@dataclass(frozen=True)
class HelperConfig:
    """How the helper processes behind a `TimeLimiter` are started."""

    preload: tuple[str, ...] = field(
        default=(),
        metadata={"help": "Modules each helper imports before it reports ready, so that import time is "
                          "never counted against a call's time limit."},
    )
    memory_limit_mb: int | None = field(
        default=4096,
        metadata={"help": "Address-space limit (RLIMIT_AS) of each helper in MiB; a runaway computation "
                          "then fails with MemoryError instead of exhausting the machine. None: no limit."},
    )
    start_timeout_s: float = field(
        default=120.0,
        metadata={"help": "How long to wait for a new helper to import its modules and report ready."},
    )


# ---------------------------------------------------------------------------------------------------------
# Helper side: this runs in the child interpreter.


def _helper_main(read_fd: int, write_fd: int) -> None:
    """Entry point of a helper process: read (fn, args, kwargs), reply (status, value), until EOF."""
    # Ctrl-C in a terminal goes to the whole process group; the parent decides what happens, not us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    inbox = Connection(read_fd, writable=False)
    outbox = Connection(write_fd, readable=False)
    # Library code that prints would corrupt nothing (replies have their own pipe), but keep stdout quiet.
    sys.stdout = sys.stderr
    try:
        sys_path, preload, memory_limit_mb = inbox.recv()
        sys.path[:] = sys_path
        if memory_limit_mb:
            import resource

            limit = int(memory_limit_mb) * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        import importlib

        for module in preload:
            importlib.import_module(module)
    except EOFError:  # the parent went away before we started
        return
    except Exception as exc:  # noqa: BLE001  (report why we cannot serve, then exit)
        try:
            outbox.send(("init_error", f"{type(exc).__name__}: {exc}"))
        except OSError:
            pass
        return
    try:
        _serve(inbox, outbox)
    except (BrokenPipeError, EOFError):  # the parent went away (exit, or killed us mid-start)
        return


def _serve(inbox: Connection, outbox: Connection) -> None:
    outbox.send(("ready", os.getpid()))
    while True:
        try:
            fn, args, kwargs = inbox.recv()
        except EOFError:  # the parent closed the pipe or exited
            return
        except Exception as exc:  # noqa: BLE001  (the request did not unpickle: fn not importable here)
            outbox.send(("error", _portable_exception(exc)))
            continue
        try:
            reply = ("ok", fn(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001  (the caller gets the function's exception back)
            reply = ("error", _portable_exception(exc))
        try:
            outbox.send(reply)
        except Exception as exc:  # noqa: BLE001  (the result itself does not pickle)
            outbox.send(("error", _portable_exception(exc)))


def _portable_exception(exc: Exception) -> Exception:
    """The exception itself when it survives pickling, else a RuntimeError that describes it."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001  (any failure to pickle means: describe it instead)
        return RuntimeError(f"{type(exc).__name__}: {exc}")


# ---------------------------------------------------------------------------------------------------------
# Caller side.

_LIVE_HELPERS: weakref.WeakSet[_Helper] = weakref.WeakSet()


def _forget_parent_helpers() -> None:
    # A forked child inherits references to its parent's helpers; they are not its own to use or kill.
    _LIVE_HELPERS.clear()


os.register_at_fork(after_in_child=_forget_parent_helpers)


def _terminate(process: subprocess.Popen, owner_pid: int, conns: tuple[Connection, ...]) -> None:
    if os.getpid() != owner_pid:
        return
    for conn in conns:
        try:
            conn.close()
        except OSError:
            pass
    if process.poll() is None:
        process.kill()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.warning("helper process %d did not exit after SIGKILL", process.pid)


class _Helper:
    """One helper process and its two pipe ends. Used by one thread at a time."""

    def __init__(self, config: HelperConfig) -> None:
        self.config = config
        self.owner_pid = os.getpid()
        self.ready = False
        parent_read, child_write = os.pipe()
        child_read, parent_write = os.pipe()
        bootstrap = f"from mdrl.verify.timeout import _helper_main; _helper_main({child_read}, {child_write})"
        env = dict(os.environ)
        # The child must import mdrl the way we did (editable install, test runner paths, ...).
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", bootstrap],
                pass_fds=(child_read, child_write),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=env,
                close_fds=True,
            )
        finally:
            os.close(child_read)
            os.close(child_write)
        self.inbox = Connection(parent_read, writable=False)
        self.outbox = Connection(parent_write, readable=False)
        self._finalizer = weakref.finalize(self, _terminate, self.process, self.owner_pid,
                                           (self.inbox, self.outbox))
        self.outbox.send((list(sys.path), tuple(config.preload), config.memory_limit_mb))
        _LIVE_HELPERS.add(self)

    @property
    def usable(self) -> bool:
        return self.owner_pid == os.getpid() and self.process.poll() is None

    def wait_ready(self) -> None:
        if self.ready:
            return
        if not self.inbox.poll(self.config.start_timeout_s):
            self.kill()
            raise HelperError(f"helper process did not start within {self.config.start_timeout_s:g} s")
        try:
            status, value = self.inbox.recv()
        except EOFError:
            code = self.process.wait()
            raise HelperError(f"helper process exited during start-up (exit code {code})") from None
        if status != "ready":
            self.kill()
            raise HelperError(f"helper process could not start: {value}")
        self.ready = True

    def call(self, fn: Callable[..., T], args: tuple, kwargs: dict, timeout_s: float) -> T:
        # Pickle first: a function that cannot travel (a lambda) fails here and the helper stays usable.
        request = pickle.dumps((fn, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        self.wait_ready()
        answered = False
        try:
            started = time.monotonic()
            self.outbox.send_bytes(request)
            remaining = timeout_s - (time.monotonic() - started)
            if not self.inbox.poll(max(remaining, 0.0)):
                raise CallTimeout(f"{getattr(fn, '__qualname__', fn)} ran past {timeout_s:g} s")
            status, value = self.inbox.recv()
            answered = True
        except (EOFError, OSError):
            code = self.process.poll()
            raise HelperError(f"helper process died during the call (exit code {code})") from None
        finally:
            # Without its answer the helper may still be computing, and a late reply would be read
            # as the next call's: never reuse it.
            if not answered:
                self.kill()
        if status == "ok":
            return value
        raise value

    def kill(self) -> None:
        self._finalizer()


class TimeLimiter:
    """Runs functions under a wall-clock limit, in one persistent helper process per calling thread.

    >>> limiter = TimeLimiter(HelperConfig(preload=("math_verify",)))
    >>> limiter.call(pow, 2, 10, timeout_s=5.0)
    1024

    `call` raises `CallTimeout` (a BaseException) when the limit passes, `HelperError` when the helper
    dies, and re-raises whatever Exception the function raised.
    """

    def __init__(self, config: HelperConfig = HelperConfig()) -> None:
        self.config = config
        self._local = threading.local()

    def _helper(self) -> _Helper:
        helper: _Helper | None = getattr(self._local, "helper", None)
        if helper is None or not helper.usable:
            if helper is not None and helper.owner_pid == os.getpid():
                helper.kill()
            helper = _Helper(self.config)
            self._local.helper = helper
        return helper

    def warm_up(self) -> None:
        """Start this thread's helper now and wait until it is ready (optional; `call` does it too)."""
        self._helper().wait_ready()

    def call(self, fn: Callable[..., T], *args: Any, timeout_s: float, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` in this thread's helper, within `timeout_s` seconds of wall-clock time.

        The helper's start-up (interpreter and `preload` imports) is not counted against `timeout_s`.
        """
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s!r}")
        helper = self._helper()
        try:
            return helper.call(fn, args, kwargs, timeout_s)
        except (CallTimeout, HelperError):
            # Start the replacement now: it imports while the caller handles this item.
            self._local.helper = _Helper(self.config)
            raise

    def close(self) -> None:
        """Stop this thread's helper (others stop when their threads end or the process exits)."""
        helper = getattr(self._local, "helper", None)
        if helper is not None and helper.owner_pid == os.getpid():
            helper.kill()
        self._local.helper = None


@atexit.register
def _stop_all_helpers() -> None:
    for helper in list(_LIVE_HELPERS):
        if helper.owner_pid == os.getpid():
            helper.kill()
