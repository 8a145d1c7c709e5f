"""Shared by the hostile-program suites: what they watch on the host while programs run."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def processes_of(uids: set[str]) -> list[str]:
    """Pids of host processes whose real uid is one of `uids` (a sandbox's slots)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        uid = next((line.split()[1] for line in status.splitlines() if line.startswith("Uid:")), "")
        if uid in uids:
            found.append(entry)
    return found


def loopback_listener(backlog: int) -> socket.socket:
    """A non-blocking TCP listener on host loopback: a connection reaching it means a program got out."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(backlog)
    listener.setblocking(False)
    return listener
