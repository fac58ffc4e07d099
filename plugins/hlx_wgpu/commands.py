"""One run's commands, recorded and submitted through wgpu-native's C entry points.

wgpu-py wraps every entry point in an error capture of its own and every encoder, pass and command buffer in
a Python object (made, then released by its ``__del__``), and builds each descriptor anew: a warm run of one
small stage made about 18 wrapped calls and 3 such objects, most of what it cost the host. ``Commands``
makes the same calls on the raw functions, with descriptors allocated once, under one capture
of wgpu-py's error handler for all of them: an error any command reports (a validation error, a lost
device) is raised before the submit as the GPUError wgpu-py would have raised, so ``wgpu_call`` translates it
as before, and no invalid command buffer reaches the queue.
WebGPU has no reusable command buffers, so each run encodes its commands again; but what they are made of
does not change between runs of one plan on the same buffers: a ``Script`` holds it (pass descriptors,
native handles, push bytes), built once per recording (hlx_wgpu/recording.py), and ``run`` encodes it.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

_CAPTURE = "hlx-run"  # the name of the run's slot on wgpu-py's error-capture stack


@dataclass(frozen=True)
class Pass:
    """One stage's compute pass, as native handles: its descriptor (label, timestamp writes), the pipeline,
    bind group i = ``groups[i]``, the push block as immediates (NULL: none) and the workgroup counts."""

    descriptor: Any
    pipeline: Any
    groups: tuple[Any, ...]
    immediates: Any
    immediate_size: int
    workgroups: tuple[int, int, int]


@dataclass(frozen=True)
class Script:
    """Every command of one run but its uploads, in order: clears (buffer, size), fills (copies of the poison
    bytes: source, destination, size), the passes, the timestamps' resolve (query set, first query, count,
    destination, offset; None: no timestamps), then copies (source, source offset, destination, destination offset,
    size). ``keep`` holds the objects the handles belong to, alive as long as the script."""

    clears: tuple[tuple[Any, int], ...]
    fills: tuple[tuple[Any, Any, int], ...]
    passes: tuple[Pass, ...]
    resolve: tuple[Any, int, int, Any, int] | None
    copies: tuple[tuple[Any, int, Any, int, int], ...]
    keep: tuple[Any, ...]


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

    def compute_pass(self, label: str, pipeline: Any, groups: tuple[Any, ...], immediates: bytes | None,
                     workgroups: tuple[int, int, int], query_set: Any = None, stage: int = 0) -> tuple[Pass, Any]:
        """A stage's ``Pass`` (with ``query_set``: timestamps 2*stage and 2*stage + 1 at its ends) and what
        its handles belong to (keep it as long as the pass)."""
        ffi = self._ffi
        desc = ffi.new("WGPUComputePassDescriptor *")
        self._set_label(desc, label)
        writes = ffi.NULL
        if query_set is not None:
            writes = ffi.new("WGPUPassTimestampWrites *")
            writes.querySet = query_set._internal
            writes.beginningOfPassWriteIndex = 2 * stage
            writes.endOfPassWriteIndex = 2 * stage + 1
            desc.timestampWrites = writes
        data = ffi.from_buffer(immediates) if immediates else ffi.NULL
        step = Pass(desc, pipeline._internal, tuple(g._internal for g in groups), data,
                    len(immediates) if immediates else 0, workgroups)
        return step, (writes, pipeline, groups, immediates)

    def run(self, script: Script, uploads: Iterable[tuple[Any, int, Any, int]] = ()) -> None:
        """Encode the uploads (copies: source, source offset, destination, size), then ``script``, and submit;
        an error any command reported is raised instead of the submit (``submit``)."""
        lib = self._lib
        self.begin()
        try:
            encoder = self._encoder
            copy = lib.wgpuCommandEncoderCopyBufferToBuffer
            for source, offset, destination, size in uploads:
                copy(encoder, source, offset, destination, 0, size)
            for destination, size in script.clears:
                lib.wgpuCommandEncoderClearBuffer(encoder, destination, 0, size)
            for source, destination, size in script.fills:
                copy(encoder, source, 0, destination, 0, size)
            null = self._ffi.NULL
            for step in script.passes:
                cpass = lib.wgpuCommandEncoderBeginComputePass(encoder, step.descriptor)
                try:
                    lib.wgpuComputePassEncoderSetPipeline(cpass, step.pipeline)
                    for index, group in enumerate(step.groups):
                        lib.wgpuComputePassEncoderSetBindGroup(cpass, index, group, 0, null)
                    if step.immediate_size:
                        lib.wgpuComputePassEncoderSetImmediates(cpass, 0, step.immediates, step.immediate_size)
                    lib.wgpuComputePassEncoderDispatchWorkgroups(cpass, *step.workgroups)
                    lib.wgpuComputePassEncoderEnd(cpass)
                finally:
                    lib.wgpuComputePassEncoderRelease(cpass)
            if script.resolve is not None:
                lib.wgpuCommandEncoderResolveQuerySet(encoder, *script.resolve)
            for source, source_offset, destination, destination_offset, size in script.copies:
                copy(encoder, source, source_offset, destination, destination_offset, size)
            self.submit()
        finally:
            self.end()

    def begin(self) -> None:
        """Open the error capture and a command encoder."""
        self._errors.capture(_CAPTURE)
        self._capturing = True
        self._encoder = self._lib.wgpuDeviceCreateCommandEncoder(self._device, self._encoder_desc)

    def copy(self, source: Any, source_offset: int, destination: Any, destination_offset: int, size: int) -> None:
        """Copy ``size`` bytes (a multiple of 4) between two buffers."""
        self._lib.wgpuCommandEncoderCopyBufferToBuffer(self._encoder, source._internal, source_offset,
                                                       destination._internal, destination_offset, size)

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
