"""collapse / resolve / exists and the default store.

``collapse`` hashes a value's LC-B encoding chunk by chunk (tensor payloads are hashed in place, never
concatenated) and stores it; ``resolve`` reads it back, verified, and decodes it zero-copy (tensors are
read-only views, memory-mapped when they come from a DiskStore).

The default store is a DiskStore at ``hlx_home()`` (``$HLX_HOME``, default the user cache folder), made on first
use. Until ``set_default_store`` names one, it follows ``$HLX_HOME``: when the variable changes, the next
call uses a store at the new place.

``collapse(..., behind=True)`` (what ``hlx.run`` does with its outputs) returns once the value is hashed;
the store writes it behind the caller and serves it from memory until then (hlx_core/cas/writer.py);
``flush`` waits for those writes.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Iterator

from hlx_core import codec
from hlx_core.cas.disk import DiskStore
from hlx_core.cas.resident import settle_all
from hlx_core.cas.store import Snapshot, Store, Transaction
from hlx_core.cas.writer import flush_all
from hlx_core.codec.handle import Handle, tag_of
from hlx_core.errors import HandleError
from hlx_core.settings import hlx_home, home_env

_lock = threading.Lock()
_explicit: Store | None = None
_from_env: DiskStore | None = None
_from_env_key: tuple[object, ...] | None = None  # the variables (home_env) _from_env was made for


def get_default_store() -> Store:
    """The store used when none is passed: the one set explicitly, else a DiskStore at ``hlx_home()``."""
    global _from_env, _from_env_key
    if _explicit is not None:
        return _explicit
    store = _from_env
    key = home_env()
    if store is not None and _from_env_key == key:
        return store  # every hlx.run asks: skip building the path while the environment is unchanged
    with _lock:
        home = hlx_home()
        if _from_env is None or _from_env.path != home:
            _from_env = DiskStore(home)
        _from_env_key = key
        return _from_env


def set_default_store(store: Store | None) -> None:
    """Use ``store`` when none is passed; ``None`` returns to the DiskStore at ``$HLX_HOME``."""
    global _explicit
    _explicit = _check_store(store) if store is not None else None


def collapse(value: Any, store: Store | None = None, *, behind: bool = False, handle: Handle | None = None
             ) -> Handle:
    """Store ``value`` and return its handle ``&h_<tag>_<BLAKE3 of encode(value)>``.

    Hashes (that is how the handle is known) unless ``handle`` is that hash already (a backend hashed the
    output on the device); writes only when the object is not stored yet. ``behind=True`` lets the store
    write after returning (``flush`` waits): keep ``value`` unmodified.
    """
    target = _resolve_store(store)
    chunks = codec.encode_chunks(value)
    if handle is None:
        handle = Handle.hashed(tag_of(value), chunks)
    if behind:
        target.put_behind(handle, chunks)
    else:
        target.put(handle, chunks)
    return handle


def flush(store: Store | None = None) -> None:
    """Wait until every object written behind is in its store (every store's, or ``store``'s only), outputs
    still only on a device downloaded and written first; E_STORE for a write that failed. Interpreter exit
    flushes too."""
    if store is None:
        settle_all()
        flush_all()
    else:
        _check_store(store).flush()


def resolve(handle: Handle | str, store: Store | None = None) -> Any:
    """The value behind ``handle`` (E_HANDLE_INVALID for a malformed handle, E_HANDLE_NOT_FOUND when absent,
    E_INTEGRITY when the stored bytes do not match, or are a value of another kind than the handle's tag:
    the tag is not hashed, so only reading the value can tell)."""
    h = Handle(handle)
    target = _resolve_store(store)
    array = target.resident_array(h)  # still only on a device: the downloaded array itself
    if array is not None:
        return array
    value = codec.decode(target.get(h))
    if tag_of(value) != h.tag:
        raise HandleError("E_INTEGRITY", f"{h} names a {h.tag}, but its bytes are a {tag_of(value)}")
    return value


def exists(handle: Handle | str, store: Store | None = None) -> bool:
    """Whether ``handle``'s object is stored (E_HANDLE_INVALID for a malformed handle)."""
    return _resolve_store(store).contains(handle)


def snapshot(store: Store | None = None) -> Snapshot:
    """An immutable record of what the store holds now: ``Snapshot(handles: frozenset, bytes: int)``.

    Compare two snapshots to see what a piece of code stored: ``after.handles - before.handles``.
    """
    return _resolve_store(store).snapshot()


@contextmanager
def transaction(store: Store | None = None) -> Iterator[Transaction]:
    """A block whose stores are undone if it raises: objects this thread created inside it are removed,
    objects that existed before stay.

    Best effort under concurrent writers: if another thread (or, for a DiskStore, another process) stores
    the same value while the block runs, the rollback removes it too and that writer's handle may later be
    missing (docs/STORE.md). Yields a ``Transaction`` whose ``created`` lists the new handles.
    """
    with _resolve_store(store).transaction() as record:
        yield record


def _resolve_store(store: Store | None) -> Store:
    return get_default_store() if store is None else _check_store(store)


def _check_store(store: Any) -> Store:
    if not isinstance(store, Store):
        raise HandleError("E_STORE", f"expected a Store (MemoryStore, DiskStore), got {type(store).__name__}")
    return store
