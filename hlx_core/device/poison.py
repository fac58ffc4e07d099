"""Output clearing: GPU backends fill the buffers a stage writes before each run, with zeros or poison.

Backends allocate output buffers themselves and reuse them across runs (recorded command buffers, pooled
and sub-allocated memory), so an element a kernel leaves unwritten would otherwise hold whatever that
memory held last: another run's results, another contract's data. So every output and intermediate
buffer starts each run as zeros, on every backend: results never depend on history. A stage whose library
kernel writes every element of its outputs (``Stage.writes_all_outputs``) is not cleared: it pays nothing.

With ``HLX_POISON_OUTPUTS=1`` every such buffer, those of ``writes_all_outputs`` stages included, starts
as 0xFF bytes instead: NaN in float16/32/64, -1 in signed and the maximum in unsigned integers, a value no
correct kernel leaves behind, so tests see unwritten elements (and check each ``writes_all_outputs``
declaration). Backends read the switch once per session. The test suite turns it on (tests/conftest.py).
"""
from __future__ import annotations

import numpy as np

from hlx_core.device.layout import BufferLayout
from hlx_core.plan import OutputRef, Plan
from hlx_core.settings import env_flag

ENV_POISON = "HLX_POISON_OUTPUTS"
POISON_BYTE = 0xFF
POISON_WORD = 0xFFFFFFFF  # the same pattern as a 32-bit fill value (vkCmdFillBuffer)


def poison_enabled() -> bool:
    """Whether ``HLX_POISON_OUTPUTS=1``; call when a session opens, not per run."""
    return env_flag(ENV_POISON, False)


def fill_word(poison: bool) -> int:
    """The 32-bit value output buffers are filled with before a run: the poison pattern, or zero."""
    return POISON_WORD if poison else 0


def cleared_slots(plan: Plan, layout: BufferLayout, poison: bool) -> list[int]:
    """The layout slots a run fills before its first stage: every stage output when ``poison``, else the
    outputs of stages that may leave elements unwritten (not ``writes_all_outputs``). Inputs are never
    cleared: each holds its tensor, uploaded whole."""
    return [row[i] for stage, row in zip(plan.stages, layout.bindings) if poison or not stage.writes_all_outputs
            for i, b in enumerate(stage.bindings) if isinstance(b, OutputRef)]


def poison_bytes(nbytes: int) -> bytes:
    """``nbytes`` of the poison pattern."""
    return bytes([POISON_BYTE]) * nbytes


def poisoned(array: np.ndarray) -> np.ndarray:
    """Per element of ``array``: True where every byte is the poison pattern (an unwritten element)."""
    a = np.asarray(array)
    raw = np.ascontiguousarray(a).reshape(-1).view(np.uint8).reshape(a.shape + (a.dtype.itemsize,))
    return (raw == POISON_BYTE).all(axis=-1)
