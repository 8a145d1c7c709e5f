"""Model references: a local folder, a hub id, or the name of a model provider. A reference that can
only be a path and names no folder fails here, in one line, instead of deep in a hub download with a
long traceback.

A provider builds a model on demand: `tiny` is mdrl's embedded tiny model, built and warmed up in the
run folder. Providers are entry points of the group `mdrl.models` (name -> a callable taking the
folder to build in and the warm-up settings, returning a report dict), so training never imports the
module that builds them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

PROVIDER_GROUP = "mdrl.models"

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


def model_provider(ref: str) -> Callable[..., dict[str, Any]] | None:
    """The provider registered under the name `ref` (entry-point group mdrl.models), or None."""
    from importlib.metadata import entry_points

    for point in entry_points(group=PROVIDER_GROUP, name=str(ref)):
        return point.load()
    return None
