"""The store objects a contract needs, and their arrival in another store, verified by their hash.

A task carries handles, not arrays: where the worker shares no store with the client, the objects a
contract names (the contract, its shaders, its input tensors) travel as their LC-B bytes beside the task,
and the outputs travel back the same way; whoever receives bytes checks them against the handle before
storing them, so a corrupt transfer is an E_INTEGRITY, never a wrong result.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from hlx_core.cas import api as cas
from hlx_core.cas.store import Store
from hlx_core.codec.handle import Handle, blake3_digest, is_handle
from hlx_core.device.lru import LRU
from hlx_core.errors import HandleError

_named: LRU[Handle, tuple[Handle, ...]] = LRU(4096, locked=True)  # object -> the handles it names


def handles_in(value: Any) -> Iterator[Handle]:
    """Every handle a decoded value names (nested maps and lists walked)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, str) and is_handle(item):
            yield Handle(item)


def needed(root: Handle, store: Store) -> list[Handle]:
    """``root`` and every object reachable from it in ``store``, each once (tensors are leaves: they name
    nothing). A handle the store lacks is left out: the run that needs it reports it."""
    found: list[Handle] = []
    seen: set[Handle] = set()
    stack = [Handle(root)]
    while stack:
        handle = stack.pop()
        if handle in seen or not store.contains(handle):
            continue
        seen.add(handle)
        found.append(handle)
        if handle.tag != "tensor":
            stack.extend(_children(handle, store))
    return found


def _children(handle: Handle, store: Store) -> tuple[Handle, ...]:
    """The handles an object names; remembered, since an object never changes (a shader's 900 is named
    by every contract that runs it)."""
    found = _named.get(handle)
    if found is None:
        found = tuple(handles_in(cas.resolve(handle, store=store)))
        _named.put(handle, found)
    return found


def payload(handle: Handle, store: Store) -> bytes:
    """The object's LC-B bytes, verified as the store reads them."""
    return bytes(store.get(handle))


def carry(items: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """A task that gives back the (handle, bytes) pairs it carries: how the Dask executor sends objects."""
    return items


def receive(handle: Handle | str, data: bytes, store: Store, *, behind: bool = False) -> None:
    """Store ``data`` under ``handle`` after checking that it hashes to it (E_INTEGRITY otherwise)."""
    handle = Handle(handle)
    if blake3_digest([data]) != handle.digest:
        raise HandleError("E_INTEGRITY", f"{handle}: the {len(data)} bytes that arrived for it hash differently "
                                         "(damaged in transfer or by the sender); nothing was stored")
    if behind:
        store.put_behind(handle, [data])
    else:
        store.put(handle, [data])


def receive_all(items: Iterable[tuple[str, bytes]], store: Store) -> None:
    for handle, data in items:
        receive(handle, data, store)
