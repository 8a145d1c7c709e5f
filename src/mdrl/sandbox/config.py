"""The sandbox's configuration: one frozen dataclass, each field documented once."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@dataclass(frozen=True)
class SandboxConfig:
    """Limits and layers of the code sandbox. Defaults suit the study's LeetCode/TACO/HumanEval/MBPP tests."""

    workers: int = field(
        default=0,
        metadata={"help": "Fork servers in the pool (each runs one program at a time); "
                          "0 = one per usable core."},
    )
    test_timeout_s: float = field(
        default=6.0,
        metadata={"help": "CPU seconds allowed for the program's start-up and for each test case. CPU "
                          "time, not wall time, so a loaded machine does not fail correct programs; the "
                          "slowest TACO references need ~2 s."},
    )
    test_wall_timeout_s: float = field(
        default=20.0,
        metadata={"help": "Wall-clock seconds allowed per test case (catches programs that sleep or block)."},
    )
    run_timeout_s: float = field(
        default=60.0,
        metadata={"help": "Wall-clock limit for one program and all its test cases."},
    )
    memory_mb: int = field(
        default=2048,
        metadata={"help": "Real memory cap per program (cgroup memory limit), where cgroups are writable."},
    )
    address_space_mb: int = field(
        default=4096,
        metadata={"help": "RLIMIT_AS per program: a larger allocation fails with MemoryError."},
    )
    max_processes: int = field(
        default=64,
        metadata={"help": "Processes and threads a program may run at once (RLIMIT_NPROC; cgroup pids.max)."},
    )
    max_open_files: int = field(default=256, metadata={"help": "RLIMIT_NOFILE per program."})
    max_output_bytes: int = field(
        default=32 << 20,
        metadata={"help": "Largest file or stdout a program may write (RLIMIT_FSIZE): "
                          "beyond it writes fail."},
    )
    tmp_size_mb: int = field(
        default=64,
        metadata={"help": "Size of the private /tmp (a tmpfs) when the namespace layer works."},
    )
    uid_base: int = field(
        default=61000,
        metadata={"help": "When run as root, programs of fork server i run as uid uid_base+i, a uid no "
                          "one else uses, so RLIMIT_NPROC counts only that server's processes."},
    )
    use_bwrap: bool = field(
        default=True,
        metadata={"help": "Run the fork servers inside bubblewrap (no network, read-only file system, "
                          "private /tmp, own pid namespace) when `bwrap` works here."},
    )
    use_seccomp: bool = field(default=True, metadata={"help": "Install the syscall filter in each program."})
    use_cgroups: bool = field(
        default=True,
        metadata={"help": "Put each server's programs in a cgroup with memory and pids caps when writable."},
    )
    allow_insecure: bool = field(
        default=False,
        metadata={"help": "Run even when the resource-limit or syscall-filter layer cannot work here. "
                          "Without them a program can exhaust the machine or open network connections."},
    )
    python: str = field(
        default="",
        metadata={"help": "Interpreter for the fork servers; empty = the current one (sys.executable)."},
    )

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ValueError("workers must be >= 0")
        for name in ("test_timeout_s", "test_wall_timeout_s", "run_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        for name in ("memory_mb", "address_space_mb", "max_processes", "max_open_files",
                     "max_output_bytes", "tmp_size_mb"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.max_open_files < 16:
            raise ValueError("max_open_files must be >= 16 (the interpreter needs a few)")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> SandboxConfig:
        """Defaults, overridden by MDRL_SANDBOX_<FIELD> environment variables (e.g.
        MDRL_SANDBOX_WORKERS=8, MDRL_SANDBOX_TEST_TIMEOUT_S=10, MDRL_SANDBOX_ALLOW_INSECURE=1)."""
        env = os.environ if environ is None else environ
        kwargs: dict = {}
        for f in fields(cls):
            raw = env.get(f"MDRL_SANDBOX_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            if f.type in ("bool", bool):
                kwargs[f.name] = raw.strip().lower() in ("1", "true", "yes", "on")
            elif f.type in ("int", int):
                kwargs[f.name] = int(raw)
            elif f.type in ("float", float):
                kwargs[f.name] = float(raw)
            else:
                kwargs[f.name] = raw
        return cls(**kwargs)

    @property
    def pool_size(self) -> int:
        return self.workers or usable_cores()

    def describe(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}
