"""What runs inside each forked child: enter the sandbox, run the program, then run the tests.

Standalone on purpose (imported by the fork server by path). Everything the harness relies on
after user code has run is captured here, at import time in the server, before any user code
exists: user code may monkeypatch builtins or modules, but not these references.

Proof of a pass: the harness writes a record, prefixed with the per-run secret, to a private pipe
(fd 3) after it has itself evaluated a test. Exit codes and printed text are never read as results.
"""

from __future__ import annotations

import atexit
import builtins
import fcntl
import io
import marshal
import os
import resource
import signal
import _signal as _signal_module
import sys
import threading
import types

import _proto

# --- references captured before any user code can exist ----------------------------------------
_write = os.write
_exit = os._exit
_close = os.close
_dup2 = os.dup2
_memfd = os.memfd_create
_lseek = os.lseek
_pread = os.pread
_fstat = os.fstat
_getpid = os.getpid
_current_frames = sys._current_frames
_setrecursionlimit = sys.setrecursionlimit
_settrace = sys.settrace
_setprofile = sys.setprofile
_threading_settrace = threading.settrace
_threading_setprofile = threading.setprofile
_enumerate_threads = threading.enumerate
_main_thread = threading.main_thread
_stack_size = threading.stack_size
_signal = signal.signal
_c_signal = _signal_module.signal
_SIGXFSZ = int(signal.SIGXFSZ)
_SIG_IGN = _signal_module.SIG_IGN
_SIG_DFL = _signal_module.SIG_DFL
_DEFAULT_SIGNALS = tuple(int(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD))
_setitimer = signal.setitimer
_alarm = signal.alarm
_exec = exec
_compile = compile
_str = str
_type = type
_len = len
_bool_true = True
_BaseException = BaseException
_SystemExit = SystemExit
_isinstance = isinstance
_pack_record = _proto.pack_record
_pack_case = _proto.pack_case
_normalize = _proto.normalize_output
_token = _proto.output_token
_io_open = io.open
_ModuleType = types.ModuleType
_marshal_loads = marshal.loads
_fcntl = fcntl.fcntl
_F_DUPFD_CLOEXEC = fcntl.F_DUPFD_CLOEXEC
_atexit_run = atexit._run_exitfuncs
_atexit_clear = atexit._clear

RESULT_FD = 3
RECURSION_LIMIT = sys.getrecursionlimit()
MAX_CASES = 100_000
_INFO_CHARS = 300

#: Modules whose attributes are put back after the program ran, so that tests see the real ones
#: (a program could otherwise replace `math.isclose` or `operator.eq` and fool the checks).
GUARDED_MODULES = (
    "builtins", "math", "cmath", "operator", "collections", "functools", "itertools", "heapq", "bisect",
    "string", "re", "random", "typing", "copy", "json", "decimal", "fractions", "statistics",
    "datetime", "types", "abc", "numbers",
)

#: Imported by the fork server once, so that children do not pay for them per program.
PRELOAD = (
    "typing", "collections", "heapq", "bisect", "itertools", "math", "cmath", "functools", "string", "re",
    "random", "operator", "copy", "datetime", "decimal", "fractions", "statistics", "array", "queue",
    "threading", "time", "json", "io", "types", "abc", "numbers", "dataclasses", "enum", "hashlib",
    "atexit", "sortedcontainers", "textwrap", "unicodedata", "contextlib", "weakref", "struct",
)


def _version_reader():
    """A reader of a dict's internal version tag (CPython bumps it on every change), or None.

    Restoring a module namespace rewrites every entry, which touches the reference count of every
    value and so copies hundreds of shared pages into each child; reading the tag tells us,
    without touching anything, that no restore is needed. The layout is checked here on a
    scratch dict; where it does not hold, every restore is done in full."""
    import ctypes
    if sys.implementation.name != "cpython":
        return None
    offset = 2 * ctypes.sizeof(ctypes.c_void_p) + ctypes.sizeof(ctypes.c_ssize_t)  # head, ma_used

    def reader(d: dict):
        return ctypes.c_uint64.from_address(id(d) + offset)

    probe: dict = {"a": 1}
    try:
        tag = reader(probe)
        before = tag.value
        probe["a"] = 2
        middle = tag.value
        probe["b"] = 3
        after = tag.value
    except (ValueError, OSError):
        return None
    return reader if before != middle != after != before else None


class Pristine:
    """Snapshots of guarded module namespaces and of sys.modules entries, taken in the server."""

    def __init__(self) -> None:
        self.modules = {name: sys.modules[name] for name in GUARDED_MODULES if name in sys.modules}
        self.dicts = {name: dict(mod.__dict__) for name, mod in self.modules.items()}
        self.builtins = dict(builtins.__dict__)
        self.reader = _version_reader()
        self.modules_tag = None
        self.tags: dict[str, tuple] | None = None
        self.namespaces = {name: mod.__dict__ for name, mod in self.modules.items()}
        if self.reader is not None:
            cell = self.reader(sys.modules)
            self.modules_tag = (cell, cell.value)
            self.tags = {}
            for name, namespace in self.namespaces.items():
                cell = self.reader(namespace)
                self.tags[name] = (cell, cell.value)

    def watch(self, name: str, namespace: dict) -> None:
        """Guard one more namespace (a prelude's builtins mapping) like the modules'."""
        self.namespaces[name] = namespace
        self.dicts[name] = dict(namespace)
        if self.tags is not None:
            cell = self.reader(namespace)
            self.tags[name] = (cell, cell.value)

    def restore_modules(self) -> None:
        """Put guarded modules and their attributes back (only what changed is touched), and drop
        tracing, profiling and interval timers."""
        modules = sys.modules
        if self.modules_tag is None or self.modules_tag[0].value != self.modules_tag[1]:
            for name, mod in self.modules.items():
                if modules.get(name) is not mod:
                    modules[name] = mod
            if self.modules_tag is not None:
                self.modules_tag = (self.modules_tag[0], self.modules_tag[0].value)
        for name, namespace in self.namespaces.items():
            if self.tags is not None:
                cell, value = self.tags[name]
                if cell.value == value:
                    continue
            clean = self.dicts[name]
            for key in [k for k in namespace if k not in clean]:
                del namespace[key]
            namespace.update(clean)
            if self.tags is not None:
                self.tags[name] = (cell, cell.value)  # writing equal values still bumps the tag
        _settrace(None)
        _setprofile(None)
        _threading_settrace(None)
        _threading_setprofile(None)

    def restore_for_tests(self) -> None:
        """Between the program and its tests. The recursion limit stays: solutions raise it at
        module level for their own recursive functions."""
        self.restore_modules()
        _setitimer(signal.ITIMER_REAL, 0)
        _setitimer(signal.ITIMER_VIRTUAL, 0)
        _setitimer(signal.ITIMER_PROF, 0)

    def restore_between_cases(self) -> None:
        """After each test case: cheap (no system calls) when the case changed nothing."""
        self.restore_modules()

    def restore_for_next_program(self) -> None:
        """Between stdin cases, each a fresh run of the program: everything back as it was."""
        self.restore_for_tests()
        _setrecursionlimit(RECURSION_LIMIT)
        for sig in (signal.SIGALRM, signal.SIGVTALRM, signal.SIGPROF, signal.SIGUSR1, signal.SIGUSR2):
            _signal(sig, signal.SIG_DFL)


class Prelude:
    """A prelude (imports, helpers) run once in the server.

    Its names reach the program through the program's `__builtins__` mapping (name lookup falls
    through globals to builtins), so no child copies a namespace of hundreds of names: copying
    touches every value's reference count, and each touched page is copied into the child."""

    def __init__(self, text: str) -> None:
        namespace = {"__name__": "__main__", "__builtins__": builtins}
        _exec(_compile(text, "<prelude>", "exec", dont_inherit=True), namespace)
        lookup = dict(builtins.__dict__)
        lookup.update((k, v) for k, v in namespace.items() if not k.startswith("__"))
        self.builtins = lookup
        #: Functions the prelude defines (is_same_list, tree_node...): tests get these originals.
        self.helpers = {name: value for name, value in namespace.items()
                        if _type(value) is types.FunctionType and value.__code__.co_filename == "<prelude>"}
        if _PRISTINE is not None:
            _PRISTINE.watch(f"prelude-{id(self)}", lookup)


_PRISTINE: Pristine | None = None


def snapshot(preludes=()) -> None:
    """Called by the server after its imports, before the first fork. Preludes made later are
    watched as they are made."""
    global _PRISTINE
    _PRISTINE = Pristine()
    for prelude in preludes:
        _PRISTINE.watch(f"prelude-{id(prelude)}", prelude.builtins)


# --- entering the sandbox ----------------------------------------------------------------------

def enter_sandbox(cfg: dict, slot_uid: int, seccomp_installer, devnull: int, result_fd: int) -> None:
    """Isolation for this child, in an order where each step still has the rights it needs."""
    os.setsid()  # own session and process group: the server kills the whole group at the end
    # The child is born in its server's cgroup (moving a task between cgroups costs milliseconds);
    # on memory pressure the kernel's OOM killer takes the child, never the server.
    try:
        fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
        try:
            os.write(fd, b"1000")
        finally:
            os.close(fd)
    except OSError:
        pass
    if cfg.get("limits", True):
        _set_limits(cfg)
        if os.geteuid() == 0:
            os.setgroups([])
            os.setresgid(slot_uid, slot_uid, slot_uid)
            os.setresuid(slot_uid, slot_uid, slot_uid)
    # (the C-level `_signal.signal`: the `signal` module's wrapper walks enums, touching memory
    # that each child would then copy)
    _c_signal(_SIGXFSZ, _SIG_IGN)  # an oversized write fails with EFBIG instead of killing
    for sig in _DEFAULT_SIGNALS:
        _c_signal(sig, _SIG_DFL)
    # Not dumpable: /proc/self/mem and ptrace stay closed even to the same uid.
    if seccomp_installer is not None:
        seccomp_installer.not_dumpable()
    for fd in (0, 1, 2):
        _dup2(devnull, fd)
    if result_fd != RESULT_FD:
        _dup2(result_fd, RESULT_FD, inheritable=True)
    os.closerange(RESULT_FD + 1, 1 << 16)  # the server's pipes to the client must not leak in
    if seccomp_installer is not None:
        seccomp_installer.install()
    sys.dont_write_bytecode = True
    for name in ("_harness", "_server", "_seccomp", "_proto"):
        sys.modules.pop(name, None)
    import random as _random
    _random.seed()  # a fresh process would have its own random state
    _atexit_clear()  # handlers of the server are not the program's


def _set_limits(cfg: dict) -> None:
    mb = 1 << 20
    limits = {
        resource.RLIMIT_AS: cfg["address_space_mb"] * mb,
        resource.RLIMIT_CPU: int(cfg["cpu_s"]),
        resource.RLIMIT_FSIZE: cfg["file_size_bytes"],
        resource.RLIMIT_NOFILE: cfg["open_files"],
        resource.RLIMIT_NPROC: cfg["nproc"],
        resource.RLIMIT_CORE: 0,
    }
    for which, value in limits.items():
        if which == resource.RLIMIT_CPU:
            resource.setrlimit(which, (value, value + 1))  # SIGXCPU first, SIGKILL one second later
        else:
            resource.setrlimit(which, (value, value))


# --- running one job ---------------------------------------------------------------------------

class _Emitter:
    __slots__ = ("write",)

    def __init__(self, secret: bytes) -> None:
        def write(kind, payload, _w=_write, _fd=RESULT_FD, _s=secret, _p=_pack_record):
            _w(_fd, _p(_s, kind, payload))
        self.write = write


def _describe(exc: BaseException) -> str:
    """Type and message of an exception, robust to user-defined exceptions with hostile __str__."""
    try:
        name = _type(exc).__name__
        if not _isinstance(name, _str):
            name = "Exception"
    except _BaseException:
        name = "Exception"
    try:
        msg = _str(exc)
        if not _isinstance(msg, _str):
            msg = ""
    except _BaseException:
        msg = ""
    text = f"{name}: {msg}" if msg else name
    return text[:_INFO_CHARS]


def _other_threads() -> bool:
    return _len(_current_frames()) > 1


def run_job(job: dict, secret: bytes, prelude: Prelude | None) -> None:
    emit = _Emitter(secret).write
    mode = job["mode"]
    try:
        if mode == "stdio":
            _run_stdio(job, emit)
        elif mode == "asserts":
            _run_asserts(job, emit, prelude)
        elif mode == "pytest":
            _run_pytest(job, emit, prelude)
        else:
            emit(_proto.FINISHED, b"\0\0\0\0" + f"harness: unknown mode {mode}".encode())
    except _BaseException as exc:  # the harness itself must never turn an error into a pass
        try:
            emit(_proto.FINISHED, b"\xff\xff\xff\xff" + f"harness error: {_describe(exc)}".encode())
        except _BaseException:
            pass
    _exit(0)


def _compile_program(job: dict, emit) -> types.CodeType | None:
    try:
        return _compile(job["program"], "<solution>", "exec", dont_inherit=True)
    except _BaseException as exc:  # SyntaxError, ValueError (null bytes), RecursionError, MemoryError
        if _isinstance(exc, SyntaxError):
            reason = f"syntax error: {exc.msg} (line {exc.lineno})"[:_INFO_CHARS]
        else:
            reason = f"compile error: {_describe(exc)}"
        emit(_proto.PROGRAM_DONE, reason.encode())
        emit(_proto.FINISHED, b"\0\0\0\0" + reason.encode())
        return None


def _run_program(code, namespace: dict, emit) -> bool:
    """Module-level code of the program. Any exception, SystemExit included, fails the run: the
    tests cannot be reached in a normal run either, and `sys.exit(0)` must not look like success."""
    try:
        _exec(code, namespace)
    except _SystemExit as exc:
        try:
            code = exc.code if exc.code is None or _isinstance(exc.code, int) else "text"
        except _BaseException:
            code = "?"
        reason = f"program exited before the tests (SystemExit({code}))"
    except _BaseException as exc:
        reason = f"program error: {_describe(exc)}"
    else:
        if _other_threads():
            reason = "program left threads running"
        else:
            emit(_proto.PROGRAM_DONE, b"")
            return True
    emit(_proto.PROGRAM_DONE, reason.encode())
    emit(_proto.FINISHED, b"\0\0\0\0" + reason.encode())
    return False


class _CaseHooks:
    """The functions the rewritten asserts call. One instance per child; state lives in closures."""

    def __init__(self, emit, skip: int) -> None:
        state = [0]
        _restore = _PRISTINE.restore_between_cases

        def enter(_state=state, _skip=skip, _emit=emit):
            i = _state[0]
            _state[0] = i + 1
            if i >= MAX_CASES:
                raise _Abort(f"more than {MAX_CASES} test cases")
            if i == _skip and i:
                _emit(_proto.REACHED, b"")
            return i >= _skip

        def check(value, _state=state, _emit=emit, _pc=_pack_case):
            i = _state[0] - 1
            try:
                # `not not` is the interpreter's own truth test; `bool` could be a patched builtin.
                ok = value is True or (value is not False and not not value)  # noqa: SIM208
            except _BaseException as exc:
                _emit(_proto.CASE, _pc(i, _proto.FAILED, _describe(exc)))
                return
            if _other_threads():
                raise _Abort("test started threads")
            _emit(_proto.CASE, _pc(i, _proto.PASSED if ok else _proto.FAILED, "" if ok else "AssertionError"))
            _restore()  # a candidate that patched builtins (abs, sorted...) must not sway later cases

        def fail(exc, _state=state, _emit=emit, _pc=_pack_case):
            if _isinstance(exc, _Abort):
                raise exc
            i = _state[0] - 1
            _emit(_proto.CASE, _pc(i, _proto.FAILED, _describe(exc)))
            if _other_threads():
                raise _Abort("test started threads")
            _restore()

        self.enter, self.check, self.fail = enter, check, fail
        self.count = lambda: state[0]


class _Abort(BaseException):
    """Stops the test stage (too many cases, threads left behind)."""


HOOK_NAMES = ("__mdrl_enter__", "__mdrl_check__", "__mdrl_fail__")


def _test_namespace(user_ns: dict, prelude: Prelude | None, hooks: _CaseHooks) -> dict:
    ns = dict(user_ns)
    if prelude is not None:
        ns.update(prelude.helpers)  # is_same_list, tree_node... as the prelude defined them
        ns["__builtins__"] = prelude.builtins  # restored after the program ran
    else:
        ns["__builtins__"] = builtins
    ns["__name__"] = "__main__"
    ns["__mdrl_enter__"], ns["__mdrl_check__"], ns["__mdrl_fail__"] = hooks.enter, hooks.check, hooks.fail
    return ns


def _finish(emit, hooks: _CaseHooks, reason: str) -> None:
    emit(_proto.FINISHED, (hooks.count()).to_bytes(4, "little") + reason.encode("utf-8", "replace"))


def _run_asserts(job: dict, emit, prelude: Prelude | None) -> None:
    code = _compile_program(job, emit)
    if code is None:
        return
    tests = _marshal_loads(job["tests"])
    user_ns = {"__name__": "__main__", "__builtins__": prelude.builtins if prelude is not None else builtins}
    if not _run_program(code, user_ns, emit):
        return
    _PRISTINE.restore_for_tests()
    hooks = _CaseHooks(emit, job.get("skip", 0))
    ns = _test_namespace(user_ns, prelude, hooks)
    reason = ""
    try:
        _exec(tests, ns)
    except _Abort as exc:
        reason = _str(exc.args[0])
    except _BaseException as exc:
        reason = f"test code raised {_describe(exc)}"
    _finish(emit, hooks, reason)


def _run_pytest(job: dict, emit, prelude: Prelude | None) -> None:
    """A pytest-style file: every test function (and parametrized variant) is one case."""
    code = _compile_program(job, emit)
    if code is None:
        return
    tests = _marshal_loads(job["tests"])
    module = _ModuleType(job.get("module", "solution"))
    user_ns = module.__dict__
    user_ns["__name__"] = module.__name__
    user_ns["__builtins__"] = prelude.builtins if prelude is not None else builtins
    sys.modules[module.__name__] = module
    if not _run_program(code, user_ns, emit):
        return
    _PRISTINE.restore_for_tests()
    sys.modules[module.__name__] = module
    hooks = _CaseHooks(emit, job.get("skip", 0))
    ns = {"__name__": "test_" + module.__name__, "__builtins__": builtins}
    try:
        _exec(tests, ns)
        cases = _collect_pytest_cases(ns)
    except _BaseException as exc:
        _finish(emit, hooks, f"test file raised {_describe(exc)}")
        return
    reason = ""
    try:
        for label, func, kwargs in cases:
            if not hooks.enter():
                continue
            if _type(func) is _str:  # a fixture we do not provide
                hooks.fail(LookupError(func))
                continue
            try:
                func(**kwargs)
            except _BaseException as exc:
                hooks.fail(exc)
            else:
                hooks.check(True)
    except _Abort as exc:
        reason = _str(exc.args[0])
    _finish(emit, hooks, reason)


def _collect_pytest_cases(ns: dict) -> list:
    cases = []
    for name, obj in list(ns.items()):
        if name.startswith("test") and _type(obj) is types.FunctionType:
            cases.extend(_expand(name, obj))
        elif name.startswith("Test") and isinstance(obj, type):
            instance = obj()
            for attr in sorted(vars(obj)):
                if attr.startswith("test") and callable(getattr(instance, attr)):
                    cases.extend(_expand(f"{name}.{attr}", getattr(instance, attr)))
    return cases


def _expand(label: str, func) -> list:
    """Parametrize marks become one case per parameter set; unknown fixtures fail the case."""
    import inspect
    marks = [m for m in getattr(func, "pytestmark", []) if getattr(m, "name", "") == "parametrize"]
    params: list[dict] = [{}]
    for mark in reversed(marks):
        names, values = mark.args[0], mark.args[1]
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",") if n.strip()]
        expanded = []
        for combo in params:
            for value in values:
                value = getattr(value, "values", value)  # pytest.param(...)
                row = value if len(names) > 1 else (value,)
                expanded.append({**combo, **dict(zip(names, row))})
        params = expanded
    try:
        wanted = [p for p in inspect.signature(func).parameters if p != "self"]
    except (TypeError, ValueError):
        wanted = []
    out = []
    for kwargs in params:
        missing = [p for p in wanted if p not in kwargs]
        out.append((label, f"unsupported fixture {missing[0]!r}" if missing else func, kwargs))
    return out


def _run_stdio(job: dict, emit) -> None:
    """Each input runs the whole program afresh (new globals, new stdin/stdout) in this child."""
    code = _compile_program(job, emit)
    if code is None:
        return
    emit(_proto.PROGRAM_DONE, b"")
    inputs = job["inputs"]
    skip = job.get("skip", 0)
    bdict = builtins.__dict__
    clean_builtins = _PRISTINE.builtins
    for index in range(skip, _len(inputs)):
        status, info = _stdio_case(code, inputs[index], bdict, clean_builtins)
        emit(_proto.CASE, _pack_case(index, status, info))
    emit(_proto.FINISHED, _len(inputs).to_bytes(4, "little"))


class _ProgramExit(BaseException):
    """Raised by the os._exit stand-in so that a program's last case still reports its output."""


def _fake_os_exit(code=0):
    raise _ProgramExit(code)


def _to_fd(fd: int, target: int) -> None:
    """Make `target` refer to the file of `fd`, and drop `fd` (unless it already is `target`:
    a program that closed its stdin makes the next new fd land on 0)."""
    if fd != target:
        _dup2(fd, target)
        _close(fd)


def _stdio_case(code, data: str, bdict: dict, clean_builtins: dict) -> tuple[bytes, str]:
    try:
        fd_in = _memfd("stdin", 0)
        raw = data.encode("utf-8", "surrogateescape")
        view = memoryview(raw)
        while view:
            view = view[_write(fd_in, view):]
        _lseek(fd_in, 0, 0)
        _to_fd(fd_in, 0)
        fd_out = _memfd("stdout", 0)
        keep_out = _fcntl(fd_out, _F_DUPFD_CLOEXEC, 64)  # our own handle, away from the low fds
        _to_fd(fd_out, 1)
    except OSError as exc:
        return _proto.ERROR, f"harness could not set up stdio: {_describe(exc)}\x00"
    stdin = _io_open(0, "r", encoding="utf-8", errors="strict", closefd=False)
    stdout = _io_open(1, "w", encoding="utf-8", errors="strict", closefd=False)
    sys.stdin = sys.__stdin__ = stdin
    sys.stdout = sys.__stdout__ = stdout
    os._exit = _fake_os_exit
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    error = ""
    try:
        try:
            _exec(code, namespace)
        finally:
            # As at interpreter exit: wait for threads, run atexit handlers, flush stdout.
            _join_threads()
            _run_exitfuncs()
    except _SystemExit as exc:
        status = exc.code
        if status is not None and status != 0:
            error = f"exit status {status if _isinstance(status, int) else 1}"
    except _ProgramExit as exc:
        status = exc.args[0] if exc.args else 0
        if status != 0:
            error = f"exit status {status}"
    except _BaseException as exc:
        error = _describe(exc)
    try:
        for stream in (sys.stdout, stdout):
            stream.flush()
        namespace.clear()  # file objects the program made flush when released, as at exit
    except _BaseException as exc:
        if not error:
            error = f"output error: {_describe(exc)}"
    os._exit = _exit
    try:
        size = _fstat(keep_out).st_size
        text = _pread(keep_out, size, 0).decode("utf-8", "replace")
        _close(keep_out)
    except OSError as exc:
        text = ""
        error = error or f"output lost: {_describe(exc)}"
    # Next case starts clean: builtins, recursion limit, tracing and stdio as they were.
    _PRISTINE.restore_for_next_program()
    out = _token(_normalize(text))
    if error:
        return _proto.ERROR, error[:_INFO_CHARS] + "\x00" + out
    return _proto.OUTPUT, out


def _run_exitfuncs() -> None:
    try:
        _atexit_run()
    finally:
        _atexit_clear()


def _join_threads() -> None:
    main = _main_thread()
    for thread in _enumerate_threads():
        if thread is not main and not thread.daemon:
            thread.join()
    _stack_size(0)
