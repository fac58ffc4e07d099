"""The device buffers a plan needs, computed once for every GPU backend.

Each distinct input tensor (by handle) gets one buffer, however many stages read it; each stage output gets
one buffer, which later stages read through StageRefs. Backends allocate ``BufferSlot``s, upload the inputs,
bind ``bindings[stage][slot]`` and read back ``outputs``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hlx_core.plan import InputRef, OutputRef, Plan, StageRef

# Vulkan and WebGPU refuse zero-size buffers, and WebGPU refuses a binding smaller than one element of the
# shader's runtime array: a uvec4 in the streaming kernels (shaders/stream.glsl), so no buffer is under 16 bytes.
MIN_BUFFER_BYTES = 16


@dataclass(frozen=True)
class BufferSlot:
    """One buffer: ``source`` is the InputRef it is filled from, or the OutputRef a stage writes."""

    index: int
    nbytes: int
    source: InputRef | OutputRef

    @property
    def alloc_bytes(self) -> int:
        """Whole 32-bit words: shaders read storage buffers a word at a time, and the last partial word of
        an odd-sized input would otherwise be an out-of-bounds read (zeros under robust access)."""
        return align(max(self.nbytes, MIN_BUFFER_BYTES), 4)

    @property
    def is_input(self) -> bool:
        return isinstance(self.source, InputRef)


@dataclass(frozen=True)
class BufferLayout:
    """``bindings[s][i]`` is the slot index bound at binding i of stage s; ``outputs[k]`` is the slot
    holding ``plan.outputs[k]``; ``written`` the slots some stage's shader may write (reflection: not
    readonly), which covers an input a shader writes in place: such an input is never kept resident."""

    slots: tuple[BufferSlot, ...]
    bindings: tuple[tuple[int, ...], ...]
    outputs: tuple[int, ...]
    written: frozenset[int]

    @property
    def inputs(self) -> tuple[BufferSlot, ...]:
        return tuple(s for s in self.slots if s.is_input)


def buffer_layout(plan: Plan) -> BufferLayout:
    """Assign every binding of every stage to a buffer slot."""
    slots: list[BufferSlot] = []
    by_input: dict[str, int] = {}
    by_output: dict[tuple[int, int], int] = {}
    bindings: list[tuple[int, ...]] = []
    for s, stage in enumerate(plan.stages):
        row: list[int] = []
        out_j = 0
        for b in stage.bindings:
            if isinstance(b, InputRef):
                if b.handle not in by_input:
                    by_input[b.handle] = len(slots)
                    slots.append(BufferSlot(len(slots), b.nbytes, b))
                row.append(by_input[b.handle])
            elif isinstance(b, OutputRef):
                by_output[(s, out_j)] = len(slots)
                slots.append(BufferSlot(len(slots), b.nbytes, b))
                row.append(by_output[(s, out_j)])
                out_j += 1
            else:
                assert isinstance(b, StageRef)
                row.append(by_output[(b.stage, b.output)])
        bindings.append(tuple(row))
    outputs = tuple(by_output[key] for key in plan.outputs)
    written = frozenset(bindings[s][b.binding] for s, stage in enumerate(plan.stages)
                        for b in stage.shader.info.bindings
                        if b.set == 0 and not b.readonly and b.binding < len(bindings[s]))
    return BufferLayout(tuple(slots), tuple(bindings), outputs, written)


def align(n: int, to: int) -> int:
    """``n`` rounded up to a multiple of ``to``."""
    return -(-n // to) * to


def output_view(data: bytes | bytearray | memoryview, spec: OutputRef) -> np.ndarray:
    """Downloaded bytes viewed as the output's (little-endian) dtype and shape, without a copy. A backend
    whose outputs always land in the same mapped memory makes this view once and copies it every run."""
    count = math.prod(spec.shape)
    return np.frombuffer(data, dtype=np.dtype(spec.dtype).newbyteorder("<"), count=count).reshape(spec.shape)


def native_array(view: np.ndarray, copy: bool = True) -> np.ndarray:
    """``view`` in the host's byte order: one copy (``copy``) or the view itself where no byte swap is
    needed (any little-endian host)."""
    if view.dtype.isnative:
        return view.copy() if copy else view
    return view.astype(view.dtype.newbyteorder("="))


def to_array(data: bytes | bytearray | memoryview, spec: OutputRef) -> np.ndarray:
    """Downloaded bytes as the output's dtype and shape: one copy, owned by the caller."""
    return native_array(output_view(data, spec))


def host_bytes(array: np.ndarray) -> memoryview:
    """An input's bytes as a device reads them: C order, little-endian, one byte per item of the view
    (copied only when the array is not already in that form)."""
    a = np.ascontiguousarray(array)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return memoryview(a.reshape(-1).view(np.uint8)) if a.size else memoryview(b"")  # bfloat16 has no buffer format
