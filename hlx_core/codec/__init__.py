"""LC-B: HLX's canonical msgpack profile (byte-level specification in docs/LCB.md).

A1: the same value always gives the same bytes; A2: ``decode(encode(v)) == v``; key order of the input
never matters; and the strict decoder accepts only canonical bytes, so every accepted byte string
re-encodes to itself. Content addresses (BLAKE3 of these bytes) therefore identify values, not spellings.

Value mapping (encode -> decode):
  None, bool, int in [-2**63, 2**64-1] (shortest form; outside: E_TYPE), float (always float64; -0.0 is
  written as +0.0; NaN/Inf: E_FLOAT_SPECIAL), str (UTF-8, must be NFC: E_TYPE otherwise), bytes /
  bytearray / memoryview -> bytes, list / tuple -> list, dict with str keys -> dict (keys sorted by their
  UTF-8 bytes), numpy.ndarray -> read-only ndarray view (tensor ext), hlx.Handle -> Handle (handle ext).
  NumPy scalars encode as the Python bool/int/float they equal (np.float32(1.5) -> 1.5 as float64).
"""
from __future__ import annotations

from hlx_core.codec.decoder import decode
from hlx_core.codec.encoder import encode, encode_chunks, tensor_prefix
from hlx_core.codec.normalize import pre_serialize
from hlx_core.codec.profile import DEFAULT_MAX_BYTES, EXT_HANDLE, EXT_TENSOR, MAX_DEPTH, max_bytes, set_limits

__all__ = [
    "encode", "encode_chunks", "tensor_prefix", "decode", "pre_serialize", "set_limits", "max_bytes",
    "DEFAULT_MAX_BYTES", "MAX_DEPTH", "EXT_HANDLE", "EXT_TENSOR",
]
