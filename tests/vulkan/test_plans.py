"""VulkanSession.execute on Plans built from SPIR-V: results, recorded reuse, residency, barriers, timings."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from vkplan import inp, open_session, out, plan, stage

from hlx_core.errors import HLXError
from hlx_core.plan import StageRef


def _saxpy(spirv, x, y, alpha, scale=1.0, width=64):
    n = x.size
    return stage("saxpy", spirv["saxpy"], [inp(x), inp(y), out(np.float32, x.shape)],
                 dispatch=(-(-n // width), 1, 1), push=struct.pack("<If", n, alpha),
                 workgroup=(width, 1, 1), spec=((1, scale),))


def test_single_stage_matches_numpy(session, spirv, rng):
    x = rng.standard_normal(1000).astype(np.float32)
    y = rng.standard_normal(1000).astype(np.float32)
    alpha, scale = float(rng.uniform(-2, 2)), float(rng.uniform(0.5, 2))
    res = session.execute(plan(_saxpy(spirv, x, y, alpha, scale)))
    want = np.float32(alpha) * x.astype(np.float64) + y.astype(np.float64) * np.float32(scale)
    np.testing.assert_allclose(res.arrays[0], want, rtol=1e-6, atol=1e-6)
    assert res.arrays[0].dtype == np.float32 and res.arrays[0].shape == (1000,)
    assert res.timings["host_ms"] > 0


def test_exact_uint_add_and_timestamps(session, spirv, rng):
    a = rng.integers(0, 2**32, 777, dtype=np.uint32)
    b = rng.integers(0, 2**32, 777, dtype=np.uint32)
    st = stage("add", spirv["add_u32"], [inp(a), inp(b), out(np.uint32, a.shape)], dispatch=(13, 1, 1),
               push=struct.pack("<I", a.size))
    res = session.execute(plan(st))
    np.testing.assert_array_equal(res.arrays[0], a + b)  # wraps mod 2^32 like the shader
    assert session.core.timestamps
    assert res.timings["gpu_ms"] >= 0 and "stage0_gpu_ms" in res.timings


def test_runs_without_timestamps(spirv, rng, monkeypatch):
    monkeypatch.setenv("HLX_VULKAN_TIMESTAMPS", "0")
    a = rng.integers(0, 2**32, 777, dtype=np.uint32)
    b = rng.integers(0, 2**32, 777, dtype=np.uint32)
    st = stage("add", spirv["add_u32"], [inp(a), inp(b), out(np.uint32, a.shape)], dispatch=(13, 1, 1),
               push=struct.pack("<I", a.size))
    with open_session() as s:
        assert not s.core.timestamps
        for _ in range(2):  # the recorded run and a warm one
            res = s.execute(plan(st))
            np.testing.assert_array_equal(res.arrays[0], a + b)
            assert "gpu_ms" not in res.timings and "host_ms" in res.timings


def test_pipeline_intermediates_barriers_and_reuse(session, spirv, rng):
    n = 4096
    a, b, c = (rng.integers(0, 2**32, n, dtype=np.uint32) for _ in range(3))
    push = struct.pack("<I", n)
    groups = (n // 64, 1, 1)
    s0 = stage("add", spirv["add_u32"], [inp(a), inp(b), out(np.uint32, (n,))], groups, push)
    s1 = stage("add", spirv["add_u32"], [inp(b), inp(c), out(np.uint32, (n,))], groups, push)  # independent
    s2 = stage("add", spirv["add_u32"], [StageRef(0, 0), StageRef(1, 0), out(np.uint32, (n,))], groups, push)
    p = plan(s0, s1, s2, outputs=((2, 0), (0, 0)))
    res = session.execute(p)
    np.testing.assert_array_equal(res.arrays[0], a + b + (b + c))
    np.testing.assert_array_equal(res.arrays[1], a + b)
    assert set(res.timings) >= {"gpu_ms", "stage0_gpu_ms", "stage1_gpu_ms", "stage2_gpu_ms"}
    recs = [r for k, r in session.recorded.items() if k[0] == p.key]
    assert len(recs) == 1 and recs[0].barriers == 1  # only before the dependent stage
    # Poison the recorded outputs: a rerun must rewrite them, reusing the recorded command buffer and
    # the resident inputs (no new uploads).
    for buf in recs[0].outputs.values():
        if buf.host_visible:
            buf.write(b"\xff" * buf.size)
    misses, submits = session.residency.misses, session.core.submitter.submits
    res2 = session.execute(p)
    np.testing.assert_array_equal(res2.arrays[0], res.arrays[0])
    assert session.residency.misses == misses and session.core.submitter.submits == submits + 1
    assert [r for k, r in session.recorded.items() if k[0] == p.key][0].cb == recs[0].cb


def test_written_input_is_never_reused(session, spirv, rng):
    x = rng.integers(0, 2**31, 300, dtype=np.uint32)
    st = stage("bump", spirv["bump_inplace"], [inp(x), out(np.uint32, x.shape)], (5, 1, 1),
               struct.pack("<I", x.size))
    p = plan(st)
    for _ in range(2):  # a reused device copy would give x + 2 the second time
        np.testing.assert_array_equal(session.execute(p).arrays[0], x + 1)


def test_uniform_binding(session, spirv, rng):
    x = rng.standard_normal(100).astype(np.float32)
    k = np.float32(rng.uniform(1, 3))
    params = np.frombuffer(struct.pack("<fI8x", k, x.size), dtype=np.uint8)
    st = stage("scale", spirv["scale_uniform"], [inp(x), inp(params), out(np.float32, x.shape)], (4, 1, 1))
    np.testing.assert_array_equal(session.execute(plan(st)).arrays[0], x * k)  # one rounding, as in NumPy


def test_float16_storage(session, spirv, rng):
    x = rng.standard_normal(500).astype(np.float16)
    st = stage("half", spirv["half_double"], [inp(x), out(np.float16, x.shape)], (8, 1, 1),
               struct.pack("<I", x.size))
    np.testing.assert_array_equal(session.execute(plan(st)).arrays[0], x * np.float16(2))


def test_empty_tensor(session, spirv):
    e = np.zeros(0, dtype=np.uint32)
    st = stage("add", spirv["add_u32"], [inp(e), inp(e), out(np.uint32, (0,))], (0, 1, 1), struct.pack("<I", 0))
    res = session.execute(plan(st))
    assert res.arrays[0].shape == (0,)


def test_residency_budget_evicts_and_stays_correct(spirv, rng, monkeypatch):
    monkeypatch.setenv("HLX_VULKAN_RESIDENCY_MB", "0.01")  # ~10 KB: room for one 4 KB input pair
    with open_session() as c:
        for _ in range(3):
            a = rng.integers(0, 2**32, 1024, dtype=np.uint32)
            b = rng.integers(0, 2**32, 1024, dtype=np.uint32)
            st = stage("add", spirv["add_u32"], [inp(a), inp(b), out(np.uint32, a.shape)], (16, 1, 1),
                       struct.pack("<I", a.size))
            np.testing.assert_array_equal(c.execute(plan(st)).arrays[0], a + b)
            info = c.residency.stats()
            assert info["bytes"] <= info["budget"]
        assert len(c.recorded) <= 1  # plans on evicted inputs were dropped with them


def test_input_larger_than_the_budget_is_not_kept_and_evicts_nothing(spirv, rng, monkeypatch):
    monkeypatch.setenv("HLX_VULKAN_RESIDENCY_MB", "0.001")  # 1048 bytes: a 256-byte pair fits, 4 KB does not

    def add(n):
        a, b = (rng.integers(0, 2**32, n, dtype=np.uint32) for _ in range(2))
        st = stage("add", spirv["add_u32"], [inp(a), inp(b), out(np.uint32, (n,))], (-(-n // 64), 1, 1),
                   struct.pack("<I", n))
        return plan(st), a + b

    with open_session() as c:
        small, small_want = add(64)
        np.testing.assert_array_equal(c.execute(small).arrays[0], small_want)
        big, big_want = add(1024)
        np.testing.assert_array_equal(c.execute(big).arrays[0], big_want)
        info = c.residency.stats()
        assert info["entries"] == 2 and info["bytes"] == 512  # the small pair stayed; the big one was freed
        assert [k[0] for k in c.recorded] == [small.key]  # with the plan recorded on it
        misses = c.residency.misses
        np.testing.assert_array_equal(c.execute(small).arrays[0], small_want)
        assert c.residency.misses == misses


def test_staging_path(spirv, rng, monkeypatch):
    """With zero-copy off, inputs go through the staging ring and outputs through a readback copy."""
    monkeypatch.setenv("HLX_VULKAN_ZERO_COPY", "0")
    with open_session() as c:
        assert not c.core.zero_copy
        x = rng.standard_normal(2000).astype(np.float32)
        y = rng.standard_normal(2000).astype(np.float32)
        p = plan(_saxpy(spirv, x, y, 1.5, width=128))
        for _ in range(2):
            res = c.execute(p)
            np.testing.assert_allclose(res.arrays[0], 1.5 * x.astype(np.float64) + y, rtol=1e-6, atol=1e-6)
        assert c.core.staging.capacity > 0


@pytest.mark.parametrize("case", ["shared", "dispatch", "workgroup", "spec"])
def test_plan_errors_leave_session_usable(session, spirv, rng, case):
    """Limits (hlx_core.device.limits.check_plan) and what only the pipeline can tell are refused before
    anything is allocated; the push-constant size and binding count are the planner's checks
    (tests/test_runtime.py)."""
    x = rng.standard_normal(64).astype(np.float32)
    if case == "shared":
        st = _saxpy(spirv, x, x, 1.0)
        st = type(st)(**{**st.__dict__, "shared_memory_bytes": session.core.limits.max_shared_memory_bytes + 1})
        code = "E_LIMIT_EXCEEDED"
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
        session.execute(plan(st))
    assert err.value.code == code
    res = session.execute(plan(_saxpy(spirv, x, x, 2.0)))
    np.testing.assert_allclose(res.arrays[0], 3 * x.astype(np.float64), rtol=1e-6)


def _barriers(session, p) -> int:
    return [r for k, r in session.recorded.items() if k[0] == p.key][0].barriers


def test_independent_stages_get_no_barrier(session, spirv, rng):
    """Three adds on distinct inputs: no stage depends on another, so nothing is recorded between them
    (synchronization validation, on for the session, would report a missing one as an error)."""
    n = 512
    arrays = [rng.integers(0, 2**32, n, dtype=np.uint32) for _ in range(6)]
    push = struct.pack("<I", n)
    stages = [stage("add", spirv["add_u32"], [inp(arrays[2 * i]), inp(arrays[2 * i + 1]), out(np.uint32, (n,))],
                    (n // 64, 1, 1), push) for i in range(3)]
    p = plan(*stages, outputs=((0, 0), (1, 0), (2, 0)))
    res = session.execute(p)
    for i in range(3):
        np.testing.assert_array_equal(res.arrays[i], arrays[2 * i] + arrays[2 * i + 1])
    assert _barriers(session, p) == 0


def test_write_after_read_gets_a_barrier(session, spirv, rng):
    """s1 reads s0's output A; s2 then increments A in place (bump_inplace): s2 must wait for s1's reads
    (write-after-read), as s1 waited for s0's write. Results show s1 saw A before the bump."""
    n = 256
    a, b, c = (rng.integers(0, 2**31, n, dtype=np.uint32) for _ in range(3))
    push = struct.pack("<I", n)
    s0 = stage("add", spirv["add_u32"], [inp(a), inp(b), out(np.uint32, (n,))], (n // 64, 1, 1), push)
    s1 = stage("add", spirv["add_u32"], [StageRef(0, 0), inp(c), out(np.uint32, (n,))], (n // 64, 1, 1), push)
    s2 = stage("bump", spirv["bump_inplace"], [StageRef(0, 0), out(np.uint32, (n,))], (n // 64, 1, 1), push)
    p = plan(s0, s1, s2, outputs=((1, 0), (2, 0), (0, 0)))
    res = session.execute(p)
    np.testing.assert_array_equal(res.arrays[0], a + b + c)
    np.testing.assert_array_equal(res.arrays[1], a + b + 1)
    np.testing.assert_array_equal(res.arrays[2], a + b + 1)  # A itself was bumped in place
    assert _barriers(session, p) == 2


def test_write_after_write_gets_a_barrier(session, spirv, rng):
    """s1 writes (write-only binding) the buffer s0 wrote: the later write must land last."""
    n = 128
    a, b, c = (rng.integers(0, 2**32, n, dtype=np.uint32) for _ in range(3))
    push = struct.pack("<I", n)
    s0 = stage("add", spirv["add_u32"], [inp(a), inp(b), out(np.uint32, (n,))], (n // 64, 1, 1), push)
    s1 = stage("add", spirv["add_u32"], [inp(b), inp(c), StageRef(0, 0)], (n // 64, 1, 1), push)
    p = plan(s0, s1, outputs=((0, 0),))
    np.testing.assert_array_equal(session.execute(p).arrays[0], b + c)
    assert _barriers(session, p) == 1


def test_requested_barrier_is_honoured(session, spirv, rng):
    """sync_barriers asks for a barrier after stage 0 even though stage 1 does not depend on it."""
    n = 64
    a, b = (rng.integers(0, 2**32, n, dtype=np.uint32) for _ in range(2))
    push = struct.pack("<I", n)
    s0 = stage("add", spirv["add_u32"], [inp(a), inp(b), out(np.uint32, (n,))], (1, 1, 1), push)
    s1 = stage("add", spirv["add_u32"], [inp(b), inp(b), out(np.uint32, (n,))], (1, 1, 1), push)
    p = plan(s0, s1, outputs=((0, 0), (1, 0)), barriers=((0, "device"),))
    res = session.execute(p)
    np.testing.assert_array_equal(res.arrays[0], a + b)
    np.testing.assert_array_equal(res.arrays[1], b + b)
    assert _barriers(session, p) == 1


def test_one_submit_per_run_with_uploads_and_downloads(spirv, rng, monkeypatch):
    """On the staging path a run's uploads, dispatches and readback copies still go in one vkQueueSubmit."""
    monkeypatch.setenv("HLX_VULKAN_ZERO_COPY", "0")
    with open_session() as c:
        n = 1024
        a, b = (rng.integers(0, 2**32, n, dtype=np.uint32) for _ in range(2))
        push = struct.pack("<I", n)
        s0 = stage("add", spirv["add_u32"], [inp(a), inp(b), out(np.uint32, (n,))], (n // 64, 1, 1), push)
        s1 = stage("add", spirv["add_u32"], [StageRef(0, 0), inp(b), out(np.uint32, (n,))], (n // 64, 1, 1), push)
        before = c.core.submitter.submits
        np.testing.assert_array_equal(c.execute(plan(s0, s1)).arrays[0], a + b + b)
        assert c.core.submitter.submits == before + 1 and c.residency.misses == 2  # two uploads, one submit
        assert c.recorded and all(r.readback is not None for r in c.recorded.values())


def test_timeout_leaves_the_run_alone_and_the_context_usable(spirv, rng, monkeypatch):
    """HLX_VULKAN_TIMEOUT_S=0: the fence wait of a 2M-element run gives up at once (E_TIMEOUT) while the
    run is still queued. Its buffers and recorded plan must not be destroyed under it (the validation layer
    would report objects destroyed in use); the next call waits for it and then runs normally."""
    monkeypatch.setenv("HLX_VULKAN_TIMEOUT_S", "0")
    n = 1 << 21
    a, b = (rng.integers(0, 2**32, n, dtype=np.uint32) for _ in range(2))
    with open_session() as c:
        p = plan(stage("add", spirv["add_u32"], [inp(a), inp(b), out(np.uint32, (n,))], (n // 64, 1, 1),
                       struct.pack("<I", n)))
        with pytest.raises(HLXError) as err:
            c.execute(p)
        assert err.value.code == "E_TIMEOUT" and "VK_TIMEOUT" in err.value.message
        c.core.submitter.timeout_ns = 120 * 10**9
        np.testing.assert_array_equal(c.execute(p).arrays[0], a + b)
        assert c.residency.stats()["entries"] == 3  # the inputs and the output (8 MiB: left on the device)


def test_cached_work_keeps_no_input_arrays_alive(spirv, rng):
    """The per-key caches hold pipelines and slot numbers, not the host arrays of the plan that filled them:
    once the caller drops a plan, its input tensors can be freed, and a rerun uploads from the new plan."""
    import gc
    import weakref

    with open_session() as c:
        n = 256
        a, b = (rng.integers(0, 2**32, n, dtype=np.uint32) for _ in range(2))
        push = struct.pack("<I", n)
        p = plan(stage("add", spirv["add_u32"], [inp(a), inp(b), out(np.uint32, (n,))], (n // 64, 1, 1), push))
        np.testing.assert_array_equal(c.execute(p).arrays[0], a + b)
        held = [weakref.ref(p.stages[0].bindings[i].array) for i in (0, 1)]
        key, inputs = p.key, [x.copy() for x in (a, b)]
        del p, a, b
        gc.collect()
        assert all(r() is None for r in held)
        c.residency.clear()  # force uploads: they must come from the new plan's arrays
        again = plan(stage("add", spirv["add_u32"], [inp(inputs[0]), inp(inputs[1]), out(np.uint32, (n,))],
                           (n // 64, 1, 1), push))
        assert again.key == key
        np.testing.assert_array_equal(c.execute(again).arrays[0], inputs[0] + inputs[1])


@pytest.mark.parametrize("spin_us, polled", [("5000", True), ("0.001", True), ("0", False)])
def test_completion_by_polling_then_blocking(monkeypatch, spirv, rng, spin_us, polled):
    """The fence is polled for HLX_VULKAN_SPIN_US, then waited for: a poll that sees the run done, a poll
    that runs out (1 ns) and no poll at all give the same exact results."""
    import hlx_vulkan_raw.commands as commands
    monkeypatch.setenv("HLX_VULKAN_SPIN_US", spin_us)
    polls = []
    real = commands.Submitter._poll
    monkeypatch.setattr(commands.Submitter, "_poll",
                        lambda self, fence, budget: polls.append(budget) or real(self, fence, budget))
    a = rng.integers(0, 2**32, 1000, dtype=np.uint32)
    b = rng.integers(0, 2**32, 1000, dtype=np.uint32)
    with open_session() as s:
        assert s.core.submitter.spin.floor_ns == round(float(spin_us) * 1e3)
        for _ in range(3):
            st = stage("add", spirv["add_u32"], [inp(a), inp(b), out(np.uint32, a.shape)], dispatch=(16, 1, 1),
                       push=struct.pack("<I", a.size))
            np.testing.assert_array_equal(s.execute(plan(st)).arrays[0], a + b)
            a = a + np.uint32(1)
    assert bool(polls) == polled


def test_lavapipe_does_not_poll_by_default(monkeypatch):
    monkeypatch.delenv("HLX_VULKAN_SPIN_US", raising=False)
    with open_session() as s:
        spin = s.core.submitter.spin
        assert s.core.phys.kind == "cpu" and spin.floor_ns == 0 and spin.cap_ns == 0 and spin.budget_ns() == 0
