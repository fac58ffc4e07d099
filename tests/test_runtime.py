"""hlx.run: backend selection, errors, Result, sessions, and the planner's checks."""
from __future__ import annotations

import copy
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from plugin_fakes import FakeBackend, FakePlugin, FakeSession, plugins  # noqa: F401 (fixture)

import hlx
from hlx_core import registry, runtime
from hlx_core.backend import Execution
from hlx_core.plan import InputRef, OutputRef, StageRef
from hlx_core.planner import plan


def _f32(rng, *shape) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def _register(*backends: FakeBackend) -> None:
    registry.register_plugin(FakePlugin(*backends), name="fakes", distribution="fake-dist")


# -- Result ------------------------------------------------------------------------------------------

def test_result_fields(plugins, rng):
    plugins("cpu")
    a, b = _f32(rng, 7, 5), _f32(rng, 7, 5)
    result = hlx.run(hlx.kernels.add(a, b), backend="cpu")
    (out,) = result.arrays()
    assert np.array_equal(out, a + b)  # float32 addition is exact
    assert out.dtype == np.float32 and not out.flags.writeable
    assert result.backend == "cpu" and isinstance(result.device, str) and result.device
    (handle,) = result.outputs
    assert isinstance(handle, hlx.Handle) and handle.tag == "tensor"
    assert np.array_equal(hlx.resolve(handle), out)
    assert {"host_ms", "total_ms"} <= set(result.timings)
    assert all(isinstance(v, float) and v >= 0 for v in result.timings.values())
    assert "backend='cpu'" in repr(result) and "float32[7, 5]" in repr(result)
    # The contract that ran is stored; running it by handle gives the same output handle.
    assert hlx.resolve(result.contract)["901"]["kernel_name"] == "add"
    assert hlx.run(result.contract, backend="cpu").outputs == result.outputs


def test_pipeline_returns_last_stage_and_store_argument(plugins, rng):
    plugins("cpu")
    store = hlx.MemoryStore()
    x, w1, w2 = _f32(rng, 6, 4), _f32(rng, 4, 8), _f32(rng, 8, 3)
    k = hlx.kernels
    mlp = k.pipeline([k.gemm(x, w1, store=store), k.relu(k.stage(0), store=store),
                      k.gemm(k.stage(1), w2, store=store), k.softmax(k.stage(2), store=store)], store=store)
    result = hlx.run(mlp, backend="cpu", store=store)
    h = np.maximum(x.astype(np.float64) @ w1, 0) @ w2
    want = np.exp(h - h.max(axis=1, keepdims=True))
    want /= want.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(result.arrays()[0], want, rtol=1e-5, atol=1e-6)
    assert hlx.exists(result.outputs[0], store=store) and hlx.exists(result.contract, store=store)
    assert not hlx.exists(result.outputs[0])  # only in the store that was passed


def test_zero_dimensional_output_keeps_its_shape(plugins, rng):
    plugins("cpu")
    x = rng.integers(-1000, 1000, 3000).astype(np.int32)
    (out,) = hlx.run(hlx.kernels.reduce_sum(x), backend="cpu").arrays()
    assert out.shape == () and out.dtype == np.int32 and int(out) == int(x.sum())


# -- errors ------------------------------------------------------------------------------------------

def test_unknown_backend_names_the_available_ones(plugins, rng):
    plugins("cpu")
    _register(FakeBackend("ghost", available=False, reason="no ghost driver"))
    with pytest.raises(hlx.BackendError) as err:
        hlx.run(hlx.kernels.relu(_f32(rng, 3)), backend="nosuch")
    assert err.value.code == "E_BACKEND_UNKNOWN"
    assert "available: cpu" in err.value.message and "ghost" in err.value.message


def test_unavailable_backend_gives_the_reason(plugins, rng):
    plugins("cpu")
    ghost = FakeBackend("ghost", available=False, reason="no ghost driver")
    _register(ghost)
    with pytest.raises(hlx.BackendError) as err:
        hlx.run(hlx.kernels.relu(_f32(rng, 3)), backend="ghost")
    assert err.value.code == "E_BACKEND_UNAVAILABLE" and "no ghost driver" in err.value.message
    assert ghost.sessions == []
    assert "ghost" not in hlx.backends()


@pytest.mark.parametrize("contract, code, path", [
    ({"901": {"kernel_name": "add"}}, "E_CONTRACT_FIELD_MISSING", "901.shader_handle"),
    ([1, 2], "E_CONTRACT_STRUCTURE", ""),
    ("not a handle", "E_CONTRACT_STRUCTURE", None),
    ({"14": 5}, None, None),
])
def test_bad_contracts(plugins, contract, code, path):
    plugins("cpu")
    with pytest.raises(hlx.ContractError) as err:
        hlx.run(contract, backend="cpu")
    if code:
        assert err.value.code == code
    if path:
        assert err.value.path == path


def test_shader_contract_is_not_runnable(plugins):
    plugins("cpu")
    shader = hlx.resolve(hlx.kernels.relu(np.ones(2, np.float32))["901"]["shader_handle"])
    with pytest.raises(hlx.ContractError) as err:
        hlx.run(shader, backend="cpu")
    assert err.value.code == "E_CONTRACT_UNKNOWN" and "901" in err.value.message
    with pytest.raises(hlx.ContractError):  # a handle naming a tensor is not a contract
        hlx.run(hlx.collapse(np.ones(2, np.float32)), backend="cpu")


def test_missing_handles(plugins, rng):
    plugins("cpu")
    store = hlx.MemoryStore()
    contract = hlx.kernels.add(_f32(rng, 4), _f32(rng, 4), )  # inputs went to the default store
    with pytest.raises(hlx.HandleError) as err:
        hlx.run(contract, backend="cpu", store=store)
    assert err.value.code == "E_HANDLE_NOT_FOUND" and err.value.path == "901.shader_handle"
    hlx.collapse(hlx.resolve(contract["901"]["shader_handle"]), store=store)
    with pytest.raises(hlx.HandleError) as err:
        hlx.run(contract, backend="cpu", store=store)
    assert err.value.code == "E_HANDLE_NOT_FOUND" and err.value.path == "901.bindings[0]"
    absent = "&h_contract_" + "0" * 64
    with pytest.raises(hlx.HandleError) as err:
        hlx.run(absent, backend="cpu")
    assert err.value.code == "E_HANDLE_NOT_FOUND"


# -- the planner's checks against the reflected shader ---------------------------------------------------

def test_bindings_and_push_constants_checked_against_the_shader(plugins, rng):
    plugins("cpu")
    good = hlx.kernels.add(_f32(rng, 4), _f32(rng, 4))
    short = copy.deepcopy(good)
    del short["901"]["bindings"][1]
    with pytest.raises(hlx.ContractError) as err:
        hlx.run(short, backend="cpu")
    assert err.value.path == "901.bindings" and "[0, 1, 2]" in err.value.message
    wrong_push = copy.deepcopy(good)
    wrong_push["901"]["push_constants"] = b"\x04\x00\x00\x00"
    with pytest.raises(hlx.ContractError) as err:
        hlx.run(wrong_push, backend="cpu")
    assert err.value.path == "901.push_constants" and "8 byte(s)" in err.value.message
    fixed = copy.deepcopy(good)
    fixed["901"]["workgroup_size"] = [64, 1, 1]  # add.comp fixes local_size_x = 256
    with pytest.raises(hlx.ContractError) as err:
        hlx.run(fixed, backend="cpu")
    assert err.value.path == "901.workgroup_size[0]"


def test_push_constants_packed_from_params_and_layout(plugins, rng):
    plugins("cpu")
    a, b = _f32(rng, 9), _f32(rng, 9)
    contract = hlx.kernels.add(a, b)
    packed = copy.deepcopy(contract)
    del packed["901"]["push_constants"]
    assert plan(packed).stages[0].push_constants == bytes(contract["901"]["push_constants"])
    assert np.array_equal(hlx.run(packed, backend="cpu").arrays()[0], a + b)


def test_plan_structure_and_cache(plugins, rng):
    plugins("cpu")
    x, w = _f32(rng, 3, 4), _f32(rng, 4, 2)
    mlp = hlx.kernels.pipeline([hlx.kernels.gemm(x, w), hlx.kernels.relu(hlx.kernels.stage(0))])
    p = plan(mlp)
    assert len(p.stages) == 2 and p.outputs == ((1, 0),)
    assert [type(b) for b in p.stages[0].bindings] == [InputRef, InputRef, OutputRef]
    assert isinstance(p.stages[1].bindings[0], StageRef) and p.stages[1].bindings[0] == StageRef(0, 0)
    assert p.stages[0].workgroup_size == tuple(p.stages[0].shader.info.local_size)
    assert p.key == hlx.collapse(hlx.validate(mlp))
    assert plan(copy.deepcopy(mlp)) is p  # same key, same store: the cached plan


SPEC_SHADER = """#version 450
layout(local_size_x_id = 3, local_size_y = 2) in;
layout(std430, set = 0, binding = 0) readonly buffer In { float x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Out { float o[]; };
void main() { uint i = gl_GlobalInvocationID.x; o[i] = x[i]; }
"""


@pytest.fixture(scope="module")
def spec_shader(tmp_path_factory) -> bytes:
    folder = tmp_path_factory.mktemp("spec")
    (folder / "s.comp").write_text(SPEC_SHADER)
    subprocess.run(["glslangValidator", "-V", "-o", str(folder / "s.spv"), str(folder / "s.comp")],
                   check=True, capture_output=True)
    return (folder / "s.spv").read_bytes()


def test_workgroup_size_from_spec_constants(plugins, spec_shader, rng):
    shader = hlx.collapse(hlx.shader_contract(spec_shader))
    x = hlx.collapse(_f32(rng, 64))

    def kernel(**extra):
        return {"901": {"kernel_name": "copy", "shader_handle": shader, "dispatch": [1, 1, 1],
                        "bindings": [x, {"output": {"dtype": "float32", "shape": [64]}}], **extra}}

    stage = plan(kernel()).stages[0]
    assert stage.workgroup_size == (1, 2, 1) and stage.specialization_constants == ()
    stage = plan(kernel(specialization_constants={"3": 32})).stages[0]
    assert stage.workgroup_size == (32, 2, 1) and stage.specialization_constants == ((3, 32),)
    stage = plan(kernel(workgroup_size=[16, 2, 1])).stages[0]  # the contract's size sets spec constant 3
    assert stage.workgroup_size == (16, 2, 1) and stage.specialization_constants == ((3, 16),)
    with pytest.raises(hlx.ContractError) as err:
        plan(kernel(workgroup_size=[16, 4, 1]))
    assert err.value.path == "901.workgroup_size[1]"
    with pytest.raises(hlx.ContractError) as err:
        plan(kernel(specialization_constants={"3": 8}, workgroup_size=[16, 2, 1]))
    assert err.value.path == "901.workgroup_size[0]"


# -- backend="auto" ----------------------------------------------------------------------------------

@pytest.mark.parametrize("vulkan, wgpu, extra, expect", [
    # Vulkan on a GPU beats everything, even when its first device is a CPU.
    ((("llvmpipe", "cpu"), ("RTX", "gpu-discrete")), (("RTX", "gpu-discrete"),), (), ("vulkan", "RTX")),
    # wgpu on a GPU beats Vulkan on a CPU device.
    ((("llvmpipe", "cpu"),), (("Arc", "gpu-integrated"),), (), ("wgpu", "Arc")),
    # Vulkan on a CPU device (lavapipe) beats the NumPy reference; a virtual GPU is not a GPU.
    ((("llvmpipe", "cpu"),), (("virtio", "gpu-virtual"),), (), ("vulkan", "llvmpipe")),
    # Neither: the CPU reference, ahead of a third-party CPU backend.
    (None, None, (("zeta", (("host", "cpu"),)),), ("cpu", None)),
    # A third-party backend on a GPU comes before the CPU reference, after Vulkan/wgpu on GPUs.
    (None, (("llvmpipe", "cpu"),), (("zeta", (("H100", "gpu-discrete"),)),), ("zeta", "H100")),
])
def test_auto_selection_order(plugins, rng, vulkan, wgpu, extra, expect):
    plugins("cpu")
    fakes = [FakeBackend(n, d) for n, d in (("vulkan", vulkan), ("wgpu", wgpu)) if d is not None]
    fakes += [FakeBackend(n, d) for n, d in extra]
    _register(*fakes)
    a = _f32(rng, 5)
    result = hlx.run(hlx.kernels.relu(a))
    assert np.array_equal(result.arrays()[0], np.maximum(a, 0))
    assert result.backend == expect[0]
    if expect[1]:
        assert result.device == expect[1]


def test_auto_skips_unavailable_and_honours_device(plugins, rng):
    plugins("cpu")
    _register(FakeBackend("vulkan", (("RTX", "gpu-discrete"),), available=False, reason="no driver"),
              FakeBackend("wgpu", (("llvmpipe", "cpu"), ("Arc", "gpu-integrated"))))
    a = _f32(rng, 3)
    assert (hlx.run(hlx.kernels.relu(a)).backend, hlx.run(hlx.kernels.relu(a)).device) == ("wgpu", "Arc")
    result = hlx.run(hlx.kernels.relu(a), device="LLVM")  # a device name substring picks among backends
    assert (result.backend, result.device) == ("wgpu", "llvmpipe")
    with pytest.raises(hlx.BackendError) as err:
        hlx.run(hlx.kernels.relu(a), device="no such device")
    assert err.value.code == "E_BACKEND_UNAVAILABLE"
    assert "vulkan: unavailable (no driver)" in err.value.message and "'Arc'" in err.value.message


def _probed(name: str) -> bool:
    return registry.backend_entries()[name]._availability is not None


def test_auto_stops_probing_once_nothing_left_can_win(plugins, rng):
    """Vulkan on a GPU ranks first: its probe alone decides, the others are never probed."""
    plugins("cpu")
    vulkan, wgpu, zeta = (FakeBackend(n) for n in ("vulkan", "wgpu", "zeta"))
    _register(vulkan, wgpu, zeta)
    assert hlx.run(hlx.kernels.relu(_f32(rng, 4))).backend == "vulkan"
    assert (vulkan.probes, wgpu.probes, zeta.probes) == (1, 0, 0) and not _probed("cpu")
    assert sorted(hlx.backends()) == ["cpu", "vulkan", "wgpu", "zeta"]  # listing probes everything
    assert (wgpu.probes, zeta.probes) == (1, 1) and _probed("cpu")


def test_auto_without_a_gpu_probes_what_could_still_rank_higher(plugins, rng):
    """Vulkan on a CPU device ranks 4th: wgpu and a third-party backend might still find a GPU, the CPU
    reference (5th) cannot beat it."""
    plugins("cpu")
    vulkan = FakeBackend("vulkan", (("llvmpipe", "cpu"),))
    wgpu = FakeBackend("wgpu", (("llvmpipe", "cpu"),))
    zeta = FakeBackend("zeta", available=False, reason="no card")
    _register(vulkan, wgpu, zeta)
    result = hlx.run(hlx.kernels.relu(_f32(rng, 4)))
    assert (result.backend, result.device) == ("vulkan", "llvmpipe")
    assert (vulkan.probes, wgpu.probes, zeta.probes) == (1, 1, 1) and not _probed("cpu")


def test_a_named_backend_is_the_only_one_probed(plugins, rng):
    plugins("cpu")
    other = FakeBackend("vulkan")
    _register(other)
    a = _f32(rng, 4)
    assert hlx.run(hlx.kernels.relu(a), backend="cpu").backend == "cpu"
    assert other.probes == 0
    hlx.run(hlx.kernels.relu(a), backend="vulkan")
    assert other.probes == 1


def test_a_run_on_the_cpu_imports_no_gpu_binding():
    """Naming a backend loads the plugin modules (cheap) but probes, and so imports, only that backend."""
    code = ("import sys, numpy as np, hlx\n"
            "hlx.run(hlx.kernels.relu(np.ones(4, np.float32)), backend='cpu')\n"
            "print(sorted(m for m in ('vulkan', 'wgpu', 'rich', 'cffi') if m in sys.modules))\n")
    env = {k: v for k, v in os.environ.items() if k != "HLX_PLUGINS"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# -- sessions ----------------------------------------------------------------------------------------

def test_sessions_are_reused_shared_and_closed(plugins, rng):
    plugins("")
    fake = FakeBackend("fake", (("GPU A", "gpu-discrete"),))
    _register(fake)
    a = _f32(rng, 8)
    for _ in range(3):
        assert hlx.run(hlx.kernels.relu(a), backend="fake").backend == "fake"
    assert len(fake.sessions) == 1 and fake.executions == 3
    hlx.run(hlx.kernels.relu(a), backend="fake", device=0)  # the same device, spelled differently
    assert len(fake.sessions) == 2 and fake.sessions[1].closed and not fake.sessions[0].closed
    hlx.run(hlx.kernels.relu(a), backend="fake", device=0)
    assert len(fake.sessions) == 2 and fake.executions == 5
    runtime.close_sessions()
    assert fake.sessions[0].closed
    hlx.run(hlx.kernels.relu(a), backend="fake")
    assert len(fake.sessions) == 3


def test_concurrent_runs_share_one_session(plugins, rng):
    plugins("")
    fake = FakeBackend("fake")
    _register(fake)
    inputs = [_f32(rng, 64) for _ in range(8)]
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        results[i] = hlx.run(hlx.kernels.relu(inputs[i]), backend="fake").arrays()[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(fake.sessions) == 1 and fake.executions == 8
    for i, x in enumerate(inputs):
        assert np.array_equal(results[i], np.maximum(x, 0))


class _Broken(FakeBackend):
    """Sessions that misbehave the ways a buggy plugin might."""

    def __init__(self, name: str, mode: str) -> None:
        super().__init__(name)
        self.mode = mode

    def open(self, device=None):
        if self.mode == "open":
            raise RuntimeError("cannot open")
        session = super().open(device)
        mode = self.mode

        def execute(plan):
            if mode == "raise":
                raise ZeroDivisionError("oops")
            good = FakeSession.execute(session, plan)
            return Execution([a.astype(np.float64) for a in good.arrays]) if mode == "dtype" else Execution([])

        session.execute = execute  # type: ignore[method-assign]
        return session


@pytest.mark.parametrize("mode, code, words", [
    ("open", "E_BACKEND_UNAVAILABLE", "RuntimeError: cannot open"),
    ("raise", "E_PLUGIN", "ZeroDivisionError: oops"),
    ("dtype", "E_PLUGIN", "float64"),
    ("count", "E_PLUGIN", "0 output(s)"),
])
def test_misbehaving_backends_are_reported_not_raised_raw(plugins, rng, mode, code, words):
    plugins("")
    _register(_Broken("bad", mode))
    with pytest.raises(hlx.BackendError) as err:
        hlx.run(hlx.kernels.relu(_f32(rng, 4)), backend="bad")
    assert err.value.code == code and words in err.value.message and "'bad'" in err.value.message


def test_sessions_close_at_exit(tmp_path):
    """A real process: the CPU session opened by a run is closed by the atexit hook."""
    script = tmp_path / "exit.py"
    script.write_text(
        "import numpy as np, hlx\n"
        "from hlx_core import runtime\n"
        "r = hlx.run(hlx.kernels.relu(np.ones(3, np.float32)), backend='cpu')\n"
        "slot = next(iter(runtime._sessions.values()))\n"
        "orig = slot.session.close\n"
        "def close():\n"
        "    print('closed', r.backend, flush=True)\n"
        "    orig()\n"
        "slot.session.close = close\n")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "closed cpu"


# -- devices -----------------------------------------------------------------------------------------

def test_device_spellings_resolve_among_the_listed_devices(plugins, rng):
    plugins("cpu")
    two = FakeBackend("two", (("Alpha GPU", "gpu-discrete"), ("Beta GPU", "gpu-discrete")))
    _register(two)
    a = _f32(rng, 6)
    for spec, name in ((1, "Beta GPU"), ("1", "Beta GPU"), ("beta", "Beta GPU"), (np.int64(0), "Alpha GPU")):
        result = hlx.run(hlx.kernels.relu(a), backend="two", device=spec)
        assert result.device == name and np.array_equal(result.arrays()[0], np.maximum(a, 0))
    assert [s.device.name for s in two.sessions] == ["Beta GPU", "Alpha GPU"]  # "1" and "beta" reuse index 1
    for spec in ("0", 0, "NUMPY"):  # what `hlx run --device 0` passes, and a name substring
        assert hlx.run(hlx.kernels.relu(a), backend="cpu", device=spec).backend == "cpu"
    for spec in (2, "7", "gamma"):
        with pytest.raises(hlx.BackendError) as err:
            hlx.run(hlx.kernels.relu(a), backend="two", device=spec)
        assert err.value.code == "E_DEVICE_UNKNOWN" and "1 'Beta GPU'" in err.value.message
    for spec in ([1], True, 1.0, "\u00b2"):  # a superscript digit is str.isdigit() but no int()
        with pytest.raises(hlx.BackendError) as err:
            hlx.run(hlx.kernels.relu(a), backend="cpu", device=spec)
        assert err.value.code == "E_DEVICE_UNKNOWN"
    for backend in (None, ["cpu"], np.array(["cpu", "auto"])):
        with pytest.raises(hlx.BackendError) as err:
            hlx.run(hlx.kernels.relu(a), backend=backend)
        assert err.value.code == "E_BACKEND_UNKNOWN"


def test_a_deferred_call_is_not_a_contract(plugins, rng):
    plugins("cpu")
    with pytest.raises(hlx.ContractError) as err:
        hlx.run(hlx.kernels.relu(hlx.kernels.stage(0)), backend="cpu")
    assert "pipeline" in err.value.message


# -- hand-written contracts of library shaders ---------------------------------------------------------

def _hand_written(contract: dict, **changes) -> dict:
    """A copy of a helper's 901 as someone might write it by hand: push constants without params."""
    body = copy.deepcopy(contract["901"])
    del body["params"], body["push_constants_layout"]
    body.update(changes)
    return {"901": body}


def test_library_shader_contracts_must_fit_their_inputs(plugins, rng):
    """Push constants, outputs and dispatch that do not fit the inputs of a library shader would make a GPU
    read or write past its buffers: refused before any backend runs."""
    plugins("")
    fake = FakeBackend("fake")
    _register(fake)
    x, y = _f32(rng, 1000), _f32(rng, 1000)
    relu = hlx.kernels.relu(x)
    ints = hlx.kernels.add(*(rng.integers(-9, 9, 40, dtype=np.int32) for _ in range(2)))
    out = {"output": {"dtype": "float32", "shape": [1000]}}
    bad = [
        (_hand_written(relu, push_constants=np.uint32(4096).tobytes()), "E_SHAPE", "901.push_constants",
         "n=4096"),
        (_hand_written(relu, bindings=[relu["901"]["bindings"][0],
                                       {"output": {"dtype": "float32", "shape": [999]}}]),
         "E_SHAPE", "901.bindings[1].output", "float32[1000]"),
        (_hand_written(relu, bindings=[relu["901"]["bindings"][0],
                                       {"output": {"dtype": "int32", "shape": [1000]}}]),
         "E_DTYPE", "901.bindings[1].output", "int32"),
        (_hand_written(relu, dispatch=[4, 1, 1]), "E_CONTRACT_STRUCTURE", "901.dispatch", "[1, 1, 1]"),
        (_hand_written(ints, push_constants=np.array([40, 0], "<u4").tobytes()), "E_DTYPE", "901.push_constants",
         "kind=1"),
        (_hand_written(ints, kernel_name="mul"), "E_CONTRACT_STRUCTURE", "901.kernel_name", "add.spv"),
        ({"901": dict(relu["901"], params={"n": 999})}, "E_CONTRACT_STRUCTURE", "901.params", "n=999"),
        (_hand_written(hlx.kernels.saxpy(2.0, x, y),
                       push_constants=np.uint32(1000).tobytes() + np.float32(np.inf).tobytes()),
         "E_CONTRACT_FIELD_TYPE", "901.push_constants", "not finite"),
        (_hand_written(hlx.kernels.saxpy(2.0, x, y), bindings=[hlx.collapse(x), out, hlx.collapse(y)]),
         "E_CONTRACT_STRUCTURE", "901.bindings", "2 input tensor(s) first"),
    ]
    for contract, code, path, words in bad:
        with pytest.raises(hlx.ContractError) as err:
            hlx.run(contract, backend="fake")
        assert (err.value.code, err.value.path) == (code, path) and words in err.value.message, err.value
    stage_path = hlx.kernels.pipeline([relu, hlx.kernels.relu(hlx.kernels.stage(0))])
    stage_path["902"]["stages"][1]["901"]["push_constants"] = np.uint32(1001).tobytes()
    del stage_path["902"]["stages"][1]["901"]["params"]
    with pytest.raises(hlx.ContractError) as err:
        hlx.run(stage_path, backend="fake")
    assert err.value.path == "902.stages[1].901.push_constants"
    assert fake.executions == 0 and fake.sessions == []


def test_hand_written_library_contract_gets_its_params_from_the_push_constants(plugins, rng):
    """The CPU reference reads params; a contract that gives only push constants still runs there."""
    plugins("cpu")
    x, y = _f32(rng, 300), _f32(rng, 300)
    helper = hlx.kernels.saxpy(-1.25, x, y)
    hand = _hand_written(helper)
    stage = plan(hand).stages[0]
    assert stage.params == {"n": 300, "alpha": -1.25}
    got = hlx.run(hand, backend="cpu").arrays()[0]
    assert np.array_equal(got, hlx.run(helper, backend="cpu").arrays()[0])
    np.testing.assert_allclose(got, -1.25 * x.astype(np.float64) + y, rtol=1e-6, atol=1e-6)
    conv = hlx.kernels.conv2d(_f32(rng, 1, 2, 6, 5), _f32(rng, 3, 2, 3, 3), stride=2, padding=1)
    assert plan(_hand_written(conv)).stages[0].params == conv["901"]["params"]
    zero_stride = _hand_written(conv, push_constants=conv["901"]["push_constants"][:36] + bytes(4)
                                + conv["901"]["push_constants"][40:])
    with pytest.raises(hlx.ContractError) as err:
        plan(zero_stride)
    assert err.value.code == "E_CONTRACT_FIELD_TYPE" and "stride=0" in err.value.message


def test_gemm_shaders_keep_their_own_dispatch_rule(plugins, rng):
    """gemm() picks the 64 or 128 tile by size; either shader may run a product with its own grid."""
    plugins("cpu")
    a, b = _f32(rng, 140, 9), _f32(rng, 9, 130)
    small = hlx.kernels.gemm(a, b)
    assert small["901"]["kernel_name"] == "gemm"
    big_tile = hlx.kernels.gemm(_f32(rng, 1801, 2), _f32(rng, 2, 1799))["901"]["shader_handle"]
    variant = {"901": dict(small["901"], shader_handle=big_tile, dispatch=[2, 2, 1])}
    got = hlx.run(variant, backend="cpu").arrays()[0]
    np.testing.assert_allclose(got, a.astype(np.float64) @ b, rtol=1e-5, atol=1e-5)
    with pytest.raises(hlx.ContractError) as err:  # the 64 tile's rule still holds for its own shader
        hlx.run({"901": dict(small["901"], dispatch=[2, 2, 1])}, backend="cpu")
    assert err.value.path == "901.dispatch" and "[3, 3, 1]" in err.value.message


def test_the_readme_tour_runs(plugins, capsys):
    """Every Python block of README.md, in order, with the printed comments it promises."""
    import re
    from pathlib import Path

    plugins(None)
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
    assert len(blocks) >= 2
    exec(compile("\n".join(blocks), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "E_SHAPE gemm: a is 256x128 and b is 256x128: inner dimensions differ" in out
    assert "E_SHAPE 901.bindings[1].output" in out and "Result(backend=" in out
    assert "[0. 2. 0.]" in out and "[0.0, 8.0, 16.0]" in out


def test_a_closed_cpu_session_says_so(rng):
    """Every built-in backend answers a run on a closed session with E_BACKEND_CLOSED (tests/vulkan and
    tests/wgpu check theirs)."""
    from hlx_cpu.backend import CpuBackend
    session = CpuBackend().open(0)
    p = plan(hlx.kernels.relu(_f32(rng, 5)), hlx.get_default_store())
    assert session.execute(p).arrays[0].shape == (5,)
    session.close()
    with pytest.raises(hlx.BackendError) as err:
        session.execute(p)
    assert err.value.code == "E_BACKEND_CLOSED"


def test_no_selector_takes_the_first_of_the_ranked_devices():
    """Backends hand select_device their devices best first; the index is the backend's own numbering,
    which need not follow the ranking (wgpu numbers adapters in enumeration order)."""
    from dataclasses import dataclass

    from hlx_core.device.selection import select_device

    @dataclass
    class Dev:
        index: int
        name: str

    ranked = [Dev(2, "discrete"), Dev(0, "llvmpipe"), Dev(1, "integrated")]
    assert select_device(ranked, None, backend="x").name == "discrete"
    assert select_device(ranked, 0, backend="x").name == "llvmpipe"
