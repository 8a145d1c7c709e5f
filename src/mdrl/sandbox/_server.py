"""The fork server: a small, single-threaded process that forks one child per program.

Started by `mdrl.sandbox.pool` as `python -I _server.py CONFIG_JSON` (inside bubblewrap when it
works), never as a fork of the trainer, so each fork copies a process of a few tens of MB. It
imports the modules programs commonly use once, freezes the GC, then serves jobs read from stdin
(marshal frames) and answers on stdout. A child is killed with its process group when its
per-test or per-run wall-clock limit passes; processes it leaves behind are swept (this server is
a child subreaper, or pid 1 of its own pid namespace).
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import socket
import sys
import time

_CONFIG = json.loads(sys.argv[1])
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
for _extra in reversed(_CONFIG.get("sys_path", [])):
    if _extra not in sys.path:
        sys.path.insert(1, _extra)

import _harness  # noqa: E402  (found through the sys.path entry above)
import _plain  # noqa: E402
import _proto  # noqa: E402
import _seccomp  # noqa: E402
import _tester  # noqa: E402

MAX_RESULT_BYTES = 64 << 20
MAX_ATTEMPTS = 64
#: Memory a server may hold above its start-up baseline after a program before it is replaced.
HEALTH_SLACK_BYTES = 128 << 20


class Server:
    def __init__(self, cfg: dict) -> None:
        self.cfg = cfg
        self.uid = int(cfg["uid"])
        self.devnull = os.open("/dev/null", os.O_RDWR)
        self.installer = None
        self.seccomp_error = ""
        if cfg.get("seccomp", True):
            ok, why = _seccomp.supported()
            if ok:
                self.installer = _seccomp.Installer(_seccomp.build_filter(cfg.get("deny_fs_writes", False)))
            else:
                self.seccomp_error = why
        self.oom_kills = 0
        self.baseline: int | None = None
        self.preludes: dict[str, _harness.Prelude] = {}
        for text in cfg.get("preludes", []):
            self.prelude(text)

    def prelude(self, text: str) -> _harness.Prelude | None:
        """A prelude, run once here; children reach its names without copying them."""
        if not text:
            return None
        prelude = self.preludes.get(text)
        if prelude is None:
            prelude = self.preludes[text] = _harness.Prelude(text)
        return prelude

    # --- one job -------------------------------------------------------------------------------

    def run(self, job: dict) -> dict:
        """A probe, or a stdin/stdout job: the program runs once per input in a child; a child that
        dies in the middle of an input fails that case and a fresh child carries on after it."""
        if job.get("mode") == "probe":
            return self.probe()
        start = time.monotonic()
        hard_deadline = start + float(job["run_timeout"])
        cases: dict[int, tuple[str, str]] = {}
        program = None
        finished = None
        end = ""
        tamper = False
        skip = 0
        attempts = 0
        n_inputs = len(job["inputs"])
        while True:
            attempts += 1
            job["skip"] = skip
            got = self.run_child(job, hard_deadline)
            tamper = tamper or got["tamper"]
            if attempts == 1:
                program = got["program"]
            new = {i: c for i, c in got["cases"].items() if i not in cases}
            cases.update(new)
            finished = got["finished"]
            end = got["end"]
            if finished is not None or end == "timeout" or got["program"] != "":
                break
            # The child died in the middle of a case (os._exit, a signal, the OOM killer).
            inflight = max(max(cases) + 1 if cases else 0, skip)
            cases[inflight] = (_proto.FAILED.decode(), end)
            skip = inflight + 1
            if skip >= n_inputs:
                finished = (n_inputs, "")
                break
            if attempts >= MAX_ATTEMPTS or time.monotonic() >= hard_deadline:
                break
        return {
            "program": program,
            "cases": sorted((i, s, info) for i, (s, info) in cases.items()),
            "finished": finished,
            "end": end,
            "elapsed": time.monotonic() - start,
            "tamper": tamper,
            "attempts": attempts,
        }

    # --- a functional job: tests in a trusted child, the program in a sandboxed one --------------

    def run_functional(self, job: dict, tests_fd: int) -> dict:
        """The test child runs the tests and asks for each call to the program; this loop relays
        the calls to the program child, times them, and restarts a program that crashed."""
        start = time.monotonic()
        relay = _Relay(self, job, start + float(job["run_timeout"]))
        try:
            relay.start_tester(tests_fd)
            relay.loop()
        finally:
            relay.close()
            self.sweep()
        if relay.program is None and relay.finished is not None and not relay.end:
            relay.program = ""  # the tests ended before they needed the program
        return {
            "program": relay.program,
            "cases": sorted((i, s, info) for i, (s, info) in relay.cases.items()),
            "finished": relay.finished,
            "end": relay.end,
            "elapsed": time.monotonic() - start,
            "tamper": False,
            "attempts": relay.starts,
        }

    def run_child(self, job: dict, hard_deadline: float) -> dict:
        secret = os.urandom(_proto.SECRET_BYTES)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            try:
                os.close(r)
                _harness.enter_sandbox(self.cfg, self.uid, self.installer, self.devnull, (w,))
                _harness.run_job(job, secret)
            finally:
                os._exit(70)
        os.close(w)
        os.set_blocking(r, False)
        cpu_limit = float(job["test_timeout"])
        wall_limit = float(job.get("test_wall_timeout", 4 * cpu_limit))
        parser = _proto.RecordParser(secret)
        out = {"program": None, "cases": {}, "finished": None, "end": "", "tamper": False}
        received = 0
        pidfd = os.pidfd_open(pid)
        poller = select.poll()
        poller.register(r, select.POLLIN)
        poller.register(pidfd, select.POLLIN)
        # Each case (and the start-up) gets `cpu_limit` CPU seconds and `wall_limit` wall seconds.
        # CPU time cannot run faster than the wall clock, so it is read only when the budget could
        # be spent: at most once per wake-up, not per case.
        now = time.monotonic()
        case_wall0 = now
        case_cpu0 = 0.0
        cpu_check_at = now + cpu_limit
        exited = False
        reading = True
        try:
            while not exited:
                now = time.monotonic()
                if now >= cpu_check_at:
                    used = _cpu_seconds(pid) - case_cpu0
                    if used >= cpu_limit:
                        out["end"] = "timeout"
                        break
                    cpu_check_at = now + (cpu_limit - used)
                deadline = min(case_wall0 + wall_limit, hard_deadline)
                if now >= deadline:
                    out["end"] = "timeout"
                    break
                for fd, _event in poller.poll((min(deadline, cpu_check_at) - now) * 1000 + 1):
                    if fd == pidfd:
                        exited = True
                    elif reading:
                        data = self._read(r)
                        if data is None:
                            poller.unregister(r)
                            reading = False
                        elif data:
                            received += len(data)
                            if self._records(parser.feed(data), out):
                                case_wall0 = time.monotonic()
                                case_cpu0 = _cpu_seconds(pid)
                                cpu_check_at = case_wall0 + cpu_limit
                if received > MAX_RESULT_BYTES:
                    out["end"] = "result stream too large"
                    break
            # Whatever the child wrote before it died is still in the pipe.
            while reading:
                data = self._read(r)
                if not data:
                    break
                self._records(parser.feed(data), out)
        finally:
            _kill_group(pid)  # the child is unreaped (at most a zombie): its pid cannot be reused yet
            _, status = os.waitpid(pid, 0)
            os.close(pidfd)
            os.close(r)
            self.sweep()
        if not out["end"]:
            out["end"] = _describe_status(status)
            if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL and self._oom_killed():
                out["end"] = "out of memory (cgroup memory cap)"
        return out

    @staticmethod
    def _read(fd: int) -> bytes | None:
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return b""
        return data if data else None

    @staticmethod
    def _records(records: list, out: dict) -> bool:
        progressed = False
        for kind, payload in records:
            if kind == _proto.PROGRAM_DONE:
                if out["program"] is None:
                    out["program"] = payload.decode("utf-8", "replace")
                progressed = True
            elif kind == _proto.CASE:
                case = _proto.unpack_case(payload)
                if case is None:
                    continue
                index, status, info = case
                if index in out["cases"]:
                    out["tamper"] = True  # the harness reports each case once
                    out["cases"][index] = (_proto.FAILED.decode(), "duplicate result")
                else:
                    out["cases"][index] = (status.decode("latin-1"), info)
                progressed = True
            elif kind == _proto.FINISHED:
                done = _proto.unpack_finished(payload)
                if done is not None and out["finished"] is None:
                    out["finished"] = done
        return progressed

    def sweep(self) -> None:
        """Kill and reap anything the child left behind (daemons, detached grandchildren)."""
        for _ in range(1000):
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid:
                continue
            for stray in _children() + self._cgroup_pids():
                try:
                    os.kill(stray, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.001)
        if self.cfg.get("private_tmp"):
            self._clean_tmp()

    def memory_in_use(self) -> int | None:
        """Anonymous and shared memory charged to this server's memory cgroup (bytes), or None
        without one. Page cache is left out: the kernel reclaims it under pressure."""
        for procs in self.cfg.get("cgroup_procs", ()):
            try:
                with open(os.path.join(os.path.dirname(procs), "memory.stat")) as f:
                    stat = dict(line.split() for line in f if line.count(" ") == 1)
            except (OSError, ValueError):
                continue
            if "anon" in stat:  # v2
                return int(stat["anon"]) + int(stat.get("shmem", 0))
            if "total_rss" in stat:  # v1
                return int(stat["total_rss"]) + int(stat.get("total_shmem", 0))
        return None

    def health(self) -> str:
        """"" when this server is back at its baseline after a program, else what is wrong: memory
        that stayed charged to it, or processes that outlived the sweep. The client replaces a
        server that does not recover, so one hostile sample cannot fail the samples after it."""
        left = self._cgroup_pids() or _children()
        if left:
            return f"{len(left)} process(es) outlived the program"
        used = self.memory_in_use()
        if used is not None and self.baseline is not None and used > self.baseline + HEALTH_SLACK_BYTES:
            return f"{(used - self.baseline) >> 20} MB stayed charged to the server after the program"
        return ""

    def _oom_killed(self) -> bool:
        """Did the memory cgroup's OOM killer strike since we last looked? (v1 memory.oom_control,
        v2 memory.events both count `oom_kill`.)"""
        count = 0
        for procs in self.cfg.get("cgroup_procs", ()):
            for name in ("memory.oom_control", "memory.events"):
                try:
                    with open(os.path.join(os.path.dirname(procs), name)) as f:
                        for line in f:
                            key, _, value = line.partition(" ")
                            if key == "oom_kill":
                                count += int(value)
                except (OSError, ValueError):
                    pass
        struck = count > self.oom_kills
        self.oom_kills = count
        return struck

    def _cgroup_pids(self) -> list[int]:
        me = os.getpid()
        pids = []
        for procs in self.cfg.get("cgroup_procs", ()):
            try:
                with open(procs) as f:
                    pids.extend(int(x) for x in f.read().split() if int(x) > 0 and int(x) != me)
            except (OSError, ValueError):
                pass
        return pids

    def _clean_tmp(self) -> None:
        """Empty the private /tmp and /dev/shm: the next program starts with nothing of this one."""
        dirty = []
        for folder in ("/tmp", "/dev/shm"):
            try:
                if os.listdir(folder):
                    dirty.append(folder)
            except OSError:
                pass
        if not dirty:
            return
        pid = os.fork()
        if pid == 0:  # as the sandbox uid: the files are its own
            try:
                if os.geteuid() == 0:
                    os.setgroups([])
                    os.setresgid(self.uid, self.uid, self.uid)
                    os.setresuid(self.uid, self.uid, self.uid)
                import shutil

                def retry(func, path, _exc):
                    os.chmod(os.path.dirname(path), 0o700)
                    try:
                        os.chmod(path, 0o700)
                    except OSError:
                        pass
                    func(path)

                for folder in dirty:
                    for entry in os.listdir(folder):
                        full = os.path.join(folder, entry)
                        if os.path.isdir(full) and not os.path.islink(full):
                            shutil.rmtree(full, onerror=retry)
                        else:
                            os.unlink(full)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)

    # --- start-up probe ------------------------------------------------------------------------

    def probe(self) -> dict:
        """Try every layer in a throwaway child and report what held."""
        secret = os.urandom(_proto.SECRET_BYTES)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            report = {}
            try:
                os.close(r)
                report = _probe_child(self)
            except BaseException as exc:  # noqa: BLE001 - the report says what broke
                report["error"] = repr(exc)
            finally:
                try:
                    os.write(w, _proto.pack_record(secret, b"R", json.dumps(report).encode()))
                finally:
                    os._exit(0)
        os.close(w)
        data = b""
        while True:
            chunk = os.read(r, 1 << 16)
            if not chunk:
                break
            data += chunk
        os.close(r)
        os.waitpid(pid, 0)
        self.sweep()
        records = _proto.RecordParser(secret).feed(data)
        report = json.loads(records[0][1]) if records else {"error": "probe child wrote nothing"}
        report["pid"] = os.getpid()
        report["seccomp_error"] = self.seccomp_error
        return report


def _probe_child(server: Server) -> dict:
    import socket

    cfg = server.cfg
    report: dict = {}
    os.setsid()
    # d. cgroups: the child is born in its server's cgroups
    if cfg.get("cgroup_procs"):
        try:
            joined = []
            for procs in cfg["cgroup_procs"]:
                with open(procs) as f:
                    if str(os.getpid()) in f.read().split():
                        joined.append(procs)
            report["cgroups"] = [len(joined) == len(cfg["cgroup_procs"]), f"in {len(joined)} cgroup(s)"]
        except OSError as exc:
            report["cgroups"] = [False, f"cannot read cgroup membership: {exc}"]
    # c. namespaces: no network interface but loopback, read-only root, a private writable /tmp
    if cfg.get("private_fs"):
        problems = []
        try:
            names = sorted(name for _, name in socket.if_nameindex())
            if names not in (["lo"], []):
                problems.append(f"network interfaces {names}")
        except OSError as exc:
            problems.append(f"if_nameindex: {exc}")
        for path in ("/usr/.mdrl-probe", "/.mdrl-probe"):
            try:
                fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
                os.unlink(path)
                problems.append(f"{path} is writable")
            except OSError:
                pass
        report["namespaces"] = [not problems, "; ".join(problems) or "net, pid, ipc, uts, mount"]
    # a. limits and an unprivileged uid
    try:
        _harness._set_limits(cfg)
        if os.geteuid() == 0:
            os.setgroups([])
            os.setresgid(server.uid, server.uid, server.uid)
            os.setresuid(server.uid, server.uid, server.uid)
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
        try:
            resource.setrlimit(resource.RLIMIT_NPROC, (hard + 1, hard + 1))
            raised = True
        except (ValueError, OSError):
            raised = False
        ok = os.geteuid() != 0 and not raised and soft == cfg["nproc"]
        detail = f"uid {os.geteuid()}, nproc {soft}" + (", limits can be raised" if raised else "")
        report["limits"] = [ok, detail]
    except OSError as exc:
        report["limits"] = [False, f"cannot set limits or drop uid: {exc}"]
    try:
        os.listdir(os.path.dirname(os.__file__))
        report["stdlib_readable"] = True
    except OSError:
        report["stdlib_readable"] = False
    # b. seccomp
    if server.installer is not None:
        try:
            server.installer.install()
            try:
                socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                report["seccomp"] = [False, "socket() still allowed after install"]
            except PermissionError:
                report["seccomp"] = [True, "x86_64 filter"]
        except OSError as exc:
            report["seccomp"] = [False, f"install failed: {exc}"]
    return report


MAX_REPLY_BYTES = 64 << 20


def _head(kind: str, fields: int) -> bytes:
    """How a plain-data tuple (kind, ...) with `fields` items starts: requests and replies are told
    apart by their first bytes, without decoding them."""
    return (_plain.TUPLE + _proto.FRAME_LEN.pack(fields) + _plain.STR + _proto.FRAME_LEN.pack(len(kind))
            + kind.encode())


#: Requests that make or change program objects the tests hold (and the reply of a call that made
#: one): replayed, in order, into a program child that replaces a crashed one, so that the tests'
#: handles (`check(Solution().f)`) still name the same objects.
_REPLAYED_REQUESTS = (_head("names", 2), _head("getattr", 3), _head("setattr", 4))
_OBJECT_REPLY = _head("object", 2)


class _Relay:
    """One functional job: the trusted test child (T), the program child (P) and the messages
    between them. T's frames are trusted; P's are length-checked and forwarded as they are, and
    T decodes them as plain data."""

    def __init__(self, server: Server, job: dict, hard_deadline: float) -> None:
        self.server = server
        self.job = job
        self.prelude = server.prelude(job.get("prelude", ""))
        self.hard_deadline = hard_deadline
        self.cpu_limit = float(job["test_timeout"])
        self.wall_limit = float(job.get("test_wall_timeout", 4 * self.cpu_limit))
        self.program: str | None = None  # "" once the program ran its module code
        self.cases: dict[int, tuple[str, str]] = {}
        self.finished: tuple[int, str] | None = None
        self.end = ""
        self.starts = 0
        self.tester: int | None = None
        self.child: dict | None = None  # the running program child
        self.pending: bytes | None = None  # a request waiting for the program to be ready
        self.replay: list[bytes] = []  # requests a restarted program child is given again first
        self.poller = select.poll()
        self.handlers: dict[int, object] = {}

    # --- the two children ------------------------------------------------------------------------

    def start_tester(self, tests_fd: int) -> None:
        limits = {"address_space_mb": self.server.cfg["address_space_mb"],
                  "cpu_s": float(self.job["run_timeout"]) + 2}

        def run_tests(to_r: int, from_w: int) -> None:
            _enter_tester(self.server, (tests_fd, to_r, from_w))
            _tester.run(3, 4, 5, limits, self.prelude)

        pid, from_r, to_w = _fork_with_pipes(run_tests)
        os.close(tests_fd)
        self.tester, self.to_tester, self.from_tester = pid, to_w, from_r
        self.tester_fd = os.pidfd_open(pid)
        self._watch(from_r, self._on_tester)
        self._watch(self.tester_fd, self._on_tester_exit)

    def start_program(self) -> None:
        self.starts += 1

        def run_program(req_r: int, rep_w: int) -> None:
            _harness.enter_sandbox(self.server.cfg, self.server.uid, self.server.installer,
                                   self.server.devnull, (req_r, rep_w))
            _harness.serve_program(self.job, self.prelude)

        pid, rep_r, req_w = _fork_with_pipes(run_program)
        os.set_blocking(rep_r, False)
        os.set_blocking(req_w, False)
        child = {"pid": pid, "req": req_w, "rep": rep_r, "pidfd": os.pidfd_open(pid), "ready": False,
                 "inbuf": bytearray(), "outbuf": bytearray(), "busy": False}
        self.child = child
        self._watch(rep_r, self._on_program)
        self._watch(child["pidfd"], self._on_program_exit)
        self._clock(child)

    def _clock(self, child: dict) -> None:
        """Start the per-call limits: CPU seconds of the program, and wall seconds."""
        now = time.monotonic()
        child["wall0"] = now
        child["cpu0"] = _cpu_seconds(child["pid"])
        child["cpu_check_at"] = now + self.cpu_limit

    def _watch(self, fd: int, handler) -> None:
        self.poller.register(fd, select.POLLIN)
        self.handlers[fd] = handler

    def _unwatch(self, fd: int) -> None:
        if fd in self.handlers:
            self.poller.unregister(fd)
            del self.handlers[fd]

    # --- the loop -------------------------------------------------------------------------------

    def loop(self) -> None:
        self.start_program()
        while self.tester is not None:
            now = time.monotonic()
            if now >= self.hard_deadline:
                self.end = "timeout"
                return
            deadline = self.hard_deadline
            child = self.child
            if child is not None and (child["busy"] or not child["ready"]):
                if now >= child["cpu_check_at"]:
                    used = _cpu_seconds(child["pid"]) - child["cpu0"]
                    if used >= self.cpu_limit:
                        self._timeout()
                        continue
                    child["cpu_check_at"] = now + (self.cpu_limit - used)
                if now >= child["wall0"] + self.wall_limit:
                    self._timeout()
                    continue
                deadline = min(deadline, child["cpu_check_at"], child["wall0"] + self.wall_limit)
            for fd, events in self.poller.poll(max(deadline - now, 0) * 1000 + 1):
                handler = self.handlers.get(fd)
                if handler is not None:
                    handler(events)
                if self.tester is None:
                    return

    def _timeout(self) -> None:
        ready = self.child is not None and self.child["ready"]
        self._kill_program()
        self.end = "timeout"
        if not ready and self.program is None:
            self._stop_tester()  # the program never finished its module code
            return
        self._reply(("err", "timeout", "timeout"))

    # --- the test child's side ------------------------------------------------------------------------

    def _on_tester(self, _events) -> None:
        try:
            message = _proto.read_frame(self.from_tester)
        except (OSError, ValueError, EOFError):
            message = None
        if message is None:
            self._unwatch(self.from_tester)
            return
        kind = message[0]
        if kind == "req":
            self.pending = message[1]
            if self.child is None:
                if self.starts >= MAX_ATTEMPTS or time.monotonic() >= self.hard_deadline:
                    self.pending = None
                    self._reply(("err", "died", "program crashed too often"))
                    return
                self.start_program()
            elif self.child["ready"]:
                self._send_pending()
        elif kind == "case":
            index, status, info = message[1], message[2], message[3]
            self.cases.setdefault(index, (status, info))
        elif kind == "done":
            self.finished = (message[1], message[2])

    def _on_tester_exit(self, _events) -> None:
        while self.from_tester in self.handlers:  # what it wrote before it exited
            self._on_tester(0)
        self._stop_tester()

    def _reply(self, message: tuple) -> None:
        try:
            _proto.write_frame(self.to_tester, message)
        except OSError:
            self._stop_tester()

    def _stop_tester(self) -> None:
        if self.tester is not None:
            _kill_group(self.tester)
            os.waitpid(self.tester, 0)
            self._unwatch(self.tester_fd)
            self._unwatch(self.from_tester)
            for fd in (self.tester_fd, self.to_tester, self.from_tester):
                os.close(fd)
            self.tester = None

    # --- the program's side ---------------------------------------------------------------------

    def _send_pending(self) -> None:
        payload, self.pending = self.pending, None
        self._send(payload, replaying=False)

    def _send(self, payload: bytes, replaying: bool) -> None:
        child = self.child
        child["outbuf"] += _proto.FRAME_LEN.pack(len(payload)) + payload
        child["busy"], child["replaying"], child["request"] = True, replaying, payload
        self._clock(child)
        self._flush()

    def _go_on(self) -> None:
        """A ready program child: first what a crashed predecessor was given, then the waiting request."""
        child = self.child
        if child["to_replay"]:
            self._send(child["to_replay"].pop(0), replaying=True)
        elif self.pending is not None:
            self._send_pending()

    def _flush(self, _events=0) -> None:
        child = self.child
        try:
            while child["outbuf"]:
                n = os.write(child["req"], child["outbuf"])
                del child["outbuf"][:n]
        except BlockingIOError:
            pass
        except OSError:
            child["outbuf"].clear()  # it is gone; its exit will be noticed
        if child["outbuf"] and child["req"] not in self.handlers:
            self.poller.register(child["req"], select.POLLOUT)
            self.handlers[child["req"]] = self._flush
        elif not child["outbuf"] and child["req"] in self.handlers:
            self._unwatch(child["req"])

    def _on_program(self, _events) -> None:
        child = self.child
        try:
            data = os.read(child["rep"], 1 << 20)
        except BlockingIOError:
            return
        if not data:
            self._unwatch(child["rep"])
            return
        child["inbuf"] += data
        buf = child["inbuf"]
        while len(buf) >= 4:
            (size,) = _proto.FRAME_LEN.unpack_from(buf)
            if size > MAX_REPLY_BYTES:
                self._program_failed("reply too large")
                return
            if len(buf) < 4 + size:
                return
            payload = bytes(buf[4:4 + size])
            del buf[:4 + size]
            if not self._program_message(payload):
                return

    def _program_message(self, payload: bytes) -> bool:
        child = self.child
        if not child["ready"]:
            try:
                kind, reason = _plain.decode(payload)
                ok = kind == "ready" and type(reason) is str
            except (_plain.MalformedData, TypeError, ValueError):
                ok = False
            if not ok:
                self._program_failed("broke the harness protocol")
                return False
            if reason:
                if self.program is None:
                    self.program = reason[:300]
                    self._kill_program()
                    self._stop_tester()
                else:
                    self._program_failed(f"program failed on restart: {reason[:200]}")
                return False
            child["ready"] = True
            if self.program is None:
                self.program = ""
            child["to_replay"] = list(self.replay)
            self._go_on()
            return True
        if not child["busy"]:
            self._program_failed("wrote to the harness out of turn")
            return False
        child["busy"] = False
        if child["replaying"]:
            self._go_on()
            return True
        if child["request"].startswith(_REPLAYED_REQUESTS) or payload.startswith(_OBJECT_REPLY):
            self.replay.append(child["request"])
        self._reply(("rep", payload))
        return True

    def _program_failed(self, reason: str) -> None:
        """Stop the program child; the call in flight (if any) fails with `reason`."""
        waiting = self.child is not None and (self.child["busy"] or self.pending is not None)
        self._kill_program()
        if waiting:
            self.pending = None
            self._reply(("err", "died", reason))

    def _on_program_exit(self, _events) -> None:
        child = self.child
        while child["rep"] in self.handlers and self.child is child:  # replies written before it died
            self._on_program(0)
        if self.child is not child:
            return
        status = self._kill_program()
        reason = _describe_status(status)
        if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL and self.server._oom_killed():
            reason = "out of memory (cgroup memory cap)"
        if self.program is None:  # died in its module code
            self.end = reason
            self._stop_tester()
        elif child["busy"] or self.pending is not None:
            self.pending = None
            self._reply(("err", "died", f"program crashed: {reason}"))

    def _kill_program(self) -> int:
        child, self.child = self.child, None
        if child is None:
            return 0
        _kill_group(child["pid"])
        _, status = os.waitpid(child["pid"], 0)
        for fd in (child["rep"], child["pidfd"], child["req"]):
            self._unwatch(fd)
            os.close(fd)
        return status

    def close(self) -> None:
        self._kill_program()
        self._stop_tester()


def _fork_with_pipes(run) -> tuple[int, int, int]:
    """Fork a child that gets (its read end, its write end) of two fresh pipes and runs `run` on
    them, then exits; returns (pid, our read end, our write end)."""
    down_r, down_w = os.pipe()
    up_r, up_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(down_w)
            os.close(up_r)
            run(down_r, up_w)
        finally:
            os._exit(70)
    os.close(down_r)
    os.close(up_w)
    return pid, up_r, down_w


def _enter_tester(server: Server, fds: tuple[int, ...]) -> None:
    """The trusted test child: its own process group, not dumpable (a program running as the same
    uid cannot read its memory), no fds but its own."""
    os.setsid()
    _seccomp.prctl(_seccomp.PR_SET_DUMPABLE, 0)
    _harness.place_fds(server.devnull, fds)


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process (all its threads): its CPU-time clock (about a
    microsecond; clock id as glibc's clock_getcpuclockid makes it), else /proc/PID/stat (~70 us)."""
    try:
        return time.clock_gettime((~pid << 3) | 2)  # MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS
    except (OSError, IndexError, ValueError):
        return 0.0


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def _children() -> list[int]:
    me = os.getpid()
    try:
        with open(f"/proc/{me}/task/{me}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        pass
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == me:
                    found.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return found


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        if sig == signal.SIGXCPU:
            return "cpu time limit"
        if sig == signal.SIGKILL:
            return "killed by SIGKILL (memory cap, cpu limit or the program itself)"
        return f"killed by {name}"
    code = os.waitstatus_to_exitcode(status)
    if code == 70:
        return "sandbox setup failed"
    return f"process exited with status {code}" if code else "process exited"


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the trainer; it closes our stdin
    try:
        _seccomp.prctl(_seccomp.PR_SET_CHILD_SUBREAPER, 1)
    except OSError:
        pass
    for name in _CONFIG.get("preload", _harness.PRELOAD):
        try:
            __import__(name)
        except ImportError:
            pass
    for procs in _CONFIG.get("cgroup_procs", ()):
        # Join this server's cgroups once: every child is then born inside them.
        with open(procs, "w") as f:
            f.write(str(os.getpid()))
    server = Server(_CONFIG)
    sys.path.remove(_HERE)
    _harness.snapshot()
    gc.collect()
    gc.freeze()  # children then do not touch (and copy) the server's pages when they collect
    server.baseline = server.memory_in_use()
    try:  # its children run as other uids, or not dumpable; the server is not readable either
        _seccomp.prctl(_seccomp.PR_SET_DUMPABLE, 0)
    except OSError:
        pass
    control = socket.socket(fileno=0)  # a unix socket: jobs carry the tests' memfd alongside
    while True:
        marker, fds, _flags, _addr = socket.recv_fds(control, 1, 1)
        job = _proto.read_frame(0) if marker else None
        if job is None:
            break
        try:
            if fds:
                reply = server.run_functional(job, fds[0])
            else:
                reply = server.run(job)
        except Exception as exc:  # noqa: BLE001 - the client turns this into a failed result
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        unhealthy = server.health()
        if unhealthy:
            reply["unhealthy"] = unhealthy
        _proto.write_frame(1, reply)


if __name__ == "__main__":
    main()
