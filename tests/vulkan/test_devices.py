"""Instance, device enumeration, ranking and selection, and the backend's probe."""
from __future__ import annotations

import dataclasses
import threading

import pytest

from hlx_core.errors import HLXError


def test_probe_lists_lavapipe_as_cpu():
    from hlx_vulkan_raw import VulkanBackend
    avail = VulkanBackend().probe()
    assert avail.available and avail.devices and avail.version
    dev = avail.devices[0]
    assert dev.index == 0
    if "llvmpipe" in dev.name:
        assert dev.kind == "cpu"
    d = dev.details
    assert d["uuid"].count("-") == 4 and d["api_version"].count(".") == 2
    assert d["subgroup_size"] >= 1 and d["memory_heaps"] and d["limits"]["maxComputeWorkGroupInvocations"] >= 128
    assert {"shaderFloat16", "storageBuffer16BitAccess", "timelineSemaphore", "cooperativeMatrix",
            "bfloat16", "subgroupSizeControl", "shaderInt8"} <= set(d["features"])


def test_instance_is_shared_across_threads():
    from hlx_vulkan_raw.instance import get_instance, validation_requested
    got = []
    threads = [threading.Thread(target=lambda: got.append(get_instance(validation_requested()))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(i) for i in got}) == 1 and got[0].validation  # validation is on for this session


def test_ranking_prefers_discrete_then_memory():
    from hlx_vulkan_raw.devices import rank
    from hlx_vulkan_raw import list_devices
    base = list_devices()[0]

    def fake(kind, gib, i):
        heaps = ({"index": 0, "size": gib << 30, "device_local": True},)
        return dataclasses.replace(base, kind=kind, memory_heaps=heaps, enum_index=i, name=f"{kind}-{gib}")

    ranked = rank([fake("cpu", 64, 0), fake("gpu-integrated", 8, 1), fake("gpu-discrete", 16, 2),
                   fake("gpu-discrete", 80, 3), fake("gpu-virtual", 99, 4)])
    assert [d.name for d in ranked] == ["gpu-discrete-80", "gpu-discrete-16", "gpu-integrated-8",
                                        "gpu-virtual-99", "cpu-64"]
    assert [d.index for d in ranked] == list(range(5))


def test_selection(monkeypatch):
    from hlx_vulkan_raw.devices import select_device
    from hlx_vulkan_raw import list_devices
    devs = list_devices()
    d = devs[0]
    assert select_device(devs, 0) is d
    assert select_device(devs, "0") is d
    assert select_device(devs, d.name[:4].upper()) is d
    assert select_device(devs, d.uuid) is d
    assert select_device(devs, d.uuid.replace("-", "")) is d
    monkeypatch.setenv("HLX_VULKAN_DEVICE", d.uuid)
    assert select_device(devs, None) is d
    for bad in (len(devs), "no-such-gpu", 1.5):
        with pytest.raises(HLXError) as err:
            select_device(devs, bad)
        assert err.value.code == "E_VK_DEVICE_NOT_FOUND"
    with pytest.raises(HLXError) as err:
        select_device([], None)
    assert err.value.code == "E_BACKEND_UNAVAILABLE"


def test_session_protocol(spirv, rng):
    import struct
    import numpy as np
    from hlx_vulkan_raw import VulkanBackend
    from vkplan import inp, out, plan, stage
    session = VulkanBackend().open(0)
    try:
        assert session.backend == "vulkan" and session.device.index == 0
        a = rng.integers(0, 2**32, 100, dtype=np.uint32)
        st = stage("add", spirv["add_u32"], [inp(a), inp(a), out(np.uint32, a.shape)], (2, 1, 1),
                   struct.pack("<I", a.size))
        np.testing.assert_array_equal(session.execute(plan(st)).arrays[0], a + a)
    finally:
        session.close()
        session.close()
    with pytest.raises(HLXError) as err:
        session.execute(plan(st))
    assert err.value.code == "E_VK_CONTEXT_CLOSED"
