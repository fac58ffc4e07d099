"""Device buffers reused across runs: a size-keyed pool, inputs kept resident by content, and one growing
staging buffer each way.

Creating a wgpu buffer costs a driver allocation and, for bind groups, invalidates what was cached for the
old one; a plan that runs again with the same shapes gets the same buffers back (the pool hands out the
oldest free buffer of a size first), so its bind groups are cache hits too. Host transfers go through two
staging buffers that live as long as the device: new inputs are written into a MAP_WRITE buffer and copied
to the device in the run's own command buffer (``queue.write_buffer`` would allocate, and on a discrete GPU
pin, a fresh staging buffer per call), and every output and the timestamp results are copied into one
MAP_READ buffer that is mapped once per run and read in place, so each output crosses host memory once.
Pooled buffers hold what their last user wrote, so each run clears the outputs of its stages
(``clear_buffer``, zeros) unless their kernels write every element. With output poisoning on, a third
device-lifetime buffer holds 0xFF bytes that each run copies over all its output buffers instead
(``clear_buffer`` can only write zeros).
"""
from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from hlx_core.backend import timeout_message
from hlx_core.device.layout import align, host_bytes
from hlx_core.device.poison import poison_bytes
from hlx_core.device.waiting import SpinBudget
from hlx_core.errors import BackendError, HLXError

from hlx_wgpu.errors import Timeout, translate, wgpu_call

ENV_SPIN = "HLX_WGPU_SPIN_US"
ENV_SPIN_MAX = "HLX_WGPU_SPIN_MAX_US"
ENV_TIMEOUT = "HLX_WGPU_TIMEOUT_S"
BUFFER_ALIGN = 256  # pool size classes; also the offset alignment of copies into the staging buffer
DEFAULT_MAX_FREE_BYTES = 1 << 30

_serials = itertools.count(1)
T = TypeVar("T")


@dataclass(eq=False)
class PooledBuffer:
    """A wgpu buffer with a process-unique ``serial`` (what bind-group keys refer to)."""

    buffer: Any
    size: int
    serial: int = field(default_factory=lambda: next(_serials))


class BufferPool:
    """Buffers of one usage, handed out by size class and returned after each run.

    Free buffers beyond ``max_free_bytes`` are destroyed, oldest first; ``on_destroy`` hears about each so
    caches that refer to it can drop their entries.
    """

    def __init__(self, device: Any, usage: int, label: str, *, max_free_bytes: int = DEFAULT_MAX_FREE_BYTES,
                 on_destroy: Callable[[int], None] | None = None) -> None:
        self._device = device
        self._usage = usage
        self._label = label
        self._max_free = max_free_bytes
        self._on_destroy = on_destroy
        self._free: OrderedDict[int, PooledBuffer] = OrderedDict()  # serial -> buffer, oldest first
        self._free_bytes = 0
        self.created = 0

    def acquire(self, nbytes: int) -> PooledBuffer:
        size = align(max(nbytes, 4), BUFFER_ALIGN)
        for serial, buf in self._free.items():
            if buf.size == size:
                del self._free[serial]
                self._free_bytes -= size
                return buf
        with wgpu_call(f"allocating a {size}-byte {self._label} buffer"):
            buf = PooledBuffer(self._device.create_buffer(size=size, usage=self._usage, label=self._label), size)
        self.created += 1
        return buf

    def take(self, buf: PooledBuffer) -> bool:
        """Hand out ``buf`` itself if it is free (a recorded run asks for the buffers it was recorded with);
        False when it is in use or was destroyed."""
        if self._free.pop(buf.serial, None) is None:
            return False
        self._free_bytes -= buf.size
        return True

    def release(self, buf: PooledBuffer) -> None:
        self._free[buf.serial] = buf
        self._free_bytes += buf.size
        while self._free_bytes > self._max_free and self._free:
            _, old = self._free.popitem(last=False)
            self._free_bytes -= old.size
            self._destroy(old)

    def _destroy(self, buf: PooledBuffer) -> None:
        if self._on_destroy is not None:
            self._on_destroy(buf.serial)
        buf.buffer.destroy()

    def clear(self) -> None:
        while self._free:
            self._destroy(self._free.popitem()[1])
        self._free_bytes = 0


class HostBuffer:
    """One mappable buffer that lives as long as the device and grows (doubling) to the largest transfer
    seen, so transfers never create a buffer per call."""

    def __init__(self, device: Any, usage: int, label: str) -> None:
        self._device = device
        self._usage = usage
        self._label = label
        self.buffer: Any = None
        self.size = 0
        self.created = 0

    def reserve(self, nbytes: int) -> Any:
        """The buffer, at least ``nbytes`` large."""
        if nbytes > self.size:
            size = max(align(nbytes, BUFFER_ALIGN), 2 * self.size)
            self.close()
            with wgpu_call(f"allocating a {size}-byte {self._label} buffer"):
                self.buffer = self._device.create_buffer(size=size, usage=self._usage, label=self._label)
            self.size = size
            self.created += 1
        return self.buffer

    def close(self) -> None:
        if self.buffer is not None:
            self.buffer.destroy()
            self.buffer = None
            self.size = 0


class Readback(HostBuffer):
    """The staging buffer every output (and the timestamp results) of a run is copied into.

    It is mapped through wgpu-native's own entry points on the calling thread: ``map_sync`` would first
    submit an empty command buffer (wgpu-py's guard for a buffer no submit wrote yet; this one was just
    written by the run's copies) and then wait for wgpu-py's poll thread to see the map done and wake this
    one. Here the device is polled without blocking for as long as ``spin`` allows (1.5x the last wait,
    within a floor and a cap: hlx_core.device.waiting; a wake-up from a blocking poll costs more than a short
    run takes on a GPU). A longer run is waited for by the device's poll thread (a
    blocking poll has no time limit), for at most ``timeout_s``: then E_TIMEOUT, with the run still on the
    device."""

    def __init__(self, device: Any, wgpu: Any, spin: SpinBudget | None = None, timeout_s: float = 120.0) -> None:
        super().__init__(device, wgpu.BufferUsage.MAP_READ | wgpu.BufferUsage.COPY_DST, "hlx-readback")
        from wgpu.backends.wgpu_native import _api

        self._api = _api
        self.spin = spin or SpinBudget(0, 0)
        self.timeout_s = timeout_s
        self._state = [False, 0, False]  # callback ran, its status, a wait is parked on ``_done``
        self._done = threading.Event()

        @_api.ffi.callback("void(WGPUMapAsyncStatus, WGPUStringView, void *, void *)")
        def on_mapped(status, _message, _userdata1, _userdata2):
            self._state[0], self._state[1] = True, status
            if self._state[2]:
                self._done.set()

        self._on_mapped = on_mapped  # alive as long as the struct that points at it
        self._callback_info = _api.ffi.new("WGPUBufferMapCallbackInfo *")
        self._callback_info.mode = _api.lib.WGPUCallbackMode_AllowProcessEvents
        self._callback_info.callback = on_mapped

    def read(self, nbytes: int, convert: Callable[[memoryview], T]) -> T:
        """Map the first ``nbytes`` once (this waits for the submitted work) and return ``convert`` of a
        read-only view of them. The view is the mapped memory itself, released before the unmap: ``convert``
        copies what it keeps (``to_array`` does), so each output is copied exactly once on the host."""
        if not nbytes:
            return convert(memoryview(b""))
        api = self._api
        lib, state = api.lib, self._state
        total = nbytes + (-nbytes & 7)  # (align(nbytes, 8), without a call on every run)
        internal = self.buffer._internal
        try:  # (what wgpu_call does, without a context manager on every run)
            state[0] = False
            api.libf.wgpuBufferMapAsync(internal, lib.WGPUMapMode_Read, 0, total, self._callback_info[0])
            self._wait()
            if state[1] != lib.WGPUMapAsyncStatus_Success:
                raise RuntimeError(f"could not map the readback buffer (WGPUMapAsyncStatus {state[1]})")
        except HLXError:
            raise
        except Exception as exc:
            raise translate(exc, "mapping the readback buffer") from exc
        # raw, from here on: the buffer is mapped, so neither call can fail but by a NULL range
        view = None
        try:
            address = lib.wgpuBufferGetConstMappedRange(internal, 0, total)
            if address == api.ffi.NULL:
                raise BackendError("E_WGPU_VALIDATION", "wgpu refused reading the readback buffer: the mapped "
                                   "readback buffer has no mapped range")
            view = memoryview(api.ffi.buffer(address, nbytes)).toreadonly()
            return convert(view)
        finally:
            if view is not None:  # nothing may read the mapping once it is unmapped
                try:
                    view.release()
                except BufferError:  # still exported by an array the caller kept: its own responsibility
                    pass
            lib.wgpuBufferUnmap(internal)

    def _wait(self) -> None:
        """Poll the device until the map callback ran: without blocking for ``spin``'s budget, then parked
        until the poll thread sees it run, for at most ``timeout_s``."""
        api = self._api
        device = self._device._internal
        state = self._state
        poll = api.lib.wgpuDevicePoll  # raw: the spin calls it many times, and it reports no errors
        start = time.perf_counter_ns()
        deadline = start + self.spin.budget_ns()
        while not state[0] and time.perf_counter_ns() < deadline:
            poll(device, False, api.ffi.NULL)
        if state[0]:
            self.spin.observe(time.perf_counter_ns() - start)
            return
        self._done.clear()
        state[2] = True  # before state[0] is read again: the callback sets the event from now on
        token = self._device._poller.get_token()  # the poll thread polls, blocking, until it is done
        try:
            if not state[0] and not self._done.wait(self.timeout_s):
                raise Timeout("E_TIMEOUT", timeout_message(self.timeout_s, ENV_TIMEOUT))
            self.spin.observe(time.perf_counter_ns() - start)
        finally:
            state[2] = False
            token.set_done()

    def recover(self) -> None:
        """Wait, for at most ``timeout_s``, for the run whose wait timed out (E_TIMEOUT again while it is
        still on the device), then unmap what its map left mapped: every buffer it used is free again."""
        with wgpu_call("waiting for a run that timed out"):
            self._wait()
            if self._state[1] == self._api.lib.WGPUMapAsyncStatus_Success:
                self._api.libf.wgpuBufferUnmap(self.buffer._internal)

    def drain(self) -> None:
        """Block until the device has finished everything submitted (a timed-out run included), so that
        nothing is destroyed under work still running."""
        self._api.libf.wgpuDevicePoll(self._device._internal, True, self._api.ffi.NULL)


class Upload(HostBuffer):
    """The staging buffer new inputs are written into before one copy command per input moves them to
    their device buffers (``queue.write_buffer`` would allocate a fresh staging buffer on every call)."""

    def __init__(self, device: Any, wgpu: Any) -> None:
        super().__init__(device, wgpu.BufferUsage.MAP_WRITE | wgpu.BufferUsage.COPY_SRC, "hlx-upload")
        self._mode = wgpu.MapMode.WRITE

    def write(self, arrays: list[np.ndarray]) -> list[tuple[int, int]]:
        """Write each array (zero-padded to whole words, at least one) and return its (offset, size)."""
        spans, end = [], 0
        for arr in arrays:
            spans.append((end, align(max(arr.nbytes, 4), 4)))
            end = align(end + spans[-1][1], BUFFER_ALIGN)
        if not arrays:
            return spans
        self.reserve(end)
        with wgpu_call("mapping the upload buffer"):
            self.buffer.map_sync(self._mode, 0, end)
        try:
            with wgpu_call("writing the upload buffer"):
                for arr, (offset, size) in zip(arrays, spans):
                    self.buffer.write_mapped(_words(arr, size), offset)
        finally:
            with wgpu_call("unmapping the upload buffer"):
                self.buffer.unmap()
        return spans


class PoisonSource(HostBuffer):
    """The source of output poisoning: at least as large as the largest buffer poisoned so far, all 0xFF
    bytes (written once, when it grows)."""

    def __init__(self, device: Any, wgpu: Any) -> None:
        super().__init__(device, wgpu.BufferUsage.COPY_SRC | wgpu.BufferUsage.COPY_DST, "hlx-poison")

    def reserve(self, nbytes: int) -> Any:
        grows = nbytes > self.size
        buffer = super().reserve(nbytes)
        if grows:
            with wgpu_call("filling the poison buffer"):
                self._device.queue.write_buffer(buffer, 0, poison_bytes(self.size))
        return buffer


def _words(array: np.ndarray, size: int) -> memoryview | bytes:
    """The array's bytes as ``size`` bytes: a view when no padding is needed, else a zero-padded copy."""
    data = host_bytes(array)
    if data.nbytes == size:
        return data
    return data.tobytes() + bytes(size - data.nbytes)
