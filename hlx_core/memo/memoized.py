"""One memoized ``hlx.run``: its key, the lookup before the backend runs, the record or the check after.

Modes (``hlx.run(memo=...)``): True (and the default, where the backend declares the kernels
deterministic) answers from a record that checks and records a run that had none; "refresh" runs and
replaces the record; "verify" runs, and when a record exists compares the outputs with it: a mismatch
keeps both records as evidence and raises E_NONDETERMINISTIC.
"""
from __future__ import annotations

from typing import Any

from hlx_core.backend import DeviceInfo
from hlx_core.cas import api as cas
from hlx_core.cas.store import Store
from hlx_core.codec.handle import Handle
from hlx_core.errors import BackendError
from hlx_core.memo.index import EVIDENCE, FOLDER
from hlx_core.memo.key import derive_key, key_fields, platform, settings_now, settings_of
from hlx_core.memo.policy import Memo
from hlx_core.memo.records import Hit, keep_evidence, lookup, record, remember
from hlx_core.plan import Plan

#: Keys an ``ExecutionKeys`` keeps before it starts again (each a few hundred bytes).
MAX_KEYS = 1024


class ExecutionKeys:
    """The execution keys of runs on one device of one backend (at one version), by (contract, the backend's
    byte settings as the environment holds them now, salt): a warm run's key costs reading its settings
    and a dict lookup instead of an encoding and a hash. A changed variable is a new key, read on every
    run. Safe for concurrent runs: two threads missing at once derive the same key."""

    __slots__ = ("backend", "version", "device", "_keys")

    def __init__(self, backend: str, version: str, device: DeviceInfo) -> None:
        self.backend, self.version, self.device = backend, version, device
        self._keys: dict[tuple[Any, ...], tuple[str, dict[str, Any]]] = {}

    def get(self, contract: Handle, byte_settings: tuple[str, ...], salt: str) -> tuple[str, dict[str, Any]]:
        """(key, the fields it hashes) of a run of ``contract`` under ``salt``."""
        names = byte_settings if type(byte_settings) is tuple else tuple(byte_settings)
        now = settings_now(names)
        cache_key = (contract, names, now, salt)
        found = self._keys.get(cache_key)
        if found is None:
            fields = key_fields(contract, platform(self.backend, self.version, self.device),
                                settings_of(names, now), salt)
            if len(self._keys) >= MAX_KEYS:
                self._keys.clear()
            found = self._keys[cache_key] = (derive_key(fields), fields)
        return found


class MemoizedRun:
    """The memo side of one run; ``prior`` is the record a "verify" run compares with (a plain slotted
    class: one is made per memoized run)."""

    __slots__ = ("mode", "backend", "store", "plan", "key", "fields", "prior")

    def __init__(self, mode: Memo, backend: str, store: Store, plan: Plan, key: str, fields: dict[str, Any],
                 prior: Hit | None = None) -> None:
        self.mode, self.backend, self.store, self.plan = mode, backend, store, plan
        self.key, self.fields, self.prior = key, fields, prior

    def __repr__(self) -> str:
        return f"MemoizedRun(mode={self.mode!r}, backend={self.backend!r}, key={self.key!r})"

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
