"""Residency is bounded by count as well as by bytes: a stream of small new inputs keeps at most
``HLX_RESIDENT_MAX_BUFFERS`` buffers on the device, least recently used evicted first, on every GPU backend."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from hlx import kernels as K
from hlx_core import registry
from hlx_core.device.residency import DEFAULT_MAX_BUFFERS, ENV_MAX_BUFFERS, Residency
from hlx_core.errors import HLXError
from hlx_core.planner import plan


@dataclass(eq=False)
class Buf:
    size: int


def test_count_bound_evicts_least_recently_used():
    released: list[Buf] = []
    res: Residency[Buf] = Residency(1 << 30, released.append, max_entries=3)
    bufs = [Buf(16) for _ in range(6)]
    for i, buf in enumerate(bufs[:3]):
        res.put(f"h{i}", buf)
    assert res.get("h0") is bufs[0]  # now the most recently used
    for i, buf in enumerate(bufs[3:], start=3):
        res.put(f"h{i}", buf)
        res.trim()
        assert res.stats()["entries"] <= 3
    assert released == [bufs[1], bufs[2], bufs[0]]
    assert res.stats()["bytes"] == 48 and res.stats()["max_entries"] == 3


def test_byte_budget_still_holds():
    released: list[Buf] = []
    res: Residency[Buf] = Residency(100, released.append, max_entries=10)
    for i in range(4):
        res.put(f"h{i}", Buf(40))
    res.trim()
    assert res.bytes == 80 and len(released) == 2


def test_bound_from_the_environment(monkeypatch):
    assert Residency(1, lambda b: None).max_entries == DEFAULT_MAX_BUFFERS
    monkeypatch.setenv(ENV_MAX_BUFFERS, "7")
    assert Residency(1, lambda b: None).max_entries == 7
    monkeypatch.setenv(ENV_MAX_BUFFERS, "many")
    with pytest.raises(HLXError) as err:
        Residency(1, lambda b: None)
    assert err.value.code == "E_CONFIG"


@pytest.mark.parametrize("backend", ["vulkan", "wgpu"])
def test_new_inputs_keep_a_bounded_number_of_buffers(backend, monkeypatch, rng):
    entry = registry.backend_entries().get(backend)
    if entry is None or not entry.availability().available:
        pytest.skip(f"{backend} unavailable")
    monkeypatch.setenv(ENV_MAX_BUFFERS, "4")
    session = entry.backend.open()
    try:
        stats = session.residency.stats if backend == "vulkan" else session.core.resident.stats
        fixed = rng.random(4, dtype=np.float32)
        for _ in range(12):
            x = rng.random(4, dtype=np.float32)
            np.testing.assert_array_equal(session.execute(plan(K.add(x, fixed))).arrays[0], x + fixed)
            assert stats()["entries"] <= 4
        assert stats()["hits"] >= 11  # the fixed input stayed: it is used on every run
    finally:
        session.close()
