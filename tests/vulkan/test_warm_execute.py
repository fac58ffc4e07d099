"""A warm ``VulkanSession.execute`` (every input resident, the plan recorded) does only what changes between
runs; these hold what it skips to what it must still do: each run's outputs are copies of their own, a
run that leaves an output on the device still trims the residency, a freed input sends the next run back
through recording, and a kernel variant keeps the plan's key (a warm run finds its recorded plan by the
key of the plan as given, before any variant is chosen)."""
from __future__ import annotations

import numpy as np
import pytest

import hlx
from hlx import kernels as K
from hlx_core.device.shader_support import ShaderSupport
from hlx_core.kernels.variants import specialise
from hlx_core.planner import plan as make_plan


def _add(rng, n: int = 256):
    x, y = rng.random(n, dtype=np.float32), rng.random(n, dtype=np.float32)
    return make_plan(K.add(x, y)), x.astype(np.float64) + y


def test_warm_runs_hand_out_copies_of_their_own(session, rng):
    p, want = _add(rng)
    runs = [session.execute(p).arrays[0] for _ in range(3)]
    assert session._hot.get(p.key) is not None  # the last two were warm
    for got in runs:
        np.testing.assert_allclose(got, want, rtol=1e-6)
    assert not np.shares_memory(runs[1], runs[2])
    runs[1][:] = -1.0  # a caller's change reaches neither the next run nor the recorded memory
    np.testing.assert_allclose(session.execute(p).arrays[0], want, rtol=1e-6)
    np.testing.assert_allclose(runs[2], want, rtol=1e-6)


def test_a_warm_run_that_keeps_an_output_on_the_device_trims_the_residency(rng):
    from hlx_vulkan_raw import VulkanSession

    s = VulkanSession()
    try:
        s.hash_min_bytes = 16  # every output is hashed on the device and stays there
        p, want = _add(rng)
        for _ in range(3):
            np.testing.assert_allclose(s.execute(p).arrays[0], want, rtol=1e-6)
        assert s._hot.get(p.key) is not None
        uploads = s.transfers.stats()
        s.residency.max_entries = s.residency.stats()["entries"] - 1
        np.testing.assert_allclose(s.execute(p).arrays[0], want, rtol=1e-6)  # warm: uploads nothing
        assert s.transfers.stats()["upload_bytes"] == uploads["upload_bytes"]
        assert s.residency.stats()["entries"] <= s.residency.max_entries
    finally:
        s.close()


def test_a_freed_input_sends_the_next_run_back_through_recording(session, rng):
    p, want = _add(rng)
    session.execute(p)
    session.execute(p)
    assert session._hot.get(p.key) is not None
    session.residency.clear()  # frees the inputs' buffers, and the recorded plans that bind them
    assert session._hot.get(p.key) is None
    np.testing.assert_allclose(session.execute(p).arrays[0], want, rtol=1e-6)
    assert session._hot.get(p.key) is not None


@pytest.mark.parametrize("dtype", [np.float16])
def test_a_variant_keeps_the_plan_key(rng, dtype):
    tiles = [{"m": 16, "n": 16, "k": 16, "a": "float16", "b": "float16", "c": "float32", "result": "float32",
              "scope": "subgroup"}]
    a, b = rng.standard_normal((40, 24)).astype(dtype), rng.standard_normal((24, 56)).astype(dtype)
    p = make_plan(hlx.kernels.gemm(a, b))
    fast = specialise(p, ShaderSupport.build({}, tiles, (32, 32)))
    assert fast is not p and fast.stages[0].shader != p.stages[0].shader and fast.key == p.key


def test_timestamps_keep_only_their_valid_bits(session, rng):
    """A device whose timestamps have fewer than 64 valid bits: each is masked before the differences."""
    from hlx_vulkan_raw.loader import ffi

    p, _ = _add(rng)
    session.execute(p)
    queries = session._hot[p.key].queries
    full = queries.mask
    queries.mask = (1 << 8) - 1  # as a device reporting 8 valid bits would have it
    try:
        got = session.execute(p).timings
        ticks = [t & queries.mask for t in ffi.unpack(queries._data, queries.count)]
    finally:
        queries.mask = full
    ms = queries.period_ns * 1e-6
    assert got["gpu_ms"] == (ticks[-1] - ticks[0]) * ms and got["stage0_gpu_ms"] == (ticks[1] - ticks[0]) * ms
