"""Output handles computed on the device: BLAKE3 passes recorded after a plan's stages.

A tensor's handle is the BLAKE3 of its LC-B prefix followed by its payload, and a plan's output payload is
already in a device buffer, so the recorded command buffer hashes it there (``shaders/blake3.comp``, whose
dispatches ``hlx_core.device.hash`` lists) instead of the host hashing it after the download. Each hashed
output gets a small host-visible prefix buffer, one scratch buffer per pass but the last, and a host-visible
32-byte digest that the last pass writes; a run reads the digests with its outputs and returns them as
``Execution.handles``. Outputs under ``HLX_VULKAN_DEVICE_HASH_BYTES`` (default 1 MiB; 0: none) are left to
the runtime, which hashes them on the host as before.
"""
from __future__ import annotations

import numpy as np

from hlx_core.codec import tensor_prefix
from hlx_core.codec.handle import Handle
from hlx_core.device.hash import DIGEST_WORDS, digest_handle, hash_passes, prefix_words, shader
from hlx_core.plan import OutputRef

from hlx_vulkan_raw.commands import COMPUTE, HOST, HOST_READ, SHADER_READ, SHADER_WRITE, Recorder
from hlx_vulkan_raw.core import DeviceCore
from hlx_vulkan_raw.memory import DeviceBuffer
from hlx_vulkan_raw.pipelines import Pipeline

ENV_DEVICE_HASH = "HLX_VULKAN_DEVICE_HASH_BYTES"


def hash_request() -> tuple[bytes, str, None, tuple]:
    """The committed hash shader as a ``PipelineManager.get_many`` request (default workgroup, no spec)."""
    contract = next(iter(shader().values()))
    return contract["spirv_binary"], contract["entry_point"], None, ()


def hash_pipeline(core: DeviceCore) -> Pipeline:
    """The pipeline of the committed hash shader, through the core's pipeline cache like a plan's shaders."""
    return core.pipelines.get(*hash_request())


class OutputHashes:
    """The hash passes of one recorded plan: what they own (buffers, descriptor sets) and the digest each
    hashed slot's last pass writes."""

    def __init__(self) -> None:
        self.buffers: list[DeviceBuffer] = []
        self.sets: list = []  # (descriptor set, pool entry)
        self.digests: list[np.ndarray | None] = []  # per plan output: its digest in host-visible memory

    def record(self, core: DeviceCore, r: Recorder, outputs: list[tuple[DeviceBuffer, OutputRef] | None],
               pipe: Pipeline) -> None:
        """Record the passes (``pipe``: ``hash_pipeline``'s) over each plan output's buffer (None: not hashed
        here), after a barrier that orders them behind the stages, and a last barrier that readies the digests
        for the host."""
        r.barrier(COMPUTE, SHADER_WRITE, COMPUTE, SHADER_READ)
        done: dict[int, np.ndarray] = {}  # buffer serial -> digest: an output listed twice is hashed once
        for output in outputs:
            if output is not None and output[0].serial not in done:
                done[output[0].serial] = self._record_one(core, r, pipe, *output)
            self.digests.append(None if output is None else done[output[0].serial])
        r.barrier(COMPUTE, SHADER_WRITE, HOST, HOST_READ)

    def _record_one(self, core: DeviceCore, r: Recorder, pipe: Pipeline, source: DeviceBuffer,
                    spec: OutputRef) -> np.ndarray:
        """The passes over one buffer; returns the digest's view."""
        prefix = tensor_prefix(spec.dtype, spec.shape)
        words = prefix_words(prefix)
        prefix_buf = self._buffer(core, words.nbytes, host=True)
        prefix_buf.write(memoryview(words).cast("B"))
        for n, step in enumerate(hash_passes(len(prefix), spec.nbytes)):
            if n:  # the previous pass's chaining values are this one's input
                r.barrier(COMPUTE, SHADER_WRITE, COMPUTE, SHADER_READ)
            target = self._buffer(core, step.output_words * 4, host=step.root)
            dset, entry = core.pipelines.allocate_set(pipe)
            self.sets.append((dset, entry))
            core.pipelines.write_set(dset, pipe, {0: prefix_buf, 1: source, 2: target})
            r.dispatch(pipe, dset, step.push_constants, step.dispatch)
            source = target
        return np.frombuffer(source.view(DIGEST_WORDS * 4), dtype="<u4")

    def _buffer(self, core: DeviceCore, nbytes: int, host: bool) -> DeviceBuffer:
        buf = core.allocator.create_buffer(nbytes, host=host, readback=host)
        self.buffers.append(buf)
        return buf

    def handles(self) -> list[Handle | None]:
        """The handle of each plan output the run hashed (read after its wait); None for the others."""
        return [None if d is None else digest_handle(d.astype(np.uint32)) for d in self.digests]

    def release(self, core: DeviceCore) -> None:
        """Give back the buffers and descriptor sets."""
        for dset, entry in self.sets:
            core.pipelines.free_set(dset, entry)
        for buf in self.buffers:
            core.allocator.free(buf)
        self.sets.clear()
        self.buffers.clear()
        self.digests.clear()
