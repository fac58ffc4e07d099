"""Refused contracts become HLX errors with a code and wgpu's (naga's) own words, and the session keeps
working afterwards."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from wgpu_plans import inp, make_plan, make_shader, make_stage, out

import hlx
from hlx_core.errors import BackendError, ContractError

from hlx_wgpu.shaders import ShaderCache


def _valid_plan(spirv, rng, n=500):
    a = rng.integers(-1000, 1000, n).astype(np.int32)
    b = rng.integers(-1000, 1000, n).astype(np.int32)
    stage = make_stage("iadd", make_shader(spirv["iadd"]), (-(-n // 64), 1, 1), [inp(a), inp(b), out("int32", n)])
    return make_plan(stage), a + b


def _still_works(session, spirv, rng):
    plan, want = _valid_plan(spirv, rng)
    np.testing.assert_array_equal(session.execute(plan).arrays[0], want)


def test_naga_refusal_has_code_and_nagas_message(session, spirv, rng):
    stage = make_stage("bad_naga", make_shader(spirv["bad_naga"]), (1, 1, 1), [out("uint8", 64)])
    with pytest.raises(BackendError) as err:
        session.execute(make_plan(stage))
    assert err.value.code == "E_WGPU_VALIDATION"
    assert "StorageBuffer8BitAccess" in err.value.message  # naga's own diagnosis
    assert "bad_naga" in err.value.message and "wgsl_source" in err.value.message
    _still_works(session, spirv, rng)


def test_binding_larger_than_adapter_limit(session, spirv, rng):
    limit = session.core.limits.max_storage_buffer_range
    n = limit // 4 + 1  # one element too many; nothing is allocated before the check
    stage = make_stage("fill", make_shader(spirv["fill"]), (1, 1, 1), [out("uint32", n)], struct.pack("<II", n, 1))
    with pytest.raises(BackendError) as err:
        session.execute(make_plan(stage))
    assert err.value.code == "E_LIMIT_EXCEEDED"
    assert "max_storage_buffer_range" in err.value.message and str(limit) in err.value.message
    assert "binding 0" in err.value.message
    _still_works(session, spirv, rng)


def test_workgroup_larger_than_adapter_limit(session, spirv, rng):
    limit = session.core.limits.max_workgroup_size[0]
    a = rng.standard_normal(64).astype(np.float32)
    stage = make_stage("axpby", make_shader(spirv["axpby"]), (1, 1, 1), [inp(a), inp(a), out("float32", 64)],
                       struct.pack("<If", 64, 1.0), spec={0: 2 * limit}, workgroup=(2 * limit, 1, 1))
    with pytest.raises(BackendError) as err:
        session.execute(make_plan(stage))
    assert err.value.code == "E_LIMIT_EXCEEDED" and "max_workgroup_size.x" in err.value.message
    _still_works(session, spirv, rng)


def test_push_constants_longer_than_the_block(session, spirv, rng):
    """The planner refuses them before any backend sees the plan."""
    contract = {"901": {"kernel_name": "fill", "shader_handle": hlx.shader_contract(spirv["fill"]),
                        "dispatch": [1, 1, 1], "bindings": [{"output": {"dtype": "uint32", "shape": [64]}}],
                        "push_constants": bytes(12)}}
    with pytest.raises(ContractError) as err:
        hlx.run(contract, backend="wgpu")
    assert "push_constants" in err.value.path
    _still_works(session, spirv, rng)


def test_device_loss_is_reported_then_recovered(wgpu_backend, spirv, rng):
    session = wgpu_backend.open()
    try:
        _still_works(session, spirv, rng)
        session.core.device.destroy()  # a real loss: wgpu marks the device lost
        plan, _ = _valid_plan(spirv, rng)
        with pytest.raises(BackendError) as err:
            session.execute(plan)
        assert err.value.code == "E_DEVICE_LOST" and "lost" in err.value.message
        _still_works(session, spirv, rng)  # a fresh device
    finally:
        session.close()
    with pytest.raises(BackendError) as err:
        session.execute(plan)
    assert err.value.code == "E_BACKEND_CLOSED"
    session.close()  # idempotent


def test_feature_the_adapter_lacks_is_named(session, spirv, rng):
    """The device asks for every feature HLX uses that the adapter has, so a float16 shader runs; on a
    device without "shader-f16" the same shader is refused naming the feature and the capability."""
    x = rng.standard_normal(100).astype(np.float32)
    stage = make_stage("half_square", make_shader(spirv["half_square"]), (2, 1, 1), [inp(x), out("float32", 100)])
    st = session.core
    if "shader-f16" in st.adapter.features:
        h = x.astype(np.float16)
        np.testing.assert_array_equal(session.execute(make_plan(stage)).arrays[0], (h * h).astype(np.float32))
    without = ShaderCache(st.device, st.features - {"shader-f16"}, st.adapter.name)
    with pytest.raises(BackendError) as err:
        without.get(stage, "none")
    assert err.value.code == "E_UNSUPPORTED"
    assert "shader-f16 (SPIR-V capability Float16)" in err.value.message and st.adapter.name in err.value.message
    assert "wgsl_source" in err.value.message
    _still_works(session, spirv, rng)
