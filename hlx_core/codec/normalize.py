"""``pre_serialize``: turn user data into a value the strict encoder accepts, or say why it cannot.

The encoder refuses what it would have to guess about (non-NFC text, NaN); this explicit step makes the
lossy choices visible: NFC and LF line endings for text, lists for tuples, +0.0 for -0.0.
"""
from __future__ import annotations

import math
import unicodedata
from typing import Any

import numpy as np

from hlx_core.codec.handle import Handle
from hlx_core.codec.profile import MAX_DEPTH, Fail, exact_float


def _text(s: str) -> str:
    return unicodedata.normalize("NFC", str.replace(s, "\r\n", "\n"))


def _normalize(v: Any, depth: int) -> Any:
    if v is None or isinstance(v, (bool, np.bool_)):
        return None if v is None else bool(v)
    if isinstance(v, Handle):
        return v
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = exact_float(v)
        if not math.isfinite(f):
            raise Fail("E_FLOAT_SPECIAL", f"float {f} is not finite")
        return f if f != 0.0 else 0.0
    if isinstance(v, str):
        return _text(v)
    if isinstance(v, (bytes, bytearray, memoryview, np.ndarray)):
        return v
    if isinstance(v, (dict, list, tuple)) and depth >= MAX_DEPTH:
        raise Fail("E_DEPTH_EXCEEDED", f"containers nested deeper than {MAX_DEPTH}")
    if isinstance(v, dict):
        out: dict[str, Any] = {}
        key = None
        try:
            for key, item in v.items():
                if not isinstance(key, str):
                    raise Fail("E_TYPE", f"map key {key!r:.60} is a {type(key).__name__}, LC-B keys are str")
                text = _text(key)
                if text in out:
                    raise Fail("E_FIELD_ORDER", f"two keys normalise to {text!r:.60}")
                out[text] = _normalize(item, depth + 1)
        except Fail as fail:
            fail.at_key(key)
            raise
        return out
    if isinstance(v, (list, tuple)):
        items = []
        try:
            for item in v:
                items.append(_normalize(item, depth + 1))
        except Fail as fail:
            fail.at_index(len(items))  # the item that failed is the next one
            raise
        return items
    raise Fail("E_TYPE", f"cannot encode {type(v).__module__}.{type(v).__qualname__}")


def pre_serialize(value: Any) -> Any:
    """A copy of ``value`` normalised for LC-B: strings (and keys) NFC with CRLF turned into LF, tuples as
    lists, NumPy scalars as Python numbers, -0.0 as 0.0. NaN/Inf raise E_FLOAT_SPECIAL, unsupported types
    E_TYPE, keys that collide after normalisation E_FIELD_ORDER. Tensors, bytes and handles pass through
    unchanged (tensor data is never rewritten)."""
    try:
        return _normalize(value, 0)
    except Fail as fail:
        raise fail.to_error() from None
