"""Untrusted code execution for code rewards: a pool of fork servers behind isolation layers.

    from mdrl.sandbox import Sandbox, functional_tests, StdioTests
    with Sandbox() as box:
        result = box.run(program, StdioTests(inputs=("1 2\\n",), outputs=("3\\n",)))
        result.fraction, result.reason

How it works: a small fork server (a separate `python -I` process, started inside bubblewrap when
that works, never a fork of the trainer) imports the modules programs commonly use once, then
forks one child per program. The child enters the sandbox (own session and process group, resource
limits, unprivileged uid, not dumpable, seccomp filter, fds closed), runs the program,
then runs the tests itself and writes each case's result, prefixed by a per-run secret, to a
private pipe. The server enforces CPU and wall-clock limits per test case and per program, kills the whole
process group, and sweeps any process left behind. A pool of such servers (one per core) serves
`run` / `run_many` from any thread; a crashed server is restarted and the job run again.

Layers (each probed in a throwaway child at start-up; one warning lists the missing ones; without
a and b the sandbox refuses to start unless `allow_insecure=True`):
  a. rlimits: address space, cpu, file size, open files, processes, core=0; then a per-server
     unprivileged uid (when started as root), so RLIMIT_NPROC applies and limits cannot be raised.
  b. seccomp (x86_64 only): no socket() of any family, no execve/execveat, ptrace, mount, unshare,
     setns, io_uring, bpf, keyctl, perf_event_open, process_vm_*, kill(-1); clone with namespace
     flags refused; foreign architectures and the x32 ABI killed. Without layer c it also refuses
     calls that create, remove or modify files.
  c. namespaces via bubblewrap: no network (only loopback, in its own namespace), read-only
     mounts of just /usr, /etc, the interpreter and sys.path (no /home, /root, /tmp, /work...),
     a private size-limited /tmp emptied after each program, own pid/ipc/uts namespaces.
  d. cgroups (v2, or v1 memory + pids): a real memory cap and a process cap per fork server; its
     children are born inside (no per-child migration), and the OOM killer takes the child first.

Time limits: each test case (and the program's start-up) gets `test_timeout_s` of CPU time and
`test_wall_timeout_s` of wall time; the whole program gets `run_timeout_s` of wall time. CPU time
keeps a loaded machine from failing correct programs; the wall limits catch sleeping ones. A child
that dies in the middle of a case (os._exit, a signal, the OOM killer) fails that case and a fresh
child carries on with the next one; a timeout fails the remaining cases.

What this is NOT (honestly): not a true security sandbox against a determined attacker.
  - Programs run in CPython, in the same process as the test harness. A program that targets
    mdrl's harness specifically (walking stack frames or the garbage collector to find the
    per-run secret or the test functions) can forge results. The secret defeats generic reward
    hacks (exit codes, SystemExit, os._exit, replacing AssertionError or builtins, printing fake
    success, closing stdout, killing the parent), not an adversary who reads this source.
  - The kernel is shared: a kernel exploit reachable through the allowed syscalls escapes.
  - World-readable files under the mounted system directories can be read.
  - Without bubblewrap (layer c) the program sees the host file system (read-only by filter,
    files still readable by its uid), a program running as the caller's uid (no root to drop
    from) could signal the caller's other processes, and an interpreter installed under a
    private directory (e.g. pyenv in /root) cannot import modules the server did not preload.
  - Without cgroups (layer d) memory is bounded by RLIMIT_AS only (virtual, not resident).
  - A result that only pretends to be equal (an object whose __eq__ always returns True) passes
    an `assert candidate(x) == y`; results are not converted to plain data first.
  - Pure-Python classes of the standard library (collections.Counter, ...) can be monkeypatched
    by a program; only module namespaces and builtins are put back before and between tests.
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
