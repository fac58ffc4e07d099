"""Instance, device enumeration, ranking and selection, and the backend's probe."""
from __future__ import annotations

import dataclasses
import re
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
    from hlx_vulkan_raw import list_devices
    from hlx_vulkan_raw.devices import rank
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
    """The device kit's selection over the ranked Vulkan devices (index, name, UUID, HLX_VULKAN_DEVICE)."""
    from hlx_core.device.selection import select_device as kit_select

    from hlx_vulkan_raw import list_devices
    from hlx_vulkan_raw.core import DEVICE_ENV

    def select_device(devices, selector):
        return kit_select(devices, selector, backend="vulkan", env=DEVICE_ENV)

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
        assert err.value.code == "E_DEVICE_UNKNOWN"
    with pytest.raises(HLXError) as err:
        select_device([], None)
    assert err.value.code == "E_BACKEND_UNAVAILABLE"


def test_session_protocol(spirv, rng):
    import struct

    import numpy as np
    from vkplan import inp, out, plan, stage

    from hlx_vulkan_raw import VulkanBackend
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
    assert err.value.code == "E_BACKEND_CLOSED"


def test_enumeration_fields():
    from hlx_vulkan_raw import list_devices
    d = list_devices()[0]
    s = d.summary()
    assert s["vendor_id"].startswith("0x") and s["device_id"].startswith("0x")
    assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", s["uuid"])
    assert s["driver_version"] == d.driver_version and s["driver_version_str"].count(".") >= 2
    assert s["subgroup_size"] in range(s["subgroup_size_range"][0], s["subgroup_size_range"][1] + 1)
    assert all(h["size"] > 0 for h in s["memory_heaps"])
    feats = s["features"]
    for name in ("shaderBFloat16Type", "shaderBFloat16DotProduct", "shaderBFloat16CooperativeMatrix",
                 "cooperativeMatrixFlexibleDimensions", "cooperativeMatrixWorkgroupScope", "memoryBudget"):
        assert isinstance(feats[name], bool)
    assert feats["bfloat16"] == feats["shaderBFloat16Type"]
    # Features come from the driver, not from extension names: without the extension they are all off.
    if "VK_KHR_shader_bfloat16" not in d.extensions:
        assert not feats["shaderBFloat16Type"]
    if "VK_KHR_cooperative_matrix" not in d.extensions:
        assert s["cooperative_matrix"] == [] and not feats["cooperativeMatrix"]


def test_driver_version_as_the_vendor_writes_it():
    from hlx_vulkan_raw.devices import driver_version_str
    nvidia = (580 << 22) | (95 << 14) | (5 << 6)
    assert driver_version_str(0x10DE, nvidia) == "580.95.5.0"
    assert driver_version_str(0x10005, (23 << 22) | (3 << 12) | 6) == "23.3.6"  # Mesa: VK_MAKE_API_VERSION


def test_cooperative_matrix_properties_are_described():
    """The decoding of vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR entries (lavapipe offers none, so
    the entries are filled here as an NVIDIA driver reports its fp16 and bf16 tiles)."""
    from hlx_vulkan_raw.devices import describe_cooperative_matrix
    from hlx_vulkan_raw.loader import ffi
    p = ffi.new("VkCooperativeMatrixPropertiesKHR*")
    p.MSize, p.NSize, p.KSize = 16, 8, 16
    p.AType = p.BType = 1000141000  # VK_COMPONENT_TYPE_BFLOAT16_KHR, newer than the binding's enum
    p.CType = p.ResultType = 1
    p.scope = 3
    assert describe_cooperative_matrix(p) == {"m": 16, "n": 8, "k": 16, "a": "bfloat16", "b": "bfloat16",
                                              "c": "float32", "result": "float32", "saturating": False,
                                              "scope": "subgroup"}
    p.AType = p.BType = 3
    p.CType = p.ResultType = 5
    p.saturatingAccumulation = 1
    d = describe_cooperative_matrix(p)
    assert (d["a"], d["c"], d["saturating"]) == ("int8", "int32", True)


def test_extension_structs_follow_the_specification_layout():
    """VkPhysicalDeviceShaderBfloat16FeaturesKHR and VkPhysicalDeviceCooperativeMatrix2FeaturesNV are newer
    than the binding; their declared layout must match the C layout the driver writes."""
    import ctypes

    from hlx_vulkan_raw.devices import feature_chain
    from hlx_vulkan_raw.loader import EXT_STRUCTS, address, ffi, make_version
    bf16, coop2 = EXT_STRUCTS["VkPhysicalDeviceShaderBfloat16FeaturesKHR"], \
        EXT_STRUCTS["VkPhysicalDeviceCooperativeMatrix2FeaturesNV"]
    assert ctypes.sizeof(bf16) == 32 and bf16.shaderBFloat16Type.offset == 16
    assert ctypes.sizeof(coop2) == 48 and coop2.cooperativeMatrixBlockLoads.offset == 40
    head, parts = feature_chain(make_version(1, 3), frozenset({"VK_KHR_shader_bfloat16", "VK_NV_cooperative_matrix2"}))
    by_type = dict(parts)
    assert by_type["VkPhysicalDeviceShaderBfloat16FeaturesKHR"].sType == 1000141000
    assert by_type["VkPhysicalDeviceCooperativeMatrix2FeaturesNV"].sType == 1000593000

    def next_of(p) -> int:
        return p.pNext or 0 if isinstance(p, ctypes.Structure) else int(ffi.cast("uintptr_t", p.pNext))

    # The chain runs through every struct, the extension ones included, and ends there.
    addresses = [address(p) for _, p in parts]
    assert next_of(head) == addresses[0]
    for (_, p), nxt in zip(parts, addresses[1:]):
        assert next_of(p) == nxt
    assert next_of(parts[-1][1]) == 0


def test_cooperative_matrix2_properties_follow_the_specification_layout():
    """The two VK_NV_cooperative_matrix2 property structs HLX reads through ctypes (the binding predates
    them): sizes and offsets as in C, and a flexible entry described with its granularity as m, n, k."""
    import ctypes

    from hlx_vulkan_raw.devices import describe_cooperative_matrix
    from hlx_vulkan_raw.loader import EXT_STRUCT_TYPES, EXT_STRUCTS
    flex = EXT_STRUCTS["VkCooperativeMatrixFlexibleDimensionsPropertiesNV"]
    props = EXT_STRUCTS["VkPhysicalDeviceCooperativeMatrix2PropertiesNV"]
    assert ctypes.sizeof(flex) == 56 and flex.MGranularity.offset == 16 and flex.workgroupInvocations.offset == 52
    assert ctypes.sizeof(props) == 32 and props.cooperativeMatrixFlexibleDimensionsMaxDimension.offset == 20
    assert EXT_STRUCT_TYPES["VkCooperativeMatrixFlexibleDimensionsPropertiesNV"] == 1000593001
    assert EXT_STRUCT_TYPES["VkPhysicalDeviceCooperativeMatrix2PropertiesNV"] == 1000593002
    entry = flex(MGranularity=32, NGranularity=16, KGranularity=16, AType=0, BType=0, CType=1, ResultType=1,
                 scope=2, workgroupInvocations=128)
    got = describe_cooperative_matrix(entry, entry.MGranularity, entry.NGranularity, entry.KGranularity)
    assert got == {"m": 32, "n": 16, "k": 16, "a": "float16", "b": "float16", "c": "float32", "result": "float32",
                   "saturating": False, "scope": "workgroup"}


def test_compute_queue_family():
    """An NVIDIA-like family list: graphics+compute (0), transfer only (1), compute+transfer (2)."""
    from hlx_vulkan_raw import list_devices
    from hlx_vulkan_raw.core import compute_family
    base = list_devices()[0]

    def fam(i, flags, bits=64):
        return {"index": i, "flags": flags, "count": 1, "timestamp_valid_bits": bits}

    gfx, comp, xfer = 0x1, 0x2, 0x4
    nv = dataclasses.replace(base, queue_families=(fam(0, gfx | comp | xfer), fam(1, xfer), fam(2, comp | xfer)))
    assert compute_family(nv) == 0
    no_ts = dataclasses.replace(base, queue_families=(fam(0, gfx | comp | xfer, 0), fam(1, comp | xfer)))
    assert compute_family(no_ts) == 1  # timestamps matter more than the graphics bit
    with pytest.raises(HLXError) as err:
        compute_family(dataclasses.replace(base, queue_families=(fam(0, xfer),)))
    assert err.value.code == "E_VK_INIT"
