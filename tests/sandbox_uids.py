"""Shared by the hostile-program suites: host processes that run as one of a sandbox's uids."""

from __future__ import annotations

import os
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
