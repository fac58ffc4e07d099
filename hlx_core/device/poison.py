"""Output poisoning: GPU backends fill every buffer a stage writes with 0xFF bytes before each run.

Backends allocate output buffers themselves and reuse them across runs (recorded command buffers, pooled
buffers), so an element a kernel forgets to write would otherwise hold a stale result of an earlier run or
zeros, and could look right. With ``HLX_POISON_OUTPUTS=1`` every output and intermediate buffer starts each
run as 0xFF bytes: NaN in float16/32/64, -1 in signed and the maximum in unsigned integers, a value no
correct kernel leaves behind. Backends read the switch once per session (poisoning costs a fill per buffer
and run; off, the default, adds nothing to a run). The test suite turns it on (tests/conftest.py).
"""
from __future__ import annotations

import numpy as np

from hlx_core.settings import env_flag

ENV_POISON = "HLX_POISON_OUTPUTS"
POISON_BYTE = 0xFF
POISON_WORD = 0xFFFFFFFF  # the same pattern as a 32-bit fill value (vkCmdFillBuffer)


def poison_enabled() -> bool:
    """Whether ``HLX_POISON_OUTPUTS=1``; call when a session opens, not per run."""
    return env_flag(ENV_POISON, False)


def poison_bytes(nbytes: int) -> bytes:
    """``nbytes`` of the poison pattern."""
    return bytes([POISON_BYTE]) * nbytes


def poisoned(array: np.ndarray) -> np.ndarray:
    """Per element of ``array``: True where every byte is the poison pattern (an unwritten element)."""
    a = np.asarray(array)
    raw = np.ascontiguousarray(a).reshape(-1).view(np.uint8).reshape(a.shape + (a.dtype.itemsize,))
    return (raw == POISON_BYTE).all(axis=-1)
