"""Output handles hashed on the device (plugins/hlx_vulkan_raw/device_hash.py): every output of a session
opened with HLX_VULKAN_DEVICE_HASH_BYTES=1 gets the handle the host's hash gives, and its object resolves."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from vkplan import inp, open_session, out, plan, stage

import hlx
from hlx import kernels as K
from hlx_core import runtime
from hlx_core.backend import DeviceOutput
from hlx_core.cas.store import MemoryStore
from hlx_core.codec import handle as handle_module


@pytest.fixture(params=["1", "0"], ids=["poison", "no-poison"])
def device_hashed(request, monkeypatch):
    """hlx.run on a Vulkan session (opened for this test) that hashes every output on the device."""
    monkeypatch.setenv("HLX_VULKAN_DEVICE_HASH_BYTES", "1")
    monkeypatch.setenv("HLX_POISON_OUTPUTS", request.param)
    runtime.close_sessions()
    yield
    runtime.close_sessions()  # the next test's sessions read its own settings


def _host(output):
    """An output as an array: hashed outputs stay on the device (a DeviceOutput) until downloaded."""
    return output.download() if isinstance(output, DeviceOutput) else output


def _contracts(rng) -> dict:
    f32 = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    a, b = f32(1000), f32(1000)
    big = f32((1 << 22) + 3)  # 16 MiB and 12 bytes: three hash passes
    return {
        "add": K.add(a, b),
        "add_u32": K.add(rng.integers(0, 2**32, 777, dtype=np.uint32), rng.integers(0, 2**32, 777, dtype=np.uint32)),
        "mul": K.mul(a, b),
        "saxpy": K.saxpy(0.5, a, b),
        "relu": K.relu(f32(200_003)),  # two passes
        "softmax": K.softmax(f32(17, 33)),
        "transpose": K.transpose(f32(31, 65)),
        "gemm": K.gemm(f32(19, 23), f32(23, 29)),
        "reduce_sum": K.reduce_sum(f32(100_001)),  # a 0-d or one-element output
        "conv2d": K.conv2d(f32(1, 3, 12, 12), f32(4, 3, 3, 3), stride=1, padding=1),
        "pipeline": K.pipeline([K.add(a, b), K.relu(K.stage(0))], outputs=[K.stage(0), K.stage(1)]),
        "large": K.add(big, big),
    }


@pytest.mark.parametrize("name", ["add", "add_u32", "mul", "saxpy", "relu", "softmax", "transpose", "gemm",
                                  "reduce_sum", "conv2d", "pipeline", "large"])
def test_library_outputs_hashed_on_device(device_hashed, rng, name):
    result = hlx.run(_contracts(rng)[name], backend="vulkan")
    for handle, array in zip(result.outputs, result.arrays()):
        np.testing.assert_array_equal(hlx.resolve(handle), array)  # stored under the device's handle
        assert handle == hlx.collapse(array, MemoryStore())


def test_runtime_does_not_hash_on_host(device_hashed, rng, monkeypatch):
    """With the host's hash refused for anything larger than a contract, runs still give correct handles."""
    x, y = rng.standard_normal((2, 300_001)).astype(np.float32)
    contracts = [K.add(x, y), K.pipeline([K.mul(x, y), K.relu(K.stage(0))], outputs=[K.stage(0), K.stage(1)])]
    host_hash = handle_module.blake3_digest  # what Handle.hashed (collapse) hashes all but small values with

    def small_only(chunks):
        if sum(memoryview(c).nbytes for c in chunks) > 64 << 10:
            raise AssertionError("an output was hashed on the host")
        return host_hash(chunks)

    monkeypatch.setattr(handle_module, "blake3_digest", small_only)
    results = [hlx.run(c, backend="vulkan") for c in contracts]
    monkeypatch.setattr(handle_module, "blake3_digest", host_hash)
    for result in results:
        for handle, array in zip(result.outputs, result.arrays()):
            assert handle == hlx.collapse(array)
            np.testing.assert_array_equal(hlx.resolve(handle), array)


@pytest.mark.parametrize("poison", ["1", "0"])
@pytest.mark.parametrize("n", [1, 3, 501, 70_001])
def test_odd_byte_sizes(spirv, rng, monkeypatch, poison, n):
    """float16 outputs of an odd element count: payloads that end inside a 32-bit word."""
    monkeypatch.setenv("HLX_VULKAN_DEVICE_HASH_BYTES", "1")
    monkeypatch.setenv("HLX_POISON_OUTPUTS", poison)
    x = rng.standard_normal(n).astype(np.float16)
    st = stage("half", spirv["half_double"], [inp(x), out(np.float16, x.shape)], (-(-n // 64), 1, 1),
               struct.pack("<I", n))
    with open_session() as session:
        for _ in range(2):  # recorded, then resubmitted
            execution = session.execute(plan(st))
            np.testing.assert_array_equal(_host(execution.arrays[0]), x * np.float16(2))
            assert execution.handles == [hlx.collapse(_host(execution.arrays[0]), MemoryStore())]


def test_threshold_and_off(spirv, rng, monkeypatch):
    """Outputs under the threshold, and every output with 0, are left to the runtime (no handles)."""
    x = rng.standard_normal(1000).astype(np.float16)  # 2000 bytes
    st = stage("half", spirv["half_double"], [inp(x), out(np.float16, x.shape)], (16, 1, 1), struct.pack("<I", 1000))
    for setting, expected in (("0", None), ("4K", None), ("2000", "device")):
        monkeypatch.setenv("HLX_VULKAN_DEVICE_HASH_BYTES", setting)
        with open_session() as session:
            execution = session.execute(plan(st))
        want = [hlx.collapse(_host(execution.arrays[0]), MemoryStore())] if expected == "device" else expected
        assert execution.handles == want
