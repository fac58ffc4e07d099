"""Pipelines a plan needs are built together (PipelineManager.get_many): each once, the same objects ``get``
returns afterwards, the ones that succeeded kept when another fails; a plan with a large output builds the
device hash's pipeline beside its stages'."""
from __future__ import annotations

import numpy as np
import pytest

import hlx
from hlx import kernels as K
from hlx_core.backend import DeviceOutput
from hlx_core.cas.store import MemoryStore
from hlx_core.errors import HLXError
from hlx_core.planner import plan as make_plan


def _request(spirv: bytes) -> tuple[bytes, str, None, tuple]:
    return spirv, "main", None, ()


def test_missing_pipelines_are_built_once_and_kept(session, spirv):
    manager = session.core.pipelines
    names = ["add_u32", "saxpy", "half_double"]
    first = manager.get_many([_request(spirv[n]) for n in names] + [_request(spirv["add_u32"])])
    assert len(first) == 4 and first[0] is first[3] and len({id(p) for p in first}) == 3
    assert [manager.get(spirv[n], "main") for n in names] == first[:3]  # cached: no second build
    assert manager.get_many([_request(spirv[n]) for n in reversed(names)]) == first[2::-1]


def test_a_failed_build_keeps_the_others_and_raises(session, spirv, monkeypatch):
    manager = session.core.pipelines
    create = manager._create
    bad = manager.shaders.load(spirv["scale_uniform"], "main")[0].id

    def failing(module, info, values, flags):
        if module.id == bad:
            raise HLXError("E_VK_ERROR", "vkCreateComputePipelines failed (a test)")
        return create(module, info, values, flags)

    monkeypatch.setattr(manager, "_create", failing)
    with pytest.raises(HLXError, match="a test"):
        manager.get_many([_request(spirv["bump_inplace"]), _request(spirv["scale_uniform"])])
    monkeypatch.undo()
    assert manager.get(spirv["bump_inplace"], "main") is manager.get_many([_request(spirv["bump_inplace"])])[0]
    assert manager.get(spirv["scale_uniform"], "main") is not None  # builds now


def test_a_large_output_builds_the_hash_pipeline_with_the_plan(session, rng, monkeypatch):
    monkeypatch.setattr(session, "hash_min_bytes", 1024)
    session._hash_pipe = None
    x = rng.standard_normal(4096).astype(np.float32)
    y = rng.standard_normal(4096).astype(np.float32)
    p = make_plan(K.add(x, y))
    calls = []
    get_many = session.core.pipelines.get_many
    monkeypatch.setattr(session.core.pipelines, "get_many", lambda reqs: calls.append(len(reqs)) or get_many(reqs))
    execution = session.execute(p)
    assert calls == [2] and session._hash_pipe is not None
    out = execution.arrays[0]
    got = out.download() if isinstance(out, DeviceOutput) else np.asarray(out)
    want = x.astype(np.float64) + y.astype(np.float64)
    assert np.max(np.abs(got - want)) <= 1e-6 * np.max(np.abs(want))
    assert execution.handles[0] == hlx.collapse(got, MemoryStore())
