"""Shader modules, layouts, compute pipelines, descriptor sets and the persisted VkPipelineCache.

Everything here is cached by content: a shader module by the BLAKE3 of its SPIR-V, a descriptor-set layout
by its binding signature, a pipeline by (shader, entry point, specialization values). Layouts come from
the SPIR-V reflection in hlx_core, so every backend reads a shader the same way.
"""
from __future__ import annotations

import contextlib
import logging
import os
import struct
from dataclasses import dataclass
from typing import Any, Iterable

import blake3

from hlx_core.device.shader_support import ShaderSupport
from hlx_core.settings import hlx_home
from hlx_core.spirv.reflect import reflect_entry
from hlx_core.spirv.types import EntryPoint, SpecConstant
from hlx_core.spirv.validate import validate_module

from hlx_vulkan_raw.devices import PhysicalDevice
from hlx_vulkan_raw.errors import VulkanError, check, create, result_name, usage
from hlx_vulkan_raw.loader import NULL, cstr, ffi, lib, make_version, new_struct, vk

log = logging.getLogger("hlx.vulkan")

DESCRIPTOR_TYPES = {"storage": vk.VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, "uniform": vk.VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER}
SETS_PER_POOL = 64

# SPIR-V capabilities that need a device feature HLX enables when present.
CAPABILITY_FEATURES = {
    "Float16": "shaderFloat16", "Float64": "shaderFloat64", "Int64": "shaderInt64", "Int16": "shaderInt16",
    "Int8": "shaderInt8", "StorageBuffer16BitAccess": "storageBuffer16BitAccess",
    "UniformAndStorageBuffer16BitAccess": "uniformAndStorageBuffer16BitAccess",
    "StoragePushConstant16": "storagePushConstant16", "StorageBuffer8BitAccess": "storageBuffer8BitAccess",
    "UniformAndStorageBuffer8BitAccess": "uniformAndStorageBuffer8BitAccess",
    "StoragePushConstant8": "storagePushConstant8", "VulkanMemoryModel": "vulkanMemoryModel",
    "VulkanMemoryModelDeviceScope": "vulkanMemoryModelDeviceScope", "CooperativeMatrixKHR": "cooperativeMatrix",
    "DotProduct": "shaderIntegerDotProduct", "Int64Atomics": "shaderBufferInt64Atomics",
    "BFloat16TypeKHR": "shaderBFloat16Type", "BFloat16DotProductKHR": "shaderBFloat16DotProduct",
    "BFloat16CooperativeMatrixKHR": "shaderBFloat16CooperativeMatrix",
}
# The Vulkan version that first accepts each SPIR-V version.
SPIRV_MIN_API = {(1, 0): (1, 0), (1, 1): (1, 1), (1, 2): (1, 1), (1, 3): (1, 1), (1, 4): (1, 2),
                 (1, 5): (1, 2), (1, 6): (1, 3)}


def shader_support(phys: PhysicalDevice, enabled_features: dict[str, bool]) -> ShaderSupport:
    """What this device runs: every capability whose feature is not enabled is refused, and its
    cooperative-matrix tiles and subgroup sizes are what vkGetPhysicalDevice*Properties list."""
    refused = {cap: f"device feature {feature}" for cap, feature in CAPABILITY_FEATURES.items()
               if not enabled_features.get(feature)}
    return ShaderSupport.build(refused, phys.cooperative_matrix, phys.subgroup_size_range)


def shader_id(spirv: bytes) -> str:
    """The content id of a module: the same bytes always give the same id."""
    return blake3.blake3(bytes(spirv)).hexdigest()


@dataclass(eq=False)
class ShaderModule:
    id: str
    handle: Any
    spirv: bytes


class ShaderCache:
    """VkShaderModules by content id, plus the reflection of each (module, entry point)."""

    def __init__(self, device, phys: PhysicalDevice, enabled_features: dict[str, bool]) -> None:
        self.device = device
        self.phys = phys
        self.features = enabled_features
        self.support = shader_support(phys, enabled_features)
        self.modules: dict[str, ShaderModule] = {}

    def reflect(self, spirv: bytes, entry_point: str) -> EntryPoint:
        """Reflection plus the checks that this device can run the module (E_SPIRV_INVALID,
        E_UNSUPPORTED)."""
        info = reflect_entry(spirv, entry_point)
        need = SPIRV_MIN_API.get(info.version, (1, 3))
        if self.phys.api_version < make_version(*need):
            raise usage("E_UNSUPPORTED", f"SPIR-V {info.version[0]}.{info.version[1]} needs Vulkan "
                        f"{need[0]}.{need[1]}; {self.phys.name} offers {self.phys.api_version_str}")
        missing = self.support.refusals(info)
        if missing:
            raise usage("E_UNSUPPORTED", f"shader entry point {entry_point!r} uses capabilities "
                        f"{self.phys.name} does not support: {', '.join(missing)}")
        bad = [b for b in info.bindings if b.kind not in DESCRIPTOR_TYPES or b.set != 0 or b.count != 1]
        if bad or info.extra.get("unsupported_descriptors"):
            raise usage("E_UNSUPPORTED", f"shader entry point {entry_point!r} declares descriptors HLX does "
                        f"not bind (only single storage/uniform buffers in set 0): "
                        f"{bad or info.extra['unsupported_descriptors']}")
        return info

    def load(self, spirv: bytes, entry_point: str = "main") -> tuple[ShaderModule, EntryPoint]:
        data = bytes(spirv) if isinstance(spirv, (bytes, bytearray, memoryview)) else spirv
        info = self.reflect(data, entry_point)  # validates header and body before the driver sees it
        sid = shader_id(data)
        mod = self.modules.get(sid)
        if mod is None:
            # Reflection reads only what it needs, and a driver handed a malformed body may crash: the
            # planner validated a plan's shaders already (remembered by content), the context API's here.
            validate_module(data, scalar_block_layout=bool(self.features.get("scalarBlockLayout")))
            code = ffi.from_buffer("uint32_t[]", data)
            ci = new_struct("VkShaderModuleCreateInfo", vk.VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                            codeSize=len(data), pCode=code)
            handle = create("VkShaderModule*", lib.vkCreateShaderModule, self.device, ci, NULL,
                            what="vkCreateShaderModule")
            mod = self.modules[sid] = ShaderModule(sid, handle, data)
        return mod, info

    def destroy(self, sid: str | None = None) -> None:
        for key in ([sid] if sid else list(self.modules)):
            mod = self.modules.pop(key, None)
            if mod is not None:
                lib.vkDestroyShaderModule(self.device, mod.handle, NULL)


def _pack_scalar(sc: SpecConstant, value: Any) -> bytes:
    if sc.type == "bool":
        return struct.pack("<I", 1 if value else 0)
    if sc.type == "float":
        fmt = {16: "<e", 32: "<f", 64: "<d"}[sc.width]
        return struct.pack(fmt, float(value))
    fmt = {8: "b", 16: "h", 32: "i", 64: "q"}[sc.width]
    fmt = "<" + (fmt.upper() if sc.type == "uint" else fmt)
    try:
        return struct.pack(fmt, int(value))
    except struct.error:
        raise usage("E_VK_SPEC_CONSTANT", f"value {value!r} does not fit the {sc.width}-bit {sc.type} "
                    f"specialization constant {sc.id}") from None


def resolve_workgroup(info: EntryPoint, workgroup: tuple[int, int, int] | None,
                      spec: Iterable[tuple[int, Any]]) -> tuple[tuple[int, ...], tuple[tuple[int, Any], ...]]:
    """Final workgroup size and specialization values: the shader's size under ``spec`` (axes may be spec
    constants or computed from them); a requested size that differs from it is applied through the
    local_size_x_id/y_id/z_id constants. Device limits are the caller's check (the plan's, or the handle
    API's for its own arguments)."""
    values = dict(spec)
    size = list(info.workgroup_size(values))  # LocalSizeId axes and axes computed from spec constants
    if workgroup is not None:
        for i in range(3):
            if int(workgroup[i]) == size[i]:
                continue
            sid = info.local_size_ids[i]
            if sid is None:
                raise usage("E_VK_WORKGROUP", f"workgroup size {tuple(workgroup)} differs from the shader's "
                            f"{tuple(size)} in dimension {'xyz'[i]}, which has no local_size_{'xyz'[i]}_id to "
                            "specialize")
            size[i] = values[sid] = int(workgroup[i])
    known = {sc.id for sc in info.spec_constants}
    unknown = sorted(set(values) - known)
    if unknown:
        raise usage("E_VK_SPEC_CONSTANT", f"specialization constant ids {unknown} are not declared by "
                    f"entry point {info.name!r} (declared: {sorted(known)})")
    return tuple(size), tuple(sorted(values.items()))


class _SpecInfo:
    """A VkSpecializationInfo and the memory it points to."""

    def __init__(self, info: EntryPoint, values: tuple[tuple[int, Any], ...]) -> None:
        by_id = {sc.id: sc for sc in info.spec_constants}
        data = b""
        self.entries = ffi.new("VkSpecializationMapEntry[]", max(len(values), 1))
        for i, (cid, value) in enumerate(values):
            packed = _pack_scalar(by_id[cid], value)
            self.entries[i].constantID = cid
            self.entries[i].offset = len(data)
            self.entries[i].size = len(packed)
            data += packed
        self.data = ffi.new("char[]", data or b"\0")
        self.info = new_struct("VkSpecializationInfo", mapEntryCount=len(values), pMapEntries=self.entries,
                               dataSize=len(data), pData=self.data)


@dataclass(eq=False)
class Pipeline:
    """A compute pipeline with its layouts; ``binding_types[b]`` is the descriptor type at binding b."""

    key: tuple
    info: EntryPoint
    handle: Any
    layout: Any
    set_layout: Any
    binding_types: dict[int, int]
    workgroup: tuple[int, ...]
    push_size: int


STATISTICS_EXTENSION = "VK_KHR_pipeline_executable_properties"
_STATISTIC_FORMATS = {
    vk.VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_BOOL32_KHR: lambda v: bool(v.b32),
    vk.VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_INT64_KHR: lambda v: int(v.i64),
    vk.VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_UINT64_KHR: lambda v: int(v.u64),
    vk.VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_FLOAT64_KHR: lambda v: float(v.f64),
}


def statistic_value(stat: Any) -> int | float | bool:
    """The value of one VkPipelineExecutableStatisticKHR in the Python type its format names."""
    read = _STATISTIC_FORMATS.get(int(stat.format))
    if read is None:
        raise VulkanError("E_BACKEND_INTERNAL", f"pipeline statistic {cstr(stat.name)!r} has unknown format "
                          f"{int(stat.format)}")
    return read(stat.value)


def _device_fn(device, name: str) -> Any:
    fn = lib.vkGetDeviceProcAddr(device, name.encode())
    if fn == NULL:
        raise usage("E_UNSUPPORTED", f"the device has no {name} ({STATISTICS_EXTENSION} not enabled)")
    return ffi.cast(f"PFN_{name}", fn)


def _filled(ctype: str, stype: int, count: int) -> Any:
    arr = ffi.new(f"{ctype}[]", count)
    for i in range(count):
        arr[i].sType = stype
    return arr


def executable_statistics(device, pipeline) -> dict[str, int | float | bool]:
    """Every statistic of every executable of a pipeline created with
    VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR, by name; prefixed by the executable's name when the
    pipeline has more than one."""
    get_props = _device_fn(device, "vkGetPipelineExecutablePropertiesKHR")
    get_stats = _device_fn(device, "vkGetPipelineExecutableStatisticsKHR")
    pinfo = new_struct("VkPipelineInfoKHR", vk.VK_STRUCTURE_TYPE_PIPELINE_INFO_KHR, pipeline=pipeline)
    count = ffi.new("uint32_t*")
    check(get_props(device, pinfo, count, NULL), "vkGetPipelineExecutablePropertiesKHR")
    props = _filled("VkPipelineExecutablePropertiesKHR", vk.VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_PROPERTIES_KHR,
                    count[0])
    check(get_props(device, pinfo, count, props), "vkGetPipelineExecutablePropertiesKHR")
    found: dict[str, int | float | bool] = {}
    for i in range(count[0]):
        prefix = f"{cstr(props[i].name)}: " if count[0] > 1 else ""
        einfo = new_struct("VkPipelineExecutableInfoKHR", vk.VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_INFO_KHR,
                           pipeline=pipeline, executableIndex=i)
        n = ffi.new("uint32_t*")
        check(get_stats(device, einfo, n, NULL), "vkGetPipelineExecutableStatisticsKHR")
        stats = _filled("VkPipelineExecutableStatisticKHR", vk.VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_STATISTIC_KHR,
                        n[0])
        check(get_stats(device, einfo, n, stats), "vkGetPipelineExecutableStatisticsKHR")
        for j in range(n[0]):
            found[prefix + cstr(stats[j].name)] = statistic_value(stats[j])
    return found


_HIGHLIGHTS = ("register", "gpr", "spill", "shared", "lds", "local memory", "scratch", "stack")


def describe_statistics(stats: dict[str, int | float | bool]) -> str:
    """The statistics that say most about a kernel's fit (registers, spills, shared and local memory,
    scratch) on one line, ``name=value``, in the driver's order; all of them when none has such a name."""
    picked = [f"{name}={value}" for name, value in stats.items()
              if any(word in name.lower() for word in _HIGHLIGHTS)]
    return ", ".join(picked or (f"{name}={value}" for name, value in stats.items())) or "none reported"


class PipelineCache:
    """The VkPipelineCache, loaded from and saved to ``$HLX_HOME/vulkan/`` keyed by device UUID, driver
    version and pipelineCacheUUID. The header is checked before the driver sees the data."""

    HEADER = struct.Struct("<IIII16s")  # length, version, vendorID, deviceID, pipelineCacheUUID

    def __init__(self, device, phys: PhysicalDevice) -> None:
        self.device = device
        self.phys = phys
        name = f"{phys.uuid}-{phys.driver_version:x}-{phys.pipeline_cache_uuid.hex()}.bin"
        self.path = hlx_home() / "vulkan" / "pipeline-cache" / name
        data = self._load()
        try:
            self.handle = self._create(data)
        except VulkanError as exc:
            if not data:
                raise
            # The driver refused data whose header looked right: start empty.
            log.warning("ignoring Vulkan pipeline cache %s: the driver rejected it (%s)", self.path,
                        result_name(exc.result or 0))
            data = b""
            self.handle = self._create(data)
        self.loaded_bytes = len(data)
        self._saved = data  # what the file holds: a save that would write the same bytes is skipped
        self.dirty = False

    def _create(self, data: bytes) -> Any:
        buf = ffi.from_buffer(data) if data else NULL
        ci = new_struct("VkPipelineCacheCreateInfo", vk.VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
                        initialDataSize=len(data), pInitialData=buf)
        return create("VkPipelineCache*", lib.vkCreatePipelineCache, self.device, ci, NULL,
                      what="vkCreatePipelineCache")

    def header_problem(self, data: bytes) -> str | None:
        """Why ``data`` is not a cache of this device and driver, or None when it is."""
        if len(data) < self.HEADER.size:
            return f"{len(data)} bytes is shorter than the {self.HEADER.size}-byte header"
        length, version, vendor, device, uuid = self.HEADER.unpack_from(data)
        if length < self.HEADER.size or length > len(data):
            return f"header length {length} is invalid"
        if version != vk.VK_PIPELINE_CACHE_HEADER_VERSION_ONE:
            return f"header version {version} is not VK_PIPELINE_CACHE_HEADER_VERSION_ONE"
        if (vendor, device) != (self.phys.vendor_id, self.phys.device_id):
            return f"it was written for vendor/device 0x{vendor:x}/0x{device:x}"
        if uuid != self.phys.pipeline_cache_uuid:
            return "its pipelineCacheUUID belongs to another driver build"
        return None

    def _load(self) -> bytes:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return b""
        except OSError as exc:
            log.warning("ignoring Vulkan pipeline cache %s: %s", self.path, exc)
            return b""
        problem = self.header_problem(data)
        if problem:
            log.warning("ignoring Vulkan pipeline cache %s: %s", self.path, problem)
            return b""
        return data

    def save(self) -> None:
        """Write the driver's cache data atomically (temp file + rename) when a pipeline was built that the
        cache did not hold (``dirty``) and the data differs from the file's: a warm process, whose pipelines
        all came from the cache, neither asks the driver for the data nor writes."""
        if not self.dirty:
            return
        size = ffi.new("size_t*")
        check(lib.vkGetPipelineCacheData(self.device, self.handle, size, NULL), "vkGetPipelineCacheData")
        buf = ffi.new("char[]", size[0])
        check(lib.vkGetPipelineCacheData(self.device, self.handle, size, buf), "vkGetPipelineCacheData")
        data = bytes(ffi.buffer(buf, size[0]))
        if data == self._saved:
            self.dirty = False
            return
        tmp = None
        try:
            import tempfile  # here: a process whose pipelines all came from the cache never saves (~4 ms)

            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self.path)
            self._saved = data
            self.dirty = False
        except OSError as exc:  # a read-only home must not break cleanup
            log.warning("could not save Vulkan pipeline cache %s: %s", self.path, exc)
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def destroy(self) -> None:
        if self.handle is not None:
            self.save()
            lib.vkDestroyPipelineCache(self.device, self.handle, NULL)
            self.handle = None


def _cache_hit(flags: int) -> bool:
    """Whether a pipeline's creation feedback says the pipeline cache held it (flags the driver set valid)."""
    valid = vk.VK_PIPELINE_CREATION_FEEDBACK_VALID_BIT
    hit = vk.VK_PIPELINE_CREATION_FEEDBACK_APPLICATION_PIPELINE_CACHE_HIT_BIT
    return flags & (valid | hit) == valid | hit


class PipelineManager:
    """Builds and caches pipelines, set layouts and descriptor sets for one device.

    ``feedback`` (Vulkan 1.3: VkPipelineCreationFeedback): the driver says whether each pipeline came from
    the pipeline cache, and only one that did not makes the cache ``dirty`` (worth saving at close). Without
    it every build counts as new."""

    def __init__(self, device, shaders: ShaderCache, cache: PipelineCache, feedback: bool = False) -> None:
        self.device = device
        self.shaders = shaders
        self.cache = cache
        self.feedback = feedback
        self.cache_hits = 0  # pipelines the driver found in the pipeline cache (with ``feedback``)
        self.set_layouts: dict[tuple, Any] = {}
        self.pipelines: dict[tuple, Pipeline] = {}
        self.pools: list[list] = []  # [pool handle, sets left]

    def _set_layout(self, types: dict[int, int]):
        key = tuple(sorted(types.items()))
        layout = self.set_layouts.get(key)
        if layout is None:
            arr = ffi.new("VkDescriptorSetLayoutBinding[]", max(len(key), 1))
            for i, (binding, dtype) in enumerate(key):
                arr[i].binding = binding
                arr[i].descriptorType = dtype
                arr[i].descriptorCount = 1
                arr[i].stageFlags = vk.VK_SHADER_STAGE_COMPUTE_BIT
            ci = new_struct("VkDescriptorSetLayoutCreateInfo", vk.VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                            bindingCount=len(key), pBindings=arr)
            layout = self.set_layouts[key] = create("VkDescriptorSetLayout*", lib.vkCreateDescriptorSetLayout,
                                                    self.device, ci, NULL, what="vkCreateDescriptorSetLayout")
        return layout

    def get(self, spirv: bytes, entry_point: str, workgroup: tuple[int, int, int] | None = None,
            spec: Iterable[tuple[int, Any]] = ()) -> Pipeline:
        """The pipeline for a shader at a workgroup size with specialization values (cached; the caller has
        checked them against the device's limits)."""
        return self.get_many([(spirv, entry_point, workgroup, spec)])[0]

    def get_many(self, requests: Iterable[tuple[bytes, str, tuple[int, int, int] | None,
                                                Iterable[tuple[int, Any]]]]) -> list[Pipeline]:
        """``get`` for each (spirv, entry point, workgroup, spec), the missing pipelines built at the same time:
        the driver compiles a pipeline on the thread that creates it, so a cold start would otherwise pay the
        sum (on the H200 a 1024^3 GEMM's pipeline took 114 ms and the device hash's 98 ms to build from empty
        caches). Modules and set layouts are made here first; the threads only create pipeline layouts and
        pipelines, which Vulkan lets run concurrently on one device and one (internally synchronized) cache.
        When a build fails, the ones that succeeded are kept and the first error is raised."""
        wanted = []
        for spirv, entry_point, workgroup, spec in requests:
            module, info = self.shaders.load(spirv, entry_point)
            size, values = resolve_workgroup(info, workgroup, spec)
            self._set_layout({b.binding: DESCRIPTOR_TYPES[b.kind] for b in info.bindings})
            wanted.append(((module.id, entry_point, values), module, info, size, values))
        missing = {key: rest for key, *rest in wanted if key not in self.pipelines}
        if len(missing) == 1:
            ((key, (module, info, size, values)),) = missing.items()
            self._keep(key, info, size, self._create(module, info, values, 0))
        elif missing:
            from concurrent.futures import ThreadPoolExecutor  # here: a warm single-pipeline start never needs it

            with ThreadPoolExecutor(len(missing), thread_name_prefix="hlx-vulkan-pipeline") as pool:
                futures = {key: pool.submit(self._create, module, info, values, 0)
                           for key, (module, info, _size, values) in missing.items()}
            failed = None
            for key, future in futures.items():
                if future.exception() is not None:
                    failed = failed or future.exception()
                    continue
                _module, info, size, _values = missing[key]
                self._keep(key, info, size, future.result())
            if failed is not None:
                raise failed
        return [self.pipelines[key] for key, *_ in wanted]

    def _keep(self, key: tuple, info: EntryPoint, size: tuple[int, int, int],
              built: tuple[Any, Any, dict[int, int], int, bool]) -> None:
        """Cache a pipeline ``_create`` built; one the pipeline cache did not hold gives it something to save."""
        handle, layout, types, push_size, from_cache = built
        self.pipelines[key] = Pipeline(key, info, handle, layout, self._set_layout(types), types, size, push_size)
        if from_cache:
            self.cache_hits += 1
        else:
            self.cache.dirty = True

    def _create(self, module: ShaderModule, info: EntryPoint, values: tuple[tuple[int, Any], ...],
                flags: int) -> tuple[Any, Any, dict[int, int], int, bool]:
        """A new compute pipeline (created with ``flags``), its pipeline layout, descriptor types by binding,
        push-constant size, and whether the driver found it in the pipeline cache (never without
        ``feedback``)."""
        entry_point = info.name
        types = {b.binding: DESCRIPTOR_TYPES[b.kind] for b in info.bindings}
        set_layout = self._set_layout(types)
        layouts = ffi.new("VkDescriptorSetLayout[]", [set_layout])
        push = ffi.new("VkPushConstantRange*")
        push.stageFlags = vk.VK_SHADER_STAGE_COMPUTE_BIT
        push.size = (info.push_constant_size + 3) // 4 * 4
        lci = new_struct("VkPipelineLayoutCreateInfo", vk.VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                         setLayoutCount=1, pSetLayouts=layouts,
                         pushConstantRangeCount=1 if push.size else 0, pPushConstantRanges=push if push.size else NULL)
        layout = create("VkPipelineLayout*", lib.vkCreatePipelineLayout, self.device, lci, NULL,
                        what="vkCreatePipelineLayout")
        spec_info = _SpecInfo(info, values)
        name = ffi.new("char[]", entry_point.encode())
        stage = new_struct("VkPipelineShaderStageCreateInfo", vk.VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                           stage=vk.VK_SHADER_STAGE_COMPUTE_BIT, module=module.handle, pName=name,
                           pSpecializationInfo=spec_info.info if values else NULL)
        ci = ffi.new("VkComputePipelineCreateInfo[1]")
        ci[0].sType = vk.VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO
        ci[0].flags = flags
        ci[0].stage = stage[0]
        ci[0].layout = layout
        # A pipeline captured for its statistics bypasses the cache, so the driver compiles it in full.
        cache = NULL if flags & vk.VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR else self.cache.handle
        feedback = ffi.new("VkPipelineCreationFeedback*") if self.feedback and cache != NULL else None
        if feedback is not None:
            feedback_info = new_struct("VkPipelineCreationFeedbackCreateInfo",
                                       vk.VK_STRUCTURE_TYPE_PIPELINE_CREATION_FEEDBACK_CREATE_INFO,
                                       pPipelineCreationFeedback=feedback)
            ci[0].pNext = feedback_info
        try:
            handle = create("VkPipeline*", lib.vkCreateComputePipelines, self.device, cache, 1, ci, NULL,
                            what=f"vkCreateComputePipelines for entry point {entry_point!r}")
        except VulkanError:
            lib.vkDestroyPipelineLayout(self.device, layout, NULL)
            raise
        return handle, layout, types, int(push.size), feedback is not None and _cache_hit(int(feedback.flags))

    def statistics(self, spirv: bytes, entry_point: str, workgroup: tuple[int, int, int] | None = None,
                   spec: Iterable[tuple[int, Any]] = ()) -> dict[str, int | float | bool]:
        """What the driver reports of the code it compiled for this pipeline (VK_KHR_pipeline_executable_
        properties; the caller checked that the device has it): every statistic of every executable by
        name (``"executable: statistic"`` when there are several), registers and spills on most drivers.
        The pipeline is built again with VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR and destroyed: the
        pipelines runs use are never created with it."""
        module, info = self.shaders.load(spirv, entry_point)
        _size, values = resolve_workgroup(info, workgroup, spec)
        handle, layout, _types, _push, _hit = self._create(module, info, values,
                                                     vk.VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR)
        try:
            return executable_statistics(self.device, handle)
        finally:
            lib.vkDestroyPipeline(self.device, handle, NULL)
            lib.vkDestroyPipelineLayout(self.device, layout, NULL)

    def allocate_set(self, pipe: Pipeline):
        """A descriptor set for ``pipe``'s layout from a pool with room (pools are created on demand)."""
        for entry in self.pools:
            if entry[1] > 0:
                got = self._try_allocate(entry[0], pipe.set_layout)
                if got is not None:
                    entry[1] -= 1
                    return got, entry
        sizes = ffi.new("VkDescriptorPoolSize[2]")
        sizes[0].type = vk.VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
        sizes[0].descriptorCount = SETS_PER_POOL * 16
        sizes[1].type = vk.VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER
        sizes[1].descriptorCount = SETS_PER_POOL * 4
        ci = new_struct("VkDescriptorPoolCreateInfo", vk.VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                        flags=vk.VK_DESCRIPTOR_POOL_CREATE_FREE_DESCRIPTOR_SET_BIT, maxSets=SETS_PER_POOL,
                        poolSizeCount=2, pPoolSizes=sizes)
        entry = [create("VkDescriptorPool*", lib.vkCreateDescriptorPool, self.device, ci, NULL,
                        what="vkCreateDescriptorPool"), SETS_PER_POOL]
        self.pools.append(entry)
        got = self._try_allocate(entry[0], pipe.set_layout)
        if got is None:
            raise usage("E_LIMIT_EXCEEDED", "descriptor set does not fit a fresh descriptor pool "
                        f"({SETS_PER_POOL * 16} storage descriptors)")
        entry[1] -= 1
        return got, entry

    def _try_allocate(self, pool, set_layout):
        layouts = ffi.new("VkDescriptorSetLayout[]", [set_layout])
        ai = new_struct("VkDescriptorSetAllocateInfo", vk.VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                        descriptorPool=pool, descriptorSetCount=1, pSetLayouts=layouts)
        try:
            return create("VkDescriptorSet*", lib.vkAllocateDescriptorSets, self.device, ai,
                          what="vkAllocateDescriptorSets")
        except VulkanError as exc:
            if exc.result in (vk.VK_ERROR_OUT_OF_POOL_MEMORY, vk.VK_ERROR_FRAGMENTED_POOL):  # try another pool
                return None
            raise

    def write_set(self, dset, pipe: Pipeline, buffers: dict[int, Any]) -> None:
        """Point every binding of ``dset`` at its buffer (whole range)."""
        n = len(buffers)
        infos = ffi.new("VkDescriptorBufferInfo[]", max(n, 1))
        writes = ffi.new("VkWriteDescriptorSet[]", max(n, 1))
        for i, (binding, buf) in enumerate(sorted(buffers.items())):
            infos[i].buffer = buf.handle
            infos[i].offset = 0
            infos[i].range = buf.size
            w = writes[i]
            w.sType = vk.VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET
            w.dstSet = dset
            w.dstBinding = binding
            w.descriptorCount = 1
            w.descriptorType = pipe.binding_types[binding]
            w.pBufferInfo = infos + i
        if n:
            lib.vkUpdateDescriptorSets(self.device, n, writes, 0, NULL)

    def free_set(self, dset, entry) -> None:
        sets = ffi.new("VkDescriptorSet[]", [dset])
        lib.vkFreeDescriptorSets(self.device, entry[0], 1, sets)
        entry[1] += 1

    def destroy(self) -> None:
        for entry in self.pools:
            lib.vkDestroyDescriptorPool(self.device, entry[0], NULL)
        self.pools.clear()
        for pipe in self.pipelines.values():
            lib.vkDestroyPipeline(self.device, pipe.handle, NULL)
            lib.vkDestroyPipelineLayout(self.device, pipe.layout, NULL)
        self.pipelines.clear()
        for layout in self.set_layouts.values():
            lib.vkDestroyDescriptorSetLayout(self.device, layout, NULL)
        self.set_layouts.clear()
