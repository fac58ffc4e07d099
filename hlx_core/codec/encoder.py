"""LC-B encoder: Python values to canonical msgpack pieces.

The encoder writes small items into one bytearray and hands large tensor and bin payloads over as
memoryviews of the caller's memory, so a content-addressed store can hash and write a 1 GiB tensor
without materialising its encoding (``encode_chunks``), and ``encode`` copies each payload once.
"""
from __future__ import annotations

import math
import unicodedata
from typing import Any

import numpy as np

from hlx_core.codec.handle import Handle
from hlx_core.codec.profile import (
    EXT_HANDLE,
    EXT_TENSOR,
    F64,
    MAX_DEPTH,
    MAX_LEN32,
    U16,
    U32,
    U64,
    Fail,
    exact_float,
    ext_header,
    length_header,
    max_bytes,
)
from hlx_core.codec.tensor import tensor_header, tensor_parts

#: Payloads at least this large become their own chunk (a view) instead of being copied into the buffer.
_VIEW_THRESHOLD = 16 * 1024
_INT_MIN = -(2**63)
_UINT_MAX = 2**64 - 1
#: ext marker + tensor header by (dtype, shape): every warm hlx.run collapses outputs of the same dtype and
#: shape again, and building the header is most of a small tensor's encoding time. Cleared when full.
_TENSOR_PREFIXES: dict[tuple[np.dtype, tuple[int, ...]], bytes] = {}
_TENSOR_PREFIXES_MAX = 4096
#: The same by a top-level array's own (dtype, shape), None for a dtype the general path encodes.
_TOP_PREFIXES: dict[tuple[np.dtype, tuple[int, ...]], bytes | None] = {}
_UNSEEN = object()


class _Encoder:
    __slots__ = ("buf", "chunks", "flushed", "limit")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.chunks: list[bytes | memoryview] = []
        self.flushed = 0
        self.limit = max_bytes()

    def finish(self) -> list[bytes | memoryview]:
        self._check_size(0)
        if self.buf or not self.chunks:
            self.chunks.append(bytes(self.buf))
        return self.chunks

    def _check_size(self, extra: int) -> None:
        total = self.flushed + len(self.buf) + extra
        if total > self.limit:
            raise Fail("E_SIZE_EXCEEDED", f"encoding exceeds the {self.limit}-byte limit (set_limits)")

    def _payload(self, data: bytes | memoryview) -> None:
        """Append payload bytes: copied into the buffer when small, a separate chunk when large (the size
        cap is checked here for large payloads and once in ``finish`` for the rest)."""
        n = len(data)
        if n < _VIEW_THRESHOLD:
            self.buf += data
            return
        self._check_size(n)
        if self.buf:
            self.chunks.append(bytes(self.buf))
            self.flushed += len(self.buf)
            self.buf = bytearray()
        self.chunks.append(data)
        self.flushed += n

    def value(self, v: Any, depth: int) -> None:
        t = type(v)
        if t is str:
            self.str(v)
        elif t is int:
            self.int(v)
        elif t is dict:
            self.map(v, depth)
        elif t is list or t is tuple:
            self.array(v, depth)
        elif t is float:
            self.float(v)
        elif t is bool:
            self.buf.append(0xC3 if v else 0xC2)
        elif v is None:
            self.buf.append(0xC0)
        elif t is bytes:
            self.bin(v)
        else:
            self.other(v, depth)

    def other(self, v: Any, depth: int) -> None:
        """Subclasses, NumPy scalars and the ext types (the slower, isinstance-based dispatch)."""
        if isinstance(v, Handle):
            self.handle(v)
        elif isinstance(v, (bool, np.bool_)):
            self.buf.append(0xC3 if v else 0xC2)
        elif isinstance(v, (int, np.integer)):
            self.int(int(v))
        elif isinstance(v, (float, np.floating)):
            self.float(exact_float(v))
        elif isinstance(v, str):
            self.str(v)
        elif isinstance(v, (bytes, bytearray)):
            self.bin(v)
        elif isinstance(v, memoryview):
            self.bin(v.cast("B") if v.c_contiguous else v.tobytes())
        elif isinstance(v, np.ndarray):
            self.tensor(v)
        elif isinstance(v, dict):
            self.map(v, depth)
        elif isinstance(v, (list, tuple)):
            self.array(v, depth)
        else:
            raise Fail("E_TYPE", f"cannot encode {type(v).__module__}.{type(v).__qualname__}")

    def int(self, v: int) -> None:
        buf = self.buf
        if v >= 0:
            if v < 0x80:
                buf.append(v)
            elif v < 0x100:
                buf += bytes((0xCC, v))
            elif v < 0x10000:
                buf += b"\xcd" + U16.pack(v)
            elif v < 0x100000000:
                buf += b"\xce" + U32.pack(v)
            elif v <= _UINT_MAX:
                buf += b"\xcf" + U64.pack(v)
            else:
                raise Fail("E_TYPE", f"int {v} is above 2**64-1")
        elif v >= -32:
            buf.append(v + 0x100)
        elif v >= -0x80:
            buf += bytes((0xD0, v + 0x100))
        elif v >= -0x8000:
            buf += b"\xd1" + v.to_bytes(2, "big", signed=True)
        elif v >= -0x80000000:
            buf += b"\xd2" + v.to_bytes(4, "big", signed=True)
        elif v >= _INT_MIN:
            buf += b"\xd3" + v.to_bytes(8, "big", signed=True)
        else:
            raise Fail("E_TYPE", f"int {v} is below -2**63")

    def float(self, v: float) -> None:
        if not math.isfinite(v):
            raise Fail("E_FLOAT_SPECIAL", f"float {v} is not finite")
        self.buf += b"\xcb" + F64.pack(v if v != 0.0 else 0.0)

    def str(self, v: str) -> None:
        try:
            data = v.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise Fail("E_TYPE", f"string is not encodable as UTF-8: {exc.reason}") from None
        n = len(data)
        if n != len(v) and not unicodedata.is_normalized("NFC", v):  # only non-ASCII text can be non-NFC
            raise Fail("E_TYPE", "string is not NFC (pre_serialize normalises it)")
        if n < 32:
            buf = self.buf
            buf.append(0xA0 | n)
            buf += data
            return
        if n > MAX_LEN32:
            raise Fail("E_SIZE_EXCEEDED", f"string of {n} bytes exceeds the str32 limit")
        self.buf += length_header(0xD9, n)
        self._payload(data)

    def bin(self, v: bytes | bytearray | memoryview) -> None:
        n = len(v)
        if n > MAX_LEN32:
            raise Fail("E_SIZE_EXCEEDED", f"bytes of length {n} exceed the bin32 limit")
        self.buf += length_header(0xC4, n)
        self._payload(v)

    def handle(self, v: Handle) -> None:
        payload = v.tag.encode("ascii") + v.digest
        self.buf += ext_header(EXT_HANDLE, len(payload)) + payload

    def tensor(self, v: np.ndarray) -> None:
        header, data = tensor_parts(v, self.limit - self.flushed - len(self.buf))
        self.buf += ext_header(EXT_TENSOR, len(header) + len(data)) + header
        self._payload(data)

    def _container_header(self, n: int, fix: int, m16: bytes, m32: bytes, depth: int, what: str) -> None:
        if depth >= MAX_DEPTH:
            raise Fail("E_DEPTH_EXCEEDED", f"{what} nested deeper than {MAX_DEPTH}")
        if n < 16:
            self.buf.append(fix | n)
        elif n < 0x10000:
            self.buf += m16 + U16.pack(n)
        elif n <= MAX_LEN32:
            self.buf += m32 + U32.pack(n)
        else:
            raise Fail("E_SIZE_EXCEEDED", f"{what} of {n} entries exceeds the 32-bit count limit")

    def array(self, v: list | tuple, depth: int) -> None:
        self._container_header(len(v), 0x90, b"\xdc", b"\xdd", depth, "array")
        for i, item in enumerate(v):
            try:
                self.value(item, depth + 1)
            except Fail as fail:
                fail.at_index(i)
                raise

    def map(self, v: dict, depth: int) -> None:
        self._container_header(len(v), 0x80, b"\xde", b"\xdf", depth, "map")
        try:
            keys = sorted(v)  # str order is code point order, which is UTF-8 byte order
        except TypeError:
            keys = list(v)  # mixed key types: the loop reports the first key that is not a str
        k = None
        try:
            for k in keys:
                if type(k) is not str and not isinstance(k, str):
                    raise Fail("E_TYPE", f"map key {k!r:.60} is a {type(k).__name__}, LC-B keys are str")
                self.str(k)
                self.value(v[k], depth + 1)
        except Fail as fail:
            fail.at_key(k)
            raise


def encode_chunks(value: Any) -> list[bytes | memoryview]:
    """The LC-B encoding of ``value`` as pieces whose concatenation is ``encode(value)``.

    Large tensor and bin payloads are memoryviews of the caller's memory (no copy): keep the value
    unmodified until the pieces are consumed.
    """
    try:
        if type(value) is np.ndarray:
            chunks = _tensor_chunks(value)
            if chunks is not None:
                return chunks
        enc = _Encoder()
        enc.value(value, 0)
        return enc.finish()
    except Fail as fail:
        raise fail.to_error() from None


def tensor_prefix(dtype: Any, shape: tuple[int, ...]) -> bytes:
    """The LC-B bytes before a top-level tensor's payload (ext marker and tensor header), from its dtype
    (anything ``np.dtype`` takes; the byte order does not matter, payloads are little-endian) and shape
    alone; cached. E_TYPE / E_SIZE_EXCEEDED as the
    encoder would raise them."""
    key = (dtype, shape)
    prefix = _TENSOR_PREFIXES.get(key)
    if prefix is None:
        dt = np.dtype(dtype)
        try:
            _code, header = tensor_header(dt, tuple(shape))
        except Fail as fail:
            raise fail.to_error() from None
        prefix = ext_header(EXT_TENSOR, len(header) + math.prod(shape) * dt.itemsize) + header
        if len(_TENSOR_PREFIXES) >= _TENSOR_PREFIXES_MAX:
            _TENSOR_PREFIXES.clear()
        _TENSOR_PREFIXES[key] = prefix
    return prefix


def _top_prefix(key: tuple[np.dtype, tuple[int, ...]]) -> bytes | None:
    """``tensor_prefix`` of a top-level tensor's (dtype, shape), or None when its dtype takes the general
    path (bool, whose bytes are checked; big-endian, which is swapped); remembered either way, so a warm
    run's output asks one dict instead of its dtype's kind and byte order."""
    dt, shape = key
    prefix = None if dt.kind == "b" or dt.byteorder == ">" else tensor_prefix(dt, shape)
    if len(_TOP_PREFIXES) >= _TENSOR_PREFIXES_MAX:
        _TOP_PREFIXES.clear()
    _TOP_PREFIXES[key] = prefix
    return prefix


def _tensor_chunks(arr: np.ndarray) -> list[bytes | memoryview] | None:
    """A top-level tensor in little-endian C order (what collapsing an output is): its prefix comes from
    ``_TOP_PREFIXES``; None sends anything else (bool bytes to check, a copy to make) the general way."""
    key = (arr.dtype, arr.shape)
    prefix = _TOP_PREFIXES.get(key, _UNSEEN)
    if prefix is _UNSEEN:
        prefix = _top_prefix(key)
    if prefix is None or not arr.flags.c_contiguous:
        return None
    nbytes = arr.nbytes
    if len(prefix) + nbytes > max_bytes():
        raise Fail("E_SIZE_EXCEEDED", f"encoding exceeds the {max_bytes()}-byte limit (set_limits)")
    if nbytes < _VIEW_THRESHOLD:
        return [prefix + arr.tobytes()]  # (C order, as the array is C-contiguous)
    return [prefix, memoryview(arr.reshape(-1).view(np.uint8))]  # bfloat16 too


def encode(value: Any) -> bytes:
    """The canonical LC-B bytes of ``value`` (equal values give equal bytes; key order never matters)."""
    chunks = encode_chunks(value)
    return chunks[0] if len(chunks) == 1 and type(chunks[0]) is bytes else b"".join(chunks)
