"""The LC-B tensor ext: a small canonical header followed by the raw array bytes.

Payload = dtype code (1 byte), ndim (1 byte), ndim little-endian uint64 dims, then the data in
little-endian C order. No padding: with the ext32 header (6 bytes, used for every payload of 64 KiB or
more) the data starts 8 + 8*ndim bytes after the marker, so a large top-level tensor read from a
page-aligned mmap is 8-byte aligned. Decode wraps those bytes in a read-only NumPy view (zero copy).
"""
from __future__ import annotations

import math
import struct
import sys

import numpy as np

from hlx_core.codec.profile import MAX_LEN32, Fail

#: dtype code: high nibble = kind (0 bool, 1 signed int, 2 unsigned int, 3 IEEE float, 4 bfloat16), low
#: nibble = log2 of the item size in bytes.
DTYPE_CODES: dict[tuple[str, int], int] = {
    ("b", 1): 0x00,
    ("i", 1): 0x10, ("i", 2): 0x11, ("i", 4): 0x12, ("i", 8): 0x13,
    ("u", 1): 0x20, ("u", 2): 0x21, ("u", 4): 0x22, ("u", 8): 0x23,
    ("f", 2): 0x31, ("f", 4): 0x32, ("f", 8): 0x33,
}
CODE_DTYPES: dict[int, np.dtype] = {
    code: np.dtype(("?" if kind == "b" else "<" + kind + str(size)))
    for (kind, size), code in DTYPE_CODES.items()
}
#: NumPy has no bfloat16; ml_dtypes' (the one JAX uses) is a 2-byte dtype of kind "V", so it is matched by
#: identity, never by (kind, size): a raw "V2" is not a tensor dtype.
BFLOAT16_CODE = 0x41
_bfloat16: list[np.dtype] = []  # ml_dtypes' bfloat16, once imported


def bfloat16() -> np.dtype:
    """ml_dtypes' bfloat16, imported on first use: loading ml_dtypes' extension takes 0.1-0.7 s, more than
    the rest of ``import hlx``, and most processes never meet a bfloat16 (a bfloat16 array can only exist
    once ml_dtypes is imported, so nothing is missed by waiting). Also registers the name "bfloat16" with
    NumPy, so ``np.dtype("bfloat16")`` works from then on."""
    if not _bfloat16:
        import ml_dtypes

        _bfloat16.append(np.dtype(ml_dtypes.bfloat16))
        CODE_DTYPES[BFLOAT16_CODE] = _bfloat16[0]
    return _bfloat16[0]


def tensor_dtype(name: str) -> np.dtype:
    """The NumPy dtype a contract's dtype name stands for ("bfloat16" imports ml_dtypes first)."""
    return bfloat16() if name == "bfloat16" else np.dtype(name)


def dtype_code(dtype: np.dtype) -> int | None:
    """The LC-B code of a tensor dtype, else None."""
    if dtype.kind == "V":
        return BFLOAT16_CODE if "ml_dtypes" in sys.modules and dtype == bfloat16() else None
    return DTYPE_CODES.get((dtype.kind, dtype.itemsize))

#: NumPy 1.x's dimension limit; fixed by the profile so every supported NumPy can decode every tensor.
MAX_NDIM = 32
_HEADER = struct.Struct("<BB")
_U8 = np.dtype(np.uint8)


def tensor_header(dtype: np.dtype, shape: tuple[int, ...]) -> tuple[int, bytes]:
    """(dtype code, payload header) of a tensor of this dtype and shape: what precedes its data, known
    without the data (a device hashing a tensor it holds needs only this from the host); E_SIZE_EXCEEDED
    past the ext32 payload limit."""
    code = dtype_code(dtype)
    if code is None:
        raise Fail("E_TYPE", f"unsupported tensor dtype {dtype}")
    if len(shape) > MAX_NDIM:
        raise Fail("E_TYPE", f"tensor has {len(shape)} dimensions, LC-B allows {MAX_NDIM}")
    header = _HEADER.pack(code, len(shape)) + struct.pack(f"<{len(shape)}Q", *shape)
    nbytes = math.prod(shape) * dtype.itemsize
    if len(header) + nbytes > MAX_LEN32:
        raise Fail("E_SIZE_EXCEEDED", f"tensor of {nbytes} bytes exceeds the ext32 payload limit")
    return code, header


def tensor_parts(arr: np.ndarray, limit: int | None = None) -> tuple[bytes, memoryview]:
    """(payload header, data bytes) for an array; copies only to fix byte order, layout or bool bytes, and
    only after the size is known to fit (the ext32 limit, and ``limit`` bytes of data when given)."""
    if type(arr) is not np.ndarray and isinstance(arr, np.ma.MaskedArray):
        raise Fail("E_TYPE", "masked arrays are not tensors (the mask would be lost); encode data and mask")
    code, header = tensor_header(arr.dtype, arr.shape)
    nbytes = arr.size * arr.dtype.itemsize  # checked before any copy: a broadcast view may be far larger
    if limit is not None and nbytes > limit:
        raise Fail("E_SIZE_EXCEEDED", f"tensor of {nbytes} bytes exceeds the {limit}-byte limit (set_limits)")
    try:
        flat = np.ascontiguousarray(arr, dtype=CODE_DTYPES[code]).reshape(-1).view(_U8)
    except MemoryError:
        raise Fail("E_HOST_OOM", f"no host memory for the {nbytes}-byte contiguous copy of a tensor") from None
    if code == 0x00 and flat.size and flat.max() > 1:
        flat = np.not_equal(flat, 0).view(_U8)
    return header, memoryview(flat)


def tensor_from(buf: memoryview, pos: int, n: int, at: int) -> np.ndarray:
    """A read-only view of the tensor whose payload occupies ``buf[pos:pos+n]``; strict about the header.
    ``at`` is the offset of the ext marker, for error messages."""
    try:
        return _tensor_view(buf, pos, n)
    except Fail as fail:
        fail.message += f" (tensor at byte {at})"
        raise


def _tensor_view(buf: memoryview, pos: int, n: int) -> np.ndarray:
    if n < 2:
        raise Fail("E_LC_PARSE", f"tensor payload of {n} bytes is shorter than its 2-byte header")
    code, ndim = _HEADER.unpack_from(buf, pos)
    dtype = CODE_DTYPES.get(code)
    if dtype is None:
        if code != BFLOAT16_CODE:
            raise Fail("E_LC_PARSE", f"unknown tensor dtype code 0x{code:02x}")
        dtype = bfloat16()
    if ndim > MAX_NDIM:
        raise Fail("E_LC_PARSE", f"tensor ndim {ndim} exceeds {MAX_NDIM}")
    data_pos = pos + 2 + 8 * ndim
    if data_pos > pos + n:
        raise Fail("E_LC_PARSE", f"tensor payload of {n} bytes is shorter than its {ndim}-d header")
    shape = struct.unpack_from(f"<{ndim}Q", buf, pos + 2)
    count = 1
    for dim in shape:
        count *= dim
    held = pos + n - data_pos
    if count * dtype.itemsize != held:
        raise Fail("E_LC_PARSE", f"tensor shape {shape} of {dtype} needs {count * dtype.itemsize} data "
                                 f"bytes, payload holds {held}")
    try:
        arr = np.frombuffer(buf, dtype=dtype, count=count, offset=data_pos).reshape(shape)
    except ValueError as exc:
        raise Fail("E_LC_PARSE", f"tensor shape {shape} is not representable: {exc}") from None
    if code == 0x00 and count and arr.view(_U8).max() > 1:
        raise Fail("E_LC_PARSE", "bool tensor holds a byte other than 0 or 1")
    arr.flags.writeable = False
    return arr
