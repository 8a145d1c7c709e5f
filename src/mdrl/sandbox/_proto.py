"""Wire formats shared by the client, the fork server and the child harness.

Standalone on purpose: the fork server imports this file by path, without the `mdrl` package,
so that the process it forks from stays small.

Two channels:
- client <-> server: length-prefixed `marshal` frames. Both ends are trusted (our own code).
- child -> server: records on a private pipe, each prefixed with the per-run secret. The child runs
  untrusted code, so the server parses these by hand (never `marshal`/`pickle`) and ignores bytes
  that do not follow a secret.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import struct

_LEN = FRAME_LEN = struct.Struct("<I")
_REC = struct.Struct("<cI")
_CASE = struct.Struct("<Ic")

SECRET_BYTES = 16
MAX_FRAME = 1 << 30

#: Record kinds written by the harness in the child.
PROGRAM_DONE = b"S"  # payload: "" when the program ran, else the reason it did not
CASE = b"C"  # payload: u32 index, status byte, utf-8 info
FINISHED = b"D"  # payload: u32 number of cases reached, utf-8 abort reason ("" = ran to the end)

#: Case status bytes.
FAILED = b"F"  # the case's child died in it; info is the reason
OUTPUT = b"O"  # stdin/stdout case ran to the end; info is the normalized output (or a digest)
ERROR = b"E"  # stdin/stdout case raised; info is "reason\x00normalized output"

DIGEST_PREFIX = "\x00sha256:"
#: Outputs longer than this travel as a digest of the normalized text, not the text itself.
INLINE_OUTPUT_CHARS = 1 << 16


# --- client <-> server -------------------------------------------------------------------------

def write_frame(fd: int, obj: object) -> None:
    data = marshal.dumps(obj)
    buf = memoryview(_LEN.pack(len(data)) + data)
    while buf:
        n = os.write(fd, buf)
        buf = buf[n:]


def _read_exact(fd: int, n: int) -> bytes | None:
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int) -> object | None:
    """The next frame, or None at end of file."""
    head = _read_exact(fd, _LEN.size)
    if head is None:
        return None
    (size,) = _LEN.unpack(head)
    if size > MAX_FRAME:
        raise ValueError(f"frame of {size} bytes")
    body = _read_exact(fd, size)
    if body is None:
        return None
    return marshal.loads(body)


# --- child -> server ---------------------------------------------------------------------------

def pack_record(secret: bytes, kind: bytes, payload: bytes) -> bytes:
    return secret + _REC.pack(kind, len(payload)) + payload


def pack_case(index: int, status: bytes, info: str) -> bytes:
    return _CASE.pack(index, status) + info.encode("utf-8", "replace")


class RecordParser:
    """Incremental parser of the child's record stream. Bytes not behind the secret are skipped."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.buf = bytearray()
        self.junk = 0

    def feed(self, data: bytes) -> list[tuple[bytes, bytes]]:
        self.buf += data
        out = []
        head = SECRET_BYTES + _REC.size
        while True:
            pos = self.buf.find(self.secret)
            if pos < 0:
                keep = SECRET_BYTES - 1  # a secret may straddle two reads
                if len(self.buf) > keep:
                    self.junk += len(self.buf) - keep
                    del self.buf[: len(self.buf) - keep]
                return out
            if pos:
                self.junk += pos
                del self.buf[:pos]
            if len(self.buf) < head:
                return out
            kind, size = _REC.unpack_from(self.buf, SECRET_BYTES)
            if size > MAX_FRAME:
                del self.buf[:SECRET_BYTES]
                continue
            if len(self.buf) < head + size:
                return out
            payload = bytes(self.buf[head:head + size])
            del self.buf[:head + size]
            out.append((kind, payload))


def unpack_case(payload: bytes) -> tuple[int, bytes, str] | None:
    if len(payload) < _CASE.size:
        return None
    index, status = _CASE.unpack_from(payload)
    return index, status, payload[_CASE.size:].decode("utf-8", "replace")


def unpack_finished(payload: bytes) -> tuple[int, str] | None:
    if len(payload) < 4:
        return None
    (count,) = _LEN.unpack_from(payload)
    return count, payload[4:].decode("utf-8", "replace")


# --- stdin/stdout comparison -------------------------------------------------------------------

def normalize_output(text: str) -> str:
    """Trailing white space is dropped on every line, and white space at both ends of the whole
    output (TACO's expected outputs carry stray leading blank lines and spaces); nothing else."""
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()


def output_token(normalized: str) -> str:
    """What travels back for one case: the text itself, or a digest when it is long."""
    if len(normalized) <= INLINE_OUTPUT_CHARS:
        return normalized
    return DIGEST_PREFIX + hashlib.sha256(normalized.encode("utf-8", "surrogatepass")).hexdigest()


def same_output(token: str, expected: str) -> bool:
    """Does a case's output token match the expected output, after normalization?"""
    want = normalize_output(expected)
    if token.startswith(DIGEST_PREFIX):
        digest = hashlib.sha256(want.encode("utf-8", "surrogatepass")).hexdigest()
        return token[len(DIGEST_PREFIX):] == digest
    return token == want
