"""Device buffers reused across runs: a size-keyed pool and one growing staging buffer for readback.

Creating a wgpu buffer costs a driver allocation and, for bind groups, invalidates what was cached for the
old one; a plan that runs again with the same shapes gets the same buffers back (the pool hands out the
oldest free buffer of a size first), so its bind groups are cache hits too. Readback copies every output
(and the timestamp results) into a single MAP_READ buffer that lives as long as the device, instead of the
temporary buffer ``queue.read_buffer`` makes per call.
"""
from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hlx_wgpu.errors import wgpu_call

BUFFER_ALIGN = 256  # pool size classes; also the offset alignment of copies into the staging buffer
DEFAULT_MAX_FREE_BYTES = 1 << 30

_serials = itertools.count(1)


def align(n: int, to: int) -> int:
    return (n + to - 1) // to * to


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


class Readback:
    """One MAP_READ staging buffer that grows to the largest readback seen."""

    def __init__(self, device: Any, wgpu: Any) -> None:
        self._device = device
        self._usage = wgpu.BufferUsage.MAP_READ | wgpu.BufferUsage.COPY_DST
        self._map_read = wgpu.MapMode.READ
        self._buffer: Any = None
        self.size = 0
        self.created = 0

    def reserve(self, nbytes: int) -> Any:
        """The staging buffer, at least ``nbytes`` large (doubling, so growth is rare)."""
        if nbytes > self.size:
            size = max(align(nbytes, BUFFER_ALIGN), 2 * self.size)
            if self._buffer is not None:
                self._buffer.destroy()
                self._buffer = None
            with wgpu_call(f"allocating a {size}-byte readback buffer"):
                self._buffer = self._device.create_buffer(size=size, usage=self._usage, label="hlx-readback")
            self.size = size
            self.created += 1
        return self._buffer

    def read(self, ranges: list[tuple[int, int]]) -> list[memoryview]:
        """Map the staging buffer once and copy out each (offset, size) range."""
        if not ranges:
            return []
        total = align(max((o + s for o, s in ranges), default=0), 8) or 8
        with wgpu_call("mapping the readback buffer"):
            self._buffer.map_sync(self._map_read, 0, total)
            try:
                return [self._buffer.read_mapped(offset, size, copy=True) for offset, size in ranges]
            finally:
                self._buffer.unmap()

    def close(self) -> None:
        if self._buffer is not None:
            self._buffer.destroy()
            self._buffer = None
            self.size = 0


class Residency:
    """Input buffers kept on the device by the handle of their content, least recently used evicted.

    A handle is the BLAKE3 of the tensor, so a buffer found under it always holds exactly that data and
    running a plan again with the same inputs uploads nothing. Evicted buffers go back to the pool.
    """

    def __init__(self, pool: BufferPool, budget_bytes: int) -> None:
        self._pool = pool
        self._budget = budget_bytes
        self._buffers: OrderedDict[str, PooledBuffer] = OrderedDict()
        self._bytes = 0
        self.hits = 0

    def get(self, handle: str) -> PooledBuffer | None:
        buf = self._buffers.get(handle)
        if buf is not None:
            self._buffers.move_to_end(handle)
            self.hits += 1
        return buf

    def keep(self, handle: str, buf: PooledBuffer) -> None:
        """Keep ``buf`` (just uploaded with ``handle``'s data), or return it to the pool if it cannot fit."""
        if buf.size > self._budget:
            self._pool.release(buf)
            return
        self._buffers[handle] = buf
        self._bytes += buf.size
        while self._bytes > self._budget:
            _, old = self._buffers.popitem(last=False)
            self._bytes -= old.size
            self._pool.release(old)

    def clear(self) -> None:
        while self._buffers:
            self._pool.release(self._buffers.popitem()[1])
        self._bytes = 0
