"""The contracts the kernel helpers built, known by their exact bytes (``hlx_core.contracts.key``).

A helper returns only contracts that validate unchanged, with every library stage built by its kernel's
builder from the dtypes and shapes of its inputs. The planner therefore need not validate such a contract
again, nor replay the builders on it to check that its stages fit their inputs
(``hlx_core.kernels.as_built``): equal keys mean the contract it is given is the very value the helper
returned. A contract changed after the helper returned it has other bytes and is checked in full, like
any contract written by hand.
"""
from __future__ import annotations

from typing import Any

from hlx_core.codec.handle import blake3_digest
from hlx_core.contracts.key import raw_key
from hlx_core.device.lru import LRU

BUILT_ENTRIES = 1024

# BLAKE3 of raw_key -> True: 32 bytes an entry, however many stages a pipeline has
_built: LRU[bytes, bool] = LRU(BUILT_ENTRIES, locked=True)


def record(contract: dict) -> dict:
    """Remember ``contract`` as built by a helper; returns it."""
    raw = raw_key(contract)
    if raw is not None:
        _built.put(blake3_digest([raw]), True)
    return contract


def was_built(raw: bytes) -> bool:
    """Whether a helper built the contract whose ``raw_key`` is ``raw``."""
    return _built.get(blake3_digest([raw])) is not None


def built_as_given(contract: Any) -> bool:
    """Whether ``contract`` is, as it stands now, a contract a helper built."""
    raw = raw_key(contract)
    return raw is not None and was_built(raw)
