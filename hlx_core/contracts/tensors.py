"""The tensors contracts bind, resolved once per store.

Resolving a tensor reads its object and hashes it again (a DiskStore verifies every read). Weights that
every new contract binds again, such as a model's layers at each new batch size, would cost more to read
than the rest of the contract costs to plan. A handle names the same bytes forever, so a tensor read and
verified once is kept here, read-only, by (store, handle): the kernel helpers take dtype and shape from it
and the planner binds it. Each lookup still asks the store whether it holds the handle (no read, no hash),
so a tensor removed from its store, or one that only another store holds, fails as E_HANDLE_NOT_FOUND as
it always did. What is kept is bounded (``MAX_ENTRIES`` tensors, ``MAX_BYTES`` in all, none larger than
``MAX_TENSOR_BYTES``) and goes with its store: when objects leave it (discard, gc, clear) or it is
garbage-collected (``hlx_core.contracts.store_cache``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from hlx_core.cas import api as cas
from hlx_core.cas.store import Store
from hlx_core.codec.encoder import tensor_prefix
from hlx_core.codec.handle import Handle
from hlx_core.contracts.store_cache import StoreCache, held_bytes

MAX_ENTRIES = 256  # a DiskStore's tensors are memory maps, each holding a file descriptor
MAX_BYTES = 256 << 20
MAX_TENSOR_BYTES = 64 << 20
KEEP_COPY_MAX_BYTES = 1 << 20  # arrays a kernel helper just collapsed, kept as copies (``keep``)

_kept: StoreCache[np.ndarray] = StoreCache(MAX_ENTRIES, MAX_BYTES, MAX_TENSOR_BYTES,
                                           lambda array: {id(array): held_bytes(array)})


def resolve_tensor(handle: Handle, store: Any) -> Any:
    """``cas.resolve(handle, store)``; a tensor comes from here when this store gave it before."""
    if not isinstance(store, Store):
        return cas.resolve(handle, store=store)  # which refuses what is not a store (E_STORE)
    kept = _kept.get(store, handle)
    if kept is not None and cas.exists(handle, store=store):
        return kept
    generation = store.generation
    value = cas.resolve(handle, store=store)
    if isinstance(value, np.ndarray) and not value.flags.writeable:
        _kept.put(store, handle, value, generation)
    return value


def kept_tensor(handle: Handle, store: Any) -> np.ndarray | None:
    """The tensor kept for ``handle`` from ``store``, or None, without asking the store whether it still
    holds it: for a caller that has just asked (a memo hit's check of its outputs)."""
    return _kept.get(store, handle) if isinstance(store, Store) else None


def worth_keeping(array: np.ndarray, store: Any) -> bool:
    """Whether ``keep`` keeps a copy of ``array`` for ``store``: only small arrays (objects under
    ``KEEP_COPY_MAX_BYTES``), where reading the object back costs more than the copy, and none a DiskStore
    would give back as a file mapping (from its ``mmap_min_bytes`` on), which holds no memory of the
    process."""
    if not isinstance(store, Store):
        return False
    limit = min(KEEP_COPY_MAX_BYTES, getattr(store, "mmap_min_bytes", KEEP_COPY_MAX_BYTES))
    return len(tensor_prefix(array.dtype, array.shape)) + array.nbytes < limit


def keep(handle: Handle, copy: np.ndarray, store: Any, generation: int) -> None:
    """Keep ``copy``, a read-only array HLX owns that was just collapsed into ``store`` as ``handle``
    (``generation`` read before) and is ``worth_keeping``, as the tensor ``resolve_tensor`` gives: the
    planner then binds it without reading the object back and hashing it again, what a contract of new
    inputs would otherwise cost each run."""
    _kept.put(store, handle, copy, generation)


def tensor_spec(handle: Handle, store: Any) -> tuple[np.dtype, tuple[int, ...]] | None:
    """(dtype, shape) of a tensor that is still only on a device (a resident output), known without
    downloading it; None for anything else (read it with ``resolve_tensor``)."""
    return store.resident_spec(handle) if isinstance(store, Store) else None


def clear() -> None:
    """Forget every kept tensor."""
    _kept.clear()
