"""VulkanContext: one logical device and everything created on it, owned and destroyed together.

The context is the unit of ownership: buffers, kernels, pipelines, recorded plans and memory blocks all
belong to one context and are destroyed by ``cleanup()`` (idempotent; also run at interpreter exit). Every
public method takes the context lock, so a context may be shared between threads.
"""
from __future__ import annotations

import threading
import weakref
from typing import Any

from hlx_core.backend import Execution
from hlx_core.errors import HLXError
from hlx_core.plan import Plan
from hlx_core.settings import env_flag

from hlx_vulkan_raw.commands import Submitter
from hlx_vulkan_raw.devices import (ENABLE_CORE_FEATURES, ENABLE_EXTENSIONS, FEATURE_STRUCTS,
                                    PhysicalDevice, enumerate_devices, feature_chain, select_device)
from hlx_vulkan_raw.errors import check, guarded, usage
from hlx_vulkan_raw.instance import get_instance, register_for_exit, validation_requested
from hlx_vulkan_raw.loader import NULL, ffi, lib, new_struct, version_str, vk
from hlx_vulkan_raw.memory import MemoryAllocator, StagingRing
from hlx_vulkan_raw.pipelines import PipelineCache, PipelineManager, ShaderCache

_device_lists: dict[bool, list[PhysicalDevice]] = {}
_device_lock = threading.Lock()


def list_devices(validation: bool | None = None) -> list[PhysicalDevice]:
    """The ranked physical devices (enumerated once per process and validation mode)."""
    validation = validation_requested() if validation is None else validation
    with _device_lock:
        if validation not in _device_lists:
            _device_lists[validation] = enumerate_devices(get_instance(validation))
        return _device_lists[validation]


def robust_access(phys: PhysicalDevice) -> bool:
    """Bounds-checked buffer access: on for CPU devices (an out-of-range index in a shader would otherwise
    fault the Python process itself), off for GPUs where it costs speed; HLX_VULKAN_ROBUST=1/0 overrides."""
    return env_flag("HLX_VULKAN_ROBUST", phys.kind == "cpu")


def _queue_families(phys: PhysicalDevice) -> tuple[int, int | None]:
    """The compute family (graphics+compute preferred: it always has timestamps) and a dedicated transfer
    family (transfer only) when the device has one.

    Every submit goes to the compute queue. A run is synchronous (the host waits for its outputs), so an
    upload on the transfer queue could not overlap anything of its own run; it would cost a second
    vkQueueSubmit, a semaphore the compute submit waits on, and a queue-family release/acquire barrier pair
    for each exclusively owned buffer, where one submit on one queue needs none of them."""
    compute = [f for f in phys.queue_families if f["flags"] & vk.VK_QUEUE_COMPUTE_BIT]
    if not compute:
        raise usage("E_VK_INIT", f"{phys.name} has no compute queue")
    compute.sort(key=lambda f: (f["timestamp_valid_bits"] == 0, not f["flags"] & vk.VK_QUEUE_GRAPHICS_BIT))
    transfer = [f["index"] for f in phys.queue_families
                if f["flags"] & vk.VK_QUEUE_TRANSFER_BIT
                and not f["flags"] & (vk.VK_QUEUE_COMPUTE_BIT | vk.VK_QUEUE_GRAPHICS_BIT)]
    return compute[0]["index"], (transfer[0] if transfer else None)


class VulkanContext:
    """A Vulkan device opened for compute.

    ``device_index`` selects the device: an index into the ranked list (0 is the best device), a name
    substring or a UUID; None reads HLX_VULKAN_DEVICE, else takes the best. ``enable_validation`` (or
    HLX_VULKAN_VALIDATION=1) turns on the Khronos validation layer.
    """

    @guarded
    def __init__(self, device_index: int | str | None = None, enable_validation: bool = False) -> None:
        self._lock = threading.RLock()
        self._closed = True
        self.validation = validation_requested(enable_validation)
        self.instance = get_instance(self.validation)
        self.phys = select_device(list_devices(self.validation), device_index)
        self._objects: "weakref.WeakSet[Any]" = weakref.WeakSet()  # live Kernels (their descriptor sets)
        self._api_buffers: dict[int, Any] = {}  # serial -> DeviceBuffer of every Buffer not yet freed
        self._graveyard: list[int] = []  # serials of Buffers garbage-collected without free()
        self._dead_sets: list[tuple] = []  # descriptor sets of Kernels garbage-collected without release()
        self.device = None
        try:
            self._create_device()
            self.allocator = MemoryAllocator(self.device, self.phys)
            self.staging = StagingRing(self.allocator)
            self.shaders = ShaderCache(self.device, self.phys, self.features)
            self.pipeline_cache = PipelineCache(self.device, self.phys)
            self.pipelines = PipelineManager(self.device, self.phys, self.shaders, self.pipeline_cache)
            self.submitter = Submitter(self.device, self.queue, self.queue_family)
            self.upload_cb = self.submitter.command_buffer()
            bits = self.phys.queue_families[self.queue_family]["timestamp_valid_bits"]
            self.timestamp_bits = bits
            self.timestamps = bits > 0
            from hlx_vulkan_raw.executor import PlanExecutor
            self.executor = PlanExecutor(self)
        except BaseException:
            self._closed = False
            self._teardown()
            raise
        self._closed = False
        register_for_exit(self)

    # -- creation -----------------------------------------------------------------------------------------
    def _create_device(self) -> None:
        phys = self.phys
        self.queue_family, self.transfer_family = _queue_families(phys)
        families = [self.queue_family] + ([self.transfer_family] if self.transfer_family is not None else [])
        prio = ffi.new("float[]", [1.0])
        qinfos = ffi.new("VkDeviceQueueCreateInfo[]", len(families))
        for i, fam in enumerate(families):
            qinfos[i].sType = vk.VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO
            qinfos[i].queueFamilyIndex = fam
            qinfos[i].queueCount = 1
            qinfos[i].pQueuePriorities = prio
        head, parts = feature_chain(phys.api_version, phys.extensions)
        enabled: dict[str, bool] = {}
        core = list(ENABLE_CORE_FEATURES)
        if robust_access(phys):
            core.append("robustBufferAccess")
        for name in core:
            if phys.features.get(name):
                setattr(head.features, name, 1)
                enabled[name] = True
        by_type = dict(parts)
        for ctype, _stype, _needs, fields in FEATURE_STRUCTS:
            for name in fields:
                if ctype in by_type and phys.features.get(name):
                    setattr(by_type[ctype], name, 1)
                    enabled[name] = True
        self.features = enabled
        self.extensions = [e for e in ENABLE_EXTENSIONS if e in phys.extensions]
        ext_c = [ffi.new("char[]", e.encode()) for e in self.extensions]
        ext_arr = ffi.new("char*[]", ext_c) if ext_c else NULL
        ci = new_struct("VkDeviceCreateInfo", vk.VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, pNext=ffi.cast("void*", head),
                        queueCreateInfoCount=len(families), pQueueCreateInfos=qinfos,
                        enabledExtensionCount=len(ext_c), ppEnabledExtensionNames=ext_arr)
        out = ffi.new("VkDevice*")
        check(lib.vkCreateDevice(phys.handle, ci, NULL, out), f"vkCreateDevice on {phys.name}")
        self.device = out[0]
        q = ffi.new("VkQueue*")
        lib.vkGetDeviceQueue(self.device, self.queue_family, 0, q)
        self.queue = q[0]
        self.transfer_queue = None
        if self.transfer_family is not None:
            lib.vkGetDeviceQueue(self.device, self.transfer_family, 0, q)
            self.transfer_queue = q[0]

    # -- state --------------------------------------------------------------------------------------------
    def _live(self) -> None:
        if self._closed:
            raise usage("E_VK_CONTEXT_CLOSED", "this VulkanContext was cleaned up; create a new one")

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def device_name(self) -> str:
        return self.phys.name

    @property
    def api_version(self) -> str:
        """The device's Vulkan version, "major.minor.patch"."""
        return version_str(self.phys.api_version)

    @property
    def zero_copy(self) -> bool:
        return self.allocator.zero_copy

    # -- shaders ------------------------------------------------------------------------------------------
    @guarded
    def load_shader(self, spirv: bytes, entry_point: str = "main") -> str:
        """Create (or find) the shader module for these bytes; returns its content id (E_SPIRV_INVALID
        for bad SPIR-V, E_VK_UNSUPPORTED when the device lacks what the shader needs)."""
        with self._lock:
            self._live()
            module, _info = self.shaders.load(spirv, entry_point)
            return module.id

    def is_shader_cached(self, shader_id: str) -> bool:
        with self._lock:
            return isinstance(shader_id, str) and not self._closed and shader_id in self.shaders.modules

    def cache_size(self) -> int:
        """Number of cached shader modules."""
        with self._lock:
            return 0 if self._closed else len(self.shaders.modules)

    @guarded
    def clear_cache(self) -> None:
        """Destroy the cached shader modules (pipelines built from them stay valid)."""
        with self._lock:
            self._live()
            self.shaders.destroy()

    # -- memory -------------------------------------------------------------------------------------------
    @guarded
    def get_memory_info(self) -> dict[str, Any]:
        """Heaps (with usage and budget under VK_EXT_memory_budget), the allocator's blocks and the
        residency cache."""
        with self._lock:
            self._live()
            return {"device": self.phys.name, "heaps": self.allocator.heap_info(), "zero_copy": self.zero_copy,
                    **self.allocator.stats(), "staging_bytes": self.staging.capacity,
                    "residency": self.executor.residency.stats(), "recorded_plans": len(self.executor.recorded)}

    # -- the handle API -----------------------------------------------------------------------------------
    @guarded
    def buffer(self, nbytes: int):
        """A device buffer of ``nbytes`` (> 0)."""
        from hlx_vulkan_raw.api import Buffer
        with self._lock:
            self._live()
            self._collect()
            return Buffer(self, nbytes)

    @guarded
    def kernel(self, spirv: bytes, entry_point: str = "main"):
        """A compute kernel from SPIR-V (validated and reflected now)."""
        from hlx_vulkan_raw.api import Kernel
        with self._lock:
            self._live()
            self._collect()
            k = Kernel(self, spirv, entry_point)
            self._objects.add(k)
            return k

    @guarded
    def sync(self) -> None:
        """Wait until every launched kernel has finished."""
        with self._lock:
            self._live()
            self.submitter.sync()
            self._collect()

    def _free_api_buffer(self, serial: int) -> None:
        """Free a Buffer's memory and the kernel descriptor sets that point at it (after a sync)."""
        buf = self._api_buffers.pop(serial, None)
        if buf is None:
            return
        for k in list(self._objects):
            k._forget(serial)
        self.allocator.free(buf)

    def _collect(self) -> None:
        """Free Buffers and Kernel descriptor sets that were garbage-collected without free()/release(),
        after the launches that may still use them."""
        if self._graveyard or self._dead_sets:
            self.submitter.sync()
            while self._dead_sets:
                self.pipelines.free_set(*self._dead_sets.pop())
            while self._graveyard:
                self._free_api_buffer(self._graveyard.pop())

    # -- plans --------------------------------------------------------------------------------------------
    @guarded
    def execute(self, plan: Plan) -> Execution:
        with self._lock:
            self._live()
            self.submitter.sync()
            return self.executor.execute(plan)

    # -- lifetime -----------------------------------------------------------------------------------------
    @guarded
    def cleanup(self) -> None:
        """Destroy every Vulkan object of this context; safe to call more than once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._teardown()

    def _teardown(self) -> None:
        if self.device is None:
            return
        lib.vkDeviceWaitIdle(self.device)
        for obj in list(self._objects):
            obj._release()
        for serial in list(self._api_buffers):
            self.allocator.free(self._api_buffers.pop(serial))
        self._graveyard.clear()
        self._dead_sets.clear()  # their pools are destroyed below
        if hasattr(self, "executor"):
            self.executor.clear()
        if hasattr(self, "staging"):
            self.staging.destroy()
        if hasattr(self, "submitter"):
            self.submitter.destroy()
        if hasattr(self, "pipelines"):
            self.pipelines.destroy()
        if hasattr(self, "shaders"):
            self.shaders.destroy()
        if hasattr(self, "pipeline_cache"):
            try:
                self.pipeline_cache.destroy()
            except HLXError:
                pass
        if hasattr(self, "allocator"):
            self.allocator.destroy()
        lib.vkDestroyDevice(self.device, NULL)
        self.device = None

    def __enter__(self) -> "VulkanContext":
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()

    def __del__(self) -> None:
        try:
            self.cleanup()
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<VulkanContext {self.phys.name!r} Vulkan {self.api_version} {state}>"
