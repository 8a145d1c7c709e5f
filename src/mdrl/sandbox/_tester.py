"""The trusted side of a functional job: runs the test code, calling the program through a pipe.

Standalone on purpose (the fork server imports it by path). The fork server forks this process
before it forks the program, hands it the tests in a memfd the server itself never reads, and
relays its requests to the program child and the replies back. Nothing model-written ever runs
here: the program's functions and objects are represented by proxies, every call sends plain
data to the program and decodes the reply strictly (`_plain`), and every comparison, expected
value, helper and module the tests use is this process's own.
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import marshal
import os
import resource
import sys
import types

import _plain
import _proto

MAX_CASES = 100_000
_INFO_CHARS = 300


class _Abort(BaseException):
    """Stops the test stage (timeout, too many cases, the program is gone)."""


class ProgramError(Exception):
    """A call to the program failed on the program's side; the message is the case's reason."""


class _Link:
    """Requests to the program through the fork server, which relays them and times the program."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd, self.write_fd = read_fd, write_fd

    def send(self, message: tuple) -> None:
        _proto.write_frame(self.write_fd, message)

    def request(self, request: tuple) -> tuple:
        self.send(("req", _plain.encode(request)))
        message = _proto.read_frame(self.read_fd)
        if message is None:
            raise _Abort("harness link closed")
        if message[0] == "err":
            kind, reason = message[1], message[2]
            if kind == "timeout":
                raise _Abort("timeout")
            raise ProgramError(reason)
        try:
            reply = _plain.decode(message[1])
        except _plain.MalformedData as exc:
            raise ProgramError(f"malformed reply from the program: {exc}") from None
        if type(reply) is not tuple or not reply or type(reply[0]) is not str:
            raise ProgramError("malformed reply from the program")
        return reply


class Remote:
    """The program's functions, objects and module, as the tests see them."""

    def __init__(self, link: _Link, list_node, tree_node) -> None:
        self.link = link
        self.list_node, self.tree_node = list_node, tree_node
        remote = self

        class RemoteFunction:
            """A function or class of the program: calling it calls it in the program."""

            __slots__ = ("_target", "__name__")

            def __init__(self, target: tuple, name: str) -> None:
                self._target, self.__name__ = target, name

            def __call__(self, *args, **kwargs):
                return remote.call(self._target, args, kwargs)

            def __repr__(self) -> str:
                return f"<program function {self.__name__}>"

        class RemoteObject:
            """An object that stays in the program (an instance of one of its classes)."""

            __slots__ = ("_number",)

            def __init__(self, number: int) -> None:
                self._number = number

            def __getattr__(self, name: str):
                if name.startswith("__"):
                    raise AttributeError(name)
                reply = remote.link.request(("getattr", self._number, name))
                if reply[0] == "callable":
                    return RemoteFunction(("attr", self._number, name), name)
                return remote.outcome(reply, handles=True)

            def __setattr__(self, name: str, value) -> None:
                if name == "_number":
                    object.__setattr__(self, name, value)
                    return
                remote.outcome(remote.link.request(("setattr", self._number, name, remote.encode(value))))

            def __bool__(self) -> bool:
                raise ProgramError("the truth value of a program object is not plain data")

            def __repr__(self) -> str:
                return f"<program object {self._number}>"

        self.RemoteFunction, self.RemoteObject = RemoteFunction, RemoteObject

    def _handle_of(self, value):
        return object.__getattribute__(value, "_number") if type(value) is self.RemoteObject else None

    def _decode(self, data, handles: bool = False):
        """Plain data from the program; program objects (handles) only where `handles` allows:
        never in a call's result, which the tests compare."""
        if type(data) is not bytes:
            raise ProgramError("malformed reply from the program")
        try:
            return _plain.decode(data, self.list_node, self.tree_node, self.RemoteObject if handles else None)
        except _plain.MalformedData as exc:
            raise ProgramError(f"malformed data from the program: {exc}") from None

    def encode(self, value) -> bytes:
        try:
            return _plain.encode(value, self._handle_of)
        except _plain.NotPlain as exc:
            raise TypeError(f"the tests pass something that is not plain data: {exc}") from None

    def call(self, target: tuple, args: tuple, kwargs: dict):
        raw_args = tuple(self.encode(a) for a in args)
        raw_kwargs = {k: self.encode(v) for k, v in kwargs.items()}
        reply = self.link.request(("call", target, raw_args, raw_kwargs))
        if reply[0] == "object":
            return self.outcome(reply, handles=True)  # a class was called: its instance stays there
        result = self.outcome(reply)
        if len(reply) == 3 and type(reply[2]) is tuple:
            for change in reply[2]:
                self._update(args, kwargs, change)
        return result

    def outcome(self, reply: tuple, handles: bool = False):
        kind = reply[0]
        if kind == "ok" and len(reply) >= 2:
            return self._decode(reply[1], handles)
        if kind == "object" and handles and len(reply) == 2 and type(reply[1]) is int:
            return self.RemoteObject(reply[1])
        if kind == "raise" and len(reply) == 3 and type(reply[1]) is str and type(reply[2]) is str:
            raise _exception(reply[1], reply[2])
        if kind in ("notplain", "error") and len(reply) == 2 and type(reply[1]) is str:
            raise ProgramError(reply[1][:_INFO_CHARS])
        raise ProgramError("malformed reply from the program")

    def _update(self, args: tuple, kwargs: dict, change) -> None:
        """An argument the program changed in place: change the tests' object the same way."""
        if type(change) is not tuple or len(change) != 2:
            raise ProgramError("malformed reply from the program")
        key, raw = change
        if type(key) is int and 0 <= key < len(args):
            old = args[key]
        elif type(key) is str and key in kwargs:
            old = kwargs[key]
        else:
            raise ProgramError("malformed reply from the program")
        new = self._decode(raw, handles=True)
        kind = type(old)
        if kind is not type(new):
            raise ProgramError(f"argument {key!r} changed type in the program")
        if kind is list:
            old[:] = new
        elif kind is dict or kind is set:
            old.clear()
            old.update(new)
        elif kind is self.list_node:
            old.val, old.next = new.val, new.next
        elif kind is self.tree_node:
            old.val, old.left, old.right = new.val, new.left, new.right
        else:
            raise ProgramError(f"argument {key!r} cannot change in place")

    def value(self, name: str, descriptor):
        """What a name of the program is for the tests, or None when the tests cannot use it."""
        if type(descriptor) is not tuple or not descriptor or type(descriptor[0]) is not str:
            return None
        kind = descriptor[0]
        if kind in ("ok", "object"):
            try:
                return self.outcome(descriptor, handles=True)
            except ProgramError:
                return None
        if kind == "module" and len(descriptor) == 2 and descriptor[1] == name:
            return _trusted_module(name)  # `import heapq`: the tests' own heapq (never one the program names)
        if kind in ("function", "class"):
            # Always the program's, imported or not: a program that names a trusted object as its
            # function (`__module__ = "unittest.mock"`) must not have the tests run that object.
            return self.RemoteFunction(("name", name), name)
        return None

    def names(self, wanted: list[str], modules: tuple = ()) -> dict:
        """The program's values of `wanted` names. A name in `modules` is this process's own module
        unless the program defines a function or class of that name."""
        reply = self.link.request(("names", tuple(wanted)))
        if reply[0] != "names" or len(reply) != 2 or type(reply[1]) is not dict:
            raise ProgramError("malformed reply from the program")
        out = {}
        for name in modules:
            module = _trusted_module(name)
            if module is not None:
                out[name] = module
        for name, descriptor in reply[1].items():
            if type(name) is not str or name not in wanted:
                continue
            if name in modules and descriptor not in (("function",), ("class",)):
                continue
            value = self.value(name, descriptor)
            if value is not None:
                out[name] = value
        return out


def _exception(name: str, message: str) -> BaseException:
    """The program's exception, as an exception of the tests' own built-in class of that name
    (tests catch ValueError and the like); anything else becomes a ProgramError."""
    cls = getattr(builtins, name, None)
    if (isinstance(cls, type) and issubclass(cls, Exception)
            and not issubclass(cls, (StopIteration, StopAsyncIteration))):
        try:
            return cls(message) if message else cls()
        except Exception:  # noqa: BLE001 - exception classes with other signatures
            pass
    return ProgramError(f"{name}: {message}" if message else name)


def _importable(module: str) -> bool:
    top = module.partition(".")[0]
    return module in sys.modules or top in sys.stdlib_module_names


def _trusted_module(name) -> types.ModuleType | None:
    if type(name) is not str or not _importable(name):
        return None
    try:
        return importlib.import_module(name)
    except Exception:  # noqa: BLE001 - a module this process cannot import
        return None


# --- cases -------------------------------------------------------------------------------------

def _describe(exc: BaseException) -> str:
    if isinstance(exc, ProgramError):
        return str(exc)[:_INFO_CHARS]
    name = type(exc).__name__
    try:
        msg = str(exc)
    except Exception:  # noqa: BLE001
        msg = ""
    return (f"{name}: {msg}" if msg else name)[:_INFO_CHARS]


class _CaseHooks:
    """The functions the rewritten asserts call; each case's verdict goes to the fork server."""

    def __init__(self, link: _Link) -> None:
        self.count = 0

        def enter():
            i = self.count
            self.count = i + 1
            if i >= MAX_CASES:
                raise _Abort(f"more than {MAX_CASES} test cases")
            return True

        def check(value):
            try:
                ok = bool(value)
            except Exception as exc:  # noqa: BLE001 - a value without a truth value fails its case
                fail(exc)
                return
            link.send(("case", self.count - 1, "P" if ok else "F", "" if ok else "AssertionError"))

        def fail(exc):
            if isinstance(exc, _Abort):
                raise exc
            link.send(("case", self.count - 1, "F", _describe(exc)))

        self.enter, self.check, self.fail = enter, check, fail


def run(tests_fd: int, read_fd: int, write_fd: int, limits: dict, prelude) -> None:
    """The test child's whole life; always ends with a "done" record and `os._exit`."""
    link = _Link(read_fd, write_fd)
    reason = ""
    hooks = _CaseHooks(link)
    try:
        _set_limits(limits)
        with os.fdopen(tests_fd, "rb") as f:
            spec = marshal.loads(f.read())
        lookup = prelude.builtins if prelude is not None else builtins.__dict__
        list_node = lookup.get("ListNode", _plain.LinkedList)
        tree_node = lookup.get("TreeNode", _plain.BinaryTree)
        remote = Remote(link, list_node, tree_node)
        code = marshal.loads(spec["tests"])
        if spec["mode"] == "pytest":
            reason = _run_pytest(code, spec.get("module", "solution"), remote, hooks, lookup)
        else:
            reason = _run_asserts(code, spec["names"], spec["modules"], remote, hooks, prelude, lookup)
    except _Abort as exc:
        reason = str(exc.args[0])
    except BaseException as exc:  # noqa: BLE001 - the harness must report, never pass
        reason = f"harness error: {_describe(exc)}"
    try:
        link.send(("done", hooks.count, reason))
    finally:
        os._exit(0)


def _set_limits(limits: dict) -> None:
    mb = 1 << 20
    resource.setrlimit(resource.RLIMIT_AS, (limits["address_space_mb"] * mb,) * 2)
    resource.setrlimit(resource.RLIMIT_CPU, (int(limits["cpu_s"]),) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _namespace(hooks: _CaseHooks, lookup: dict) -> dict:
    ns = {"__name__": "__main__", "__builtins__": lookup}
    ns["__mdrl_enter__"], ns["__mdrl_check__"], ns["__mdrl_fail__"] = hooks.enter, hooks.check, hooks.fail
    return ns


def _run_asserts(code, names: tuple, modules: tuple, remote: Remote, hooks: _CaseHooks, prelude,
                 lookup: dict) -> str:
    """`names`: what the program may provide, less the prelude's; `modules`: the standard-library
    module names among them (`formats.program_names`)."""
    ns = _namespace(hooks, lookup)
    wanted = [n for n in names if n not in lookup or n in builtins.__dict__]
    if wanted:
        ns.update(remote.names(wanted, modules))
    if prelude is not None:
        ns.update(prelude.helpers)
    try:
        exec(code, ns)
    except _Abort:
        raise
    except BaseException as exc:  # noqa: BLE001 - buggy test code ends the stage, reported
        return f"test code raised {_describe(exc)}"
    return ""


def _run_pytest(code, module_name: str, remote: Remote, hooks: _CaseHooks, lookup: dict) -> str:
    """A pytest-style file: every test function (and parametrized variant) is one case; the
    program is importable under `module_name`, its names fetched from the program on demand."""
    module = types.ModuleType(module_name)

    def module_getattr(name: str):
        found = remote.names([name]) if not name.startswith("__") else {}
        if name not in found:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        return found[name]

    module.__getattr__ = module_getattr  # type: ignore[attr-defined]
    sys.modules[module_name] = module
    ns = {"__name__": "test_" + module_name, "__builtins__": lookup}
    try:
        exec(code, ns)
        cases = _collect_pytest_cases(ns)
    except _Abort:
        raise
    except BaseException as exc:  # noqa: BLE001
        return f"test file raised {_describe(exc)}"
    for _label, func, kwargs in cases:
        hooks.enter()
        if type(func) is str:  # a fixture we do not provide
            hooks.fail(LookupError(func))
            continue
        try:
            func(**kwargs)
        except _Abort:
            raise
        except BaseException as exc:  # noqa: BLE001
            hooks.fail(exc)
        else:
            hooks.check(True)
    return ""


def _collect_pytest_cases(ns: dict) -> list:
    cases = []
    for name, obj in list(ns.items()):
        if name.startswith("test") and type(obj) is types.FunctionType:
            cases.extend(_expand(name, obj))
        elif name.startswith("Test") and isinstance(obj, type):
            instance = obj()
            for attr in sorted(vars(obj)):
                if attr.startswith("test") and callable(getattr(instance, attr)):
                    cases.extend(_expand(f"{name}.{attr}", getattr(instance, attr)))
    return cases


def _expand(label: str, func) -> list:
    """Parametrize marks become one case per parameter set; unknown fixtures fail the case."""
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
