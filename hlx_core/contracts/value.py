"""Value contracts 14-22 of the HLX registry: a typed scalar or collection under the field ``"@0"``.

They wrap a plain value with its declared type, e.g. ``{"14": {"@0": 42}}`` is an Int. The ids and field
names follow the original HLX contract catalogue (see docs/CONTRACTS.md).
"""
from __future__ import annotations

from typing import Any, Callable

from hlx_core.codec import encode_chunks
from hlx_core.codec.handle import is_handle
from hlx_core.contracts.fields import (
    INT64_MAX,
    INT64_MIN,
    TYPE,
    as_bool,
    as_bytes,
    as_float,
    as_int,
    as_str,
    fail,
    fields_map,
    plain,
)
from hlx_core.errors import CodecError


def _int(value: Any, path: str) -> int:
    return as_int(value, path, INT64_MIN, INT64_MAX)


def _array(value: Any, path: str) -> list:
    if not isinstance(value, (list, tuple)):
        raise fail(TYPE, path, f"expected a list, got {type(value).__name__}")
    return plain(value, path)


def _object(value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        raise fail(TYPE, path, f"expected a map with string keys, got {type(value).__name__}")
    return plain(value, path)


def _handle(value: Any, path: str) -> str:
    if not is_handle(value):
        raise fail(TYPE, path, f"{value!r:.90} is not a handle (&h_<tag>_<64 hex>)")
    return value


# id -> (registry name, checker of "@0"; None for Null, which has no fields)
VALUE_CONTRACTS: dict[str, tuple[str, Callable[[Any, str], Any] | None]] = {
    "14": ("Int", _int),
    "15": ("Float", as_float),
    "16": ("String", as_str),
    "17": ("Bytes", as_bytes),
    "18": ("Array", _array),
    "19": ("Object", _object),
    "20": ("Handle", _handle),
    "21": ("Null", None),
    "22": ("Bool", as_bool),
}


def _encodable(value: Any, path: str) -> Any:
    """``value`` when LC-B can encode it (so the contract collapses); otherwise E_CONTRACT_FIELD_TYPE at the
    path of the offending item (a set in an Array, a non-NFC string, NaN inside an Object ...)."""
    try:
        encode_chunks(value)
    except CodecError as exc:
        raise fail(TYPE, path + (exc.path[1:] if exc.path else ""), exc.message) from None
    return value


def validate_value(cid: str, fields: Any, path: str) -> dict:
    """Normalised value contract ``cid`` (one of VALUE_CONTRACTS)."""
    _name, check = VALUE_CONTRACTS[cid]
    if check is None:
        fields_map(fields, path, ())
        return {}
    fields = fields_map(fields, path, ("@0",), ("@0",))
    p = f"{path}.@0"
    return {"@0": _encodable(check(fields["@0"], p), p)}
