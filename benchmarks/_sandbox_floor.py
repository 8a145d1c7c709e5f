"""The floor of benchmarks/sandbox.py: in-process exec, no isolation, in small spawned workers.

Standalone (stdlib only) so that each worker is a fresh, small interpreter like a fork server,
and its garbage collector does not walk the benchmark's own heap.
"""

from __future__ import annotations

import atexit
import builtins
import gc
import io
import os
import sys
import time


def normalize_output(text: str) -> str:
    """Same rule as mdrl.sandbox._proto.normalize_output."""
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()


def warm_up(_: int) -> int:
    for name in ("typing", "collections", "heapq", "bisect", "itertools", "math", "functools", "string", "re",
                 "random", "operator", "datetime", "sortedcontainers", "threading", "decimal", "fractions"):
        __import__(name)
    gc.collect()
    gc.freeze()
    return os.getpid()


def _run_stdin_case(code, inp: str) -> str:
    fd_in = os.memfd_create("in")
    os.write(fd_in, inp.encode())
    os.lseek(fd_in, 0, 0)
    fd_out = os.memfd_create("out")
    saved = os.dup(0), os.dup(1)
    os.dup2(fd_in, 0)
    os.dup2(fd_out, 1)
    old = sys.stdin, sys.stdout
    sys.stdin = io.open(0, "r", closefd=False)
    sys.stdout = io.open(1, "w", closefd=False)
    try:
        exec(code, {"__name__": "__main__", "__builtins__": builtins})
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise
    finally:
        try:
            atexit._run_exitfuncs()  # as at interpreter exit (some programs print from atexit)
        finally:
            atexit._clear()
        sys.stdout.flush()
        sys.stdin, sys.stdout = old
        os.dup2(saved[0], 0)
        os.dup2(saved[1], 1)
        for fd in (*saved, fd_in):
            os.close(fd)
    got = os.pread(fd_out, os.fstat(fd_out).st_size, 0).decode("utf-8", "replace")
    os.close(fd_out)
    return got


def floor_item(item: dict) -> tuple[int, bool, float, str]:
    t = time.perf_counter()
    try:
        if item["mode"] == "stdio":
            code = compile(item["program"], "<program>", "exec")
            for inp, out in zip(item["inputs"], item["outputs"]):
                if normalize_output(_run_stdin_case(code, inp)) != normalize_output(out):
                    return item["index"], False, time.perf_counter() - t, "wrong answer"
        else:
            namespace: dict = {"__name__": "__main__"}
            saved = os.dup(1)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)  # what the program prints is not the benchmark's output
            old = sys.stdout
            sys.stdout = io.open(1, "w", closefd=False)
            try:
                exec(item["prelude"] + "\n" + item["program"], namespace)
                exec(item["code"], namespace)
            finally:
                sys.stdout.flush()
                sys.stdout = old
                os.dup2(saved, 1)
                os.close(saved)
                os.close(devnull)
    except BaseException as exc:  # noqa: BLE001 - a benchmark of untrusted references
        return item["index"], False, time.perf_counter() - t, repr(exc)[:200]
    return item["index"], True, time.perf_counter() - t, "ok"
