"""One memoized ``hlx.run``: its key, the lookup before the backend runs, the record or the check after.

Modes (``hlx.run(memo=...)``): True (and the default, where the backend declares the kernels
deterministic) answers from a record that checks and records a run that had none; "refresh" runs and
replaces the record; "verify" runs, and when a record exists compares the outputs with it: a mismatch
keeps both records as evidence and raises E_NONDETERMINISTIC.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hlx_core.backend import DeviceInfo
from hlx_core.cas import api as cas
from hlx_core.cas.store import Store
from hlx_core.codec.handle import Handle
from hlx_core.device.lru import LRU
from hlx_core.errors import BackendError
from hlx_core.memo.index import EVIDENCE, FOLDER
from hlx_core.memo.key import derive_key, key_fields, platform, settings
from hlx_core.memo.policy import Memo
from hlx_core.memo.records import Hit, keep_evidence, lookup, record, remember
from hlx_core.plan import Plan

# (contract, backend, its version, id(device), settings, salt) -> (device, key, fields): a warm run's key
# costs a dict lookup instead of an encoding and a hash. The device is kept so its id cannot be reused.
_keys: LRU[tuple[Any, ...], tuple[DeviceInfo, str, dict[str, Any]]] = LRU(1024, locked=True)


def execution_key(contract: Handle, backend: str, backend_version: str, device: DeviceInfo,
                  byte_settings: tuple[str, ...], salt: str) -> tuple[str, dict[str, Any]]:
    """(key, the fields it hashes) of a run of ``contract`` on ``device`` of ``backend``."""
    values = settings(byte_settings)
    cache_key = (contract, backend, backend_version, id(device), tuple(values.items()), salt)
    cached = _keys.get(cache_key)
    if cached is not None and cached[0] is device:
        return cached[1], cached[2]
    fields = key_fields(contract, platform(backend, backend_version, device), values, salt)
    key = derive_key(fields)
    _keys.put(cache_key, (device, key, fields))
    return key, fields


@dataclass
class MemoizedRun:
    """The memo side of one run; ``prior`` is the record a "verify" run compares with."""

    mode: Memo
    backend: str
    store: Store
    plan: Plan
    key: str
    fields: dict[str, Any]
    prior: Hit | None = field(default=None, repr=False)

    def lookup(self) -> Hit | None:
        """The hit that answers this run instead of the backend, or None (always None for "verify",
        which only remembers the record to compare with, and for "refresh")."""
        if self.mode == "refresh":
            return None
        hit = lookup(self.store, self.key, self.plan)
        if self.mode == "verify":
            self.prior = hit
            return None
        return hit

    def finish(self, outputs: list[Handle], device: DeviceInfo, timings: dict[str, float], *,
               behind: bool) -> None:
        """Record the run, or (for "verify" with a record) check it against the record."""
        value = record(self.fields, outputs, device.name, device.uuid, timings)
        prior = self.prior
        if prior is None:
            remember(self.store, self.key, value, behind=behind)
            return
        if prior.outputs == list(outputs):
            return
        new = cas.collapse(value, store=self.store)
        keep_evidence(self.store, self.key, [prior.record, new])
        differ = [i for i, (a, b) in enumerate(zip(prior.outputs, outputs)) if a != b]
        raise BackendError("E_NONDETERMINISTIC",
                           f"backend {self.backend!r} ran {self.plan.key} again and output(s) {differ} differ from "
                           f"the memo record {prior.record} (this run: {new}); both records are kept as "
                           f"evidence under {FOLDER}/{EVIDENCE}/{self.key}")
