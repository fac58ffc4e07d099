"""One run's commands, recorded and submitted through wgpu-native's C entry points.

wgpu-py wraps every entry point in an error capture of its own and every encoder, pass and command buffer in
a Python object (made, then released by its ``__del__``), and builds each descriptor anew: a warm run of one
small stage made about 18 wrapped calls and 3 such objects, most of what it cost the host. ``Commands``
makes the same calls on the raw functions, with descriptors allocated once per device, under one capture
of wgpu-py's error handler for all of them: an error any command reports (a validation error, a lost
device) is raised before the submit as the GPUError wgpu-py would have raised, so ``wgpu_call`` translates it
as before, and no invalid command buffer reaches the queue.
Objects created and cached elsewhere (pipelines, bind groups, buffers) are passed as wgpu-py objects; only
their native handles are read.
"""
from __future__ import annotations

from typing import Any

_CAPTURE = "hlx-run"  # the name of the run's slot on wgpu-py's error-capture stack


class Commands:
    """Records one run at a time on a device: ``begin``, the commands, ``submit``, and ``end`` (always, in a
    ``finally``: it releases what the run made and raises the error a call reported)."""

    def __init__(self, device: Any) -> None:
        from wgpu.backends.wgpu_native import _api, _helpers

        self._api = _api
        self._errors = _api.error_handler
        self._error_types = _helpers.ERROR_TYPES
        self._gpu_error = _helpers.GPUError
        ffi = _api.ffi
        self._ffi = ffi
        self._lib = _api.lib
        self._device = device._internal
        self._queue = device.queue._internal
        self._labels: dict[str, Any] = {}  # label -> its bytes, alive as long as the descriptors using them
        self._encoder_desc = ffi.new("WGPUCommandEncoderDescriptor *")
        self._set_label(self._encoder_desc, "hlx")
        self._pass_desc = ffi.new("WGPUComputePassDescriptor *")
        self._writes = ffi.new("WGPUPassTimestampWrites *")
        self._finish_desc = ffi.new("WGPUCommandBufferDescriptor *")
        self._submitted = ffi.new("WGPUCommandBuffer[1]")
        self._encoder: Any = None
        self._command_buffer: Any = None
        self._capturing = False

    def _set_label(self, desc: Any, label: str) -> None:
        data = self._labels.get(label)
        if data is None:
            data = self._labels[label] = self._ffi.new("char[]", label.encode())
        desc.label.data = data
        desc.label.length = len(data) - 1

    def begin(self) -> None:
        """Open the error capture and a command encoder."""
        self._errors.capture(_CAPTURE)
        self._capturing = True
        self._encoder = self._lib.wgpuDeviceCreateCommandEncoder(self._device, self._encoder_desc)

    def copy(self, source: Any, source_offset: int, destination: Any, destination_offset: int, size: int) -> None:
        """Copy ``size`` bytes (a multiple of 4) between two buffers."""
        self._lib.wgpuCommandEncoderCopyBufferToBuffer(self._encoder, source._internal, source_offset,
                                                       destination._internal, destination_offset, size)

    def clear(self, buffer: Any, size: int) -> None:
        """Zero the first ``size`` bytes (a multiple of 4) of ``buffer``."""
        self._lib.wgpuCommandEncoderClearBuffer(self._encoder, buffer._internal, 0, size)

    def dispatch(self, label: str, pipeline: Any, groups: tuple[Any, ...], immediates: bytes | None,
                 workgroups: tuple[int, int, int], query_set: Any = None, stage: int = 0) -> None:
        """One compute pass: ``pipeline`` with bind group i = ``groups[i]``, the push block as immediates
        when given, the dispatch, and (with ``query_set``) timestamps 2*stage and 2*stage + 1 at its ends."""
        lib, desc = self._lib, self._pass_desc
        self._set_label(desc, label)
        if query_set is None:
            desc.timestampWrites = self._ffi.NULL
        else:
            writes = self._writes
            writes.querySet = query_set._internal
            writes.beginningOfPassWriteIndex = 2 * stage
            writes.endOfPassWriteIndex = 2 * stage + 1
            desc.timestampWrites = writes
        cpass = lib.wgpuCommandEncoderBeginComputePass(self._encoder, desc)
        try:
            lib.wgpuComputePassEncoderSetPipeline(cpass, pipeline._internal)
            for index, group in enumerate(groups):
                lib.wgpuComputePassEncoderSetBindGroup(cpass, index, group._internal, 0, self._ffi.NULL)
            if immediates:
                lib.wgpuComputePassEncoderSetImmediates(cpass, 0, self._ffi.from_buffer(immediates), len(immediates))
            lib.wgpuComputePassEncoderDispatchWorkgroups(cpass, *workgroups)
            lib.wgpuComputePassEncoderEnd(cpass)
        finally:
            lib.wgpuComputePassEncoderRelease(cpass)

    def resolve(self, query_set: Any, count: int, destination: Any, offset: int) -> None:
        """Resolve the first ``count`` queries of ``query_set`` into ``destination`` at ``offset``."""
        self._lib.wgpuCommandEncoderResolveQuerySet(self._encoder, query_set._internal, 0, count,
                                                    destination._internal, offset)

    def submit(self) -> None:
        """Finish the encoder, raise the error any command reported (a command buffer with one must never
        reach the queue: wgpu-native aborts the process), then submit the command buffer through wgpu-py's
        wrapped call, as before."""
        self._command_buffer = self._lib.wgpuCommandEncoderFinish(self._encoder, self._finish_desc)
        self._release_capture()
        self._submitted[0] = self._command_buffer
        self._api.libf.wgpuQueueSubmit(self._queue, 1, self._submitted)

    def end(self) -> None:
        """Release the run's encoder and command buffer and, unless ``submit`` did, the error capture,
        raising the error a command reported."""
        lib = self._lib
        if self._command_buffer is not None:
            lib.wgpuCommandBufferRelease(self._command_buffer)
            self._command_buffer = None
        if self._encoder is not None:
            lib.wgpuCommandEncoderRelease(self._encoder)
            self._encoder = None
        if self._capturing:
            self._release_capture()

    def _release_capture(self) -> None:
        self._capturing = False
        error = self._errors.release(_CAPTURE)
        if error is not None:
            kind, message = error
            raise self._error_types.get(kind, self._gpu_error)(message)
