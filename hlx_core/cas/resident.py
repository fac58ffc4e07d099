"""Objects a store knows of that are still only on a device: a run's outputs left where they were computed.

A GPU backend hashes a large output on the device, so its handle is known without the bytes ever crossing
to the host. ``hlx.run`` then registers the output with its store as *resident*: a ``DeviceSource`` that
can download it. The store counts it as present (``contains``, ``hlx.exists``), serves it by downloading
it on the first read (``get``, ``hlx.resolve``; the bytes are then written like any output, behind the
caller) and *settles* it, i.e. downloads and writes it, whenever it must be durable: ``flush``, interpreter
exit, a fork, ``persist=True``. The device side spills an output into every store that still waits for it
(``spilled``) before it frees the buffer, so a handle the user was given resolves while the process lives.

This is a layer of the store, not of the codec: a source is only asked for its dtype, shape and array.
"""
from __future__ import annotations

import threading
import weakref
from typing import Any, Protocol

import numpy as np

from hlx_core.codec.handle import Handle


class DeviceSource(Protocol):
    """A tensor on a device, known by its handle. ``fetch`` downloads it (serialised with the device's other
    work by whoever implements it) or returns None once the device no longer has it: it was spilled into
    the stores that waited for it then."""

    handle: Handle
    dtype: np.dtype
    shape: tuple[int, ...]

    def fetch(self) -> np.ndarray | None: ...


class ResidentSet:
    """One store's resident objects by handle (thread-safe; the downloads happen outside its lock, since
    a device evicting an output calls back into it while it holds its own)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sources: dict[Handle, DeviceSource] = {}

    def add(self, source: DeviceSource) -> None:
        with self._lock:
            self._sources.setdefault(source.handle, source)

    def get(self, handle: Handle) -> DeviceSource | None:
        with self._lock:
            return self._sources.get(handle)

    def drop(self, handle: Handle, source: DeviceSource | None = None) -> bool:
        """Forget ``handle`` (only if it is still ``source``, when given); True when it was there."""
        with self._lock:
            found = self._sources.get(handle)
            if found is None or (source is not None and found is not source):
                return False
            del self._sources[handle]
            return True

    def handles(self) -> list[Handle]:
        with self._lock:
            return list(self._sources)

    def __contains__(self, handle: object) -> bool:
        return handle in self._sources

    def __len__(self) -> int:
        return len(self._sources)


# Stores that have held resident objects: where an evicted output is spilled and what a flush settles.
_holders: "weakref.WeakSet[Any]" = weakref.WeakSet()
_holders_lock = threading.Lock()


def register(store: Any) -> None:
    with _holders_lock:
        _holders.add(store)


def holders() -> list[Any]:
    with _holders_lock:
        return list(_holders)


def wanted(handle: Handle) -> bool:
    """Whether some store still waits for ``handle``'s bytes (a device must spill it before freeing it)."""
    return any(handle in store.resident for store in holders())


def spilled(handle: Handle, array: np.ndarray) -> None:
    """``handle``'s bytes, downloaded by its device before it frees them: every store waiting for it takes
    them (written behind)."""
    for store in holders():
        store.settle_array(handle, array)


def settle_all() -> None:
    """Download and write every resident object of every store (``hlx.flush()``, exit, before a fork)."""
    for store in holders():
        store.settle()
