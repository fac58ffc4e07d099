"""Field checkers shared by every contract schema.

Each checker takes the value and its path (``901.bindings[2].output.dtype``) and returns the normalised value
or raises ContractError carrying that path, so every schema reports errors the same way.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from hlx_core.codec.handle import is_handle
from hlx_core.errors import ContractError

MISSING = "E_CONTRACT_FIELD_MISSING"
TYPE = "E_CONTRACT_FIELD_TYPE"
STRUCTURE = "E_CONTRACT_STRUCTURE"

INT64_MIN, INT64_MAX, UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1


def fail(code: str, path: str, message: str) -> ContractError:
    return ContractError(code, message, path=path)


def _kind(value: Any) -> str:
    return type(value).__name__


def fields_map(value: Any, path: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
    """A map with str keys drawn from ``allowed`` and every ``required`` key present; a misspelt field is an
    error rather than silently ignored."""
    if not isinstance(value, dict):
        raise fail(STRUCTURE, path, f"expected a map of fields, got {_kind(value)}")
    for key in value:
        if key not in allowed:
            raise fail(STRUCTURE, f"{path}.{key}",
                       f"unknown field {key!r}; allowed: {', '.join(allowed) or 'none'}")
    for key in required:
        if key not in value:
            raise fail(MISSING, f"{path}.{key}", f"required field {key!r} is missing")
    return value


def as_str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise fail(TYPE, path, f"expected a string, got {_kind(value)}")
    return value


def as_bool(value: Any, path: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise fail(TYPE, path, f"expected a bool, got {_kind(value)}")
    return bool(value)


def as_int(value: Any, path: str, lo: int = INT64_MIN, hi: int = UINT64_MAX) -> int:
    """An int (NumPy integers accepted, bools refused) within [lo, hi]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise fail(TYPE, path, f"expected an integer, got {_kind(value)}")
    value = int(value)
    if not lo <= value <= hi:
        raise fail(TYPE, path, f"integer {value} is out of range [{lo}, {hi}]")
    return value


def as_float(value: Any, path: str) -> float:
    """A finite float; ints are accepted and widened, since 1 and 1.0 mean the same here."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise fail(TYPE, path, f"expected a number, got {_kind(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise fail(TYPE, path, f"{value} is not finite (NaN and infinities have no canonical encoding)")
    return value


def as_bytes(value: Any, path: str) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise fail(TYPE, path, f"expected bytes, got {_kind(value)}")
    return bytes(value)


def as_list(value: Any, path: str, item: Callable[[Any, str], Any] | None = None, *,
            min_len: int = 0, length: int | None = None) -> list:
    """A list (tuples become lists), each item passed through ``item`` with its indexed path."""
    if not isinstance(value, (list, tuple)):
        raise fail(TYPE, path, f"expected a list, got {_kind(value)}")
    if length is not None and len(value) != length:
        raise fail(TYPE, path, f"expected {length} items, got {len(value)}")
    if len(value) < min_len:
        raise fail(STRUCTURE, path, f"expected at least {min_len} item(s), got {len(value)}")
    return [item(v, f"{path}[{i}]") if item else v for i, v in enumerate(value)]


def as_dims(value: Any, path: str) -> list[int]:
    """[x, y, z] of positive ints (workgroup sizes and dispatch counts)."""
    return as_list(value, path, lambda v, p: as_int(v, p, 1, 2**32 - 1), length=3)


def as_handle(value: Any, path: str, tag: str) -> str:
    """A well-formed handle string with ``tag``; returned as given (a plain str stays a str)."""
    if not isinstance(value, str):
        raise fail(TYPE, path, f"expected a handle string, got {_kind(value)}")
    if not is_handle(value):
        raise fail(TYPE, path, f"{value!r:.90} is not a handle (&h_<tag>_<64 hex>)")
    found = value.split("_", 2)[1]
    if found != tag:
        raise fail(TYPE, path, f"handle has tag {found!r}, expected a {tag!r} handle")
    return value


def plain(value: Any, path: str) -> Any:
    """A value with tuples turned into lists throughout; map keys must be strings (LC-B's rule)."""
    if isinstance(value, (list, tuple)):
        return [plain(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise fail(TYPE, path, f"map key {k!r} is not a string")
            out[k] = plain(v, f"{path}.{k}")
        return out
    return value


def as_scalar(value: Any, path: str) -> bool | int | float:
    """A bool, int or finite float (NumPy scalars become Python ones)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return as_int(value, path, INT64_MIN, UINT64_MAX)
    if isinstance(value, (float, np.floating)):
        return as_float(value, path)
    raise fail(TYPE, path, f"expected a bool, int or float, got {_kind(value)}")
