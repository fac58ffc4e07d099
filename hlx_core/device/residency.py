"""Buffers kept on the device by the handle of their content, least recently used evicted first: inputs, and
the outputs a run left there (hlx_core.backend.DeviceOutput, spilled by ``release`` before the buffer goes).

A handle is the BLAKE3 of its tensor, so a buffer filled from a handle (or an output hashed to it) holds
exactly that data for as long as it stays resident: running a plan again with the same inputs, or on an
earlier run's outputs, uploads nothing. Every GPU backend keeps
one ``Residency`` per device; the buffer type is the backend's own (anything with a ``size`` in bytes), and
``release`` hands an evicted buffer back to it (a pool, an allocator, and whatever caches refer to it).
Residency is bounded by bytes and by count: a stream of small new inputs would otherwise keep thousands of
buffers (device objects, descriptor references) alive within a byte budget meant for large tensors.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from hlx_core.settings import env_number

ENV_MAX_BUFFERS = "HLX_RESIDENT_MAX_BUFFERS"
DEFAULT_MAX_BUFFERS = 4096


class Sized(Protocol):
    size: int


B = TypeVar("B", bound=Sized)


def max_buffers() -> int:
    """The count bound: ``HLX_RESIDENT_MAX_BUFFERS``, by default ``DEFAULT_MAX_BUFFERS``."""
    return int(env_number(ENV_MAX_BUFFERS, DEFAULT_MAX_BUFFERS))


class Transfers:
    """Host transfers of one device, for tests and ``get_memory_info``: inputs uploaded and outputs copied
    to the host (a run's readback, a resident output's download), by count and bytes."""

    def __init__(self) -> None:
        self.uploads = self.upload_bytes = self.downloads = self.download_bytes = 0

    def uploaded(self, nbytes: int) -> None:
        self.uploads += 1
        self.upload_bytes += nbytes

    def downloaded(self, nbytes: int) -> None:
        self.downloads += 1
        self.download_bytes += nbytes

    def stats(self) -> dict[str, int]:
        return {"uploads": self.uploads, "upload_bytes": self.upload_bytes, "downloads": self.downloads,
                "download_bytes": self.download_bytes}


class Residency(Generic[B]):
    """Handle -> buffer, LRU ordered, holding at most ``budget`` bytes in at most ``max_entries`` buffers
    after each ``trim`` (``max_entries`` None: ``max_buffers()``, read when the residency is made).

    ``put`` never evicts, so a backend whose submitted work may still use resident buffers can keep
    several and ``trim`` once nothing is in flight."""

    def __init__(self, budget: int, release: Callable[[B], None], max_entries: int | None = None) -> None:
        self.budget = budget
        self.max_entries = max_buffers() if max_entries is None else max_entries
        self._release = release
        self._entries: OrderedDict[str, B] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, handle: str) -> B | None:
        buf = self._entries.get(handle)
        if buf is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(handle)
        return buf

    def __contains__(self, handle: str) -> bool:
        """Whether ``handle`` is resident, without counting a hit or reordering."""
        return handle in self._entries

    def put(self, handle: str, buf: B) -> None:
        """Keep ``buf``, just filled with ``handle``'s data. One larger than the whole budget is released
        at once instead (keeping it would evict every other entry and then itself), and so is one for a
        handle already resident (the same bytes: a run's output that equals one of its new inputs)."""
        if buf.size > self.budget or handle in self._entries:
            self._release(buf)
            return
        self._entries[handle] = buf
        self.bytes += buf.size

    def trim(self) -> None:
        """Release least recently used buffers until both bounds hold."""
        while self.bytes > self.budget or len(self._entries) > self.max_entries:
            _, buf = self._entries.popitem(last=False)
            self.bytes -= buf.size
            self._release(buf)

    def clear(self) -> None:
        while self._entries:
            self._release(self._entries.popitem(last=False)[1])
        self.bytes = 0

    def stats(self) -> dict[str, int]:
        return {"entries": len(self._entries), "bytes": self.bytes, "budget": self.budget,
                "max_entries": self.max_entries, "hits": self.hits, "misses": self.misses}
