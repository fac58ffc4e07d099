"""One bounded least-recently-used map for every cache HLX keeps (plans, pipelines, descriptor sets ...).

Device caches must hand back what they evict (a command buffer, a descriptor set), so eviction calls
``on_evict``; plain caches pass none. Caches behind a session are serialised by the runtime's session lock;
process-wide caches (the planner's) ask for ``locked=True``.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    """At most ``capacity`` entries; ``put`` beyond it evicts the least recently used first."""

    def __init__(self, capacity: int, on_evict: Callable[[K, V], None] | None = None, *,
                 locked: bool = False) -> None:
        self.capacity = capacity
        self._on_evict = on_evict
        self._items: OrderedDict[K, V] = OrderedDict()
        self._locked = locked
        self._lock = threading.Lock() if locked else nullcontext()

    def get(self, key: K) -> V | None:
        """The value under ``key``, now the most recently used; None when absent."""
        if not self._locked:  # a session's caches, asked on every run: no context manager to enter
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        """Keep ``value`` as the most recently used, then evict beyond capacity. Replacing a value under a
        key hands the old one to ``on_evict`` unless it is the same object."""
        with self._lock:
            old = self._items.pop(key, None)
            self._items[key] = value
            evicted = [] if old is None or old is value else [(key, old)]
            while len(self._items) > self.capacity:
                evicted.append(self._items.popitem(last=False))
        for item in evicted:
            self._evicted(*item)

    def pop(self, key: K) -> V | None:
        """Remove and return the value under ``key`` without calling ``on_evict``."""
        with self._lock:
            return self._items.pop(key, None)

    def discard_where(self, pred: Callable[[K, V], bool]) -> None:
        """Evict every entry for which ``pred(key, value)`` holds (e.g. those referring to a freed buffer)."""
        with self._lock:
            evicted = [(k, self._items.pop(k)) for k in [k for k, v in self._items.items() if pred(k, v)]]
        for item in evicted:
            self._evicted(*item)

    def clear(self) -> None:
        """Evict everything, oldest first."""
        with self._lock:
            evicted = list(self._items.items())
            self._items.clear()
        for item in evicted:
            self._evicted(*item)

    def _evicted(self, key: K, value: V) -> None:
        if self._on_evict is not None:
            self._on_evict(key, value)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[K]:
        return iter(self._items)

    def keys(self):
        return self._items.keys()

    def values(self):
        return self._items.values()

    def items(self):
        return self._items.items()
