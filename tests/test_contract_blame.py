"""Wrong blame and wrong results: a contract's own faults are contract errors, and one contract gives one
result (or one error) on every backend.

An output shape that no LC-B tensor can have, such as [2**62, 0], is refused while validating, with its
field path, instead of failing inside a backend as a plugin fault. A custom shader that carries a library
kernel's name is not that kernel: the CPU reference runs a kernel's NumPy reference only for the very
shader it models (a library kernel's own 900, or the one a plugin registered its reference for), so it
refuses the stage (E_NO_REFERENCE) instead of computing what the GPU backends do not.
"""
from __future__ import annotations

import numpy as np
import pytest
from _shaders import glsl
from plugin_fakes import plugins  # noqa: F401 (fixture)

import hlx
from hlx import kernels as K
from hlx_core import registry as registry_module
from hlx_core.codec import set_limits
from hlx_core.errors import BackendError, ContractError
from hlx_core.hookspecs import hookimpl
from hlx_core.kernels.spec import KernelSpec
from hlx_core.registry import kernel_registry, register_plugin

BACKENDS = ("cpu", "vulkan", "wgpu")
# Named "add" below, yet it subtracts: o = a - b.
SUBTRACT = """#version 450
layout(local_size_x = 64) in;
layout(std430, set = 0, binding = 0) readonly buffer A { float a[]; };
layout(std430, set = 0, binding = 1) readonly buffer B { float b[]; };
layout(std430, set = 0, binding = 2) writeonly buffer O { float o[]; };
layout(push_constant) uniform Push { uint n; } p;
void main() { uint i = gl_GlobalInvocationID.x; if (i < p.n) o[i] = a[i] - b[i]; }
"""


@pytest.fixture(scope="module")
def subtract() -> dict:
    """The 900 of SUBTRACT."""
    return hlx.shader_contract(glsl(SUBTRACT))


def _available(backend: str) -> None:
    if backend not in hlx.backends():
        pytest.skip(f"{backend} is not available here")


def _contract(shader: dict, name: str, a: np.ndarray, b: np.ndarray, shape: list[int] | None = None) -> dict:
    n = a.size
    return {"901": {"kernel_name": name, "shader_handle": hlx.collapse(shader), "dispatch": [-(-n // 64), 1, 1],
                    "bindings": [hlx.collapse(a), hlx.collapse(b),
                                 {"output": {"dtype": "float32", "shape": [n] if shape is None else shape}}],
                    "push_constants": np.uint32(n).tobytes()}}


# ---------------------------------------------------------------------------------------- output shapes

@pytest.mark.parametrize("shape", [[2**62, 0], [0, 2**64 - 1], [2**40, 2**40], [2**31, 0], [1] * 33])
def test_impossible_output_shapes_are_contract_errors(subtract, shape):
    a = np.ones(4, np.float32)
    with pytest.raises(ContractError) as err:
        hlx.validate(_contract(subtract, "sub", a, a, shape))
    assert (err.value.code, err.value.path) == ("E_SHAPE", "901.bindings[2].output.shape")
    inner = {"902": {"pipeline_id": "p", "stages": [_contract(subtract, "sub", a, a, shape)]}}
    with pytest.raises(ContractError) as err:
        hlx.validate(inner)
    assert (err.value.code, err.value.path) == ("E_SHAPE", "902.stages[0].901.bindings[2].output.shape")


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_impossible_output_shape_is_blamed_on_the_contract_on_every_backend(subtract, backend):
    _available(backend)
    a = np.ones(4, np.float32)
    for shape in ([2**62, 0], [0, 2**64 - 1]):
        with pytest.raises(ContractError) as err:
            hlx.run(_contract(subtract, "sub", a, a, shape), backend=backend)
        assert (err.value.code, err.value.path) == ("E_SHAPE", "901.bindings[2].output.shape")


def test_output_shapes_within_the_codec_limit_are_accepted(subtract):
    a = np.ones(4, np.float32)
    hlx.validate(_contract(subtract, "sub", a, a, [2**20, 0]))
    hlx.validate(_contract(subtract, "sub", a, a, [2**30 - 8]))  # 4 GiB of float32, less the tensor header
    previous = set_limits(1 << 20)
    try:
        with pytest.raises(ContractError) as err:
            hlx.validate(_contract(subtract, "sub", a, a, [1 << 18]))  # 1 MiB: past the limit with its header
        assert err.value.code == "E_SHAPE"
        hlx.validate(_contract(subtract, "sub", a, a, [(1 << 18) - 8]))
    finally:
        set_limits(previous)


# ------------------------------------------------------------------------- a reference for its shader only

@pytest.mark.parametrize("backend", BACKENDS)
def test_a_custom_shader_named_like_a_library_kernel_is_not_that_kernel(subtract, backend, rng):
    _available(backend)
    a, b = (rng.standard_normal(300).astype(np.float32) for _ in range(2))
    contract = _contract(subtract, "add", a, b)
    if backend == "cpu":
        with pytest.raises(BackendError) as err:
            hlx.run(contract, backend="cpu")
        assert err.value.code == "E_NO_REFERENCE" and "models shader" in err.value.message
    else:
        (got,) = hlx.run(contract, backend=backend).arrays()
        np.testing.assert_array_equal(got, a - b)  # its own shader's result, not add's


def test_a_plugin_reference_runs_for_the_shader_it_was_registered_for(subtract, plugins, monkeypatch, rng):
    monkeypatch.setattr(registry_module, "_kernels", registry_module.KernelRegistry())
    plugins("cpu")
    a, b = (rng.standard_normal(300).astype(np.float32) for _ in range(2))

    class Subtract:
        @hookimpl
        def hlx_register_kernels(self, registry):
            registry.register(KernelSpec(name="sub", reference=lambda i, p, o: [i[0] - i[1]],
                                         shader_handle=hlx.collapse(subtract)))

    register_plugin(Subtract(), name="subtract")
    (got,) = hlx.run(_contract(subtract, "sub", a, b), backend="cpu").arrays()
    np.testing.assert_array_equal(got, a - b)
    assert kernel_registry().get("sub").modelled_shader() == hlx.collapse(subtract)
    on_add = K.add(a, b)
    on_add["901"]["kernel_name"] = "sub"  # the library's add shader under the plugin kernel's name
    with pytest.raises(BackendError) as err:
        hlx.run(on_add, backend="cpu")
    assert err.value.code == "E_NO_REFERENCE"


def test_library_references_model_the_library_shaders(rng):
    a, b = (rng.standard_normal(30).astype(np.float32) for _ in range(2))
    contract = K.add(a, b)
    assert kernel_registry().get("add").modelled_shader() == contract["901"]["shader_handle"]
    (got,) = hlx.run(contract, backend="cpu").arrays()
    np.testing.assert_array_equal(got, a + b)
