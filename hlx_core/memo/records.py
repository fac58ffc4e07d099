"""Memo records: what a run wrote down so the next run of the same key can be answered from the store.

A record is a store object (a map): ``key`` (the fields the execution key hashes), ``outputs`` (the output
handles, in the contract's order) and ``provenance`` (the device's name and UUID, the host, when, the
run's timings). A hit counts only when everything checks: the index entry names a record that resolves
(the store re-hashes it), the record's fields re-derive the key, and every output resolves (re-hashed) to a
tensor of the dtype and shape the plan says. Anything else is a miss: the entry is dropped and the run
computes, so a damaged or forged record costs a recomputation, never an error and never wrong data.
"""
from __future__ import annotations

import logging
import time
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

from hlx_core.cas import api as cas
from hlx_core.cas.store import Store
from hlx_core.codec.handle import Handle, is_handle
from hlx_core.contracts.tensors import kept_tensor, resolve_tensor, tensor_spec
from hlx_core.device.lru import LRU
from hlx_core.memo.index import index_for
from hlx_core.memo.key import derive_key
from hlx_core.plan import Plan

log = logging.getLogger("hlx.memo")


class _Known:
    """A record this process has read: the key its fields derive, its outputs, and the output specs
    (a plan's ``output_specs``) for which every output was read back and verified: a hit of that plan then
    asks the store only whether it still holds the record and each output."""

    __slots__ = ("key", "outputs", "verified_for")

    def __init__(self, key: str, outputs: list[Any]) -> None:
        self.key, self.outputs = key, outputs
        self.verified_for: tuple[Any, ...] | None = None


# record handle -> what this process knows of it
_derived: LRU[Handle, _Known] = LRU(4096, locked=True)
# (output handle, dtype, shape) -> True once this process has read it back and found it verified and of
# that dtype and shape: objects are immutable, so a warm hit asks only whether each is still stored.
_verified: LRU[tuple[Handle, Any, tuple[int, ...]], bool] = LRU(4096, locked=True)


class Hit(NamedTuple):
    """A record that checked: its handle, the output handles, and each output's array where the check
    found it already read in this process (None: resolved when asked for). Both lists are the hit's own
    (a Result takes them)."""

    record: Handle
    outputs: list[Handle]
    arrays: list[np.ndarray | None]


@lru_cache(maxsize=1)
def _host() -> str:
    import socket  # here: only a new record names its host (~3 ms to import)
    return socket.gethostname()


def lookup(store: Store, key: str, plan: Plan) -> Hit | None:
    """The checked record of ``key``, or None (dropping an entry that does not check)."""
    index = index_for(store)
    entry = index.get(key)
    if entry is None:
        return None
    try:
        hit = _check(store, key, entry, plan)
    except Exception as exc:  # whatever a damaged record or store raises, the answer is "recompute"
        log.debug("memo entry %s is unusable: %s: %s", key, type(exc).__name__, exc)
        hit = None
    if hit is None:
        index.drop(key, entry)
    return hit


def _record_outputs(store: Store, handle: Handle) -> _Known | None:
    """What the record derives, or None when it is not a record. A record is immutable (its handle is its
    hash), so that is worked out once per process; whether it is still stored is asked every time."""
    known = _derived.get(handle)
    if known is not None:
        return known if store.contains(handle) else None
    value = cas.resolve(handle, store=store)
    if not isinstance(value, dict) or not isinstance(value.get("outputs"), list):
        return None
    known = _Known(derive_key(value.get("key")), value["outputs"])
    _derived.put(handle, known)
    return known


def _check(store: Store, key: str, entry: str, plan: Plan) -> Hit | None:
    if type(entry) is Handle:  # an entry this process wrote or checked before
        record = entry
    elif is_handle(entry):
        record = Handle(entry)
    else:
        return None
    known = _record_outputs(store, record)
    if known is None or known.key != key:
        return None
    outputs = known.outputs
    specs = plan.output_specs
    if known.verified_for is specs:  # every output read back and verified, as this plan says
        contains = store.contains
        for handle in outputs:
            if not contains(handle):
                return None
        return Hit(record, list(outputs), [kept_tensor(handle, store) for handle in outputs])
    if len(outputs) != len(specs):
        return None
    arrays: list[np.ndarray | None] = []
    verified = True
    for handle, spec in zip(outputs, specs):
        if not isinstance(handle, Handle):
            return None
        seen = (handle, spec.dtype, tuple(spec.shape))
        if _verified.get(seen):
            if not store.contains(handle):
                return None
            arrays.append(kept_tensor(handle, store))  # just asked: Result.arrays() need not ask again
            continue
        resident = tensor_spec(handle, store)  # an output still on its device: its record is checked
        if resident is not None:
            if resident != (spec.dtype, tuple(spec.shape)):
                return None
            arrays.append(None)
            verified = False
            continue
        array = resolve_tensor(handle, store)  # verified as it is read, and kept for Result.arrays()
        if not isinstance(array, np.ndarray) or array.dtype != spec.dtype or array.shape != tuple(spec.shape):
            return None
        _verified.put(seen, True)
        arrays.append(array)
    if verified:
        known.verified_for = specs
    return Hit(record, list(outputs), arrays)


def record(fields: dict[str, Any], outputs: list[Handle], device_name: str, device_uuid: str,
           timings: dict[str, float]) -> dict[str, Any]:
    """The record of one run of the key whose fields are ``fields``."""
    return {"key": fields, "outputs": [Handle(h) for h in outputs],
            "provenance": {"device": device_name, "device_uuid": device_uuid, "host": _host(),
                           "created": time.time(), "timings": dict(timings)}}


def remember(store: Store, key: str, value: dict[str, Any], *, behind: bool) -> Handle:
    """Store the record ``value`` and point ``key``'s entry at it; its handle."""
    handle = cas.collapse(value, store=store, behind=behind)
    index_for(store).put(key, handle)
    return handle


def keep_evidence(store: Store, key: str, records: list[Handle]) -> None:
    """Keep ``records`` (runs of one key that gave different outputs) and everything they name, written
    through, listed under the index's evidence."""
    store.flush()
    index_for(store).add_evidence(key, list(records))


def named_objects(store: Store, *, entries: bool = True) -> set[Handle]:
    """Every object a piece of evidence names and, with ``entries``, every object a memo entry names: the
    records, their outputs and contracts."""
    index = index_for(store)
    found: set[Handle] = set()
    named = [entry for _, kept in index.evidence() for entry in kept]
    if entries:
        named += [entry for _, entry in index.entries()]
    for entry in named:
        if not is_handle(entry):
            continue
        found.add(Handle(entry))
        try:
            value = cas.resolve(Handle(entry), store=store)
        except Exception:  # a record that does not resolve names nothing; its entry misses and is dropped
            continue
        if not isinstance(value, dict):
            continue
        found.update(h for h in value.get("outputs") or () if isinstance(h, Handle))
        fields = value.get("key")
        if isinstance(fields, dict) and isinstance(fields.get("contract"), Handle):
            found.add(fields["contract"])
    return found


def gc(store: Store, max_bytes: int, *, keep_memo: bool, grace_seconds: float) -> tuple[list[Handle], int]:
    """``store.gc`` that leaves no memo entry pointing at what it removed: with ``keep_memo`` every object a
    memo entry names is kept, else those records are dropped with their objects (evidence is always kept).
    Returns (the removed handles, how many entries were dropped)."""
    keep = named_objects(store, entries=keep_memo)
    removed = store.gc(max_bytes=max_bytes, keep=keep, grace_seconds=grace_seconds)
    return removed, drop_dangling(store)


def drop_dangling(store: Store) -> int:
    """Drop the entries whose record or outputs are no longer stored (after a gc); how many were dropped."""
    index = index_for(store)
    dropped = 0
    for key, entry in list(index.entries()):
        value = None
        if is_handle(entry) and store.contains(entry):
            try:
                value = cas.resolve(Handle(entry), store=store)
            except Exception:
                value = None
        outputs = value.get("outputs") if isinstance(value, dict) else None
        if not isinstance(outputs, list) or not all(isinstance(h, Handle) and store.contains(h) for h in outputs):
            index.drop(key, entry)
            dropped += 1
    return dropped


def clear(store: Store) -> int:
    """Remove every memo entry and piece of evidence of ``store`` (the records become ordinary objects)."""
    return index_for(store).clear()
