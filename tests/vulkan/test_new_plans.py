"""A new plan of shaders the session has run before (new inputs, new sizes) takes its pipelines from the
session's record of pipeline requests, keyed by the whole request: a change of workgroup size or
specialization constant must build (or find) another pipeline, never reuse the one of another request."""
from __future__ import annotations

import struct

import numpy as np
from vkplan import inp, open_session, out, plan, stage


def _saxpy(spirv, x, y, alpha, scale, width):
    n = x.size
    return plan(stage("saxpy", spirv["saxpy"], [inp(x), inp(y), out(np.float32, x.shape)],
                      dispatch=(-(-n // width), 1, 1), push=struct.pack("<If", n, alpha),
                      workgroup=(width, 1, 1), spec=((1, scale),)))


def _check(session, spirv, rng, n, scale, width):
    x = rng.standard_normal(n).astype(np.float32)
    y = rng.standard_normal(n).astype(np.float32)
    alpha = float(rng.uniform(-2, 2))
    got = session.execute(_saxpy(spirv, x, y, alpha, scale, width)).arrays[0]
    want = np.float32(alpha) * x.astype(np.float64) + y.astype(np.float64) * np.float32(scale)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_new_sizes_reuse_the_pipeline_and_other_requests_do_not(spirv, rng, monkeypatch):
    with open_session() as session:
        calls = []
        get_many = session.core.pipelines.get_many
        monkeypatch.setattr(session.core.pipelines, "get_many",
                            lambda reqs: calls.append(len(reqs)) or get_many(reqs))
        _check(session, spirv, rng, 1000, 1.5, 64)
        assert calls == [1]
        _check(session, spirv, rng, 777, 1.5, 64)  # a new plan of the same request: no manager call
        assert calls == [1]
        # Another SCALE, then another width (spec constant 0): a stale pipeline would scale y by 1.5 or
        # leave elements of the output unwritten (poisoned).
        _check(session, spirv, rng, 900, -0.75, 64)
        _check(session, spirv, rng, 900, -0.75, 32)
        assert calls == [1, 1, 1]
        _check(session, spirv, rng, 500, 1.5, 64)  # the first request again: still known
        assert calls == [1, 1, 1]
        remembered = session._stage_pipes
        assert all(pipe is session.core.pipelines.get(*request) for request, pipe in remembered.items())


def test_released_plans_hand_their_sets_and_queries_to_new_ones(spirv, rng, monkeypatch):
    """Past the recorded-plan bound every new plan evicts one: its descriptor set (rewritten for the new
    plan's buffers: a stale one would read the evicted plan's inputs) and query pool serve the next."""
    with open_session() as session:
        session.recorded.capacity = 2
        allocated, created = [], []
        allocate_set, query_pool = session.core.pipelines.allocate_set, session.core.query_pool
        monkeypatch.setattr(session.core.pipelines, "allocate_set",
                            lambda pipe: allocated.append(1) or allocate_set(pipe))
        monkeypatch.setattr(session.core, "query_pool", lambda count: created.append(count) or query_pool(count))
        for n in (300, 301, 302, 303, 304, 305):
            _check(session, spirv, rng, n, 1.5, 64)
        assert len(session.recorded) == 2
        assert len(allocated) == 3 and len(created) in (0, 3)  # (no pools where the queue has no timestamps)
        assert sum(map(len, session._spare_sets.values())) == 1
    assert session._spare_sets == {} and session._spare_queries == {}
