"""The tensors contracts bind, resolved once per store.

Resolving a tensor reads its object and hashes it again (a DiskStore verifies every read). Weights that
every new contract binds again, such as a model's layers at each new batch size, would cost more to read
than the rest of the contract costs to plan. A handle names the same bytes forever, so a tensor read and
verified once is kept here, read-only, by (store, handle): the kernel helpers take dtype and shape from it
and the planner binds it. Each lookup still asks the store whether it holds the handle (no read, no hash),
so a tensor removed from its store, or one that only another store holds, fails as E_HANDLE_NOT_FOUND as
it always did. Stores are held weakly: a store that is gone takes nothing with it from here.
"""
from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Any

import numpy as np

from hlx_core.cas import api as cas
from hlx_core.codec.handle import Handle

MAX_ENTRIES = 256  # a DiskStore's tensors are memory maps, each holding a file descriptor
MAX_BYTES = 256 << 20
MAX_TENSOR_BYTES = 64 << 20

_lock = threading.Lock()
# (id(store), handle) -> (weak reference to the store, read-only array); least recently used first
_kept: OrderedDict[tuple[int, str], tuple[weakref.ref, np.ndarray]] = OrderedDict()
_bytes = [0]


def resolve_tensor(handle: Handle, store: Any) -> Any:
    """``cas.resolve(handle, store)``; a tensor comes from here when this store gave it before."""
    key = (id(store), handle)
    with _lock:
        entry = _kept.get(key)
        if entry is not None:
            _kept.move_to_end(key)
    if entry is not None and entry[0]() is store and cas.exists(handle, store=store):
        return entry[1]
    value = cas.resolve(handle, store=store)
    if isinstance(value, np.ndarray) and not value.flags.writeable and value.nbytes <= MAX_TENSOR_BYTES:
        _keep(key, store, value)
    return value


def _keep(key: tuple[int, str], store: Any, array: np.ndarray) -> None:
    try:
        ref = weakref.ref(store)
    except TypeError:  # a store without weak references is simply not cached
        return
    with _lock:
        old = _kept.pop(key, None)
        if old is not None:
            _bytes[0] -= old[1].nbytes
        _kept[key] = (ref, array)
        _bytes[0] += array.nbytes
        while len(_kept) > MAX_ENTRIES or _bytes[0] > MAX_BYTES:
            _, (_, dropped) = _kept.popitem(last=False)
            _bytes[0] -= dropped.nbytes


def clear() -> None:
    """Forget every kept tensor."""
    with _lock:
        _kept.clear()
        _bytes[0] = 0
