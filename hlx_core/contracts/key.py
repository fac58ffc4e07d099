"""``raw_key``: a cheap exact key for a contract as given, before it is validated or encoded.

The planner's cache and the kernel helpers' record of what they built key contracts on these bytes:
msgpack packed in C with exact types only, so equal keys mean equal contracts (same structure, types,
values and key order, bytes-like values counting as bytes; another key order merely makes another key).
A ``Handle`` packs apart from the plain string that spells it, since the two encode differently in LC-B
and so make different contracts; its packing carries a per-process salt, so no value written into a
contract can pass for one, and equal keys stay equal contracts even when one was never validated.
Anything else (tuples, NumPy scalars, inline tensors, subclasses of dict or str) gives None: callers fall
back to the canonical encoding.
"""
from __future__ import annotations

import os
import threading
from functools import lru_cache
from typing import Any

import msgpack

from hlx_core.codec.handle import Handle

_HANDLE_EXT = 1
_SALT = os.urandom(16)


@lru_cache(maxsize=4096, typed=True)
def _pack_handle(value: Any) -> msgpack.ExtType:
    """A Handle's ExtType, the Packer's ``default`` for every value it cannot pack with exact types. Built
    once per handle: a warm run packs the same few handles every time, and building an ExtType costs more
    than the rest of the packing. Called from C on a cache hit, no Python frame: ``typed`` keys the cache
    on the value's exact type as well, so a plain str or a str subclass with a handle's text never gets a
    Handle's packing (their call reaches the check below, which refuses them)."""
    if type(value) is Handle:
        return msgpack.ExtType(_HANDLE_EXT, _SALT + value.encode())
    raise TypeError(type(value).__name__)


_local = threading.local()  # each thread's Packer (``packb`` makes one per call; a Packer is not thread-safe)


def raw_key(contract: Any) -> bytes | None:
    """The exact-type msgpack bytes of ``contract``, or None when it holds a value they cannot carry."""
    packer = getattr(_local, "packer", None)
    if packer is None:
        packer = _local.packer = msgpack.Packer(default=_pack_handle, strict_types=True)
    try:
        return packer.pack(contract)  # (a failed pack leaves the packer empty for the next)
    except Exception:  # whatever a value raises when packed or hashed (the cache's key): not carried
        return None

