"""Outputs left on the device: a recorded plan's output buffer handed to the residency under its handle.

An output hashed on the device (device_hash.py) is not read back: its buffer is detached from the recorded
plan (which is recorded again on its next run, with a fresh buffer, so the next run cannot overwrite it)
and kept in the session's residency under the output's handle, where a later run taking that handle finds
it as it finds an uploaded input. ``VulkanOutput`` is the ``hlx_core.backend.DeviceOutput`` the run
returns: ``_read`` copies the buffer to the host (in place where it is mapped; a large one into the
session's pool of imported host memory, the array a view of it; else through a one-off readback buffer and
a host copy), and the session calls ``evict`` before it frees the buffer.
"""
from __future__ import annotations

import numpy as np

from hlx_core.backend import DeviceOutput
from hlx_core.codec.handle import Handle
from hlx_core.device.layout import to_array
from hlx_core.plan import OutputRef

from hlx_vulkan_raw.commands import (
    COMPUTE,
    HOST,
    HOST_READ,
    SHADER_WRITE,
    TRANSFER,
    TRANSFER_READ,
    TRANSFER_WRITE,
    Recorder,
)
from hlx_vulkan_raw.memory import DeviceBuffer
from hlx_vulkan_raw.readback import POOL_MIN_BYTES


class VulkanOutput(DeviceOutput):
    """One resident output of a ``VulkanSession``: its buffer, read back on demand."""

    def __init__(self, session, handle: Handle, spec: OutputRef, buffer: DeviceBuffer) -> None:
        super().__init__(handle, spec.dtype, spec.shape)
        self.session = session
        self.buffer = buffer

    def _read(self) -> np.ndarray:
        session, buf = self.session, self.buffer
        spec = OutputRef(self.dtype, self.shape)
        nbytes = spec.nbytes
        session.transfers.downloaded(nbytes)
        if buf.host_visible:  # unified memory: the buffer is mapped
            return to_array(buf.view(nbytes), spec)
        core = session.core
        # A large one goes into imported host memory the session reuses, as a run's large outputs are read
        # back: the array is a view of the block, so no host copy into fresh pages (19 ms for 64 MB on the
        # H200's host). Others go through a one-off readback buffer.
        pool = session.host_pool
        pooled = pool is not None and nbytes >= POOL_MIN_BYTES and pool.usable()
        block = pool.acquire([nbytes])[0] if pooled else None
        staging = None if pooled else core.allocator.create_buffer(max(nbytes, 16), host=True, readback=True)
        try:
            r = Recorder(session.download_cb(), one_time=True)
            r.barrier(COMPUTE, SHADER_WRITE, TRANSFER, TRANSFER_READ)  # the run that wrote it was another submit
            r.copy(buf.handle, 0, block.buffer if pooled else staging.handle, 0, nbytes)
            r.barrier(TRANSFER, TRANSFER_WRITE, HOST, HOST_READ)
            core.submitter.wait(core.submitter.submit([r.end()]))
            if not pooled:
                return to_array(staging.view(nbytes), spec)
            array = block.array(spec)
            pool.trim()  # nothing in flight uses a block now
            return array
        finally:
            if staging is not None:
                core.allocator.free(staging)
