"""A plan's recorded run (hlx_wgpu/recording.py) is reused only while everything it names is what it was
recorded with: its resident inputs, its pooled buffers, the staging, poison and timestamp buffers. Each test
replaces one of them and checks that the next run records anew and still computes the right result (a
stale recording would bind destroyed or foreign buffers: a validation error or wrong data)."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from wgpu_plans import inp, make_plan, make_shader, make_stage, out

from hlx_core.plan import StageRef


def _axpby(spirv, a, b, alpha, scale):
    """out = scale * a + alpha * b, through the push block (a uniform buffer in a uniform session)."""
    n = a.size
    return make_plan(make_stage("axpby", make_shader(spirv["axpby"]), (-(-n // 64), 1, 1),
                                [inp(a), inp(b), out("float32", n)], struct.pack("<If", n, alpha),
                                spec={0: 64, 1: scale}, workgroup=(64, 1, 1)))


def _expected(a, b, alpha, scale):
    return scale * a.astype(np.float64) + alpha * b.astype(np.float64)


def _check(session, plan, a, b, alpha, scale):
    got = session.execute(plan).arrays[0]
    np.testing.assert_allclose(got, _expected(a, b, alpha, scale), rtol=1e-6, atol=1e-6)


def _inputs(rng, n):
    return rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)


@pytest.mark.parametrize("which", ["session", "uniform_session"])
def test_a_warm_run_reuses_its_recording(request, spirv, rng, which):
    session = request.getfixturevalue(which)
    core = session.core
    a, b = _inputs(rng, int(rng.integers(500, 2000)))
    alpha, scale = float(rng.uniform(-3, 3)), float(rng.uniform(-3, 3))
    plan = _axpby(spirv, a, b, alpha, scale)
    _check(session, plan, a, b, alpha, scale)
    rec = core.recordings.get(plan.key)
    counts = (core.storage.created, core.uniforms.created, core.pipelines.bind_groups_created, core.transfers.uploads)
    for _ in range(2):
        _check(session, plan, a, b, alpha, scale)
    assert core.recordings.get(plan.key) is rec and rec.warm
    assert (core.storage.created, core.uniforms.created, core.pipelines.bind_groups_created,
            core.transfers.uploads) == counts


def test_destroyed_buffers_are_not_bound_again(session, spirv, rng):
    """The output's pooled buffer (free between runs) is destroyed: the recording that binds it is dropped,
    and the next run binds a new buffer in a new bind group."""
    core = session.core
    a, b = _inputs(rng, 700)
    plan = _axpby(spirv, a, b, 1.5, -0.5)
    _check(session, plan, a, b, 1.5, -0.5)
    assert core.recordings.get(plan.key) is not None
    core.storage.clear()  # every free pooled buffer, the output's among them
    assert core.recordings.get(plan.key) is None
    groups = core.pipelines.bind_groups_created
    _check(session, plan, a, b, 1.5, -0.5)
    assert core.pipelines.bind_groups_created == groups + 1


def test_inputs_uploaded_again_are_recorded_again(session, spirv, rng):
    """Inputs evicted from the residency (their buffers back in the pool, then destroyed) are uploaded into
    new buffers: the run records anew, and the run after it is warm again."""
    core = session.core
    a, b = _inputs(rng, 900)
    plan = _axpby(spirv, a, b, -2.0, 0.75)
    _check(session, plan, a, b, -2.0, 0.75)
    old = core.recordings.get(plan.key)
    core.resident.clear()
    core.storage.clear()
    uploads = core.transfers.uploads
    _check(session, plan, a, b, -2.0, 0.75)
    rec = core.recordings.get(plan.key)
    assert core.transfers.uploads == uploads + 2 and rec is not old
    _check(session, plan, a, b, -2.0, 0.75)
    assert core.transfers.uploads == uploads + 2 and core.recordings.get(plan.key) is rec


def test_recordings_follow_the_staging_buffers_when_they_grow(session, spirv, rng):
    """A larger plan grows the readback (and, poisoned, the poison) buffer: the old one is destroyed, so a
    recording that copies into it must not run again."""
    core = session.core
    a, b = _inputs(rng, 300)
    small = _axpby(spirv, a, b, 0.5, 2.0)
    _check(session, small, a, b, 0.5, 2.0)
    old = core.recordings.get(small.key)
    created = core.readback.created
    big_a, big_b = _inputs(rng, 2 * core.readback.size // 4 + 64)
    _check(session, _axpby(spirv, big_a, big_b, 1.0, 1.0), big_a, big_b, 1.0, 1.0)
    assert core.readback.created > created
    _check(session, small, a, b, 0.5, 2.0)
    assert core.recordings.get(small.key) is not old


def test_recordings_follow_the_timestamp_queries_when_they_grow(session, spirv, rng):
    """A plan of more stages than the query set holds replaces it: the recordings of the query set it
    replaced record anew."""
    core = session.core
    if core.timestamps is None:
        pytest.skip("the adapter has no timestamp queries")
    n = 200
    a = rng.integers(-1000, 1000, n).astype(np.int32)
    b = rng.integers(-1000, 1000, n).astype(np.int32)
    iadd = make_shader(spirv["iadd"])
    one = make_plan(make_stage("iadd", iadd, (-(-n // 64), 1, 1), [inp(a), inp(b), out("int32", n)]))
    np.testing.assert_array_equal(session.execute(one).arrays[0], a + b)
    old, query_set = core.recordings.get(one.key), core.timestamps.query_set
    stages = [make_stage("iadd", iadd, (-(-n // 64), 1, 1), [inp(a), inp(b), out("int32", n)])]
    while 2 * len(stages) <= core.timestamps.query_set.count:
        stages.append(make_stage("iadd", iadd, (-(-n // 64), 1, 1),
                                 [StageRef(len(stages) - 1, 0), inp(b), out("int32", n)]))
    many = session.execute(make_plan(*stages))
    np.testing.assert_array_equal(many.arrays[0], a + len(stages) * b)
    assert core.timestamps.query_set is not query_set and f"stage{len(stages) - 1}_gpu_ms" in many.timings
    ex = session.execute(one)
    np.testing.assert_array_equal(ex.arrays[0], a + b)
    assert core.recordings.get(one.key) is not old and ex.timings["gpu_ms"] >= 0


def test_a_dropped_recording_gives_its_uniform_buffers_back(uniform_session, spirv, rng):
    core = uniform_session.core
    a, b = _inputs(rng, 400)
    plan = _axpby(spirv, a, b, 3.0, -1.0)
    _check(uniform_session, plan, a, b, 3.0, -1.0)
    rec = core.recordings.get(plan.key)
    assert rec.uniforms
    created = core.uniforms.created
    core.recordings.clear()
    _check(uniform_session, plan, a, b, 3.0, -1.0)  # its push-constant buffer comes from the pool again
    assert core.uniforms.created == created and core.recordings.get(plan.key) is not rec


def test_a_device_lost_under_a_warm_run_is_reported_then_recovered(wgpu_backend, spirv, rng):
    from hlx_core.errors import BackendError

    session = wgpu_backend.open()
    try:
        a, b = _inputs(rng, 600)
        plan = _axpby(spirv, a, b, 1.25, -3.0)
        for _ in range(2):
            _check(session, plan, a, b, 1.25, -3.0)
        assert session.core.recordings.get(plan.key).warm  # the next run claims it
        session.core.device.destroy()
        with pytest.raises(BackendError) as err:
            session.execute(plan)
        assert err.value.code == "E_DEVICE_LOST" and session.core is None
        _check(session, plan, a, b, 1.25, -3.0)  # a new device: uploaded and recorded again
    finally:
        session.close()
