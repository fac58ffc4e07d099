"""Read-only storage buffers reach naga as read-only: wgpu requires each layout entry to equal naga's view
of the binding, so a pipeline built with a "read-only-storage" entry proves that naga's translated module
declares that buffer read-only (``var<storage, read>``), and one with a "storage" entry that it does not."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from wgpu_plans import inp, make_plan, make_shader, make_stage, out, poison

from hlx import kernels as K
from hlx_core.errors import BackendError
from hlx_core.planner import plan

from hlx_wgpu.errors import wgpu_call
from hlx_wgpu.native import create_trusted_module
from hlx_wgpu.spirv_patch import mark_readonly_variables

GEMM = (Path(__file__).resolve().parents[2] / "shaders" / "gemm.spv").read_bytes()
RO, RW = "read-only-storage", "storage"


def _pipeline(session, spirv: bytes, types: list[str]) -> None:
    """Build a compute pipeline for ``spirv`` with these group-0 layout types (raises if wgpu refuses)."""
    import wgpu

    device = session.core.device
    with wgpu_call("the test pipeline"):
        module = create_trusted_module(device, spirv, "readonly-test")
        entries = [{"binding": i, "visibility": wgpu.ShaderStage.COMPUTE, "buffer": {"type": t}}
                   for i, t in enumerate(types)]
        layout = device.create_pipeline_layout(bind_group_layouts=[device.create_bind_group_layout(entries=entries)],
                                               immediate_size=12)
        device.create_compute_pipeline(layout=layout, compute={"module": module, "entry_point": "main"})


def test_naga_reads_the_patched_inputs_as_read_only(session):
    if "immediates" not in session.core.features:
        pytest.skip("the adapter has no immediates for the gemm push constants")
    patched = mark_readonly_variables(GEMM)
    _pipeline(session, patched, [RO, RO, RW])
    with pytest.raises(BackendError, match="E_WGPU_VALIDATION"):
        _pipeline(session, patched, [RW, RW, RW])  # naga made A read-only: a read-write entry is refused
    with pytest.raises(BackendError, match="E_WGPU_VALIDATION"):
        _pipeline(session, GEMM, [RO, RO, RW])  # glslang's member-level NonWritable alone: naga reads it as read-write


@pytest.mark.parametrize("which", ["session", "uniform_session"])
def test_gemm_binds_its_inputs_read_only(request, rng, which):
    session = request.getfixturevalue(which)
    a = rng.standard_normal((140, 37)).astype(np.float32)  # past the few-rows shader
    b = rng.standard_normal((37, 90)).astype(np.float32)
    got = session.execute(plan(K.gemm(a, b))).arrays[0]
    np.testing.assert_allclose(got, a.astype(np.float64) @ b.astype(np.float64), rtol=1e-4, atol=1e-4)
    compiled = session.shader_paths["gemm"]
    assert compiled.path == "spirv" and "readonly-variables" in compiled.patches
    assert compiled.binding_types == {0: RO, 1: RO, 2: RW}


def _accumulate(spirv, x, y):
    stage = make_stage("accumulate", make_shader(spirv["accumulate"]), (-(-x.size // 64), 1, 1),
                       [inp(x), inp(y), out("float32", x.size)])
    return make_plan(stage)


def test_written_input_keeps_read_write(session, spirv, rng):
    """``accumulate`` reads x and adds it into y in place: x is read-only, y stays read-write."""
    n = 300
    x, y = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    poison(session, spirv, 4 * n)
    got = session.execute(_accumulate(spirv, x, y)).arrays[0]
    assert got.tobytes() == (x + y).tobytes()  # one float32 add: exact
    assert session.shader_paths["accumulate"].binding_types == {0: RO, 1: RW, 2: RW}


def test_one_buffer_bound_read_only_and_written(session, spirv, rng):
    """The same tensor as x and y binds one buffer both ways in a dispatch, which WebGPU refuses for a
    read-only plus a read-write entry: that stage gets a module and layout with x read-write too."""
    n = 300
    x = rng.standard_normal(n).astype(np.float32)
    poison(session, spirv, 4 * n)
    got = session.execute(_accumulate(spirv, x, x)).arrays[0]
    assert got.tobytes() == (x + x).tobytes()
    assert session.shader_paths["accumulate"].binding_types == {0: RW, 1: RW, 2: RW}
    y = rng.standard_normal(n).astype(np.float32)
    assert session.execute(_accumulate(spirv, x, y)).arrays[0].tobytes() == (x + y).tobytes()
    assert session.shader_paths["accumulate"].binding_types[0] == RO

