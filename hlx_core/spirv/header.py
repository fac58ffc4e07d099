"""SPIR-V header checks: the cheap gate every shader passes before reflection or a driver sees it.

A driver handed a malformed module may crash rather than fail, so the header is checked in Python first and
each failure names the check that failed.
"""
from __future__ import annotations

import struct

from hlx_core.errors import SpirvError

MAGIC = 0x07230203
HEADER_WORDS = 5
SUPPORTED_VERSIONS = tuple((1, minor) for minor in range(7))  # SPIR-V 1.0 .. 1.6


def check_header(spirv: bytes) -> tuple[int, int]:
    """Validate the 5-word header of a SPIR-V module and return its (major, minor) version.

    Raises SpirvError E_SPIRV_INVALID naming the failed check: type, length (>= 20 bytes, a multiple of 4),
    magic number (a byte-swapped magic is reported as such), version (1.0-1.6) and id bound (> 0).
    """
    if not isinstance(spirv, (bytes, bytearray, memoryview)):
        raise SpirvError("E_SPIRV_INVALID", f"SPIR-V must be bytes, got {type(spirv).__name__}")
    data = bytes(spirv)
    if len(data) < HEADER_WORDS * 4:
        raise SpirvError("E_SPIRV_INVALID",
                         f"length check failed: {len(data)} bytes, a SPIR-V module has at least 20")
    if len(data) % 4:
        raise SpirvError("E_SPIRV_INVALID",
                         f"length check failed: {len(data)} bytes is not a multiple of 4 (SPIR-V is 32-bit words)")
    magic, version, _generator, bound, _schema = struct.unpack_from("<5I", data)
    if magic != MAGIC:
        if magic == struct.unpack("<I", struct.pack(">I", MAGIC))[0]:
            raise SpirvError("E_SPIRV_INVALID",
                             "magic check failed: the module is byte-swapped (big-endian words); "
                             "HLX takes little-endian SPIR-V")
        raise SpirvError("E_SPIRV_INVALID", f"magic check failed: 0x{magic:08x}, expected 0x{MAGIC:08x}")
    major, minor = (version >> 16) & 0xFF, (version >> 8) & 0xFF
    if (major, minor) not in SUPPORTED_VERSIONS or version & 0xFF0000FF:
        raise SpirvError("E_SPIRV_INVALID",
                         f"version check failed: word 0x{version:08x} ({major}.{minor}), supported 1.0-1.6")
    if bound == 0:
        raise SpirvError("E_SPIRV_INVALID", "bound check failed: the id bound is 0, it must be > 0")
    return major, minor
