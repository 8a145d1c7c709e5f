"""A classic-BPF seccomp filter built with ctypes: no libseccomp, no compiler.

Standalone on purpose (the fork server imports it by path, without the `mdrl` package).
Only x86_64 is supported: other architectures report the layer as unavailable rather than
guess syscall numbers we cannot test. Numbers come from <asm/unistd_64.h>; a test checks them
against libseccomp's resolver where that library is present.

Denied calls return an errno (so Python raises a clean PermissionError) instead of killing the
process; a foreign architecture or the x32 ABI kills the process, as those are never legitimate here.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct

AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000

# Classic BPF opcodes (linux/filter.h).
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06

SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000

# struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6];
_OFF_NR = 0
_OFF_ARCH = 4


def _arg_low(i: int) -> int:
    return 16 + 8 * i  # low 32 bits of args[i] on a little-endian machine


EPERM = 1
EACCES = 13
ENOSYS = 38

#: x86_64 syscall numbers used by the filter.
X86_64 = {
    "socket": 41, "connect": 42, "execve": 59, "execveat": 322, "ptrace": 101, "mount": 165,
    "umount2": 166, "unshare": 272, "setns": 308, "clone": 56, "clone3": 435,
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "pivot_root": 155,
    "chroot": 161, "keyctl": 250, "add_key": 248, "request_key": 249, "bpf": 321,
    "perf_event_open": 298, "userfaultfd": 323, "kexec_load": 246, "kexec_file_load": 320,
    "init_module": 175, "finit_module": 313, "delete_module": 176, "reboot": 169, "swapon": 167,
    "swapoff": 168, "acct": 163, "process_vm_readv": 310, "process_vm_writev": 311,
    "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
    "fspick": 433, "mount_setattr": 442, "ioctl": 16, "name_to_handle_at": 303,
    "open_by_handle_at": 304, "quotactl": 179, "syslog": 103, "vhangup": 153, "kcmp": 312,
    "fanotify_init": 300, "lookup_dcookie": 212, "uselib": 134, "iopl": 172, "ioperm": 173,
    "kill": 62, "tkill": 200, "tgkill": 234, "pidfd_send_signal": 424, "pidfd_getfd": 438,
    "open": 2, "openat": 257, "openat2": 437, "creat": 85, "mkdir": 83, "mkdirat": 258,
    "rename": 82, "renameat": 264, "renameat2": 316, "link": 86, "linkat": 265, "symlink": 88,
    "symlinkat": 266, "unlink": 87, "unlinkat": 263, "rmdir": 84, "chmod": 90, "fchmodat": 268,
    "chown": 92, "lchown": 94, "fchownat": 260, "truncate": 76, "mknod": 133, "mknodat": 259,
    "utime": 132, "utimes": 235, "utimensat": 280, "futimesat": 261, "setxattr": 188,
    "lsetxattr": 189, "removexattr": 197, "lremovexattr": 198,
    "shmget": 29, "shmat": 30, "shmctl": 31, "shmdt": 67, "semget": 64, "semop": 65, "semctl": 66,
    "semtimedop": 220, "msgget": 68, "msgsnd": 69, "msgrcv": 70, "msgctl": 71, "mq_open": 240,
    "mq_unlink": 241, "mq_timedsend": 242, "mq_timedreceive": 243, "mq_notify": 244, "mq_getsetattr": 245,
}

#: Always refused: network sockets, running other programs, debugging other processes, new
#: namespaces or mounts, System V IPC and message queues, io_uring (a second syscall interface the filter cannot see into), and
#: kernel-level knobs a sandboxed program never needs.
DENIED = (
    "execve", "execveat", "ptrace", "mount", "umount2", "unshare", "setns", "io_uring_setup",
    "io_uring_enter", "io_uring_register", "pivot_root", "chroot", "keyctl", "add_key", "request_key",
    "bpf", "perf_event_open", "userfaultfd", "kexec_load", "kexec_file_load", "init_module",
    "finit_module", "delete_module", "reboot", "swapon", "swapoff", "acct", "process_vm_readv",
    "process_vm_writev", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick",
    "mount_setattr", "name_to_handle_at", "open_by_handle_at", "quotactl", "syslog", "vhangup",
    "kcmp", "fanotify_init", "lookup_dcookie", "uselib", "iopl", "ioperm", "pidfd_getfd",
    "pidfd_send_signal",
    # System V IPC and POSIX message queues outlive the program that made them (and their memory
    # stays charged to the fork server's cgroup): no state may pass from one sample to the next.
    "shmget", "shmat", "shmctl", "shmdt", "semget", "semop", "semctl", "semtimedop", "msgget", "msgsnd",
    "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify",
    "mq_getsetattr",
)

#: Refused only when there is no private, read-only file system (the namespace layer is missing):
#: then these are the calls that could leave a file behind on the host.
FS_WRITE_CALLS = (
    "creat", "mkdir", "mkdirat", "rename", "renameat", "renameat2", "link", "linkat", "symlink",
    "symlinkat", "unlink", "unlinkat", "rmdir", "chmod", "fchmodat", "chown", "lchown", "fchownat",
    "truncate", "mknod", "mknodat", "utime", "utimes", "utimensat", "futimesat", "setxattr",
    "lsetxattr", "removexattr", "lremovexattr",
)

_CLONE_NAMESPACE_FLAGS = (0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000
                          | 0x20000000 | 0x40000000 | 0x00000080)  # NEWNS..NEWNET, NEWCGROUP, NEWTIME
_O_WRITE_FLAGS = 0o1 | 0o2 | 0o100 | 0o1000 | 0o2000  # O_WRONLY O_RDWR O_CREAT O_TRUNC O_APPEND
_TIOCSTI = 0x5412
_TIOCLINUX = 0x541C


def supported() -> tuple[bool, str]:
    """Whether this machine can run the filter at all (architecture and OS)."""
    if platform.system() != "Linux":
        return False, "not Linux"
    machine = platform.machine()
    if machine not in ("x86_64", "AMD64"):
        return False, f"seccomp filter has no syscall table for {machine}"
    return True, "ok"


class _Program:
    """A tiny assembler: instructions with symbolic jump targets, resolved at the end."""

    def __init__(self) -> None:
        self.ins: list[tuple[int, object, object, int]] = []
        self.labels: dict[str, int] = {}

    def stmt(self, code: int, k: int) -> None:
        self.ins.append((code, 0, 0, k))

    def jump(self, code: int, k: int, jt: object = 0, jf: object = 0) -> None:
        self.ins.append((code, jt, jf, k))

    def label(self, name: str) -> None:
        self.labels[name] = len(self.ins)

    def assemble(self) -> bytes:
        out = []
        for pos, (code, jt, jf, k) in enumerate(self.ins):
            jumps = self._offset(pos, jt), self._offset(pos, jf)
            out.append(struct.pack("<HBBI", code, *jumps, k & 0xFFFFFFFF))
        return b"".join(out)

    def _offset(self, pos: int, target: object) -> int:
        if isinstance(target, int):
            return target
        rel = self.labels[target] - pos - 1  # type: ignore[index]
        if not 0 <= rel <= 255:
            raise ValueError(f"BPF jump to {target} out of range ({rel})")
        return rel


def build_filter(deny_fs_writes: bool = False) -> bytes:
    """The filter program as raw `struct sock_filter` bytes."""
    table = X86_64
    p = _Program()
    p.stmt(_LD_W_ABS, _OFF_ARCH)
    p.jump(_JEQ_K, AUDIT_ARCH_X86_64, 0, "kill")
    p.stmt(_LD_W_ABS, _OFF_NR)
    p.jump(_JGE_K, X32_SYSCALL_BIT, "kill", 0)
    deny = list(DENIED) + (list(FS_WRITE_CALLS) if deny_fs_writes else [])
    for name in deny:
        p.jump(_JEQ_K, table[name], "eperm" if name not in FS_WRITE_CALLS else "eacces", 0)
    # socket(): every address family is refused (AF_UNIX too: nothing here needs it, and without
    # a network namespace an abstract unix socket reaches host services).
    p.jump(_JEQ_K, table["socket"], "eperm", 0)
    p.jump(_JEQ_K, table["clone3"], "enosys", 0)  # args are behind a pointer: make libc fall back to clone
    p.jump(_JEQ_K, table["clone"], "clone", 0)
    p.jump(_JEQ_K, table["kill"], "kill_arg0", 0)
    p.jump(_JEQ_K, table["tkill"], "kill_arg0", 0)
    p.jump(_JEQ_K, table["ioctl"], "ioctl", 0)
    if deny_fs_writes:
        p.jump(_JEQ_K, table["open"], "flags_arg1", 0)
        p.jump(_JEQ_K, table["openat"], "flags_arg2", 0)
        p.jump(_JEQ_K, table["openat2"], "enosys", 0)  # flags behind a pointer; libc falls back to openat
    p.stmt(_RET_K, SECCOMP_RET_ALLOW)

    p.label("clone")
    p.stmt(_LD_W_ABS, _arg_low(0))
    p.jump(_JSET_K, _CLONE_NAMESPACE_FLAGS, "eperm", "allow")
    p.label("kill_arg0")  # kill(-1, sig) would reach every process this uid can signal
    p.stmt(_LD_W_ABS, _arg_low(0))
    p.jump(_JEQ_K, 0xFFFFFFFF, "eperm", "allow")
    p.label("ioctl")  # TIOCSTI/TIOCLINUX push keystrokes into a terminal
    p.stmt(_LD_W_ABS, _arg_low(1))
    p.jump(_JEQ_K, _TIOCSTI, "eperm", 0)
    p.jump(_JEQ_K, _TIOCLINUX, "eperm", "allow")
    if deny_fs_writes:
        p.label("flags_arg1")
        p.stmt(_LD_W_ABS, _arg_low(1))
        p.jump(_JSET_K, _O_WRITE_FLAGS, "eacces", "allow")
        p.label("flags_arg2")
        p.stmt(_LD_W_ABS, _arg_low(2))
        p.jump(_JSET_K, _O_WRITE_FLAGS, "eacces", "allow")
    p.label("allow")
    p.stmt(_RET_K, SECCOMP_RET_ALLOW)
    p.label("eperm")
    p.stmt(_RET_K, SECCOMP_RET_ERRNO | EPERM)
    p.label("eacces")
    p.stmt(_RET_K, SECCOMP_RET_ERRNO | EACCES)
    p.label("enosys")
    p.stmt(_RET_K, SECCOMP_RET_ERRNO | ENOSYS)
    p.label("kill")
    p.stmt(_RET_K, SECCOMP_RET_KILL_PROCESS)
    return p.assemble()


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
SECCOMP_MODE_FILTER = 2

_libc = None


def libc():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        _libc.prctl.restype = ctypes.c_int
    return _libc


def prctl(option: int, arg2: int = 0, arg3: int = 0) -> None:
    if libc().prctl(option, arg2, arg3, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}): {os.strerror(err)}")


class Installer:
    """Holds a prepared filter so that installing it in a fresh child is two syscalls."""

    def __init__(self, program: bytes) -> None:
        self._buf = ctypes.create_string_buffer(program, len(program))
        self._prog = _SockFprog(len(program) // 8, ctypes.addressof(self._buf))
        lib = libc()
        self._prctl = lib.prctl
        self._prctl_ptr = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p,
                                           ctypes.c_ulong, ctypes.c_ulong, use_errno=True)(("prctl", lib))

    def not_dumpable(self) -> None:
        """prctl(PR_SET_DUMPABLE, 0) through the prepared function pointer (no ctypes set-up per child)."""
        self._prctl_ptr(PR_SET_DUMPABLE, 0, None, 0, 0)

    def install(self) -> None:
        prctl(PR_SET_NO_NEW_PRIVS, 1)
        if self._prctl_ptr(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(self._prog), 0, 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"seccomp filter: {os.strerror(err)}")
