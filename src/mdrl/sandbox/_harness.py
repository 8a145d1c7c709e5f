"""What runs inside each sandboxed program child: enter the sandbox, then run the program.

Standalone on purpose (imported by the fork server by path). Two kinds of job:
- functional tests: the program's module code runs, then the child answers calls from the trusted
  test child (`_tester`), relayed by the server: arguments in, results out, as plain data
  (`_plain`). The tests never run here, so nothing here holds an expected value or a verdict.
- stdin/stdout tests: the program runs once per input; its normalized output goes to the server,
  prefixed with a per-run secret, and the caller compares it with the expected output.

References the harness relies on after user code has run are captured at import time, in the
server, before any user code exists.
"""

from __future__ import annotations

import atexit
import builtins
import fcntl
import io
import os
import resource
import signal
import _signal as _signal_module
import sys
import threading
import types

import _plain
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
_exec = exec
_compile = compile
_str = str
_type = type
_len = len
_BaseException = BaseException
_SystemExit = SystemExit
_isinstance = isinstance
_pack_record = _proto.pack_record
_pack_case = _proto.pack_case
_normalize = _proto.normalize_output
_token = _proto.output_token
_io_open = io.open
_ModuleType = types.ModuleType
_fcntl = fcntl.fcntl
_F_DUPFD_CLOEXEC = fcntl.F_DUPFD_CLOEXEC
_atexit_run = atexit._run_exitfuncs
_atexit_clear = atexit._clear

RESULT_FD = 3
RECURSION_LIMIT = sys.getrecursionlimit()
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


_PRISTINE: Pristine | None = None


def snapshot() -> None:
    """Called by the server after its imports, before the first fork: what stdin/stdout children
    put back between inputs."""
    global _PRISTINE
    _PRISTINE = Pristine()


# --- entering the sandbox ----------------------------------------------------------------------

def enter_sandbox(cfg: dict, slot_uid: int, seccomp_installer, devnull: int, fds: tuple[int, ...]) -> None:
    """Isolation for this child, in an order where each step still has the rights it needs.
    `fds` (the child's pipes to its server) end up as fds 3, 4, ...; every other fd is closed."""
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
    place_fds(devnull, fds)
    if seccomp_installer is not None:
        seccomp_installer.install()
    sys.dont_write_bytecode = True
    for name in ("_harness", "_server", "_seccomp", "_proto"):
        sys.modules.pop(name, None)
    import random as _random
    _random.seed()  # a fresh process would have its own random state
    _atexit_clear()  # handlers of the server are not the program's


def place_fds(devnull: int, fds: tuple[int, ...]) -> None:
    """stdin/stdout/stderr on /dev/null, `fds` as 3, 4, ..., and every other fd closed (the
    server's pipes to the client must not leak into a child)."""
    for fd in (0, 1, 2):
        _dup2(devnull, fd)
    moved = [_fcntl(fd, fcntl.F_DUPFD, 3 + _len(fds)) for fd in fds]  # out of the targets' way
    for target, fd in enumerate(moved, start=3):
        _dup2(fd, target, inheritable=True)
    os.closerange(3 + _len(fds), 1 << 16)


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


def run_job(job: dict, secret: bytes) -> None:
    """The child of a stdin/stdout job."""
    emit = _Emitter(secret).write
    try:
        _run_stdio(job, emit)
    except _BaseException as exc:  # the harness itself must never turn an error into a pass
        try:
            emit(_proto.FINISHED, b"\xff\xff\xff\xff" + f"harness error: {_describe(exc)}".encode())
        except _BaseException:
            pass
    _exit(0)


def _compile_program(job: dict, emit) -> types.CodeType | None:
    code, reason = _compile_solution(job["program"])
    if code is None:
        emit(_proto.PROGRAM_DONE, reason.encode())
        emit(_proto.FINISHED, b"\0\0\0\0" + reason.encode())
    return code


def _compile_solution(text: str) -> tuple[types.CodeType | None, str]:
    try:
        return _compile(text, "<solution>", "exec", dont_inherit=True), ""
    except _BaseException as exc:  # SyntaxError, ValueError (null bytes), RecursionError, MemoryError
        if _isinstance(exc, SyntaxError):
            return None, f"syntax error: {exc.msg} (line {exc.lineno})"[:_INFO_CHARS]
        return None, f"compile error: {_describe(exc)}"


# --- functional tests: the program answers calls; the tests run in another process ---------------

REQUEST_FD = 3
REPLY_FD = 4
_read = os.read
_frame_len = _proto.FRAME_LEN
_encode = _plain.encode
_NotPlain = _plain.NotPlain
_callable = callable
_getattr = getattr
_id = id


def _send(payload: bytes, _w=_write, _fd=REPLY_FD) -> None:
    view = memoryview(_frame_len.pack(_len(payload)) + payload)
    while view:
        view = view[_w(_fd, view):]


def _receive() -> bytes | None:
    head = _read_exactly(4)
    if head is None:
        return None
    return _read_exactly(_frame_len.unpack(head)[0])


def _read_exactly(n: int, _r=_read, _fd=REQUEST_FD) -> bytes | None:
    chunks = []
    while n:
        chunk = _r(_fd, min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= _len(chunk)
    return b"".join(chunks)


class _Program:
    """The program's side of the call protocol (see `_tester` for the other side).

    Everything here runs in the sandboxed child, next to the program: nothing it sends is trusted.
    The trusted side decodes each reply as plain data, so the worst a program that rewrites this
    class can do is answer with plain values of its own choosing, which it could have returned."""

    MUTABLE = (list, dict, set)

    def __init__(self, namespace: dict, prelude: Prelude | None) -> None:
        self.ns = namespace
        self.objects: dict[int, object] = {}
        self.numbers: dict[int, int] = {}  # id(object) -> its handle
        lookup = prelude.builtins if prelude is not None else {}
        self.list_node = self._class("ListNode", lookup, _plain.LinkedList)
        self.tree_node = self._class("TreeNode", lookup, _plain.BinaryTree)

    def _class(self, name: str, lookup: dict, fallback):
        value = self.ns.get(name, lookup.get(name))
        return value if _isinstance(value, _type) else fallback

    def _handle(self, value) -> int:
        number = self.numbers.get(_id(value))
        if number is None:
            number = _len(self.objects) + 1
            self.objects[number] = value
            self.numbers[_id(value)] = number
        return number

    def _handle_of(self, value):
        return self.numbers.get(_id(value))

    def _encode(self, value) -> bytes:
        """Plain data, where objects the tests already hold travel as their handles."""
        return _encode(value, self._handle_of)

    def _decode(self, data: bytes):
        return _plain.decode(data, self.list_node, self.tree_node, self._object)

    def _object(self, number: int):
        try:
            return self.objects[number]
        except KeyError:
            raise _plain.MalformedData(f"no object {number} (the program restarted?)") from None

    def serve(self) -> None:
        while True:
            frame = _receive()
            if frame is None:
                return
            try:
                request = _plain.decode(frame)
                reply = self.answer(request)
            except _BaseException as exc:
                reply = ("error", f"bad request: {_describe(exc)}")
            try:
                data = _encode(reply)
            except _BaseException as exc:
                data = _encode(("notplain", f"reply is not plain data: {_describe(exc)}"))
            _send(data)

    def answer(self, request: tuple):
        kind = request[0]
        if kind == "names":
            return ("names", {name: self.describe(name) for name in request[1] if name in self.ns})
        if kind == "getattr":
            try:
                value = _getattr(self._object(request[1]), request[2])
            except _BaseException as exc:
                return self._raised(exc)
            if _callable(value) and not _isinstance(value, _type):
                return ("callable",)
            return self._value(value)
        if kind == "setattr":
            try:
                setattr(self._object(request[1]), request[2], self._decode(request[3]))
            except _BaseException as exc:
                return self._raised(exc)
            return ("ok", _encode(None))
        if kind == "call":
            return self.call(request[1], request[2], request[3])
        return ("error", f"unknown request {kind!r}")

    def describe(self, name: str) -> tuple:
        value = self.ns[name]
        if _type(value) is _ModuleType:
            return ("module", _str(value.__name__))
        if not _callable(value):
            return self._value(value)
        return ("class",) if _isinstance(value, _type) else ("function",)

    def call(self, target: tuple, raw_args: tuple, raw_kwargs: dict):
        try:
            if target[0] == "name":
                func = self.ns[target[1]]
            else:
                func = _getattr(self._object(target[1]), target[2])
            args = [self._decode(a) for a in raw_args]
            kwargs = {k: self._decode(v) for k, v in raw_kwargs.items()}
        except _BaseException as exc:
            return ("error", f"cannot make the call: {_describe(exc)}")
        try:
            result = func(*args, **kwargs)
        except _BaseException as exc:  # SystemExit included: a call that exits returned nothing
            return self._raised(exc)
        if _isinstance(func, _type):
            return ("object", self._handle(result))
        reply = self._result(result, "result")
        if reply[0] != "ok":
            return reply
        changed = []
        for key, value, raw in [*zip(range(_len(args)), args, raw_args),
                                *((k, kwargs[k], raw_kwargs[k]) for k in kwargs)]:
            if _type(value) in self.MUTABLE or _type(value) is self.list_node or _type(value) is self.tree_node:
                try:
                    now = self._encode(value)
                except _BaseException as exc:
                    why = _str(exc) if _isinstance(exc, _NotPlain) else _describe(exc)
                    return ("notplain", f"argument {key!r} is not plain data after the call: {why}")
                if now != raw:
                    changed.append((key, now))
        return ("ok", reply[1], tuple(changed))

    def _value(self, value) -> tuple:
        """A global or attribute: plain data, else a handle (an object the tests may use but never
        compare: only plain data is compared)."""
        try:
            return ("ok", self._encode(value))
        except _NotPlain:
            return ("object", self._handle(value))
        except _BaseException as exc:
            return self._raised(exc)

    def _result(self, value, what: str) -> tuple:
        try:
            return ("ok", _encode(value))
        except _NotPlain as exc:
            return ("notplain", f"{what} is not plain data: {_str(exc)}")
        except _BaseException as exc:
            return ("notplain", f"{what} is not plain data: {_describe(exc)}")

    @staticmethod
    def _raised(exc: BaseException) -> tuple:
        name = _type(exc).__name__
        try:
            message = _str(exc)
        except _BaseException:
            message = ""
        return ("raise", name if _type(name) is _str else "Exception", message[:_INFO_CHARS])


def serve_program(job: dict, prelude: Prelude | None) -> None:
    """The program child of a functional job: run the module code, report, then answer calls."""
    module_name = job.get("module") or "__main__"
    namespace = {"__name__": module_name, "__builtins__": prelude.builtins if prelude is not None else builtins}
    if module_name != "__main__":
        module = _ModuleType(module_name)
        namespace = module.__dict__
        namespace["__builtins__"] = prelude.builtins if prelude is not None else builtins
        sys.modules[module_name] = module
    try:
        reason = _start_program(job["program"], namespace)
    except _BaseException as exc:
        reason = f"program error: {_describe(exc)}"
    _send(_encode(("ready", reason)))
    if not reason:
        _Program(namespace, prelude).serve()
    _exit(0)


def _start_program(text: str, namespace: dict) -> str:
    """Compile and run the module-level code; "" when it ran, else why not."""
    code, reason = _compile_solution(text)
    if code is None:
        return reason
    try:
        _exec(code, namespace)
    except _SystemExit as exc:
        try:
            status = exc.code if exc.code is None or _isinstance(exc.code, int) else "text"
        except _BaseException:
            status = "?"
        return f"program exited before the tests (SystemExit({status}))"
    except _BaseException as exc:
        return f"program error: {_describe(exc)}"
    return ""


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
