"""Physical devices: what each offers, how they rank, and their limits in the device kit's form.

Devices are listed best first (discrete > integrated > virtual > CPU, then device-local memory), so index 0
is the device HLX would choose; hlx_core.device.selection picks one by index, name substring or UUID
(``HLX_VULKAN_DEVICE`` when the caller gives none).
"""
from __future__ import annotations

import ctypes
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from hlx_core.backend import DeviceInfo
from hlx_core.device.isa import cpu_isa
from hlx_core.device.limits import DeviceLimits

from hlx_vulkan_raw.errors import check
from hlx_vulkan_raw.instance import Instance, get_instance, validation_requested
from hlx_vulkan_raw.loader import (
    EXT_STRUCT_TYPES,
    EXT_STRUCTS,
    NULL,
    chain,
    cstr,
    ffi,
    lib,
    make_version,
    new_struct,
    version_str,
    vk,
)

log = logging.getLogger("hlx.vulkan")

KINDS = {
    vk.VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: "gpu-discrete",
    vk.VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: "gpu-integrated",
    vk.VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: "gpu-virtual",
    vk.VK_PHYSICAL_DEVICE_TYPE_CPU: "cpu",
}
_KIND_RANK = {"gpu-discrete": 4, "gpu-integrated": 3, "gpu-virtual": 2, "cpu": 1, "other": 0}

# Extensions HLX enables when present (the others below are only reported). Each feature struct below whose
# extension is enabled is chained into vkCreateDevice with the features the device reports turned on.
ENABLE_EXTENSIONS = ("VK_EXT_memory_budget", "VK_KHR_cooperative_matrix", "VK_KHR_shader_bfloat16",
                     "VK_NV_cooperative_matrix2", "VK_KHR_pipeline_executable_properties")
REPORT_EXTENSIONS = ENABLE_EXTENSIONS + (
    "VK_KHR_shader_integer_dot_product",
    "VK_EXT_subgroup_size_control", "VK_KHR_timeline_semaphore", "VK_KHR_16bit_storage", "VK_KHR_8bit_storage",
    "VK_KHR_shader_float16_int8", "VK_KHR_vulkan_memory_model", "VK_EXT_shader_atomic_float")

# Feature structs queried and, where supported, enabled: (ctype, sType, min device API or extension, fields).
FEATURE_STRUCTS: tuple[tuple[str, int, Any, tuple[str, ...]], ...] = (
    ("VkPhysicalDeviceVulkan11Features", vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, make_version(1, 2),
     ("storageBuffer16BitAccess", "uniformAndStorageBuffer16BitAccess", "storagePushConstant16")),
    ("VkPhysicalDeviceVulkan12Features", vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES, make_version(1, 2),
     ("storageBuffer8BitAccess", "uniformAndStorageBuffer8BitAccess", "storagePushConstant8", "shaderFloat16",
      "shaderInt8", "timelineSemaphore", "vulkanMemoryModel", "vulkanMemoryModelDeviceScope", "scalarBlockLayout",
      "shaderBufferInt64Atomics", "hostQueryReset")),
    ("VkPhysicalDeviceVulkan13Features", vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES, make_version(1, 3),
     ("subgroupSizeControl", "computeFullSubgroups", "maintenance4", "shaderIntegerDotProduct")),
    ("VkPhysicalDeviceCooperativeMatrixFeaturesKHR",
     vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR, "VK_KHR_cooperative_matrix",
     ("cooperativeMatrix", "cooperativeMatrixRobustBufferAccess")),
    ("VkPhysicalDeviceShaderBfloat16FeaturesKHR", EXT_STRUCT_TYPES["VkPhysicalDeviceShaderBfloat16FeaturesKHR"],
     "VK_KHR_shader_bfloat16", ("shaderBFloat16Type", "shaderBFloat16DotProduct", "shaderBFloat16CooperativeMatrix")),
    ("VkPhysicalDeviceCooperativeMatrix2FeaturesNV", EXT_STRUCT_TYPES["VkPhysicalDeviceCooperativeMatrix2FeaturesNV"],
     "VK_NV_cooperative_matrix2",
     ("cooperativeMatrixWorkgroupScope", "cooperativeMatrixFlexibleDimensions", "cooperativeMatrixReductions",
      "cooperativeMatrixConversions", "cooperativeMatrixPerElementOperations", "cooperativeMatrixTensorAddressing",
      "cooperativeMatrixBlockLoads")),
    # Enabling it costs nothing: only pipelines created to read their statistics capture them (pipelines.py).
    ("VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR",
     vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR,
     "VK_KHR_pipeline_executable_properties", ("pipelineExecutableInfo",)),
)
CORE_FEATURES = ("shaderFloat64", "shaderInt64", "shaderInt16", "robustBufferAccess")
ENABLE_CORE_FEATURES = ("shaderFloat64", "shaderInt64", "shaderInt16")

# VkComponentTypeKHR and VkScopeKHR values as the specification numbers them (the binding's enum predates
# bfloat16 and the float8 types, so the names are listed here rather than read from it).
COMPONENT_TYPES = {0: "float16", 1: "float32", 2: "float64", 3: "int8", 4: "int16", 5: "int32", 6: "int64",
                   7: "uint8", 8: "uint16", 9: "uint32", 10: "uint64", 1000141000: "bfloat16",
                   1000491000: "int8-packed", 1000491001: "uint8-packed", 1000491002: "float8-e4m3",
                   1000491003: "float8-e5m2"}
SCOPES = {1: "device", 2: "workgroup", 3: "subgroup", 5: "queue-family"}

LIMIT_FIELDS = ("maxComputeSharedMemorySize", "maxComputeWorkGroupInvocations", "maxStorageBufferRange",
                "maxUniformBufferRange", "maxPushConstantsSize", "minStorageBufferOffsetAlignment",
                "minUniformBufferOffsetAlignment", "nonCoherentAtomSize", "maxMemoryAllocationCount",
                "maxBoundDescriptorSets", "maxPerStageDescriptorStorageBuffers", "timestampPeriod",
                "timestampComputeAndGraphics", "bufferImageGranularity")


@dataclass
class PhysicalDevice:
    """Everything HLX reads about one physical device (``handle`` is the VkPhysicalDevice)."""

    handle: Any = field(repr=False)
    enum_index: int
    name: str
    kind: str
    api_version: int
    driver_version: int
    vendor_id: int
    device_id: int
    uuid: str
    driver_uuid: str
    pipeline_cache_uuid: bytes
    driver_name: str
    driver_info: str
    limits: dict[str, Any]
    subgroup_size: int
    subgroup_size_range: tuple[int, int]
    memory_heaps: tuple[dict[str, Any], ...]
    memory_types: tuple[dict[str, Any], ...]
    queue_families: tuple[dict[str, Any], ...]
    extensions: frozenset[str]
    features: dict[str, bool]
    cooperative_matrix: tuple[dict[str, Any], ...] = ()  # VK_KHR_cooperative_matrix tile shapes and types
    index: int = -1  # position in the ranked list

    @property
    def driver_version_str(self) -> str:
        return driver_version_str(self.vendor_id, self.driver_version)

    @property
    def api_version_str(self) -> str:
        return version_str(self.api_version)

    @property
    def device_local_bytes(self) -> int:
        return sum(h["size"] for h in self.memory_heaps if h["device_local"])

    def score(self) -> tuple[int, int]:
        return (_KIND_RANK.get(self.kind, 0), self.device_local_bytes)

    def limits_for_plans(self) -> DeviceLimits:
        """The compute limits plans are checked against (hlx_core.device.limits.check_plan)."""
        lim = self.limits
        return DeviceLimits(
            max_workgroup_count=lim["maxComputeWorkGroupCount"], max_workgroup_size=lim["maxComputeWorkGroupSize"],
            max_workgroup_invocations=lim["maxComputeWorkGroupInvocations"],
            max_shared_memory_bytes=lim["maxComputeSharedMemorySize"],
            max_storage_buffer_range=lim["maxStorageBufferRange"],
            max_uniform_buffer_range=lim["maxUniformBufferRange"],
            max_storage_buffers_per_stage=lim["maxPerStageDescriptorStorageBuffers"],
            max_push_constant_bytes=lim["maxPushConstantsSize"])

    def info(self) -> DeviceInfo:
        """The device as hlx_core's protocol names it."""
        return DeviceInfo(index=self.index, name=self.name, kind=self.kind, details=self.summary(), uuid=self.uuid,
                          device_class=self.device_class())

    def device_class(self) -> dict[str, Any]:
        """What decides the bytes a kernel gives here, without the per-device UUID (DeviceInfo.device_class);
        lavapipe compiles shaders for the host CPU, so a CPU device adds the host's instruction set."""
        facts: dict[str, Any] = {
            "vendor_id": self.vendor_id, "device_id": self.device_id, "name": self.name,
            "driver_name": self.driver_name, "driver_info": self.driver_info, "driver_version": self.driver_version,
            "driver_uuid": self.driver_uuid, "api_version": self.api_version_str}
        if self.kind == "cpu":
            facts["isa"] = cpu_isa()
        return facts

    def summary(self) -> dict[str, Any]:
        """A plain dict for DeviceInfo.details and ``hlx devices``."""
        return {
            "api_version": self.api_version_str, "driver_version": self.driver_version,
            "driver_version_str": self.driver_version_str,
            "driver_name": self.driver_name, "driver_info": self.driver_info,
            "vendor_id": f"0x{self.vendor_id:04x}", "device_id": f"0x{self.device_id:04x}", "uuid": self.uuid,
            "driver_uuid": self.driver_uuid,
            "subgroup_size": self.subgroup_size, "subgroup_size_range": list(self.subgroup_size_range),
            "device_local_bytes": self.device_local_bytes,
            "limits": dict(self.limits), "memory_heaps": [dict(h) for h in self.memory_heaps],
            "features": {k: v for k, v in self.features.items()},
            "extensions": sorted(e for e in self.extensions if e in REPORT_EXTENSIONS),
            "cooperative_matrix": [dict(c) for c in self.cooperative_matrix],
        }


def driver_version_str(vendor_id: int, version: int) -> str:
    """The driver version as its vendor writes it: NVIDIA packs 10.8.8.6 bits; Mesa and most others use
    VK_MAKE_API_VERSION's major.minor.patch."""
    if vendor_id == 0x10DE:
        return f"{version >> 22}.{(version >> 14) & 0xFF}.{(version >> 6) & 0xFF}.{version & 0x3F}"
    return version_str(version)


def _device_extensions(handle) -> frozenset[str]:
    count = ffi.new("uint32_t*")
    check(lib.vkEnumerateDeviceExtensionProperties(handle, NULL, count, NULL), "vkEnumerateDeviceExtensionProperties")
    props = ffi.new("VkExtensionProperties[]", count[0])
    check(lib.vkEnumerateDeviceExtensionProperties(handle, NULL, count, props), "vkEnumerateDeviceExtensionProperties")
    return frozenset(cstr(props[i].extensionName) for i in range(count[0]))


def feature_chain(api_version: int, extensions: frozenset[str]) -> tuple[Any, list[tuple[str, Any]]]:
    """A zeroed VkPhysicalDeviceFeatures2 chain with the structs this device understands."""
    head = new_struct("VkPhysicalDeviceFeatures2", vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2)
    parts: list[tuple[str, Any]] = []
    for ctype, stype, needs, _fields in FEATURE_STRUCTS:
        ok = api_version >= needs if isinstance(needs, int) else needs in extensions
        if ok:
            parts.append((ctype, new_struct(ctype, stype)))
    chain(head, *(p for _, p in parts))
    return head, parts


def _query_features(handle, api_version: int, extensions: frozenset[str]) -> dict[str, bool]:
    head, parts = feature_chain(api_version, extensions)
    lib.vkGetPhysicalDeviceFeatures2(handle, head)
    features = {name: bool(getattr(head.features, name)) for name in CORE_FEATURES}
    by_type = dict(parts)
    for ctype, _stype, _needs, fields in FEATURE_STRUCTS:
        for name in fields:
            features[name] = bool(getattr(by_type[ctype], name)) if ctype in by_type else False
    features["bfloat16"] = features["shaderBFloat16Type"]
    features["memoryBudget"] = "VK_EXT_memory_budget" in extensions
    return features


def describe_cooperative_matrix(p, m: int | None = None, n: int | None = None, k: int | None = None) -> dict[str, Any]:
    """One VkCooperativeMatrixPropertiesKHR as a plain dict: an (M x K) * (K x N) + (M x N) tile with its
    component types (``m``, ``n``, ``k`` given for a flexible entry, whose sizes are granularities)."""
    def ctype(v: int) -> str:
        return COMPONENT_TYPES.get(int(v), f"component{int(v)}")
    m, n, k = (int(p.MSize), int(p.NSize), int(p.KSize)) if m is None else (int(m), int(n), int(k))
    return {"m": m, "n": n, "k": k, "a": ctype(p.AType), "b": ctype(p.BType),
            "c": ctype(p.CType), "result": ctype(p.ResultType), "saturating": bool(p.saturatingAccumulation),
            "scope": SCOPES.get(int(p.scope), f"scope{int(p.scope)}")}


def _cooperative_matrix_shapes(instance: Instance, handle, extensions: frozenset[str]) -> tuple[dict[str, Any], ...]:
    """Every tile the device offers through vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR."""
    if "VK_KHR_cooperative_matrix" not in extensions:
        return ()
    fn = instance.proc("vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR")
    if fn is None:
        return ()
    count = ffi.new("uint32_t*")
    check(fn(handle, count, NULL), "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR")
    props = ffi.new("VkCooperativeMatrixPropertiesKHR[]", count[0])
    for i in range(count[0]):
        props[i].sType = vk.VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR
    check(fn(handle, count, props), "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR")
    return tuple(describe_cooperative_matrix(props[i]) for i in range(count[0]))


def _flexible_shapes(instance: Instance, handle, extensions: frozenset[str],
                     max_dimension: int) -> tuple[dict[str, Any], ...]:
    """VK_NV_cooperative_matrix2's flexible tiles: each entry takes any (m, n, k) that are multiples of its
    granularity up to ``max_dimension``; a workgroup-scope entry only in a workgroup of exactly
    ``workgroup_invocations``. The binding predates the call, so it goes through ctypes."""
    if "VK_NV_cooperative_matrix2" not in extensions:
        return ()
    name = "vkGetPhysicalDeviceCooperativeMatrixFlexibleDimensionsPropertiesNV"
    raw = lib.vkGetInstanceProcAddr(instance.handle, name.encode())
    if raw == NULL:
        return ()
    fn = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32), ctypes.c_void_p)(
        int(ffi.cast("uintptr_t", raw)))
    device = int(ffi.cast("uintptr_t", handle))
    count = ctypes.c_uint32(0)
    check(fn(device, ctypes.byref(count), None), name)
    entry = EXT_STRUCTS["VkCooperativeMatrixFlexibleDimensionsPropertiesNV"]
    props = (entry * count.value)()
    for p in props:
        p.sType = EXT_STRUCT_TYPES["VkCooperativeMatrixFlexibleDimensionsPropertiesNV"]
    check(fn(device, ctypes.byref(count), ctypes.addressof(props)), name)
    out = []
    for p in props[:count.value]:
        shape = describe_cooperative_matrix(p, p.MGranularity, p.NGranularity, p.KGranularity)
        out.append({**shape, "flexible": True, "max_dimension": max_dimension,
                    "workgroup_invocations": int(p.workgroupInvocations)})
    return tuple(out)


def _uuid(raw) -> str:
    b = bytes(ffi.buffer(raw, 16))
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _describe(instance: Instance, handle, enum_index: int) -> PhysicalDevice:
    extensions = _device_extensions(handle)
    base = ffi.new("VkPhysicalDeviceProperties*")
    lib.vkGetPhysicalDeviceProperties(handle, base)
    api = int(base.apiVersion)
    props2 = new_struct("VkPhysicalDeviceProperties2", vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2)
    ids = new_struct("VkPhysicalDeviceIDProperties", vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ID_PROPERTIES)
    subgroup = new_struct("VkPhysicalDeviceSubgroupProperties",
                          vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES)
    maint3 = new_struct("VkPhysicalDeviceMaintenance3Properties",
                        vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES)
    links = [props2, ids, subgroup, maint3]
    driver = sizes = None
    if api >= make_version(1, 2) or "VK_KHR_driver_properties" in extensions:
        driver = new_struct("VkPhysicalDeviceDriverProperties", vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES)
        links.append(driver)
    if api >= make_version(1, 3) or "VK_EXT_subgroup_size_control" in extensions:
        sizes = new_struct("VkPhysicalDeviceSubgroupSizeControlProperties",
                           vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES)
        links.append(sizes)
    coop2 = None
    if "VK_NV_cooperative_matrix2" in extensions:
        coop2 = new_struct("VkPhysicalDeviceCooperativeMatrix2PropertiesNV",
                           EXT_STRUCT_TYPES["VkPhysicalDeviceCooperativeMatrix2PropertiesNV"])
        links.append(coop2)
    chain(*links)
    lib.vkGetPhysicalDeviceProperties2(handle, props2)
    p = props2.properties
    lim = p.limits
    limits: dict[str, Any] = {}
    for name in LIMIT_FIELDS:
        v = getattr(lim, name)
        limits[name] = (float(v) if name == "timestampPeriod"
                        else bool(v) if name == "timestampComputeAndGraphics" else int(v))
    limits["maxComputeWorkGroupCount"] = tuple(int(lim.maxComputeWorkGroupCount[i]) for i in range(3))
    limits["maxComputeWorkGroupSize"] = tuple(int(lim.maxComputeWorkGroupSize[i]) for i in range(3))
    limits["maxMemoryAllocationSize"] = int(maint3.maxMemoryAllocationSize)

    mem = ffi.new("VkPhysicalDeviceMemoryProperties*")
    lib.vkGetPhysicalDeviceMemoryProperties(handle, mem)
    heaps = tuple({"index": i, "size": int(mem.memoryHeaps[i].size),
                   "device_local": bool(mem.memoryHeaps[i].flags & vk.VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)}
                  for i in range(mem.memoryHeapCount))
    types = tuple({"index": i, "heap": int(mem.memoryTypes[i].heapIndex),
                   "flags": int(mem.memoryTypes[i].propertyFlags)} for i in range(mem.memoryTypeCount))
    qcount = ffi.new("uint32_t*")
    lib.vkGetPhysicalDeviceQueueFamilyProperties(handle, qcount, NULL)
    qprops = ffi.new("VkQueueFamilyProperties[]", qcount[0])
    lib.vkGetPhysicalDeviceQueueFamilyProperties(handle, qcount, qprops)
    families = tuple({"index": i, "flags": int(qprops[i].queueFlags), "count": int(qprops[i].queueCount),
                      "timestamp_valid_bits": int(qprops[i].timestampValidBits)} for i in range(qcount[0]))
    sg = int(subgroup.subgroupSize)
    return PhysicalDevice(
        handle=handle, enum_index=enum_index, name=cstr(p.deviceName), kind=KINDS.get(int(p.deviceType), "other"),
        api_version=api, driver_version=int(p.driverVersion), vendor_id=int(p.vendorID), device_id=int(p.deviceID),
        uuid=_uuid(ids.deviceUUID), driver_uuid=_uuid(ids.driverUUID),
        pipeline_cache_uuid=bytes(ffi.buffer(p.pipelineCacheUUID, 16)),
        driver_name=cstr(driver.driverName) if driver is not None else "",
        driver_info=cstr(driver.driverInfo) if driver is not None else "",
        limits=limits, subgroup_size=sg,
        subgroup_size_range=(int(sizes.minSubgroupSize), int(sizes.maxSubgroupSize)) if sizes is not None else (sg, sg),
        memory_heaps=heaps, memory_types=types, queue_families=families, extensions=extensions,
        features=_query_features(handle, api, extensions),
        cooperative_matrix=_cooperative_matrix_shapes(instance, handle, extensions) + _flexible_shapes(
            instance, handle, extensions,
            int(coop2.cooperativeMatrixFlexibleDimensionsMaxDimension) if coop2 is not None else 0))


def enumerate_devices(instance: Instance) -> list[PhysicalDevice]:
    """Every Vulkan 1.1+ physical device with its properties, best first."""
    count = ffi.new("uint32_t*")
    check(lib.vkEnumeratePhysicalDevices(instance.handle, count, NULL), "vkEnumeratePhysicalDevices")
    handles = ffi.new("VkPhysicalDevice[]", count[0])
    check(lib.vkEnumeratePhysicalDevices(instance.handle, count, handles), "vkEnumeratePhysicalDevices")
    found = [_describe(instance, handles[i], i) for i in range(count[0])]
    return rank([d for d in found if d.api_version >= make_version(1, 1)])


def rank(devices: list[PhysicalDevice]) -> list[PhysicalDevice]:
    """Best first (kind, then device-local memory, then enumeration order); sets each ``index``."""
    ranked = sorted(devices, key=lambda d: (tuple(-x for x in d.score()), d.enum_index))
    for i, d in enumerate(ranked):
        d.index = i
    return ranked


_device_lists: dict[bool, list[PhysicalDevice]] = {}
_device_lock = threading.Lock()


def _after_fork_in_child() -> None:
    """A forked child enumerates its own devices, on its own instance (instance.py)."""
    global _device_lock
    _device_lock = threading.Lock()
    _device_lists.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def list_devices(validation: bool | None = None) -> list[PhysicalDevice]:
    """The ranked physical devices (enumerated once per process and validation mode)."""
    validation = validation_requested() if validation is None else validation
    with _device_lock:
        if validation not in _device_lists:
            instance = get_instance(validation)
            start = time.perf_counter()
            _device_lists[validation] = enumerate_devices(instance)
            log.debug("listed %d Vulkan device(s) in %.1f ms", len(_device_lists[validation]),
                      (time.perf_counter() - start) * 1e3)
        return _device_lists[validation]
