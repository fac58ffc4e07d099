"""Stores: where the bytes behind handles live.

A store maps a handle to the LC-B bytes whose BLAKE3 it is. The API is deliberately small so that the
rest of HLX (and a future remote or sharded store) needs only these methods:

- ``put(handle, chunks) -> bool``: store the concatenation of ``chunks`` (True when this call created it).
  The caller vouches that ``handle`` is the hash of the chunks (``collapse`` computes it); stores check it
  before they hand the bytes out.
- ``get(handle) -> buffer``: the bytes, verified to hash to ``handle`` (``bytes`` or a read-only ``mmap``).
- ``contains(handle)``, ``discard(handle)``, ``handles()``, ``stats()``, ``gc(...)``, ``clear()``,
  ``snapshot()``, ``transaction()``.

Subclasses implement the ``_``-prefixed primitives; the base class owns handle validation, garbage-collection
policy and transaction journals so every store behaves the same.
"""
from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence, Union

import numpy as np

from hlx_core.cas.resident import DeviceSource, ResidentSet, register
from hlx_core.codec import encode_chunks
from hlx_core.codec.handle import Buffer, Handle, blake3_digest
from hlx_core.errors import HandleError

ReadBuffer = Union[bytes, memoryview, Any]  # bytes, or an mmap.mmap opened read-only

_removal_listeners: list[Callable[["Store"], None]] = []


def on_removal(listener: Callable[["Store"], None]) -> None:
    """Call ``listener(store)`` whenever objects have left a store (discard, gc, clear, a rolled-back
    transaction), after its ``generation`` changed: caches of values read from it drop what they hold."""
    _removal_listeners.append(listener)


@dataclass(frozen=True)
class Entry:
    """One stored object as the garbage collector sees it: ``last_used`` orders eviction (oldest first)."""

    handle: Handle
    size: int
    last_used: float


@dataclass(frozen=True)
class Snapshot:
    """What a store held at one moment: the set of handles and their total size in bytes.

    Immutable and cheap to compare: ``later.handles - earlier.handles`` is what was added in between.
    """

    handles: frozenset[Handle]
    bytes: int

    @property
    def objects(self) -> int:
        return len(self.handles)

    def __contains__(self, handle: object) -> bool:
        return handle in self.handles

    def __len__(self) -> int:
        return len(self.handles)


@dataclass
class Transaction:
    """The live record of a ``transaction()``: the handles this thread created in ``store`` inside it."""

    store: "Store"
    created: list[Handle] = field(default_factory=list)


def as_handle(handle: Any) -> Handle:
    """``handle`` as a Handle; a malformed string (or a non-string) raises E_HANDLE_INVALID."""
    return Handle(handle)


def _buffers(chunks: Iterable[Buffer]) -> list[Buffer]:
    """``chunks`` as a list of C-contiguous buffers, or E_STORE saying which chunk is not one."""
    if isinstance(chunks, (bytes, bytearray, memoryview, str)) or not isinstance(chunks, Iterable):
        raise HandleError("E_STORE", f"put needs an iterable of bytes-like chunks (e.g. [data]), "
                                     f"got {type(chunks).__name__}")
    items = list(chunks)
    for i, chunk in enumerate(items):
        if type(chunk) is bytes:
            continue
        try:
            contiguous = memoryview(chunk).c_contiguous
        except TypeError:
            raise HandleError("E_STORE", f"chunk {i} is a {type(chunk).__name__}, not a bytes-like object") from None
        if not contiguous:
            raise HandleError("E_STORE", f"chunk {i} is not a C-contiguous buffer")
    return items


class Store(ABC):
    """Base of all stores. Thread-safe; transactions are tracked per thread."""

    generation = 0  # changes whenever objects leave the store (``on_removal``)

    def __init__(self) -> None:
        self._local = threading.local()

    def _removed(self) -> None:
        self.generation += 1
        for listener in _removal_listeners:
            listener(self)

    # -- primitives a store implements -------------------------------------------------------------
    @abstractmethod
    def _put(self, handle: Handle, chunks: Sequence[Buffer]) -> bool:
        """Store the object unless present (then mark it used); True when this call created it."""

    @abstractmethod
    def _get(self, handle: Handle) -> ReadBuffer | None:
        """The verified bytes, or None when absent; raise E_INTEGRITY on a hash mismatch."""

    @abstractmethod
    def _contains(self, handle: Handle) -> bool:
        ...

    @abstractmethod
    def _discard(self, handle: Handle) -> bool:
        """Remove the object; True when it was there."""

    @abstractmethod
    def _entries(self) -> list[Entry]:
        ...

    def _sweep(self) -> None:  # noqa: B027 (optional: a store that leaves nothing behind has nothing to sweep)
        """Remove leftovers that are not objects (a DiskStore's abandoned temp files); gc and clear call it."""

    # -- public API ------------------------------------------------------------------------------
    def put(self, handle: Handle | str, chunks: Iterable[Buffer]) -> bool:
        """Store the concatenation of ``chunks`` under ``handle``; True when this call created the object.

        An object already present is left as it is (and counts as used for ``gc``)."""
        h = as_handle(handle)
        created = self._put(h, _buffers(chunks))
        if created:
            for record in self._journals():
                record.created.append(h)
        return created

    def put_behind(self, handle: Handle, chunks: Sequence[Buffer]) -> None:
        """Store like ``put`` but possibly after returning: a store whose writes are slow (a DiskStore)
        writes on a background thread and serves the object from memory until then (``flush`` waits for
        it). The caller keeps ``chunks`` unmodified. Inside a ``transaction`` this writes through, so the
        transaction records it."""
        self.put(handle, chunks)

    def flush(self) -> None:
        """Download and write every resident object, then wait until every object put behind is written
        (E_STORE for a write that failed)."""
        self.settle()
        self._flush_writes()

    def _flush_writes(self) -> None:  # noqa: B027 (a store that writes through has nothing to wait for)
        """Wait until every object put behind is written."""

    # -- objects still on a device (hlx_core/cas/resident.py) -------------------------------------
    @property
    def resident(self) -> ResidentSet:
        """The objects this store knows of that are still only on a device."""
        found = self.__dict__.get("_resident_set")
        if found is None:
            found = self.__dict__.setdefault("_resident_set", ResidentSet())
        return found

    def put_resident(self, source: DeviceSource) -> None:
        """Count ``source.handle`` as stored while its bytes are still on a device: it is downloaded and
        written on its first read, on ``flush``, or when its device spills it (``settle_array``). A no-op
        for an object stored already, or resident already (its first source stays)."""
        if not self._contains(source.handle):
            self.resident.add(source)
            register(self)

    def resident_spec(self, handle: Handle) -> tuple[np.dtype, tuple[int, ...]] | None:
        """(dtype, shape) of a tensor that is only on a device, else None: what a planner needs of it."""
        found = self.__dict__.get("_resident_set")
        source = None if found is None else found.get(handle)
        return None if source is None else (np.dtype(source.dtype), tuple(source.shape))

    def resident_array(self, handle: Handle) -> np.ndarray | None:
        """A tensor that is only on a device, downloaded and handed to the store: what ``resolve`` returns
        for it, without copying back (and hashing again) the bytes just handed over; None for any other
        object (read it with ``get``)."""
        if self.resident_spec(handle) is None or self._contains(handle):
            return None
        return self.materialize(handle)

    def materialize(self, handle: Handle) -> np.ndarray | None:
        """Download a resident object, hand it to the store (written behind) and return its array; None when
        ``handle`` is not resident here (any more)."""
        source = self.resident.get(handle)
        if source is None:
            return None
        array = source.fetch()  # outside any store lock: the device serialises it with its runs
        if array is None:  # its device spilled it meanwhile
            return None
        self.settle_array(handle, array)
        return array

    def settle_array(self, handle: Handle, array: np.ndarray) -> None:
        """``handle``'s downloaded bytes: written (behind) when this store waits for them, else ignored."""
        source = self.resident.get(handle)
        if source is None:
            return
        array.flags.writeable = False
        self.put_behind(handle, encode_chunks(array))
        self.resident.drop(handle, source)

    def settle(self) -> None:
        """Download and write every resident object (``flush``, exit, before a fork)."""
        found = self.__dict__.get("_resident_set")
        if found is not None:
            for handle in found.handles():
                self.materialize(handle)

    def get(self, handle: Handle | str) -> ReadBuffer:
        """The object's bytes, verified against the handle; E_HANDLE_NOT_FOUND when absent. A resident
        object is downloaded first."""
        h = as_handle(handle)
        buf = self._get(h)
        if buf is None and self.resident_spec(h) is not None:
            self.materialize(h)
            buf = self._get(h)
        if buf is None:
            raise HandleError("E_HANDLE_NOT_FOUND", f"{h} is not in {self!r}")
        return buf

    def contains(self, handle: Handle | str) -> bool:
        h = handle if type(handle) is Handle else as_handle(handle)  # a memo hit asks for each output
        if self._contains(h):
            return True
        found = self.__dict__.get("_resident_set")
        return found is not None and h in found

    def discard(self, handle: Handle | str) -> bool:
        """Remove one object; True when it was there."""
        h = as_handle(handle)
        dropped = self.resident.drop(h)  # nothing to download for an object about to go
        self._flush_writes()  # a write behind of this object must not land after its removal
        removed = self._discard(h) or dropped
        if removed:
            self._removed()
        return removed

    def handles(self) -> Iterator[Handle]:
        """Every handle stored now (in no particular order)."""
        self.flush()
        return iter([e.handle for e in self._entries()])

    def stats(self) -> dict[str, int]:
        """``{"objects": count, "bytes": total size}``."""
        self.flush()
        entries = self._entries()
        return {"objects": len(entries), "bytes": sum(e.size for e in entries)}

    def snapshot(self) -> Snapshot:
        self.flush()
        entries = self._entries()
        return Snapshot(frozenset(e.handle for e in entries), sum(e.size for e in entries))

    def gc(self, max_bytes: int | None = None, keep: Iterable[Handle | str] | None = None, *,
           grace_seconds: float = 0.0) -> list[Handle]:
        """Remove objects and return their handles, least recently used first.

        ``keep`` handles are never removed. With ``max_bytes``, objects outside ``keep`` are evicted least
        recently used first (used = stored, collapsed again or read) until the store holds at most
        ``max_bytes``; with ``keep`` alone, everything outside it is removed (``max_bytes=0``). With neither,
        nothing is removed. Objects used within the last ``grace_seconds`` stay too (where the store keeps
        times: a DiskStore), so a gc running beside a process never takes what a run has just collapsed.
        """
        if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int)
                                      or max_bytes < 0):
            raise HandleError("E_STORE", f"gc(max_bytes=...) must be an int >= 0, got {max_bytes!r}")
        if keep is not None and (isinstance(keep, str) or not isinstance(keep, Iterable)):
            raise HandleError("E_STORE", f"gc(keep=...) must be a collection of handles, got {type(keep).__name__}")
        if isinstance(grace_seconds, bool) or not isinstance(grace_seconds, (int, float)) or not grace_seconds >= 0:
            raise HandleError("E_STORE", f"gc(grace_seconds=...) must be a number >= 0, got {grace_seconds!r}")
        kept = frozenset(as_handle(h) for h in keep) if keep is not None else frozenset()
        self.flush()
        self._sweep()
        if max_bytes is None:
            if keep is None:
                return []
            max_bytes = 0
        return self._evict(max_bytes, kept, grace_seconds)

    def _evict(self, max_bytes: int, kept: frozenset[Handle], grace_seconds: float,
               entries: list[Entry] | None = None) -> list[Handle]:
        """Least recently used first, until at most ``max_bytes`` remain (gc's work, without its flush);
        ``entries``: the listing when the caller has just made one."""
        entries = sorted(self._entries() if entries is None else entries, key=lambda e: e.last_used)
        total = sum(e.size for e in entries)
        removed: list[Handle] = []
        for entry in entries:
            if total <= max_bytes:
                break
            if entry.handle in kept or self._is_recent(entry, grace_seconds):
                continue
            if self._discard(entry.handle):
                removed.append(entry.handle)
            total -= entry.size
        if removed:
            self._removed()
        return removed

    def _is_recent(self, entry: Entry, grace_seconds: float) -> bool:
        """Whether ``entry`` was used within the last ``grace_seconds`` (False where no times are kept)."""
        return False

    def clear(self) -> int:
        """Remove every object; returns how many were removed."""
        dropped = sum(self.resident.drop(h) for h in self.resident.handles())
        self.flush()
        self._sweep()
        count = dropped + sum(self._discard(e.handle) for e in self._entries())
        self._removed()
        return count

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Objects this thread creates inside the block are removed if the block raises.

        Objects that existed before stay. Only this thread's writes are recorded; another writer storing the
        same value meanwhile loses it too (best effort; docs/STORE.md).
        """
        record = Transaction(self)
        journals = self._journals()
        journals.append(record)
        try:
            yield record
        except BaseException:
            for h in reversed(record.created):
                try:
                    self._discard(h)
                except HandleError:
                    pass  # best effort: the original exception is what the caller must see
            if record.created:
                self._removed()
            raise
        finally:
            journals.remove(record)

    def _journals(self) -> list[Transaction]:
        journals = getattr(self._local, "journals", None)
        if journals is None:
            journals = self._local.journals = []
        return journals


class MemoryStore(Store):
    """Objects in this process's memory.

    Large values are *borrowed*, not copied (``borrow=True``): the store keeps the caller's tensor buffers
    and copies them on the first ``get``. So collapsing a large tensor costs about one BLAKE3 pass, but
    mutating an array after collapsing it (before its first resolve) makes that resolve fail with
    E_INTEGRITY instead of returning the new contents. ``borrow=False`` copies at ``put``. Objects smaller
    than ``BORROW_MIN_BYTES`` are always copied.

    Every object is verified against its handle once, on its first ``get`` (``collapse`` has just hashed
    the chunks it puts, so verifying at ``put`` would hash them twice); one that fails is removed.
    """

    BORROW_MIN_BYTES = 1 << 20

    def __init__(self, *, borrow: bool = True) -> None:
        super().__init__()
        self.borrow = borrow
        self._lock = threading.Lock()
        # handle -> verified bytes, or a tuple of chunks (borrowed, or one owned copy) not yet verified;
        # ordered least recently used first.
        self._objects: OrderedDict[Handle, bytes | tuple[Buffer, ...]] = OrderedDict()

    def __repr__(self) -> str:
        return f"MemoryStore(objects={len(self._objects)})"

    def _put(self, handle: Handle, chunks: Sequence[Buffer]) -> bool:
        with self._lock:
            if handle in self._objects:
                self._objects.move_to_end(handle)
                return False
        size = sum(memoryview(c).nbytes for c in chunks)
        borrowed = self.borrow and size >= self.BORROW_MIN_BYTES
        stored = tuple(chunks) if borrowed else (b"".join(chunks),)  # verified when first read
        with self._lock:
            created = handle not in self._objects
            if created:
                self._objects[handle] = stored
            self._objects.move_to_end(handle)
            return created

    def _get(self, handle: Handle) -> bytes | None:
        with self._lock:
            stored = self._objects.get(handle)
            if stored is None:
                return None
            self._objects.move_to_end(handle)
        if isinstance(stored, bytes):
            return stored
        data = b"".join(stored)  # one owned chunk comes back as is, borrowed ones are copied
        verified = blake3_digest([data]) == handle.digest
        with self._lock:
            if self._objects.get(handle) is stored:
                if verified:
                    self._objects[handle] = data
                else:
                    del self._objects[handle]
        if not verified:
            raise HandleError("E_INTEGRITY", f"{handle}: the bytes put under it hash differently, so they were "
                                             "removed (put was given the wrong handle, or a borrowed buffer changed "
                                             "after it was collapsed: MemoryStore(borrow=False) copies instead)")
        return data

    def _contains(self, handle: Handle) -> bool:
        with self._lock:
            return handle in self._objects

    def _discard(self, handle: Handle) -> bool:
        with self._lock:
            return self._objects.pop(handle, None) is not None

    def _entries(self) -> list[Entry]:
        with self._lock:
            items = list(self._objects.items())
        # Position in the LRU order stands in for a timestamp.
        return [Entry(h, _size(v), float(i)) for i, (h, v) in enumerate(items)]


def _size(stored: bytes | tuple[Buffer, ...]) -> int:
    if isinstance(stored, bytes):
        return len(stored)
    return sum(memoryview(c).nbytes for c in stored)


__all__ = ["Store", "MemoryStore", "Entry", "Snapshot", "Transaction", "as_handle", "on_removal"]
