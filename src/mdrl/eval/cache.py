"""An append-only results cache, so a crashed or killed evaluation resumes where it stopped.

One JSONL file per run key: (model identity, suite, template, sampling config, cache version).
Each line is one scored sample. A batch's lines are written with one `write`, then flushed and
fsynced, so after SIGKILL the file holds whole batches plus at most one torn last line, which is
cut off when the file is opened again. An item is reused only when all its n samples are there
*and* its fingerprint (question + ground truth) is unchanged; any other config change gives another
run key and therefore a fresh file: stale results are never reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

log = logging.getLogger(__name__)

#: Bump when the record format or the scoring definitions change.
CACHE_VERSION = 1


class CacheBusy(RuntimeError):
    """Another process is writing the same cache file."""


def run_key_hash(run_key: Mapping[str, Any]) -> str:
    payload = json.dumps({"cache_version": CACHE_VERSION, **run_key}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def _end_of_last_line(handle: Any, size: int, block: int = 65536) -> int:
    """Offset just past the file's last newline (0 when it has none): where whole lines end."""
    position = size
    while position > 0:
        start = max(0, position - block)
        handle.seek(start)
        chunk = handle.read(position - start)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            return start + cut + 1
        position = start
    return 0


class ResultCache:
    """Samples already computed for one run key, and the append-only file new ones go to."""

    def __init__(self, cache_dir: str | Path, run_key: Mapping[str, Any]) -> None:
        self.dir = Path(cache_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.run_key = dict(run_key)
        self.key = run_key_hash(self.run_key)
        self.path = self.dir / f"{self.key}.jsonl"
        key_file = self.dir / f"{self.key}.key.json"
        if not key_file.exists():  # a human-readable record of what this file caches
            key_file.write_text(
                json.dumps(
                    {"cache_version": CACHE_VERSION, **self.run_key}, indent=2, sort_keys=True, default=str
                )
            )
        self._handle = None
        self.torn_lines = 0
        self.bad_lines = 0

    # ------------------------------------------------------------------ reading

    def load(self) -> dict[str, list[dict[str, Any]]]:
        """item_id -> its sample records (latest write of each sample index wins)."""
        if not self.path.exists():
            return {}
        raw = self.path.read_bytes()
        lines = raw.split(b"\n")
        tail = lines.pop()  # b"" when the file ends with a newline, else a torn last line
        if tail:
            self.torn_lines += 1
            log.warning(
                "%s: ignoring a torn last line (%d bytes) from an interrupted run", self.path, len(tail)
            )
        by_item: dict[str, dict[int, dict[str, Any]]] = {}
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                item_id, index = str(record["item_id"]), int(record["sample_index"])
            except (ValueError, KeyError, TypeError):
                self.bad_lines += 1
                log.warning("%s:%d: skipping an unreadable cache line", self.path, lineno)
                continue
            by_item.setdefault(item_id, {})[index] = record
        return {item: [samples[i] for i in sorted(samples)] for item, samples in by_item.items()}

    def complete_items(self, n: int, fingerprints: Mapping[str, str]) -> dict[str, list[dict[str, Any]]]:
        """Cached items that can be reused: all n samples present and the same fingerprint."""
        reusable = {}
        for item_id, records in self.load().items():
            if item_id not in fingerprints:
                continue
            indices = {r["sample_index"] for r in records}
            if indices.issuperset(range(n)) and all(
                r.get("fingerprint") == fingerprints[item_id] for r in records
            ):
                reusable[item_id] = [r for r in records if r["sample_index"] < n]
        return reusable

    # ------------------------------------------------------------------ writing

    def open(self) -> "ResultCache":
        """Open for appending: take the file lock and cut a torn last line so new lines start clean."""
        import fcntl

        handle = open(self.path, "ab+")  # noqa: SIM115 (kept open across batches, closed in close())
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise CacheBusy(
                f"another process is writing {self.path}; wait for it or use another --cache-dir"
            ) from None
        size = handle.seek(0, os.SEEK_END)
        end = _end_of_last_line(handle, size)
        if end != size:
            log.warning("%s: cutting a torn last line (%d bytes)", self.path, size - end)
            handle.truncate(end)
        handle.seek(0, os.SEEK_END)
        self._handle = handle
        return self

    def append(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Write one batch of records durably (one write, flush, fsync)."""
        if self._handle is None:
            raise RuntimeError("ResultCache.append before open()")
        data = "".join(json.dumps(record, ensure_ascii=False, default=str) + "\n" for record in records)
        if not data:
            return
        self._handle.write(data.encode("utf-8"))
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing releases the flock
            self._handle = None

    def __enter__(self) -> "ResultCache":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
