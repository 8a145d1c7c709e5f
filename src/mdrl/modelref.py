"""Model references: a local folder or a hub id. A reference that can only be a path and names no
folder fails here, in one line, instead of deep in a hub download with a long traceback."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


class ModelNotFound(FileNotFoundError):
    """A model reference that is neither an existing folder nor a possible hub id."""


def check_model_reference(ref: str) -> None:
    """Raise ModelNotFound for a reference that is a path (absolute, relative with ./ or ../, ~, or
    more than one `/`) to nothing, or that no hub id could be."""
    text = str(ref)
    if os.path.isdir(os.path.expanduser(text)):
        return
    if os.path.exists(os.path.expanduser(text)):
        raise ModelNotFound(f"model {text!r} is a file; expected a model folder or a hub id")
    if not _HUB_ID.match(text):
        raise ModelNotFound(f"model folder {text!r} does not exist (and it is not a hub id like 'org/name')")


@contextmanager
def loading(ref: str) -> Iterator[None]:
    """Turn the OSError of a model that cannot be loaded (a hub id offline, a folder without weights)
    into a one-line ModelNotFound naming it."""
    try:
        yield
    except ModelNotFound:
        raise
    except OSError as exc:
        lines = str(exc).strip().splitlines()
        raise ModelNotFound(f"cannot load model {str(ref)!r}: {(lines[0] if lines else type(exc).__name__)[:300]}") \
            from None
