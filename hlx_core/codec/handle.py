"""Handles: ``&h_<tag>_<64 lowercase hex>``, the BLAKE3-256 of a value's LC-B bytes.

The tag names the kind of value so a reader can tell a tensor from a contract without resolving it; it is
derived from the value, so equal values always get equal handles.
"""
from __future__ import annotations

import os
import re
from typing import Any, Iterable, Sequence, Union

import blake3
import numpy as np

from hlx_core.errors import CodecError, HandleError

Buffer = Union[bytes, bytearray, memoryview]
TAGS = ("null", "bool", "int", "float", "str", "blob", "list", "map", "tensor", "contract", "ref")
_TAG_SET = frozenset(TAGS)
_HANDLE_RE = re.compile(r"&h_(" + "|".join(TAGS) + r")_([0-9a-f]{64})")  # fullmatch: "$" would allow a "\n"
_CONTRACT_KEY_RE = re.compile(r"^[0-9]+$")


def _check_tag(tag: str) -> None:
    if tag not in _TAG_SET:
        raise HandleError("E_HANDLE_INVALID", f"unknown handle tag {tag!r:.40}; one of {', '.join(TAGS)}")


class Handle(str):
    """A content address. A ``str`` subclass so it prints, compares and hashes like its text."""

    __slots__ = ()

    def __new__(cls, text: str) -> "Handle":
        if isinstance(text, Handle):
            return text
        if not isinstance(text, str) or not _HANDLE_RE.fullmatch(text):
            raise HandleError("E_HANDLE_INVALID", f"not a handle: {text!r:.120} (expected &h_<tag>_<64 hex>)")
        return super().__new__(cls, text)

    @classmethod
    def from_digest(cls, tag: str, digest: bytes) -> "Handle":
        """The handle of a value of kind ``tag`` whose LC-B bytes hash to the 32-byte ``digest``."""
        _check_tag(tag)
        if not isinstance(digest, bytes) or len(digest) != 32:
            what = f"{len(digest)} bytes" if isinstance(digest, bytes) else f"a {type(digest).__name__}"
            raise HandleError("E_HANDLE_INVALID", f"a handle digest is 32 bytes, got {what}")
        return super().__new__(cls, f"&h_{tag}_{digest.hex()}")

    @classmethod
    def hashed(cls, tag: str, chunks: Sequence[Buffer]) -> "Handle":
        """The handle of a value of kind ``tag`` whose LC-B encoding is the concatenation of ``chunks``:
        ``from_digest(tag, blake3_digest(chunks))`` without the digest's checks and its bytes' round trip
        (the hex digest is 64 lowercase hex digits by construction), which every warm run pays per output."""
        _check_tag(tag)
        if len(chunks) == 1 and type(chunks[0]) is bytes and len(chunks[0]) < HASH_THREADS_MIN_BYTES:
            hexdigest = blake3.blake3(chunks[0]).hexdigest()  # a small value: most warm runs' outputs
        else:
            hexdigest = blake3_digest(chunks).hex()
        return str.__new__(cls, f"&h_{tag}_{hexdigest}")

    @property
    def tag(self) -> str:
        return self.split("_", 2)[1]

    @property
    def hex(self) -> str:
        return self[-64:]

    @property
    def digest(self) -> bytes:
        return bytes.fromhex(self.hex)

    def __repr__(self) -> str:
        return f"Handle({str.__repr__(self)})"


def is_handle(text: Any) -> bool:
    """True when ``text`` is a well-formed handle string (a Handle or plain str)."""
    return isinstance(text, str) and bool(_HANDLE_RE.fullmatch(text))


def tag_of(value: Any) -> str:
    """The handle tag for a value: a map with one all-digit key is a contract."""
    if type(value) is np.ndarray:  # every output a run collapses: ahead of the scalar checks
        return "tensor"
    if value is None:
        return "null"
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, Handle):
        return "ref"
    if isinstance(value, (int, np.integer)):
        return "int"
    if isinstance(value, (float, np.floating)):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "blob"
    if isinstance(value, np.ndarray):
        return "tensor"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        if len(value) == 1 and all(isinstance(k, str) and _CONTRACT_KEY_RE.match(k) for k in value):
            return "contract"
        return "map"
    raise CodecError("E_TYPE", f"cannot encode {type(value).__module__}.{type(value).__qualname__}")


#: From this many bytes BLAKE3 hashes on all cores (``max_threads=AUTO``); below it one thread is faster,
#: the pool's hand-off costing more than it saves. Measured with the blake3 package, one thread's time over
#: all cores' (2026-12-01): on the 16-core H200 host 0.97x at 128 KiB, 2.07x at 256 KiB, 3.13x at 512 KiB,
#: 4.82x at 1 MiB; on the 2-core development machine 0.61x, 0.82x, 1.53x, 1.59x. GPU hosts decide.
#: The digest is the same either way (a BLAKE3 tree does not depend on who hashes its chunks).
HASH_THREADS_MIN_BYTES = 256 << 10
# blake3 hashes on a Rayon thread pool that does not survive fork(): a forked child that hashes on it
# deadlocks. So a child forked after the pool started hashes on one thread.
_pool = {"started": False, "usable": True}


def _after_fork_in_child() -> None:
    _pool["usable"] = not _pool["started"]


os.register_at_fork(after_in_child=_after_fork_in_child)


def blake3_digest(chunks: Iterable[Buffer]) -> bytes:
    """BLAKE3-256 of the concatenation of ``chunks``, without concatenating them.

    Inputs from ``HASH_THREADS_MIN_BYTES`` on are hashed on all cores; chunks may be any C-contiguous
    buffers (tensor views included).
    """
    views = [c if type(c) is bytes else _byte_view(c) for c in chunks]
    if len(views) == 1 and len(views[0]) < HASH_THREADS_MIN_BYTES:  # a small value: most warm runs' outputs
        return blake3.blake3(views[0]).digest()
    total = sum(len(v) for v in views)
    threaded = total >= HASH_THREADS_MIN_BYTES and _pool["usable"]
    if threaded:
        _pool["started"] = True
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO if threaded else 1)
    for view in views:
        hasher.update(view)
    return hasher.digest()


def _byte_view(buf: Any) -> memoryview:
    view = memoryview(buf)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")
