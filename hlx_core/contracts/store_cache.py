"""``StoreCache``: values read from a store, kept by (store, key), bounded by the bytes they hold.

The planner keeps plans and the tensor cache keeps tensors this way; both hold arrays that a store's objects
back (a MemoryStore's bytes, a DiskStore's memory maps), so without a bound, or past the store's ``clear``,
they would keep memory the user has released. A StoreCache therefore

- holds at most ``max_entries`` entries and ``max_bytes`` of the arrays they refer to, each array counted
  once however many entries share it (plans of one model at several batch sizes bind the same weights);
  least recently used entries go first, and a value holding more than ``max_value_bytes`` is not kept. An
  array that views a memory-mapped file (a DiskStore's large objects) counts as nothing: its pages are the
  file's, which the kernel can drop at any time, so keeping it costs a mapping, not memory;
- holds its stores weakly, so a store that is garbage-collected takes its entries with it;
- drops every entry of a store as soon as objects leave it (``hlx_core.cas.store.on_removal``: discard,
  gc, clear), and refuses a value built while they did (``Store.generation`` changed meanwhile).
"""
from __future__ import annotations

import mmap
import threading
import weakref
from collections import OrderedDict
from typing import Any, Callable, Generic, TypeVar

from hlx_core.cas.store import on_removal

V = TypeVar("V")


def held_bytes(array: Any) -> int:
    """The anonymous memory ``array`` keeps alive: its bytes, or 0 when it views a memory-mapped file."""
    base = array
    while base is not None and not isinstance(base, mmap.mmap):
        base = base.obj if isinstance(base, memoryview) else getattr(base, "base", None)
    return 0 if base is not None else int(array.nbytes)
Held = dict[int, int]
"""What a value holds: ``id(array)`` -> its size in bytes, for each array it refers to (the arrays are alive
while an entry holds them, so their ids stay theirs)."""


class StoreCache(Generic[V]):
    """(store, key) -> value; ``held(value)`` says which arrays a value keeps alive, and how large."""

    def __init__(self, max_entries: int, max_bytes: int, max_value_bytes: int,
                 held: Callable[[V], Held]) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_value_bytes = max_value_bytes
        self._held = held
        self._lock = threading.Lock()
        # (id(store), key) -> (value, what it holds); least recently used first
        self._entries: OrderedDict[tuple[int, Any], tuple[V, Held]] = OrderedDict()
        self._stores: dict[int, weakref.ref] = {}  # id(store) -> weak reference that drops its entries
        self._arrays: dict[int, list[int]] = {}  # id(array) -> [its bytes, entries holding it]
        self.held_bytes = 0  # of the distinct arrays the entries hold
        self._dead: list[tuple[int, weakref.ref]] = []  # stores gone while the lock was taken
        on_removal(self.drop)

    def get(self, store: Any, key: Any) -> V | None:
        """The value kept for ``key`` in ``store`` (now the most recently used), or None."""
        sid = id(store)
        with self._lock:
            self._reap_locked()
            ref = self._stores.get(sid)
            if ref is None or ref() is not store:
                return None
            entry = self._entries.get((sid, key))
            if entry is None:
                return None
            self._entries.move_to_end((sid, key))
            return entry[0]

    def put(self, store: Any, key: Any, value: V, generation: int) -> None:
        """Keep ``value`` for ``key`` in ``store`` (a ``Store``), unless objects left the store since
        ``generation`` (read from ``store.generation`` before the value was built) or the value holds more
        than ``max_value_bytes``; then evict the least recently used entries beyond the bounds."""
        held = self._held(value)
        keep = sum(held.values()) <= min(self.max_value_bytes, self.max_bytes)
        with self._lock:
            self._reap_locked()
            if keep and store.generation == generation:
                self._insert_locked(store, key, value, held)
            while len(self._entries) > self.max_entries or self.held_bytes > self.max_bytes:
                self._remove_locked(next(iter(self._entries)))

    def drop(self, store: Any) -> None:
        """Forget every entry of ``store``."""
        with self._lock:
            self._reap_locked()
            ref = self._stores.get(id(store))
            if ref is not None and ref() is store:
                self._drop_locked(id(store))

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()
            self._stores.clear()
            self._arrays.clear()
            self.held_bytes = 0
            self._dead.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _insert_locked(self, store: Any, key: Any, value: V, held: Held) -> None:
        sid = id(store)
        ref = self._stores.get(sid)
        if ref is None or ref() is not store:
            self._drop_locked(sid)  # entries of a dead store whose id this one now has
            self._stores[sid] = weakref.ref(store, lambda dead, sid=sid: self._forget(sid, dead))
        self._remove_locked((sid, key))
        self._entries[(sid, key)] = (value, held)
        for identity, nbytes in held.items():
            slot = self._arrays.setdefault(identity, [nbytes, 0])
            if slot[1] == 0:
                self.held_bytes += nbytes
            slot[1] += 1

    def _forget(self, sid: int, ref: weakref.ref) -> None:
        """A store was garbage-collected: its entries go now, or, when the lock is taken (this may run inside
        any allocation, the cache's own included), at the cache's next use."""
        self._dead.append((sid, ref))
        if self._lock.acquire(blocking=False):
            try:
                self._reap_locked()
            finally:
                self._lock.release()

    def _reap_locked(self) -> None:
        while self._dead:
            sid, ref = self._dead.pop()
            if self._stores.get(sid) is ref:  # (not when the id already belongs to a new store)
                self._drop_locked(sid)

    def _drop_locked(self, sid: int) -> None:
        for key in [k for k in self._entries if k[0] == sid]:
            self._remove_locked(key)
        self._stores.pop(sid, None)

    def _remove_locked(self, key: tuple[int, Any]) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        for identity in entry[1]:
            slot = self._arrays[identity]
            slot[1] -= 1
            if slot[1] == 0:
                self.held_bytes -= slot[0]
                del self._arrays[identity]
