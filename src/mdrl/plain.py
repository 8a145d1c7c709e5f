"""Plain Python values from what parquet, pandas, datasets and YAML hand over: numpy arrays become
lists, numpy scalars Python scalars, tuples lists, mappings dicts, recursively. One helper for the
domains' row loaders, the data layer and the configs (which hash their plain form). A leaf: it imports
nothing of mdrl."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def plain(value: Any, *, str_keys: bool = False) -> Any:
    """`value` as plain Python. `str_keys`: mapping keys become strings too (JSON's rule, so a config
    hashes the same whether it came from YAML or from Python)."""
    if isinstance(value, Mapping):
        return {(str(key) if str_keys else key): plain(item, str_keys=str_keys) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item, str_keys=str_keys) for item in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return plain(value.tolist(), str_keys=str_keys)
    return value
