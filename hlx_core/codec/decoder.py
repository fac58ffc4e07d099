"""Strict LC-B decoder: canonical msgpack bytes to Python values.

Strictness is what makes content addresses trustworthy: every byte string this decoder accepts is the
exact encoding of the value it returns, so two different byte strings never decode to equal values.
Tensors come back as read-only NumPy views into the input buffer (an mmap stays an mmap).
"""
from __future__ import annotations

import math
import unicodedata
from typing import Any, Callable

from hlx_core.codec.handle import TAGS, Handle
from hlx_core.codec.profile import (
    EXT_HANDLE,
    EXT_TENSOR,
    F64,
    FIXEXT,
    I8,
    I16,
    I32,
    I64,
    MAX_DEPTH,
    U8,
    U16,
    U32,
    U64,
    Fail,
    max_bytes,
)
from hlx_core.codec.tensor import tensor_from
from hlx_core.errors import CodecError

_HANDLE_TAGS = {tag.encode("ascii"): tag for tag in TAGS}
_DIGEST_LEN = 32
_FIXEXT_SIZE = {marker: size for size, marker in FIXEXT.items()}
# Fixed-width int forms: marker -> (layout, name, bound). A uint below its bound or an int above it has a
# shorter form, so it is not canonical.
_INT_FORMS = {
    0xCC: (U8, "uint8", 0x80), 0xCD: (U16, "uint16", 0x100), 0xCE: (U32, "uint32", 0x10000),
    0xCF: (U64, "uint64", 0x100000000),
    0xD0: (I8, "int8", -33), 0xD1: (I16, "int16", -0x81), 0xD2: (I32, "int32", -0x8001),
    0xD3: (I64, "int64", -0x80000001),
}
_NAMES = {0xC1: "reserved marker 0xc1", 0xCA: "float32 marker 0xca (LC-B floats are float64)"}


class _Decoder:
    __slots__ = ("buf", "end")

    def __init__(self, buf: memoryview) -> None:
        self.buf = buf
        self.end = len(buf)

    def need(self, pos: int, n: int, what: str) -> None:
        if pos + n > self.end:
            raise Fail("E_LC_PARSE", f"truncated {what} at byte {pos}: needs {n} bytes, "
                                     f"{self.end - pos} left")

    def length(self, pos: int, size: int, minimum: int, what: str) -> int:
        """Read the big-endian length field of ``size`` bytes after the marker at ``pos``; refuse a length
        that a shorter form could have carried."""
        self.need(pos + 1, size, what)
        n = int.from_bytes(self.buf[pos + 1:pos + 1 + size], "big")
        if n < minimum:
            raise Fail("E_LC_PARSE", f"non-shortest {what} for length {n} at byte {pos}")
        return n

    def value(self, pos: int, depth: int) -> tuple[Any, int]:
        if pos >= self.end:
            raise Fail("E_LC_PARSE", f"truncated input: value expected at byte {pos}")
        b = self.buf[pos]
        if b < 0x80:
            return b, pos + 1
        if b >= 0xE0:
            return b - 0x100, pos + 1
        if b >= 0xC0:
            return _TABLE[b - 0xC0](self, pos, b, depth)
        if b >= 0xA0:
            return self.str(pos, pos + 1, b & 0x1F)
        if b >= 0x90:
            return self.array(pos, pos + 1, b & 0x0F, depth)
        return self.map(pos, pos + 1, b & 0x0F, depth)

    # --- scalars -----------------------------------------------------------------------------------
    def constant(self, pos: int, b: int, depth: int) -> tuple[Any, int]:
        return (None, False, False, True)[b - 0xC0], pos + 1

    def refused(self, pos: int, b: int, depth: int) -> tuple[Any, int]:
        raise Fail("E_LC_PARSE", f"{_NAMES[b]} at byte {pos}")

    def integer(self, pos: int, b: int, depth: int) -> tuple[Any, int]:
        form, name, bound = _INT_FORMS[b]
        size = form.size
        self.need(pos + 1, size, name)
        v = form.unpack_from(self.buf, pos + 1)[0]
        if v < bound if b <= 0xCF else v > bound:
            raise Fail("E_LC_PARSE", f"non-shortest {name} for {v} at byte {pos}")
        return v, pos + 1 + size

    def float64(self, pos: int, b: int, depth: int) -> tuple[Any, int]:
        self.need(pos + 1, 8, "float64")
        v = F64.unpack_from(self.buf, pos + 1)[0]
        if not math.isfinite(v):
            raise Fail("E_FLOAT_SPECIAL", f"float64 {v} at byte {pos}")
        if v == 0.0 and math.copysign(1.0, v) < 0:
            raise Fail("E_LC_PARSE", f"-0.0 at byte {pos} (LC-B writes +0.0)")
        return v, pos + 9

    # --- str / bin ---------------------------------------------------------------------------------
    def str_n(self, pos: int, b: int, depth: int) -> tuple[Any, int]:
        size = 1 << (b - 0xD9)
        n = self.length(pos, size, (32, 0x100, 0x10000)[b - 0xD9], f"str{8 * size}")
        return self.str(pos, pos + 1 + size, n)

    def str(self, pos: int, start: int, n: int) -> tuple[Any, int]:
        end = start + n
        if end > self.end:
            self.need(start, n, "str")
        try:
            s = str(self.buf[start:end], "utf-8")
        except UnicodeDecodeError as exc:
            raise Fail("E_LC_PARSE", f"invalid UTF-8 in str at byte {pos}: {exc.reason} at byte "
                                     f"{start + exc.start}") from None
        if len(s) != n and not unicodedata.is_normalized("NFC", s):  # only non-ASCII text can be non-NFC
            raise Fail("E_LC_PARSE", f"str at byte {pos} is not NFC")
        return s, end

    def bin(self, pos: int, b: int, depth: int) -> tuple[Any, int]:
        size = 1 << (b - 0xC4)
        n = self.length(pos, size, (0, 0x100, 0x10000)[b - 0xC4], f"bin{8 * size}")
        start = pos + 1 + size
        self.need(start, n, "bin")
        return bytes(self.buf[start:start + n]), start + n

    # --- containers --------------------------------------------------------------------------------
    def array_n(self, pos: int, b: int, depth: int) -> tuple[Any, int]:
        size = 2 if b == 0xDC else 4
        n = self.length(pos, size, 16 if size == 2 else 0x10000, f"array{8 * size}")
        return self.array(pos, pos + 1 + size, n, depth)

    def map_n(self, pos: int, b: int, depth: int) -> tuple[Any, int]:
        size = 2 if b == 0xDE else 4
        n = self.length(pos, size, 16 if size == 2 else 0x10000, f"map{8 * size}")
        return self.map(pos, pos + 1 + size, n, depth)

    def enter(self, pos: int, start: int, n: int, per_item: int, depth: int, what: str) -> None:
        if depth >= MAX_DEPTH:
            raise Fail("E_DEPTH_EXCEEDED", f"{what} at byte {pos} nested deeper than {MAX_DEPTH}")
        if start + n * per_item > self.end:
            raise Fail("E_LC_PARSE", f"truncated {what} at byte {pos}: {n} entries cannot fit in "
                                     f"{self.end - start} bytes")

    def array(self, pos: int, start: int, n: int, depth: int) -> tuple[Any, int]:
        self.enter(pos, start, n, 1, depth, "array")
        out = []
        value = self.value
        try:
            for _ in range(n):
                item, start = value(start, depth + 1)
                out.append(item)
        except Fail as fail:
            fail.at_index(len(out))  # the item that failed is the next one
            raise
        return out, start

    def map(self, pos: int, start: int, n: int, depth: int) -> tuple[Any, int]:
        self.enter(pos, start, n, 2, depth, "map")
        out: dict[str, Any] = {}
        buf = self.buf
        prev = None
        try:
            for _ in range(n):
                key = None
                kpos = start
                b = buf[kpos] if kpos < self.end else -1
                if 0xA0 <= b <= 0xBF:
                    key, start = self.str(kpos, kpos + 1, b & 0x1F)
                elif 0xD9 <= b <= 0xDB:
                    key, start = self.str_n(kpos, b, depth)
                elif b < 0:
                    self.need(kpos, 1, "map key")
                else:
                    raise Fail("E_TYPE", f"map key at byte {kpos} is not a str (marker 0x{b:02x})")
                if prev is not None and key <= prev:
                    raise Fail("E_FIELD_ORDER", f"map key {key!r:.60} at byte {kpos} "
                               + ("repeats" if key == prev else f"sorts before {prev!r:.60}"))
                out[key], start = self.value(start, depth + 1)
                prev = key
        except Fail as fail:
            if key is not None:
                fail.at_key(key)
            raise
        return out, start

    # --- ext ---------------------------------------------------------------------------------------
    def ext(self, pos: int, b: int, depth: int) -> tuple[Any, int]:
        fixed = _FIXEXT_SIZE.get(b)
        if fixed is not None:
            n, head = fixed, 1
        else:
            size = 1 << (b - 0xC7)
            n = self.length(pos, size, (0, 0x100, 0x10000)[b - 0xC7], f"ext{8 * size}")
            if b == 0xC7 and n in FIXEXT:
                raise Fail("E_LC_PARSE", f"non-shortest ext8 for length {n} at byte {pos} (fixext{n})")
            head = 1 + size
        self.need(pos + head, 1 + n, "ext")
        kind = self.buf[pos + head]
        start = pos + head + 1
        if kind == EXT_TENSOR:
            return tensor_from(self.buf, start, n, pos), start + n
        if kind == EXT_HANDLE:
            return self.handle(pos, start, n), start + n
        raise Fail("E_TYPE", f"unknown ext type {kind - 0x100 if kind >= 0x80 else kind} at byte {pos}")

    def handle(self, pos: int, start: int, n: int) -> Handle:
        tag = _HANDLE_TAGS.get(bytes(self.buf[start:start + n - _DIGEST_LEN])) if n > _DIGEST_LEN else None
        if tag is None:
            raise Fail("E_LC_PARSE", f"handle ext at byte {pos} has no known tag before its 32-byte digest")
        return Handle.from_digest(tag, bytes(self.buf[start + n - _DIGEST_LEN:start + n]))


_TABLE: list[Callable[[_Decoder, int, int, int], tuple[Any, int]]] = [
    _Decoder.constant, _Decoder.refused, _Decoder.constant, _Decoder.constant,       # c0 - c3
    _Decoder.bin, _Decoder.bin, _Decoder.bin,                                         # c4 - c6
    _Decoder.ext, _Decoder.ext, _Decoder.ext,                                         # c7 - c9
    _Decoder.refused, _Decoder.float64,                                               # ca - cb
    _Decoder.integer, _Decoder.integer, _Decoder.integer, _Decoder.integer,           # cc - cf
    _Decoder.integer, _Decoder.integer, _Decoder.integer, _Decoder.integer,           # d0 - d3
    _Decoder.ext, _Decoder.ext, _Decoder.ext, _Decoder.ext, _Decoder.ext,             # d4 - d8
    _Decoder.str_n, _Decoder.str_n, _Decoder.str_n,                                   # d9 - db
    _Decoder.array_n, _Decoder.array_n, _Decoder.map_n, _Decoder.map_n,               # dc - df
]


def _as_bytes(data: Any) -> memoryview:
    try:
        view = memoryview(data)
    except TypeError:
        raise CodecError("E_TYPE", f"decode needs a bytes-like object, got {type(data).__name__}") from None
    if not view.c_contiguous:
        raise CodecError("E_TYPE", "decode needs a contiguous buffer")
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def decode(data: bytes | bytearray | memoryview | Any) -> Any:
    """The value whose LC-B encoding is exactly ``data``; CodecError (with the byte offset) otherwise.

    Tensors are read-only views into ``data``: keep ``data`` (e.g. an mmap) alive and unmodified while
    they are in use.
    """
    buf = _as_bytes(data)
    limit = max_bytes()
    if len(buf) > limit:
        raise CodecError("E_SIZE_EXCEEDED", f"input of {len(buf)} bytes exceeds the {limit}-byte limit "
                                            "(set_limits)")
    try:
        value, end = _Decoder(buf).value(0, 0)
        if end != len(buf):
            raise Fail("E_LC_PARSE", f"{len(buf) - end} trailing bytes after the value at byte {end}")
    except Fail as fail:
        raise fail.to_error() from None
    return value
