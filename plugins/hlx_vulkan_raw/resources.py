"""Residency: input tensors kept on the device by handle, within a byte budget (least recently used out).

A handle names its content, so a buffer filled from a handle never needs filling again while it stays
resident. The budget is ``HLX_VULKAN_RESIDENCY_MB`` (default: a quarter of the device-local memory,
at most 4 GiB); one input larger than the whole budget is still uploaded, and evicted after its run.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable

from hlx_core.settings import env_number

from hlx_vulkan_raw.memory import MiB, DeviceBuffer, MemoryAllocator


def default_budget(device_local_bytes: int) -> int:
    mb = env_number("HLX_VULKAN_RESIDENCY_MB", None)
    if mb is not None:
        return int(mb * MiB)
    return min(device_local_bytes // 4, 4096 * MiB)


class Residency:
    """Handle -> device buffer, LRU ordered. ``on_evict(serial)`` lets owners of recorded work that
    refers to an evicted buffer drop it."""

    def __init__(self, allocator: MemoryAllocator, budget: int, on_evict: Callable[[int], None]) -> None:
        self.allocator = allocator
        self.budget = budget
        self.on_evict = on_evict
        self.entries: "OrderedDict[str, DeviceBuffer]" = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, handle: str) -> DeviceBuffer | None:
        buf = self.entries.get(handle)
        if buf is None:
            self.misses += 1
            return None
        self.hits += 1
        self.entries.move_to_end(handle)
        return buf

    def put(self, handle: str, buf: DeviceBuffer) -> None:
        self.entries[handle] = buf
        self.bytes += buf.size

    def trim(self) -> None:
        """Evict least recently used buffers until the budget holds (call between submits only)."""
        while self.bytes > self.budget and self.entries:
            _, buf = self.entries.popitem(last=False)
            self.bytes -= buf.size
            self.on_evict(buf.serial)
            self.allocator.free(buf)

    def clear(self) -> None:
        budget, self.budget = self.budget, -1
        self.trim()
        self.budget = budget

    def stats(self) -> dict[str, int]:
        return {"entries": len(self.entries), "bytes": self.bytes, "budget": self.budget,
                "hits": self.hits, "misses": self.misses}
