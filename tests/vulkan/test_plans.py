"""Session.execute on Plans built from SPIR-V: results, recorded reuse, residency, barriers, timings."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from hlx_core.errors import HLXError
from hlx_core.plan import StageRef
from vkplan import inp, out, plan, stage


def _saxpy(spirv, x, y, alpha, scale=1.0, width=64):
    n = x.size
    return stage("saxpy", spirv["saxpy"], [inp(x), inp(y), out(np.float32, x.shape)],
                 dispatch=(-(-n // width), 1, 1), push=struct.pack("<If", n, alpha),
                 workgroup=(width, 1, 1), spec=((1, scale),))


def test_single_stage_matches_numpy(ctx, spirv, rng):
    x = rng.standard_normal(1000).astype(np.float32)
    y = rng.standard_normal(1000).astype(np.float32)
    alpha, scale = float(rng.uniform(-2, 2)), float(rng.uniform(0.5, 2))
    res = ctx.execute(plan(_saxpy(spirv, x, y, alpha, scale)))
    want = np.float32(alpha) * x.astype(np.float64) + y.astype(np.float64) * np.float32(scale)
    np.testing.assert_allclose(res.arrays[0], want, rtol=1e-6, atol=1e-6)
    assert res.arrays[0].dtype == np.float32 and res.arrays[0].shape == (1000,)
    assert res.timings["host_ms"] > 0


def test_exact_uint_add_and_timestamps(ctx, spirv, rng):
    a = rng.integers(0, 2**32, 777, dtype=np.uint32)
    b = rng.integers(0, 2**32, 777, dtype=np.uint32)
    st = stage("add", spirv["add_u32"], [inp(a), inp(b), out(np.uint32, a.shape)], dispatch=(13, 1, 1),
               push=struct.pack("<I", a.size))
    res = ctx.execute(plan(st))
    np.testing.assert_array_equal(res.arrays[0], a + b)  # wraps mod 2^32 like the shader
    assert ctx.timestamps
    assert res.timings["gpu_ms"] >= 0 and "stage0_gpu_ms" in res.timings


def test_pipeline_intermediates_barriers_and_reuse(ctx, spirv, rng):
    n = 4096
    a, b, c = (rng.integers(0, 2**32, n, dtype=np.uint32) for _ in range(3))
    push = struct.pack("<I", n)
    groups = (n // 64, 1, 1)
    s0 = stage("add", spirv["add_u32"], [inp(a), inp(b), out(np.uint32, (n,))], groups, push)
    s1 = stage("add", spirv["add_u32"], [inp(b), inp(c), out(np.uint32, (n,))], groups, push)  # independent
    s2 = stage("add", spirv["add_u32"], [StageRef(0, 0), StageRef(1, 0), out(np.uint32, (n,))], groups, push)
    p = plan(s0, s1, s2, outputs=((2, 0), (0, 0)))
    ex = ctx.executor
    res = ctx.execute(p)
    np.testing.assert_array_equal(res.arrays[0], a + b + (b + c))
    np.testing.assert_array_equal(res.arrays[1], a + b)
    assert set(res.timings) >= {"gpu_ms", "stage0_gpu_ms", "stage1_gpu_ms", "stage2_gpu_ms"}
    recs = [r for k, r in ex.recorded.items() if k[0] == p.key]
    assert len(recs) == 1 and recs[0].barriers == 1  # only before the dependent stage
    # Poison the recorded outputs: a rerun must rewrite them, reusing the recorded command buffer and
    # the resident inputs (no new uploads).
    for buf in recs[0].outputs.values():
        if buf.host_visible:
            buf.write(b"\xff" * buf.size)
    misses, submits = ex.residency.misses, ex.submits
    res2 = ctx.execute(p)
    np.testing.assert_array_equal(res2.arrays[0], res.arrays[0])
    assert ex.residency.misses == misses and ex.submits == submits + 1
    assert [r for k, r in ex.recorded.items() if k[0] == p.key][0].cb == recs[0].cb


def test_written_input_is_never_reused(ctx, spirv, rng):
    x = rng.integers(0, 2**31, 300, dtype=np.uint32)
    st = stage("bump", spirv["bump_inplace"], [inp(x), out(np.uint32, x.shape)], (5, 1, 1),
               struct.pack("<I", x.size))
    p = plan(st)
    for _ in range(2):  # a reused device copy would give x + 2 the second time
        np.testing.assert_array_equal(ctx.execute(p).arrays[0], x + 1)


def test_uniform_binding(ctx, spirv, rng):
    x = rng.standard_normal(100).astype(np.float32)
    k = np.float32(rng.uniform(1, 3))
    params = np.frombuffer(struct.pack("<fI8x", k, x.size), dtype=np.uint8)
    st = stage("scale", spirv["scale_uniform"], [inp(x), inp(params), out(np.float32, x.shape)], (4, 1, 1))
    np.testing.assert_array_equal(ctx.execute(plan(st)).arrays[0], x * k)  # one rounding, as in NumPy


def test_float16_storage(ctx, spirv, rng):
    x = rng.standard_normal(500).astype(np.float16)
    st = stage("half", spirv["half_double"], [inp(x), out(np.float16, x.shape)], (8, 1, 1),
               struct.pack("<I", x.size))
    np.testing.assert_array_equal(ctx.execute(plan(st)).arrays[0], x * np.float16(2))


def test_empty_tensor(ctx, spirv):
    e = np.zeros(0, dtype=np.uint32)
    st = stage("add", spirv["add_u32"], [inp(e), inp(e), out(np.uint32, (0,))], (0, 1, 1), struct.pack("<I", 0))
    res = ctx.execute(plan(st))
    assert res.arrays[0].shape == (0,)


def test_residency_budget_evicts_and_stays_correct(spirv, rng, monkeypatch):
    from hlx_vulkan_raw import VulkanContext
    monkeypatch.setenv("HLX_VULKAN_RESIDENCY_MB", "0.01")  # ~10 KB: room for one 4 KB input pair
    with VulkanContext() as c:
        for _ in range(3):
            a = rng.integers(0, 2**32, 1024, dtype=np.uint32)
            b = rng.integers(0, 2**32, 1024, dtype=np.uint32)
            st = stage("add", spirv["add_u32"], [inp(a), inp(b), out(np.uint32, a.shape)], (16, 1, 1),
                       struct.pack("<I", a.size))
            np.testing.assert_array_equal(c.execute(plan(st)).arrays[0], a + b)
            info = c.get_memory_info()["residency"]
            assert info["bytes"] <= info["budget"]
        assert len(c.executor.recorded) <= 1  # plans on evicted inputs were dropped with them


def test_staging_path(spirv, rng, monkeypatch):
    """With zero-copy off, inputs go through the staging ring and outputs through a readback copy."""
    from hlx_vulkan_raw import VulkanContext
    monkeypatch.setenv("HLX_VULKAN_ZERO_COPY", "0")
    with VulkanContext() as c:
        assert not c.zero_copy
        x = rng.standard_normal(2000).astype(np.float32)
        y = rng.standard_normal(2000).astype(np.float32)
        p = plan(_saxpy(spirv, x, y, 1.5, width=128))
        for _ in range(2):
            res = c.execute(p)
            np.testing.assert_allclose(res.arrays[0], 1.5 * x.astype(np.float64) + y, rtol=1e-6, atol=1e-6)
        assert c.staging.capacity > 0
        buf = c.buffer(x.nbytes)
        buf.upload(x)
        assert buf.download() == x.tobytes()


@pytest.mark.parametrize("case", ["push", "dispatch", "workgroup", "spec"])
def test_plan_errors_leave_context_usable(ctx, spirv, rng, case):
    x = rng.standard_normal(64).astype(np.float32)
    if case == "push":
        st = stage("saxpy", spirv["saxpy"], [inp(x), inp(x), out(np.float32, x.shape)], (1, 1, 1), b"\0" * 12)
        code = "E_VK_PUSH_CONSTANTS"
    elif case == "dispatch":
        st = _saxpy(spirv, x, x, 1.0)
        st = type(st)(**{**st.__dict__, "dispatch": (10**6, 1, 1)})
        code = "E_LIMIT_EXCEEDED"
    elif case == "workgroup":
        a = x.view(np.uint32)
        st = stage("add", spirv["add_u32"], [inp(a), inp(a), out(np.uint32, a.shape)], (1, 1, 1),
                   struct.pack("<I", 64), workgroup=(32, 1, 1))  # add_u32 has a fixed local size
        code = "E_VK_WORKGROUP"
    else:
        st = stage("saxpy", spirv["saxpy"], [inp(x), inp(x), out(np.float32, x.shape)], (1, 1, 1),
                   struct.pack("<If", 64, 1.0), spec=((7, 1),))
        code = "E_VK_SPEC_CONSTANT"
    with pytest.raises(HLXError) as err:
        ctx.execute(plan(st))
    assert err.value.code == code
    res = ctx.execute(plan(_saxpy(spirv, x, x, 2.0)))
    np.testing.assert_allclose(res.arrays[0], 3 * x.astype(np.float64), rtol=1e-6)
