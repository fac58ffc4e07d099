"""A plan's run on one set of buffers, ready to run again: the warm path of the wgpu backend.

WebGPU has no reusable command buffers, so a run encodes and submits its commands anew; but a plan run again
on the same buffers (its inputs resident, its outputs and intermediates the same pooled buffers) runs the
same commands, bind groups, readback ranges and output views. A ``Recording`` is all of that, made by
``DeviceCore.record`` on a plan's first run on those buffers; a later run of the plan ``claim``s it (the
resident inputs and the free pooled buffers it was made for, and the device-lifetime buffers its commands
name: staging, poison and timestamp buffers are replaced when they grow) and then only encodes, submits and
reads back. Any mismatch, a buffer destroyed or evicted included, makes the run record a new one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from hlx_core.device.layout import native_array
from hlx_core.device.residency import Residency

from hlx_wgpu.buffers import BufferPool, PooledBuffer
from hlx_wgpu.commands import Script
from hlx_wgpu.shaders import CompiledShader


class HostOutput(NamedTuple):
    """Where an output read back to the host lies in the readback buffer, and what it is."""

    offset: int
    dtype: np.dtype  # little-endian, as the device wrote it
    count: int
    shape: tuple[int, ...]

    def array(self, mapped: memoryview) -> np.ndarray:
        """The output out of the mapped readback bytes: one copy, in the host's byte order."""
        return native_array(np.frombuffer(mapped, self.dtype, self.count, self.offset).reshape(self.shape))


@dataclass(eq=False)
class Recording:
    """What a run of one plan on ``buffers`` (one per layout slot) does besides encoding and reading back.

    ``inputs`` are the resident inputs it reads (handle, buffer); ``pooled`` the slot buffers it takes from
    the storage pool for each run (outputs, intermediates, inputs a stage writes) and gives back after;
    ``warm``: a claim needs no upload (no stage writes an input). ``uniforms`` are its push-constant buffers,
    written once and its own until it is dropped (``release``). ``outputs`` has one entry per plan output
    (None: left on the device); ``downloads`` the bytes of each output counted as a host transfer."""

    buffers: tuple[PooledBuffer, ...]
    inputs: tuple[tuple[str, PooledBuffer], ...]
    pooled: tuple[PooledBuffer, ...]
    warm: bool
    shared: tuple[Any, ...]
    uniforms: tuple[PooledBuffer, ...]
    script: Script
    read_bytes: int
    outputs: tuple[HostOutput | None, ...]
    downloads: tuple[int, ...]
    stages: int
    timestamps_offset: int | None
    paths: tuple[tuple[str, CompiledShader], ...]
    where: str

    def uses(self, serial: int) -> bool:
        """Whether the buffer ``serial`` is one of this recording's."""
        return any(buf.serial == serial for buf in self.buffers) or any(u.serial == serial for u in self.uniforms)

    def claim(self, resident: Residency[PooledBuffer], storage: BufferPool, shared: tuple[Any, ...]) -> bool:
        """Take what a warm run of this recording needs: every input still resident in the same buffer, every
        pooled buffer free (taken from ``storage``), and the device-lifetime buffers ``shared`` the ones it
        was recorded with. False (nothing taken) when any of it fails: the run records anew."""
        if not self.warm or shared != self.shared:
            return False
        for handle, _ in self.inputs:  # (asked first: a miss would be counted again by the run that follows)
            if handle not in resident:
                return False
        for handle, buf in self.inputs:
            if resident.get(handle) is not buf:
                return False
        for k, buf in enumerate(self.pooled):
            if not storage.take(buf):
                for taken in self.pooled[:k]:
                    storage.release(taken)
                return False
        return True

    def read(self, mapped: memoryview) -> tuple[list[np.ndarray | None], bytes | None]:
        """Each output read back (None where left on the device) and the raw timestamps (None: none), out
        of the mapped readback bytes."""
        arrays = [None if out is None else out.array(mapped) for out in self.outputs]
        at = self.timestamps_offset
        return arrays, None if at is None else bytes(mapped[at:at + 16 * self.stages])

    def release(self, uniforms: BufferPool) -> None:
        """Give its push-constant buffers back (it is dropped: evicted, replaced or its device closing)."""
        for buf in self.uniforms:
            uniforms.release(buf)
