"""The kernel library: registry, NumPy references, contract helpers, pipeline(), and the CPU backend.

Numeric parity of every kernel on every backend is the conformance kit's (hlx_core/conformance, run by
tests/test_conformance.py); here the contracts' structure, the refusals, and the references' own
correctness (against independent NumPy float64 code) are checked.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from plugin_fakes import plugins  # noqa: F401 (fixture)

import hlx
from hlx import kernels as K
from hlx_core import registry as registry_module
from hlx_core.errors import BackendError, ContractError
from hlx_core.hookspecs import hookimpl
from hlx_core.kernels import references as ref
from hlx_core.kernels.library import LIBRARY
from hlx_core.kernels.shaders import library_shader
from hlx_core.kernels.spec import KernelRegistry, KernelSpec
from hlx_core.plan import InputRef, OutputRef, Plan, Shader, Stage, StageRef
from hlx_core.registry import kernel_registry, register_plugin
from hlx_core.spirv.reflect import reflect_entry

from hlx_cpu.plugin import hlx_register_backends

SHADERS = Path(__file__).resolve().parents[1] / "shaders"
BUILTINS = {"add", "mul", "saxpy", "relu", "reduce_sum", "softmax", "transpose", "gemm", "gemm128", "gemm_skinny",
            "conv2d"}


def f32(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def output_spec(body: dict, j: int = 0) -> dict:
    return [b["output"] for b in body["bindings"] if isinstance(b, dict) and isinstance(b.get("output"), dict)][j]


# ----------------------------------------------------------------------------------------------- registry

def test_registry_has_every_builtin_with_its_shader() -> None:
    registry = kernel_registry()
    assert BUILTINS <= set(registry.names())
    for spec in LIBRARY:
        assert registry.get(spec.name) is spec
        assert (SHADERS / f"{spec.shader}.spv").is_file()
        info = reflect_entry((SHADERS / f"{spec.shader}.spv").read_bytes(), "main")
        assert info.push_constant_size == 4 * len(spec.push_constants), spec.name


def test_the_library_is_a_plugin_registered_through_the_kernel_hook(plugins, monkeypatch) -> None:
    """Even with no entry point allowed, the built-in kernels arrive through hlx_register_kernels."""
    from hlx_core.kernels import library

    monkeypatch.setattr(registry_module, "_kernels", KernelRegistry())
    plugins("")
    registry = kernel_registry()
    assert [registry.get(spec.name) for spec in LIBRARY] == list(LIBRARY)
    assert library in registry.plugins.values()
    assert registry_module.failures() == []


def test_unknown_kernel_says_how_to_register() -> None:
    with pytest.raises(BackendError) as exc:
        kernel_registry().get("no_such_kernel")
    assert exc.value.code == "E_NO_REFERENCE"
    assert "hlx_register_kernels" in exc.value.message and "registry.register" in exc.value.message


def test_register_is_idempotent_and_refuses_conflicts() -> None:
    registry = KernelRegistry()
    spec = KernelSpec(name="scale2", reference=lambda i, p, o: [i[0] * 2])
    registry.register(spec)
    registry.register(spec)
    assert registry.names() == ["scale2"]
    other = KernelSpec(name="scale2", reference=lambda i, p, o: [i[0] * 3])
    with pytest.raises(BackendError) as exc:
        registry.register(other)
    assert exc.value.code == "E_KERNEL_CONFLICT"
    registry.register(other, replace=True)
    assert registry.get("scale2") is other
    with pytest.raises(BackendError):
        registry.register("not a spec")  # type: ignore[arg-type]


def test_push_constants_pack_little_endian_std430() -> None:
    spec = kernel_registry().get("saxpy")
    assert spec.pack_push_constants({"n": 7, "alpha": 1.5}) == struct.pack("<If", 7, 1.5)
    assert spec.push_constants_layout() == [{"name": "n", "offset": 0, "type": "uint32"},
                                            {"name": "alpha", "offset": 4, "type": "float32"}]
    for bad in ({"n": -1, "alpha": 1.0}, {"n": 2**32, "alpha": 1.0}, {"n": 1, "alpha": float("inf")}, {"n": 1}):
        with pytest.raises(ContractError):
            spec.pack_push_constants(bad)


def test_every_library_kernel_has_a_builder_and_a_recognised_shader() -> None:
    from hlx_core.kernels.as_built import library_kernel
    for spec in LIBRARY:
        assert spec.build is not None and spec.tensors >= 1, spec.name
        assert library_kernel((SHADERS / f"{spec.shader}.spv").read_bytes()) is spec
    assert library_kernel((SHADERS / "relu.spv").read_bytes()[:-4]) is None


def test_unpack_push_constants_inverts_pack(rng: np.random.Generator) -> None:
    for spec in LIBRARY:
        params = {name: float(np.float32(rng.standard_normal())) if kind == "float"
                  else int(rng.integers(0, 2**32 if kind == "uint" else 2**31)) for name, kind in spec.push_constants}
        packed = spec.pack_push_constants(params)
        assert spec.unpack_push_constants(packed) == params, spec.name


# --------------------------------------------------------------------------------------------- references

def test_reduce_pass_follows_the_documented_tree() -> None:
    """Integers reveal the order: each partial is the exact sum of its 8192-element chunk."""
    x = np.arange(1, 20_000, dtype=np.int32)
    partials = ref.reduce_pass(x)
    assert partials.tolist() == [int(x[i:i + 8192].sum()) for i in range(0, x.size, 8192)]
    # float32: replay the documented order by hand for one chunk, element by element
    v = np.random.default_rng().standard_normal(8192).astype(np.float32)
    r = []
    for t in range(256):
        s = v[4 * t:4 * t + 4].copy()  # group j = 0 of thread t
        for j in range(1, 8):
            s = s + v[4 * (256 * j + t):4 * (256 * j + t) + 4]
        r.append((s[0] + s[1]) + (s[2] + s[3]))
    level = np.array(r, np.float32)
    while level.size > 1:
        level = level[:level.size // 2] + level[level.size // 2:]
    assert ref.reduce_pass(v)[0].tobytes() == level[0].tobytes()


def test_tree_sum_matches_float64_and_wraps_ints(rng: np.random.Generator) -> None:
    x = f32(rng, 100_003)
    total = ref.tree_sum(x)
    assert total.shape == () and total.dtype == np.float32
    # two passes (13 partials, then 1) of at most 17 additions from a leaf to its chunk's sum
    assert abs(float(total) - x.astype(np.float64).sum()) <= 34 * 2.0**-24 * np.abs(x.astype(np.float64)).sum()
    ints = rng.integers(-2**31, 2**31, size=3000, dtype=np.int32)
    assert ref.tree_sum(ints) == ints.sum(dtype=np.int32)  # modular sum: order does not matter
    assert ref.tree_sum(np.zeros(0, np.float32)) == 0


def test_conv2d_reference_matches_loops(rng: np.random.Generator) -> None:
    x, w = f32(rng, 2, 3, 7, 6), f32(rng, 4, 3, 3, 2)
    for stride, pad in ((1, 0), (2, 1), (3, 2)):
        (y,) = ref.conv2d([x, w], {"stride": stride, "padding": pad}, [])
        xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        oh, ow = (7 + 2 * pad - 3) // stride + 1, (6 + 2 * pad - 2) // stride + 1
        want = np.zeros((2, 4, oh, ow))
        for n in range(2):
            for k in range(4):
                for i in range(oh):
                    for j in range(ow):
                        want[n, k, i, j] = (xp[n, :, i * stride:i * stride + 3, j * stride:j * stride + 2] * w[k]).sum()
        np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------------ helpers

def test_add_contract_structure(rng: np.random.Generator) -> None:
    a = rng.integers(-100, 100, size=(3, 5), dtype=np.int32)
    b = rng.integers(-100, 100, size=(3, 5), dtype=np.int32)
    c = K.add(a, b)
    body = c["901"]
    assert body["kernel_name"] == "add"
    assert body["bindings"][:2] == [hlx.collapse(a), hlx.collapse(b)]
    assert body["bindings"][2] == {"output": {"dtype": "int32", "shape": [3, 5]}}
    assert body["dispatch"] == [1, 1, 1]
    assert body["params"] == {"n": 15, "kind": 1}
    assert body["push_constants"] == struct.pack("<II", 15, 1)
    shader = hlx.resolve(body["shader_handle"])
    assert shader["900"]["spirv_binary"] == (SHADERS / "add.spv").read_bytes()
    assert hlx.validate(c)["901"]["bindings"] == body["bindings"]
    # handles work as arguments and give the same contract
    assert K.add(hlx.collapse(a), hlx.collapse(b)) == c


# up to 32 rows, or 128 where 64x64 tiles would be fewer than 16: gemm_skinny's 16x16 blocks; more: gemm's tiles
@pytest.mark.parametrize("m,k,n,kernel,grid", [(33, 65, 17, "gemm_skinny", [2, 3, 1]),
                                               (1, 1, 1, "gemm_skinny", [1, 1, 1]),
                                               (64, 3, 65, "gemm_skinny", [5, 4, 1]),
                                               (128, 3, 65, "gemm_skinny", [5, 8, 1]),
                                               (130, 8, 64, "gemm", [1, 3, 1]), (65, 3, 1000, "gemm", [16, 2, 1])])
def test_gemm_dispatch_and_params(m: int, k: int, n: int, kernel: str, grid: list[int],
                                  rng: np.random.Generator) -> None:
    body = K.gemm(f32(rng, m, k), f32(rng, k, n))["901"]
    assert body["kernel_name"] == kernel and body["dispatch"] == grid
    assert body["params"] == {"M": m, "N": n, "K": k}
    assert output_spec(body) == {"dtype": "float32", "shape": [m, n]}


@pytest.mark.parametrize(("rows", "cols", "grid"), [(1, 1, 1), (300, 32, 2), (300, 33, 3), (9, 1024, 2), (8, 1024, 1),
                                                  (3, 1025, 1), (5, 8192, 5), (3, 20000, 3), (0, 7, 1),
                                                  (70000, 1, 274)])
def test_softmax_gives_each_row_a_team_fitted_to_its_length(rows: int, cols: int, grid: int) -> None:
    """A team of the smallest power of two up to 256 lanes holding the row in 8 vec4 each, 256 / team rows a
    workgroup (the shader computes the same team from cols)."""
    x = hlx.collapse(np.ones((rows, cols), np.float32))
    assert K.softmax(x)["901"]["dispatch"] == [grid, 1, 1]


def test_shapes_and_dispatch_of_the_other_kernels(rng: np.random.Generator) -> None:
    x = f32(rng, 300, 40)
    assert K.softmax(x)["901"]["dispatch"] == [3, 1, 1]  # 10 vec4 a row: 2-lane teams, 128 rows a workgroup
    t = K.transpose(x)["901"]
    assert t["dispatch"] == [2, 10, 1] and output_spec(t)["shape"] == [40, 300]  # 32x32 tiles
    s = K.saxpy(0.1, x, x)["901"]
    # a workgroup per 1024 whole uvec4 groups: 3000 for n = 12000
    assert s["params"] == {"n": 12000, "alpha": float(np.float32(0.1))} and s["dispatch"] == [3, 1, 1]
    conv = K.conv2d(f32(rng, 2, 3, 9, 11), f32(rng, 4, 3, 3, 2), stride=2, padding=1)["901"]
    assert output_spec(conv)["shape"] == [2, 4, 5, 6]
    assert conv["params"]["OH"] == 5 and conv["params"]["OW"] == 6 and conv["dispatch"] == [1, 1, 1]
    # a workgroup per 128 output pixels by 64 output channels: 2*17*19 = 646 pixels, 70 channels
    assert K.conv2d(f32(rng, 2, 3, 17, 19), f32(rng, 70, 3, 3, 3), padding=1)["901"]["dispatch"] == [6, 2, 1]
    assert K.relu(np.zeros((0,), np.float32))["901"]["dispatch"] == [1, 1, 1]
    assert K.add(f32(rng, 300_000), f32(rng, 300_000))["901"]["dispatch"] == [74, 1, 1]


def test_reduce_sum_single_and_multi_pass(rng: np.random.Generator) -> None:
    small = K.reduce_sum(f32(rng, 8192))["901"]
    assert output_spec(small) == {"dtype": "float32", "shape": []}
    c = K.reduce_sum(rng.integers(0, 9, size=300_000, dtype=np.int32))["902"]
    stages = [s["901"] for s in c["stages"]]
    assert [s["params"]["n"] for s in stages] == [300_000, 37]
    assert [output_spec(s)["shape"] for s in stages] == [[37], []]
    assert [s["dispatch"] for s in stages] == [[37, 1, 1], [1, 1, 1]]
    assert stages[1]["bindings"][0] == {"stage": 0, "output": 0}
    assert c["sync_barriers"] == [{"stage_idx": 0, "memory_scope": "device"}]
    assert c["outputs"] == [{"stage": 1, "output": 0}]
    hlx.validate({"902": c})


@pytest.mark.parametrize("call,code", [
    (lambda r: K.add(f32(r, 4), f32(r, 5)), "E_SHAPE"),
    (lambda r: K.add(f32(r, 4), np.ones(4, np.int32)), "E_DTYPE"),
    (lambda r: K.mul(np.ones(4), np.ones(4)), "E_DTYPE"),
    (lambda r: K.saxpy(1.0, np.ones(3, np.int32), np.ones(3, np.int32)), "E_DTYPE"),
    (lambda r: K.saxpy(float("nan"), f32(r, 3), f32(r, 3)), "E_CONTRACT_FIELD_TYPE"),
    (lambda r: K.saxpy(1e39, f32(r, 3), f32(r, 3)), "E_CONTRACT_FIELD_TYPE"),
    (lambda r: K.reduce_sum(np.ones(3, np.uint32)), "E_DTYPE"),
    (lambda r: K.softmax(f32(r, 2, 3, 4)), "E_SHAPE"),
    (lambda r: K.transpose(np.ones((2, 2), np.float64)), "E_DTYPE"),
    (lambda r: K.gemm(f32(r, 3, 4), f32(r, 5, 6)), "E_SHAPE"),
    (lambda r: K.gemm(f32(r, 3), f32(r, 3, 1)), "E_SHAPE"),
    (lambda r: K.conv2d(f32(r, 1, 3, 5, 5), f32(r, 2, 4, 3, 3)), "E_SHAPE"),
    (lambda r: K.conv2d(f32(r, 1, 1, 2, 2), f32(r, 1, 1, 3, 3)), "E_SHAPE"),
    (lambda r: K.conv2d(f32(r, 1, 1, 5, 5), f32(r, 1, 1, 3, 3), stride=0), "E_CONTRACT_FIELD_TYPE"),
    (lambda r: K.relu({"x": [1.0, 2.0]}), "E_CONTRACT_FIELD_TYPE"),
    (lambda r: K.relu(["a", "b"]), "E_CONTRACT_FIELD_TYPE"),
    (lambda r: K.relu(hlx.collapse("not a tensor")), "E_CONTRACT_FIELD_TYPE"),
    (lambda r: K.stage(-1), "E_CONTRACT_FIELD_TYPE"),
])
def test_bad_arguments_raise_contract_errors(call, code: str, rng: np.random.Generator) -> None:
    with pytest.raises(ContractError) as exc:
        call(rng)
    assert exc.value.code == code, exc.value


# ----------------------------------------------------------------------------------------------- pipeline

def test_mlp_pipeline_structure(rng: np.random.Generator) -> None:
    x, w1, w2 = f32(rng, 8, 33), f32(rng, 33, 65), f32(rng, 65, 10)
    c = K.pipeline([K.gemm(x, w1), K.relu(K.stage(0)), K.gemm(K.stage(1), w2), K.softmax(K.stage(2))])["902"]
    stages = [s["901"] for s in c["stages"]]
    assert [s["kernel_name"] for s in stages] == ["gemm_skinny", "relu", "gemm_skinny", "softmax"]  # 8 rows
    assert stages[1]["bindings"][0] == {"stage": 0, "output": 0}
    assert stages[2]["bindings"][:2] == [{"stage": 1, "output": 0}, hlx.collapse(w2)]
    assert stages[2]["params"] == {"M": 8, "N": 10, "K": 65}
    assert output_spec(stages[3])["shape"] == [8, 10]
    assert [b["stage_idx"] for b in c["sync_barriers"]] == [0, 1, 2]
    assert c["outputs"] == [{"stage": 3, "output": 0}]
    # a step given as a built 901 is named by its kernel, a deferred one by its helper
    assert c["pipeline_id"] == "gemm_skinny>relu>gemm>softmax"
    hlx.validate({"902": c})


def test_pipeline_flattens_multi_pass_steps(rng: np.random.Generator) -> None:
    """stage(i) counts steps: after a 2-pass reduce_sum, stage(1) is its final pass's output."""
    x = f32(rng, 600, 500)
    c = K.pipeline([K.relu(x), K.reduce_sum(K.stage(0)), K.add(K.stage(1), np.full((), 2.0, np.float32)),
                    K.reduce_sum(np.ones(10_000, np.float32))], outputs=[K.stage(2), K.stage(3)])["902"]
    names = [s["901"]["kernel_name"] for s in c["stages"]]
    assert names == ["relu", "reduce_sum", "reduce_sum", "add", "reduce_sum", "reduce_sum"]
    assert c["stages"][3]["901"]["bindings"][0] == {"stage": 2, "output": 0}
    assert c["stages"][5]["901"]["bindings"][0] == {"stage": 4, "output": 0}  # offset inside the nested 902
    assert c["outputs"] == [{"stage": 3, "output": 0}, {"stage": 5, "output": 0}]
    result = hlx.run({"902": c}, backend="cpu")
    total = ref.tree_sum(np.maximum(x, 0))
    got_sum, got_ones = result.arrays()
    assert got_sum.reshape(()) == total + np.float32(2.0)
    assert got_ones.reshape(()) == 10_000


def test_pipeline_checks_markers_when_binding(rng: np.random.Generator) -> None:
    ints = np.ones(4, np.int32)
    with pytest.raises(ContractError) as exc:
        K.pipeline([K.add(ints, ints), K.relu(K.stage(0))])
    assert exc.value.code == "E_DTYPE"
    for steps in ([K.relu(f32(rng, 3)), K.relu(K.stage(1))], [K.relu(f32(rng, 3)), K.relu(K.stage(0, 1))],
                  [K.relu(f32(rng, 3)), "no"], []):
        with pytest.raises(ContractError) as exc:
            K.pipeline(steps)
        assert exc.value.code == "E_CONTRACT_STRUCTURE"
    with pytest.raises(ContractError):
        K.pipeline([K.relu(f32(rng, 3))], outputs=[K.stage(1)])
    with pytest.raises(ContractError):
        hlx.run(K.gemm(f32(rng, 2, 3), K.stage(0)), backend="cpu")  # a deferred call is no contract


# ------------------------------------------------------------------------------------------------ cpu backend

def _cpu_session():
    (backend,) = hlx_register_backends()
    return backend, backend.open()


def test_cpu_backend_probe_and_open() -> None:
    backend, session = _cpu_session()
    avail = backend.probe()
    assert avail.available and backend.name == "cpu"
    (dev,) = avail.devices
    assert dev.kind == "cpu" and dev.name.startswith(f"NumPy {np.__version__} on ")
    assert backend.open("numpy").device == dev
    with pytest.raises(BackendError):
        backend.open(3)
    session.close()
    session.close()
    with pytest.raises(BackendError):
        session.execute(Plan(hlx.collapse("k"), (), ()))


def _stage(kernel: str, bindings: tuple, params: dict, stem: str = "relu") -> Stage:
    """A stage of the library shader ``stem``: its own 900, as the helpers bind it."""
    fields = library_shader(stem)["900"]
    spirv = fields["spirv_binary"]
    shader = Shader(hlx.collapse(library_shader(stem)), spirv, "main", reflect_entry(spirv, "main"),
                    fields.get("wgsl_source"))
    return Stage(kernel, shader, (256, 1, 1), (1, 1, 1), bindings, params=params)


def test_cpu_session_runs_a_plan_and_reports_bad_references(rng: np.random.Generator) -> None:
    """A Plan built by hand: stage 1 reads stage 0's output; outputs come back in plan order."""
    x = f32(rng, 50)
    inp = InputRef(hlx.collapse(x), x)
    out = OutputRef(np.dtype(np.float32), (50,))
    plan = Plan(hlx.collapse("plan"), (_stage("relu", (inp, out), {"n": 50}),
                                       _stage("saxpy", (StageRef(0, 0), inp, out), {"n": 50, "alpha": -2.0},
                                              "saxpy")),
                ((1, 0), (0, 0)))
    _, session = _cpu_session()
    execution = session.execute(plan)
    relu = np.maximum(x, 0)
    np.testing.assert_array_equal(execution.arrays[1], relu)
    np.testing.assert_allclose(execution.arrays[0], -2.0 * relu.astype(np.float64) + x, rtol=1e-6, atol=1e-6)
    assert execution.timings["host_ms"] >= 0

    unknown = Plan(hlx.collapse("p2"), (_stage("my_kernel", (inp, out), {}),), ((0, 0),))
    with pytest.raises(BackendError) as exc:
        session.execute(unknown)
    assert exc.value.code == "E_NO_REFERENCE"
    registry = kernel_registry()
    relu = hlx.collapse(library_shader("relu"))
    registry.register(KernelSpec(name="test_wrong_shape", reference=lambda i, p, o: [i[0][:3]], shader_handle=relu),
                      replace=True)
    registry.register(KernelSpec(name="test_raises", reference=lambda i, p, o: [i[0] @ i[0][:2]],
                                 shader_handle=relu), replace=True)
    for name, code in (("test_wrong_shape", "E_REFERENCE_OUTPUT"), ("test_raises", "E_REFERENCE_FAILED")):
        with pytest.raises(BackendError) as exc:
            session.execute(Plan(hlx.collapse(name), (_stage(name, (inp, out), {}),), ((0, 0),)))
        assert exc.value.code == code


def test_plugin_kernel_runs_on_cpu_once_registered_as_the_error_says(plugins, monkeypatch,
                                                                    rng: np.random.Generator) -> None:
    """A custom kernel name (here on the relu shader) fails with E_NO_REFERENCE; doing what its message says
    (a plugin with the hlx_register_kernels hook, registered in code) makes it run on the CPU."""
    monkeypatch.setattr(registry_module, "_kernels", KernelRegistry())  # fresh: nothing leaks to other tests
    plugins("cpu")
    x = f32(rng, 20)
    contract = K.relu(x)
    contract["901"]["kernel_name"] = "test_negate"
    with pytest.raises(BackendError) as exc:
        hlx.run(contract, backend="cpu")
    assert exc.value.code == "E_NO_REFERENCE" and "register_plugin" in exc.value.message

    class Negate:
        @hookimpl
        def hlx_register_kernels(self, registry):
            registry.register(KernelSpec(name="test_negate", reference=lambda i, p, o: [-i[0]],
                                         shader_handle=contract["901"]["shader_handle"]))

    register_plugin(Negate(), name="negate")
    (y,) = hlx.run(contract, backend="cpu").arrays()
    np.testing.assert_array_equal(y, -x)
