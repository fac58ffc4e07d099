"""Output poisoning (HLX_POISON_OUTPUTS): a kernel that writes only the first half of its output leaves the
0xFF pattern in the second half on the GPU backends, on every run of a contract (buffers reused) and in a
902's intermediate; with poisoning off the written half is still right."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from _shaders import prefix_copy as prefix_copy_spirv

import hlx
from hlx_core.device.poison import ENV_POISON, POISON_BYTE, poison_bytes, poison_enabled, poisoned
from hlx_core.planner import plan

GPU_BACKENDS = ("vulkan", "wgpu")
WORKGROUP = 64

GLSL_TYPES = {"float32": "float", "int32": "int", "uint32": "uint"}


# -- the switch and the pattern ------------------------------------------------------------------------

@pytest.mark.parametrize("value, on", [("1", True), ("0", False), ("", False), ("yes", True), ("off", False)])
def test_switch(monkeypatch, value, on):
    monkeypatch.setenv(ENV_POISON, value)
    assert poison_enabled() is on
    monkeypatch.delenv(ENV_POISON)
    assert poison_enabled() is False


@pytest.mark.parametrize("dtype, meaning", [
    ("float16", "nan"), ("float32", "nan"), ("float64", "nan"),
    ("int8", -1), ("int16", -1), ("int32", -1), ("int64", -1),
    ("uint8", 2**8 - 1), ("uint16", 2**16 - 1), ("uint32", 2**32 - 1), ("uint64", 2**64 - 1),
])
def test_pattern_meaning(dtype, meaning, rng):
    n = int(rng.integers(3, 40))
    pattern = np.frombuffer(poison_bytes(n * np.dtype(dtype).itemsize), dtype)
    assert pattern.shape == (n,)
    if meaning == "nan":
        assert np.isnan(pattern).all()
    else:
        assert (pattern == meaning).all()
    assert poisoned(pattern).all()
    mixed = pattern.copy()
    hit = rng.integers(0, n)
    mixed.view(np.uint8)[hit * mixed.itemsize] = POISON_BYTE - 1  # one byte off the pattern
    assert np.flatnonzero(~poisoned(mixed)).tolist() == [hit]


def test_poisoned_keeps_shape(rng):
    a = rng.standard_normal((3, 4, 5)).astype(np.float32)
    a[1, 2] = np.frombuffer(poison_bytes(20), np.float32)
    want = np.zeros((3, 4, 5), bool)
    want[1, 2] = True
    assert np.array_equal(poisoned(a), want)
    assert poisoned(np.float64(1.5)).shape == ()


# -- the GPU backends ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def prefix_copy() -> dict[str, bytes]:
    """The prefix-copy shader compiled for each element type, by dtype name."""
    return {dtype: prefix_copy_spirv(glsl) for dtype, glsl in GLSL_TYPES.items()}


def _backend(name: str):
    if name == "vulkan":
        from hlx_vulkan_raw.backend import VulkanBackend
        backend = VulkanBackend()
    else:
        from hlx_wgpu.plugin import WgpuBackend
        backend = WgpuBackend()
    avail = backend.probe()
    if not avail.available:
        pytest.skip(f"{name} unavailable: {avail.reason}")
    return backend


def _open(name: str, poison: str):
    """A session of backend ``name`` opened with HLX_POISON_OUTPUTS=``poison`` (read when a session opens)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENV_POISON, poison)
        return _backend(name).open()


@pytest.fixture(scope="module", params=GPU_BACKENDS)
def session(request):
    """A session of each GPU backend with poisoning on."""
    s = _open(request.param, "1")
    yield s
    s.close()


@pytest.fixture(params=GPU_BACKENDS)
def unpoisoned_session(request):
    s = _open(request.param, "0")
    yield s
    s.close()


def _data(rng, dtype: str, n: int) -> np.ndarray:
    """Random values that are never the poison pattern."""
    if dtype == "float32":
        return rng.standard_normal(n).astype(np.float32)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -2**30), min(info.max, 2**30), n, endpoint=False).astype(dtype)


def _stage(spirv: bytes, binding_in, dtype: str, n: int, limit: int) -> dict:
    return {"901": {"kernel_name": "prefix_copy", "shader_handle": hlx.collapse(hlx.shader_contract(spirv)),
                    "dispatch": [-(-n // WORKGROUP), 1, 1],
                    "bindings": [binding_in, {"output": {"dtype": dtype, "shape": [n]}}],
                    "push_constants": struct.pack("<I", limit)}}


def _dirty(session, spirv: dict[str, bytes], rng, n: int) -> None:
    """Overwrite every buffer the next run may get back with data that is not the pattern.

    Vulkan: the output buffers of every recorded plan (a resubmitted plan writes into the same ones).
    wgpu: run a 902 of full copies whose outputs take (and fill) the pooled buffers of that size."""
    if session.backend == "vulkan":
        for rec in session.recorded.values():
            for buf in rec.outputs.values():
                assert buf.host_visible, "lavapipe maps device memory (HLX_VULKAN_ZERO_COPY)"
                buf.write(_data(rng, "uint32", buf.size // 4).tobytes())
        return
    y = hlx.collapse(_data(rng, "uint32", n))
    stages = [_stage(spirv["uint32"], y if s == 0 else {"stage": s - 1, "output": 0}, "uint32", n, n)
              for s in range(4)]
    got = session.execute(plan({"902": {"pipeline_id": "dirty", "stages": stages,
                                        "outputs": [{"stage": s, "output": 0} for s in range(4)]}})).arrays
    assert all(not poisoned(a).any() for a in got)


def _check_half(got: np.ndarray, x: np.ndarray, half: int) -> None:
    assert got.dtype == x.dtype and got.shape == x.shape
    assert np.array_equal(got[:half], x[:half])
    assert poisoned(got[half:]).all(), f"{int((~poisoned(got[half:])).sum())} unwritten elements not poisoned"


@pytest.mark.parametrize("dtype", list(GLSL_TYPES))
def test_unwritten_half_is_poisoned_on_every_run(session, prefix_copy, rng, dtype):
    n = int(rng.integers(500, 3000))
    half = n // 2
    x = _data(rng, dtype, n)
    contract = _stage(prefix_copy[dtype], hlx.collapse(x), dtype, n, half)
    _check_half(session.execute(plan(contract)).arrays[0], x, half)
    _dirty(session, prefix_copy, rng, n)
    _check_half(session.execute(plan(contract)).arrays[0], x, half)  # same contract, reused buffers


def test_pipeline_intermediate_is_poisoned(session, prefix_copy, rng):
    """Stage 0 writes half of an intermediate, stage 1 copies all of it: the unwritten half arrives as
    the pattern, on the first run and on a rerun."""
    n = int(rng.integers(500, 3000))
    half = n // 2
    x = _data(rng, "uint32", n)
    spv = prefix_copy["uint32"]
    contract = {"902": {"pipeline_id": "poison", "stages": [_stage(spv, hlx.collapse(x), "uint32", n, half),
                                   _stage(spv, {"stage": 0, "output": 0}, "uint32", n, n)]}}
    _check_half(session.execute(plan(contract)).arrays[0], x, half)
    _dirty(session, prefix_copy, rng, n)
    _check_half(session.execute(plan(contract)).arrays[0], x, half)


def test_off_leaves_written_half_right(unpoisoned_session, prefix_copy, rng):
    n = int(rng.integers(500, 3000))
    half = n // 2
    x = _data(rng, "float32", n)
    contract = _stage(prefix_copy["float32"], hlx.collapse(x), "float32", n, half)
    for _ in range(2):
        got = unpoisoned_session.execute(plan(contract)).arrays[0]
        assert np.array_equal(got[:half], x[:half])
    if unpoisoned_session.backend == "vulkan":
        assert unpoisoned_session.poison is False
    else:
        assert unpoisoned_session.core.poison is None


@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_suite_runs_poisoned(backend, prefix_copy, rng):
    """tests/conftest.py turns poisoning on, so hlx.run (and with it every parity test) is poisoned."""
    if not poison_enabled():
        pytest.skip(f"{ENV_POISON} is not 1 in this run")
    _backend(backend)
    n = int(rng.integers(100, 1000))
    x = _data(rng, "int32", n)
    result = hlx.run(_stage(prefix_copy["int32"], hlx.collapse(x), "int32", n, n // 2), backend=backend)
    _check_half(result.arrays()[0], x, n // 2)
