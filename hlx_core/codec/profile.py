"""LC-B profile constants shared by the encoder and the decoder: markers, ext type codes, limits.

The byte-level specification lives in docs/LCB.md; this module is its single source in code, so the
encoder and the strict decoder can never disagree about a marker, a limit or which length form is shortest.
"""
from __future__ import annotations

import struct

from hlx_core.errors import CodecError

#: Maximum nesting of containers (arrays and maps). The top-level value sits at depth 0, so 64 nested
#: lists are accepted and a 65th is refused (E_DEPTH_EXCEEDED). Fixed by the profile, not configurable.
MAX_DEPTH = 64

#: Default cap on the size of one encoding, in bytes, on both encode and decode (E_SIZE_EXCEEDED).
#: Configurable with :func:`set_limits`.
DEFAULT_MAX_BYTES = 16 * 2**30

#: msgpack's own ceiling for one str/bin/ext payload and for one array/map count (32-bit length fields).
MAX_LEN32 = 2**32 - 1

#: Application ext type codes (msgpack reserves negative codes).
EXT_HANDLE = 0x48  # 'H': tag ASCII + 32-byte BLAKE3 digest
EXT_TENSOR = 0x54  # 'T': dtype, ndim, shape, raw little-endian C-order bytes

#: fixext payload sizes and their markers.
FIXEXT = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}

_limits = {"max_bytes": DEFAULT_MAX_BYTES}

U8 = struct.Struct(">B")
U16 = struct.Struct(">H")
U32 = struct.Struct(">I")
U64 = struct.Struct(">Q")
I8 = struct.Struct(">b")
I16 = struct.Struct(">h")
I32 = struct.Struct(">i")
I64 = struct.Struct(">q")
F64 = struct.Struct(">d")


def max_bytes() -> int:
    """The current size cap in bytes."""
    return _limits["max_bytes"]


def set_limits(max_bytes: int | None = None) -> int:
    """Set the cap on encoded/decoded size in bytes (``None`` restores DEFAULT_MAX_BYTES).

    Returns the previous cap so callers can restore it. The cap is process-wide: it guards a service
    against oversized inputs, it is not part of the canonical form (depth is).
    """
    previous = _limits["max_bytes"]
    if max_bytes is None:
        max_bytes = DEFAULT_MAX_BYTES
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise CodecError("E_TYPE", f"max_bytes must be a positive int, got {max_bytes!r}")
    _limits["max_bytes"] = max_bytes
    return previous


def exact_float(v: object) -> float:
    """``v`` (a float or NumPy floating scalar) as a Python float; a value float64 cannot hold exactly
    (``np.longdouble(1) / 3``, ``np.longdouble("1e400")``) is E_TYPE rather than silently rounded.
    NaN and infinities pass through for the caller's E_FLOAT_SPECIAL check."""
    f = float(v)  # type: ignore[arg-type]
    if f == f and f != v:
        raise Fail("E_TYPE", f"{type(v).__name__} {v!r:.40} has no exact float64 value (convert it explicitly)")
    return f


def length_header(marker8: int, n: int) -> bytes:
    """The shortest of the 8/16/32-bit length forms for ``n`` bytes: ``marker8`` is the 8-bit form's marker
    (str8 0xd9, bin8 0xc4, ext8 0xc7) and the 16- and 32-bit forms follow it (caller checks n <= MAX_LEN32)."""
    if n < 0x100:
        return bytes((marker8, n))
    if n < 0x10000:
        return bytes((marker8 + 1,)) + U16.pack(n)
    return bytes((marker8 + 2,)) + U32.pack(n)


def ext_header(ext_type: int, n: int) -> bytes:
    """The shortest msgpack ext header for a payload of ``n`` bytes (caller checks n <= MAX_LEN32)."""
    fix = FIXEXT.get(n)
    if fix is not None:
        return bytes((fix, ext_type))
    return length_header(0xC7, n) + bytes((ext_type,))


class Fail(Exception):
    """Internal failure that collects the value path while unwinding; converted to CodecError once."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.parts: list[str] = []

    def at_key(self, key: object) -> None:
        if isinstance(key, str) and key.isidentifier():
            self.parts.append(f".{key}")
        else:
            self.parts.append(f"[{key!r}]")

    def at_index(self, index: int) -> None:
        self.parts.append(f"[{index}]")

    def to_error(self) -> CodecError:
        path = "$" + "".join(reversed(self.parts)) if self.parts else None
        return CodecError(self.code, self.message, path=path)
