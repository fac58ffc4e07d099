"""What the planner keeps of a store's data is bounded by bytes and released with the store.

Kept plans hold their input arrays, and kept tensors are those arrays (``hlx_core.contracts.store_cache``).
They stay within ``PLAN_CACHE_BYTES`` / ``tensors.MAX_BYTES`` (each array counted once, however many plans
bind it), and when objects leave a store (clear, gc, discard) or the store itself is gone, nothing read
from it stays referenced here.
"""
from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
from plugin_fakes import plugins  # noqa: F401 (fixture)

import hlx
from hlx import kernels as K
from hlx_core import planner
from hlx_core.contracts import tensors
from hlx_core.contracts.store_cache import StoreCache


def _f32(rng, *shape) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def _planned_inputs(store, rng, n: int = 3, size: int = 1 << 16) -> list[weakref.ref]:
    """Runs ``n`` new contracts on the CPU against ``store``; weak references to every input array the kept
    plans hold."""
    refs = []
    for _ in range(n):
        contract = K.add(_f32(rng, size), _f32(rng, size), store=store)
        hlx.run(contract, backend="cpu", store=store)
        kept = planner.plan(contract, store)  # what the cache hands out: the plan hlx.run ran
        refs += [weakref.ref(array) for array in kept.input_arrays.values()]
        del kept
    return refs


@pytest.mark.parametrize("release", ["clear", "gc", "discard", "store gone"])
def test_inputs_of_kept_plans_are_released_with_the_store(plugins, rng, tmp_path, release):
    plugins("cpu")
    makers = [hlx.MemoryStore, lambda: hlx.DiskStore(tmp_path / release)]
    for make in makers[:1] if release == "store gone" else makers:  # (a DiskStore's writer thread keeps it)
        store = make()
        refs = _planned_inputs(store, rng)
        gc.collect()
        assert all(ref() is not None for ref in refs), "the plans were not kept to begin with"
        if release == "clear":
            store.clear()
        elif release == "gc":
            store.gc(max_bytes=0)
        elif release == "discard":
            store.discard(next(iter(store.handles())))
        else:
            del store
        gc.collect()
        alive = sum(ref() is not None for ref in refs)
        assert alive == 0, f"{alive} of {len(refs)} input arrays still referenced after {release}"


def test_kept_input_bytes_stay_within_the_bound(plugins, rng, monkeypatch):
    """Each array counts once: plans of one weight matrix at several batch sizes all fit where their
    separate sums would not; new inputs then push the least recently used plans out."""
    plugins("cpu")
    store = hlx.MemoryStore()
    bound = 3 << 20
    monkeypatch.setattr(planner._plans, "max_bytes", bound)
    planner._plans.clear()
    w = hlx.collapse(_f32(rng, 64, 4096), store=store)  # 1 MiB, bound by every plan below
    shared = [K.gemm(_f32(rng, batch, 64), w, store=store) for batch in (1, 2, 3, 4, 5, 6)]
    for contract in shared:
        hlx.run(contract, backend="cpu", store=store)
    assert len(planner._plans) >= len(shared)  # 6 MiB counted plan by plan, 1 MiB and a little held
    for _ in range(8):  # 512 KiB of new inputs each
        hlx.run(K.add(_f32(rng, 1 << 16), _f32(rng, 1 << 16), store=store), backend="cpu", store=store)
        held = {id(a): a.nbytes for plan, _ in planner._plans._entries.values()
                for a in plan.input_arrays.values()}
        assert sum(held.values()) == planner._plans.held_bytes <= bound
    assert planner._plans.get(store, planner.plan(shared[0], store).key) is not None  # (just planned again)


def test_a_value_built_while_objects_left_the_store_is_not_kept():
    cache: StoreCache[np.ndarray] = StoreCache(8, 1 << 20, 1 << 20, lambda a: {id(a): a.nbytes})
    store = hlx.MemoryStore()
    handle = hlx.collapse(np.zeros(4, np.float32), store=store)
    generation = store.generation
    store.discard(handle)
    cache.put(store, "k", np.zeros(4), generation)
    assert cache.get(store, "k") is None and cache.held_bytes == 0
    cache.put(store, "k", np.zeros(4), store.generation)
    assert cache.get(store, "k") is not None and cache.held_bytes == 32


def test_kept_tensors_go_with_their_store(rng):
    store = hlx.MemoryStore()
    handle = hlx.collapse(_f32(rng, 1000), store=store)
    ref = weakref.ref(tensors.resolve_tensor(handle, store))
    assert tensors.resolve_tensor(handle, store) is ref()
    store.clear()
    gc.collect()
    assert ref() is None


def test_plans_of_memory_mapped_inputs_are_kept_whatever_their_size(monkeypatch, rng):
    """A DiskStore's large tensors are file mappings: a plan holding them keeps no anonymous memory, so the
    byte bounds do not apply and a warm run of big inputs is not planned (and its inputs re-read) again."""
    from hlx_core.contracts.store_cache import held_bytes
    monkeypatch.setattr(planner._plans, "max_value_bytes", 1024)
    a = rng.standard_normal(1 << 16).astype(np.float32)  # 256 KiB: above mmap_min_bytes
    for store, kept in ((hlx.DiskStore(hlx.get_default_store().path / "other"), True), (hlx.MemoryStore(), False)):
        contract = hlx.kernels.relu(a, store=store)
        planner._plans.clear()
        plan = planner.plan(contract, store)
        assert (held_bytes(next(iter(plan.input_arrays.values()))) == 0) == kept
        assert (len(planner._plans) > 0) == kept  # (kept under its raw and its normalised key)
