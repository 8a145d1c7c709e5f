"""mdrl.sandbox: per-case results for every test format, limits, resume after crashes, the pool.

Hostile programs (fork storms, network, reward hacks) are in test_sandbox_hostile.py.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from mdrl.sandbox import (
    AssertTests,
    MalformedTestsError,
    PytestTests,
    Sandbox,
    SandboxConfig,
    StdioTests,
    _seccomp,
    functional_tests,
    humaneval_tests,
    mbpp_tests,
)
from mdrl.sandbox._proto import RecordParser, normalize_output, pack_record, same_output

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox needs Linux")

CONFIG = SandboxConfig(workers=2, test_timeout_s=2.0, test_wall_timeout_s=4.0, run_timeout_s=15.0,
                       memory_mb=1024, address_space_mb=2048, uid_base=63100)


@pytest.fixture(scope="module")
def box():
    with Sandbox(CONFIG) as sandbox:
        yield sandbox


ADD = "def add(a, b):\n    return a + b\n"
SUM_STDIN = "a, b = map(int, input().split())\nprint(a + b)\n"


def test_required_layers_work_here(box):
    assert box.layers["limits"][0], box.layers
    assert box.layers["seccomp"][0], box.layers
    assert set(box.layers) == {"limits", "seccomp", "namespaces", "cgroups"}


# --- assert-style tests: each executed assert is one case ---------------------------------------

@pytest.mark.parametrize("program,tests,passed,total,reason", [
    (ADD, mbpp_tests(["assert add(1, 2) == 3", "assert add(2, 2) == 4"]), 2, 2, "ok"),
    (ADD, mbpp_tests(["assert add(1, 2) == 3", "assert add(2, 2) == 5", "assert add(0, 0) == 0"]), 2, 3,
     "test 2 failed: AssertionError"),
    ("def add(a, b):\n    return a / 0\n", mbpp_tests(["assert add(1, 2) == 3"]), 0, 1,
     "test 1 failed: ZeroDivisionError: division by zero"),
    # an assert in a loop is a case per iteration; `assert True` is not a case
    (ADD, AssertTests("for i in range(4):\n    assert add(i, 1) == i + 1 if i != 2 else add(i, 1) == 0\n"
                      "assert True\n"), 3, 4, "test 3 failed: AssertionError"),
    # HumanEval: check(candidate) called on the entry point
    (ADD, humaneval_tests("def check(candidate):\n    assert candidate(1, 1) == 2\n    assert candidate(-1, 1) == 0\n",
                          "add"), 2, 2, "ok"),
    # the study's LeetCode rows run under LeetCodeDataset's prelude (List, Counter, SortedList, inf)
    ("class Solution:\n    def f(self, nums: List[int]) -> int:\n        s = SortedList(nums)\n"
     "        return s[0] + Counter(nums).most_common(1)[0][1] + (inf > 10)\n",
     functional_tests("def check(candidate):\n    assert candidate([3, 1, 1]) == 4\n\n\ncheck(Solution().f)"), 1, 1, "ok"),
    # a program whose definitions fail leaves every case failed
    ("def add(a, b):\n    return a + b\nraise ValueError('boom')\n", mbpp_tests(["assert add(1, 2) == 3"]), 0, 1,
     "program error: ValueError: boom"),
    ("def add(a, b) return a + b\n", mbpp_tests(["assert add(1, 2) == 3"]), 0, 1, "syntax error"),
])
def test_assert_cases(box, program, tests, passed, total, reason):
    result = box.run(program, tests)
    assert (result.passed, result.total, result.reason) == (passed, total, reason)
    assert result.fraction == pytest.approx(passed / total)


def test_leetcode_list_and_tree_helpers(box):
    program = ("class Solution:\n    def reverse(self, head):\n        prev = None\n        while head:\n"
               "            head.next, prev, head = prev, head, head.next\n        return prev\n"
               "    def depth(self, root):\n        return 0 if not root else 1 + max(self.depth(root.left), "
               "self.depth(root.right))\n")
    tests = functional_tests(
        "def check(candidate):\n    assert is_same_list(candidate(list_node([1, 2, 3])), list_node([3, 2, 1]))\n"
        "    assert Solution().depth(tree_node([3, 9, 20, None, None, 15, 7])) == 3\n\n\ncheck(Solution().reverse)")
    assert box.run(program, tests).all_passed


def test_tests_use_the_real_helpers_and_modules(box):
    """A program that swaps the prelude's comparison helper or math.isclose gains nothing."""
    program = ("import math\nmath.isclose = lambda *a, **k: True\nis_same_list = lambda a, b: True\n"
               "class Solution:\n    def f(self, head):\n        return head\n    def g(self, x):\n        return 0.0\n")
    tests = functional_tests(
        "import math\n\ndef check(candidate):\n    assert is_same_list(candidate(list_node([1, 2])), list_node([2, 1]))\n"
        "    assert math.isclose(Solution().g(1), 1.0)\n\n\ncheck(Solution().f)")
    result = box.run(program, tests)
    assert result.passed == 0 and result.total == 2


def test_prelude_names_patched_by_the_program_are_put_back(box):
    """LeetCode programs see the prelude through their __builtins__ mapping; patching it is undone."""
    program = ("__builtins__['abs'] = lambda x: 0\n__builtins__['is_same_list'] = lambda a, b: True\n"
               "class Solution:\n    def f(self, x):\n        return -1.0\n")
    tests = functional_tests("def check(candidate):\n    assert abs(candidate(1) - 2.0) < 1e-9\n"
                             "    assert is_same_list(list_node([1]), list_node([2]))\n\n\ncheck(Solution().f)")
    result = box.run(program, tests)
    assert result.total == 2 and result.passed == 0, result


def test_module_level_recursion_limit_is_kept_for_the_tests(box):
    program = ("import sys\nsys.setrecursionlimit(20000)\n"
               "def depth(n):\n    return 0 if n == 0 else 1 + depth(n - 1)\n")
    assert box.run(program, mbpp_tests(["assert depth(5000) == 5000"])).all_passed


def test_builtins_patched_by_the_candidate_are_put_back_between_cases(box):
    """The first call patches `abs`, hoping the later float checks pass whatever it returns."""
    program = ("import builtins\ndef area(r):\n    builtins.abs = lambda x: 0\n"
               "    return 3.0 if r == 1 else -1.0\n")
    tests = mbpp_tests(["assert abs(area(1) - 3.0) < 1e-6", "assert abs(area(2) - 12.0) < 1e-6",
                        "assert abs(area(3) - 27.0) < 1e-6"])
    result = box.run(program, tests)
    assert [c.passed for c in result.cases] == [True, False, False]


def test_crash_in_one_case_does_not_sink_the_rest(box):
    program = "import os\ndef f(x):\n    if x == 2:\n        os._exit(0)\n    return x * 2\n"
    tests = mbpp_tests([f"assert f({i}) == {2 * i}" for i in range(1, 5)])
    result = box.run(program, tests)
    assert [c.passed for c in result.cases] == [True, False, True, True]
    assert result.total == 4 and result.reason.startswith("test 2 failed")


def test_timeout_in_one_case(box):
    program = "def f(x):\n    while x == 2:\n        pass\n    return x\n"
    result = box.run(program, mbpp_tests(["assert f(1) == 1", "assert f(2) == 2", "assert f(3) == 3"]),
                     test_timeout_s=0.5)
    assert result.status == "timeout" and result.reason == "timeout"
    assert result.passed == 1 and result.total == 3


def test_malformed_tests_raise(box):
    with pytest.raises(MalformedTestsError):
        box.run(ADD, AssertTests("assert add(1, 2) == 3 +"))
    with pytest.raises(MalformedTestsError):
        box.run(ADD, AssertTests("x = 1\n"))
    with pytest.raises(MalformedTestsError):
        StdioTests(("1",), ("1", "2"))


# --- stdin/stdout: one case per input -----------------------------------------------------------

@pytest.mark.parametrize("program,inputs,outputs,passed", [
    (SUM_STDIN, ("1 2\n", "3 4\n"), ("3\n", "7\n"), 2),
    (SUM_STDIN, ("1 2\n", "3 4\n"), ("3", "8"), 1),
    # trailing spaces per line and blank lines at either end do not matter; inner spacing does
    ("print('a  ')\nprint('b')\nprint()\n", ("",), ("\na\nb\n\n",), 1),
    ("print('a b')\n", ("",), ("a  b",), 0),
    # the ways programs read stdin and end
    ("import sys\nprint(sum(map(int, open(0).read().split())))\n", ("1 2 3\n",), ("6",), 1),
    ("import sys\ndata = sys.stdin.buffer.read().split()\nsys.stdout.write(str(len(data)) + '\\n')\n",
     ("a b c\n",), ("3",), 1),
    ("import sys\nprint(input())\nsys.exit(0)\n", ("x\n",), ("x",), 1),
    ("import sys\nprint(input())\nsys.exit(1)\n", ("x\n",), ("x",), 0),
    ("import os, sys\nprint(input())\nsys.stdout.flush()\nos._exit(0)\n", ("x\n",), ("x",), 1),
    ("import atexit, io, sys\nbuf = io.StringIO()\nsys.stdout = buf\nprint(input())\n"
     "atexit.register(lambda: sys.__stdout__.write(buf.getvalue()))\n", ("x\n",), ("x",), 1),
    ("import sys, threading\nsys.setrecursionlimit(10 ** 6)\nthreading.stack_size(1 << 26)\n"
     "def depth(n):\n    return 0 if n == 0 else 1 + depth(n - 1)\n"
     "def main():\n    print(depth(int(input())))\nthreading.Thread(target=main).start()\n", ("50000\n",), ("50000",), 1),
    ("x = int(input())\nprint(10 // x)\n", ("2\n", "0\n", "5\n"), ("5", "0", "2"), 2),
])
def test_stdio_cases(box, program, inputs, outputs, passed):
    result = box.run(program, StdioTests(inputs, outputs))
    assert (result.passed, result.total) == (passed, len(inputs)), result


def test_stdio_state_does_not_leak_between_cases(box):
    program = ("import builtins, sys\nprint(getattr(builtins, 'seen', 0), sys.getrecursionlimit() < 10 ** 5)\n"
               "builtins.seen = 1\nsys.setrecursionlimit(10 ** 6)\n")
    result = box.run(program, StdioTests(("", ""), ("0 True", "0 True")))
    assert result.all_passed, result


def test_stdio_crash_resumes_with_next_input(box):
    program = "import os, signal\nx = int(input())\nif x == 2:\n    os.kill(os.getpid(), signal.SIGKILL)\nprint(x)\n"
    result = box.run(program, StdioTests(("1", "2", "3"), ("1", "2", "3")))
    assert [c.passed for c in result.cases] == [True, False, True]


def test_large_output_travels_as_digest(box):
    program = "n = int(input())\nprint('\\n'.join(str(i) for i in range(n)))\n"
    expected = "\n".join(str(i) for i in range(100_000))
    result = box.run(program, StdioTests(("100000", "100000"), (expected, expected + "\n1")))
    assert [c.passed for c in result.cases] == [True, False]


@pytest.mark.parametrize("raw,normalized", [
    ("3\n", "3"), ("3  \n4\t\n\n", "3\n4"), ("\n\n  3\n", "3"), ("a  b\r\n", "a  b"), ("", ""),
])
def test_normalize_output(raw, normalized):
    assert normalize_output(raw) == normalized
    assert same_output(normalize_output(raw), raw + "\n  ")


# --- pytest files -------------------------------------------------------------------------------

def test_pytest_file(box):
    tests = PytestTests(
        "import pytest\nfrom solution import add\n\n"
        "def test_small():\n    assert add(1, 2) == 3\n\n"
        "@pytest.mark.parametrize('a,b,c', [(1, 1, 2), (2, 2, 5), (0, 0, 0)])\n"
        "def test_param(a, b, c):\n    assert add(a, b) == c\n\n"
        "def test_needs_fixture(tmp_path):\n    assert True\n\n"
        "class TestAdd:\n    def test_neg(self):\n        assert add(-1, 1) == 0\n")
    result = box.run(ADD, tests)
    assert [c.passed for c in result.cases] == [True, True, False, True, False, True]
    assert "unsupported fixture 'tmp_path'" in result.cases[4].reason


# --- isolation as seen from inside ----------------------------------------------------------------

def test_limits_inside_the_child(box):
    program = ("import os, resource\n"
               "def probe():\n"
               "    return (os.getuid(), resource.getrlimit(resource.RLIMIT_NPROC)[0],\n"
               "            resource.getrlimit(resource.RLIMIT_AS)[0] >> 20, resource.getrlimit(resource.RLIMIT_CORE)[0])\n")
    uid_check = "assert probe()[0] >= 63100 and probe()[0] < 63102" if _is_root() else "assert probe()[0] != 0"
    tests = mbpp_tests([uid_check, "assert probe()[1] == 64", "assert probe()[2] == 2048", "assert probe()[3] == 0"])
    result = box.run(program, tests)
    assert result.all_passed, result


def test_private_tmp_is_emptied_between_runs(box):
    if not box.layers["namespaces"][0]:
        pytest.skip("no namespace layer here")
    writer = "open('/tmp/left-behind', 'w').write('x')\ndef f():\n    return 1\n"
    reader = "import os\ndef f():\n    return os.listdir('/tmp')\n"
    for _ in range(2 * box.workers):  # whichever server runs the reader, it ran a writer before
        assert box.run(writer, mbpp_tests(["assert f() == 1"])).all_passed
    assert box.run(reader, mbpp_tests(["assert f() == []"])).all_passed


def test_seccomp_numbers_match_libseccomp():
    ok, why = _seccomp.supported()
    if not ok:
        pytest.skip(why)
    name = ctypes.util.find_library("seccomp")
    if name is None:
        pytest.skip("libseccomp not installed")
    lib = ctypes.CDLL(name)
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    for syscall, number in _seccomp.X86_64.items():
        assert lib.seccomp_syscall_resolve_name(syscall.encode()) == number, syscall


def test_record_parser_ignores_bytes_without_the_secret():
    parser = RecordParser(b"S" * 16)
    forged = pack_record(b"X" * 16, b"C", b"fake")
    real = pack_record(b"S" * 16, b"D", b"\x02\x00\x00\x00")
    records = parser.feed(b"junk" + forged + real[:10]) + parser.feed(real[10:])
    assert records == [(b"D", b"\x02\x00\x00\x00")]


# --- the pool -----------------------------------------------------------------------------------

def test_thread_safe_and_ordered(box):
    programs = [f"def f():\n    return {i}\n" for i in range(24)]
    tests = [mbpp_tests([f"assert f() == {i if i % 3 else -1}"]) for i in range(24)]
    with ThreadPoolExecutor(8) as pool:
        threaded = list(pool.map(lambda pt: box.run(*pt).all_passed, zip(programs, tests)))
    batched = [r.all_passed for r in box.run_many(zip(programs, tests))]
    assert threaded == batched == [bool(i % 3) for i in range(24)]


def test_run_many_reports_bad_tests_in_place(box):
    results = box.run_many([(ADD, mbpp_tests(["assert add(1, 1) == 2"])), (ADD, AssertTests("x = (")),
                            (ADD, mbpp_tests(["assert add(1, 1) == 3"]))])
    assert [r.status for r in results] == ["ok", "sandbox error", "ok"]
    assert [r.all_passed for r in results] == [True, False, False]


def test_crashed_server_is_restarted_without_losing_the_job(box):
    before = box.restarts()
    for server in box._servers:  # every server dies between jobs
        server.proc.kill()
        server.proc.wait()
    results = box.run_many([(ADD, mbpp_tests(["assert add(2, 2) == 4"]))] * 4)
    assert all(r.all_passed for r in results)
    assert box.restarts() >= before + 1


def test_concurrent_callers_during_restart(box):
    errors = []

    def call():
        try:
            assert box.run(ADD, mbpp_tests(["assert add(1, 2) == 3"])).all_passed
        except AssertionError as exc:  # collected: an assert in a thread would vanish
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(6)]
    box._servers[0].proc.kill()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_config_validation():
    with pytest.raises(ValueError):
        SandboxConfig(workers=-1)
    with pytest.raises(ValueError):
        SandboxConfig(test_timeout_s=0)
    assert SandboxConfig.from_env({"MDRL_SANDBOX_WORKERS": "3", "MDRL_SANDBOX_ALLOW_INSECURE": "1"}) == \
        SandboxConfig(workers=3, allow_insecure=True)


def _is_root() -> bool:
    import os
    return os.geteuid() == 0
