"""DeviceCore: one logical device and the machinery every use of it needs.

Both products of the backend are built on a core: the session that executes plans (session.py) and the
handle API (context.py). The core knows neither. It owns the device and its compute queue, the allocator,
the staging ring, the shader and pipeline caches, the submitter and timestamp support, and destroys them
together on ``close()`` (idempotent; also on garbage collection and at interpreter exit, before the
instance; a forked child only forgets it, see instance.py). What an owner made on the device (buffers,
recorded command buffers, query pools) is handed back first, through the callbacks given to ``on_close``.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterable

from hlx_core.device.selection import select_device
from hlx_core.device.waiting import spin_budget
from hlx_core.errors import HLXError
from hlx_core.settings import env_flag

from hlx_vulkan_raw.commands import SPIN_MAX_SETTING, SPIN_SETTING, QueryPool, Submitter
from hlx_vulkan_raw.devices import (
    ENABLE_CORE_FEATURES,
    ENABLE_EXTENSIONS,
    FEATURE_STRUCTS,
    PhysicalDevice,
    feature_chain,
    list_devices,
)
from hlx_vulkan_raw.errors import create, usage
from hlx_vulkan_raw.instance import get_instance, register_for_exit, validation_requested
from hlx_vulkan_raw.loader import NULL, ffi, lib, make_version, new_struct, vk
from hlx_vulkan_raw.memory import MemoryAllocator, StagingRing
from hlx_vulkan_raw.pipelines import STATISTICS_EXTENSION, PipelineCache, PipelineManager, ShaderCache
from hlx_vulkan_raw.readback import HostImport

log = logging.getLogger("hlx.vulkan")

DEVICE_ENV = "HLX_VULKAN_DEVICE"
HOST_IMPORT_EXTENSION = "VK_EXT_external_memory_host"


def robust_access(phys: PhysicalDevice) -> bool:
    """Bounds-checked buffer access: on for CPU devices (an out-of-range index in a shader would otherwise
    fault the Python process itself), off for GPUs where it costs speed; HLX_VULKAN_ROBUST=1/0 overrides."""
    return env_flag("HLX_VULKAN_ROBUST", phys.kind == "cpu")


def host_import_wanted(phys: PhysicalDevice) -> bool:
    """Whether large outputs are read back into imported host memory (readback.py): where the device has
    VK_EXT_external_memory_host, unless HLX_VULKAN_HOST_IMPORT=0 (then one host copy per output)."""
    return HOST_IMPORT_EXTENSION in phys.extensions and env_flag("HLX_VULKAN_HOST_IMPORT", True)


def compute_family(phys: PhysicalDevice) -> int:
    """The queue family every submit goes to: one with compute, graphics+compute preferred (it always has
    timestamps), and timestamps preferred over the graphics bit.

    A run is synchronous (the host waits for its outputs), so an upload on a dedicated transfer queue could
    not overlap anything of its own run; it would cost a second vkQueueSubmit, a semaphore the compute
    submit waits on, and a queue-family release/acquire barrier pair for each exclusively owned buffer,
    where one submit on one queue needs none of them."""
    compute = [f for f in phys.queue_families if f["flags"] & vk.VK_QUEUE_COMPUTE_BIT]
    if not compute:
        raise usage("E_VK_INIT", f"{phys.name} has no compute queue")
    compute.sort(key=lambda f: (f["timestamp_valid_bits"] == 0, not f["flags"] & vk.VK_QUEUE_GRAPHICS_BIT))
    return compute[0]["index"]


class _Steps:
    """Milliseconds between marks, for the debug log of opening and closing a device (``HLX_LOG=debug``)."""

    def __init__(self) -> None:
        self._last = time.perf_counter()
        self._parts: list[tuple[str, float]] = []

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self._parts.append((name, (now - self._last) * 1e3))
        self._last = now

    def __str__(self) -> str:
        return ", ".join(f"{name} {ms:.1f} ms" for name, ms in self._parts)


class DeviceCore:
    """A Vulkan device opened for compute.

    ``selector`` picks the device (hlx_core.device.selection: ranked index, name substring or UUID; None
    reads HLX_VULKAN_DEVICE, else takes the best). ``validation`` (or HLX_VULKAN_VALIDATION=1) turns on the
    Khronos validation layer.
    """

    def __init__(self, selector: int | str | None = None, validation: bool = False) -> None:
        self.closed = True  # until everything below exists
        self.closing = False  # while close() runs (it may wait for a timed-out run on another thread)
        steps = _Steps()
        self.validation = validation_requested(validation)
        self.instance = get_instance(self.validation)
        self.phys = select_device(list_devices(self.validation), selector, backend="vulkan", env=DEVICE_ENV)
        self.limits = self.phys.limits_for_plans()
        steps.mark("instance and devices")
        self._teardown: list[tuple[str, Callable[[], None]]] = []  # (what, destroyer), in creation order
        self._on_close: list[Callable[[], None]] = []
        try:
            self._create_device()
            steps.mark("vkCreateDevice")
            self.allocator = self._own(MemoryAllocator(self.device, self.phys), "destroy")
            self.staging = self._own(StagingRing(self.allocator), "destroy")  # its buffer: on first use
            self.shaders = self._own(ShaderCache(self.device, self.phys, self.features), "destroy")
            self.pipeline_cache = self._own(PipelineCache(self.device, self.phys), "destroy")
            steps.mark("pipeline cache")
            # Vulkan 1.3 (the instance's and the device's) reports whether each pipeline came from the cache.
            feedback = min(self.instance.api_version, self.phys.api_version) >= make_version(1, 3)
            self.pipelines = self._own(PipelineManager(self.device, self.shaders, self.pipeline_cache, feedback),
                                       "destroy")
            spin = spin_budget(SPIN_SETTING, SPIN_MAX_SETTING, self.phys.kind == "cpu")
            self.submitter = self._own(Submitter(self.device, self.queue, self.queue_family, spin), "destroy")
        except BaseException:
            self._destroy()
            raise
        # Only the readback path imports host memory: a zero-copy device reads its outputs in place.
        self.host_import = (self._host_import() if HOST_IMPORT_EXTENSION in self.extensions and not self.zero_copy
                            else None)
        steps.mark("the rest")
        log.debug("opened %s: %s", self.phys.name, steps)
        family = self.phys.queue_families[self.queue_family]
        self.timestamp_bits: int = family["timestamp_valid_bits"]
        # HLX_VULKAN_TIMESTAMPS=0: runs record no timestamps (no gpu_ms timings), which tells what they cost.
        self.timestamps = self.timestamp_bits > 0 and env_flag("HLX_VULKAN_TIMESTAMPS", True)
        self.closed = False
        register_for_exit(self)

    def _own(self, obj: Any, method: str) -> Any:
        self._teardown.append((type(obj).__name__, getattr(obj, method)))
        return obj

    def _create_device(self) -> None:
        phys = self.phys
        self.queue_family = compute_family(phys)
        prio = ffi.new("float[]", [1.0])
        qinfo = new_struct("VkDeviceQueueCreateInfo", vk.VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                           queueFamilyIndex=self.queue_family, queueCount=1, pQueuePriorities=prio)
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
        wanted = ENABLE_EXTENSIONS + ((HOST_IMPORT_EXTENSION,) if host_import_wanted(phys) else ())
        self.extensions = [e for e in wanted if e in phys.extensions]
        ext_c = [ffi.new("char[]", e.encode()) for e in self.extensions]
        ext_arr = ffi.new("char*[]", ext_c) if ext_c else NULL
        ci = new_struct("VkDeviceCreateInfo", vk.VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, pNext=ffi.cast("void*", head),
                        queueCreateInfoCount=1, pQueueCreateInfos=qinfo,
                        enabledExtensionCount=len(ext_c), ppEnabledExtensionNames=ext_arr)
        self.device = create("VkDevice*", lib.vkCreateDevice, phys.handle, ci, NULL,
                             what=f"vkCreateDevice on {phys.name}")
        self._teardown.append(("vkDestroyDevice", lambda: lib.vkDestroyDevice(self.device, NULL)))
        q = ffi.new("VkQueue*")
        lib.vkGetDeviceQueue(self.device, self.queue_family, 0, q)
        self.queue = q[0]

    def _host_import(self) -> HostImport | None:
        """The device's host-memory import: its entry point and pointer alignment (None if it has none)."""
        fn = lib.vkGetDeviceProcAddr(self.device, b"vkGetMemoryHostPointerPropertiesEXT")
        if fn == NULL:
            return None
        props = new_struct("VkPhysicalDeviceExternalMemoryHostPropertiesEXT",
                           vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_EXTERNAL_MEMORY_HOST_PROPERTIES_EXT)
        props2 = new_struct("VkPhysicalDeviceProperties2", vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                            pNext=ffi.cast("void*", props))
        lib.vkGetPhysicalDeviceProperties2(self.phys.handle, props2)
        return HostImport(self.device, ffi.cast("PFN_vkGetMemoryHostPointerPropertiesEXT", fn),
                          max(int(props.minImportedHostPointerAlignment), 4096), self.allocator.pick_type)

    # -- what owners use ------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.phys.name

    @property
    def api_version(self) -> str:
        """The device's Vulkan version, "major.minor.patch"."""
        return self.phys.api_version_str

    @property
    def zero_copy(self) -> bool:
        return self.allocator.zero_copy

    @property
    def pipeline_statistics_supported(self) -> bool:
        """Whether the driver reports what it compiled (VK_KHR_pipeline_executable_properties enabled with its
        pipelineExecutableInfo feature)."""
        return STATISTICS_EXTENSION in self.extensions and bool(self.features.get("pipelineExecutableInfo"))

    def pipeline_statistics(self, spirv: bytes, entry_point: str = "main",
                            workgroup: tuple[int, int, int] | None = None,
                            spec: Iterable[tuple[int, Any]] = ()) -> dict[str, int | float | bool]:
        """The driver's statistics of this pipeline (registers, spills, memory: PipelineManager.statistics);
        E_UNSUPPORTED on a device without VK_KHR_pipeline_executable_properties."""
        if not self.pipeline_statistics_supported:
            raise usage("E_UNSUPPORTED", f"{self.phys.name} does not report pipeline statistics "
                        f"({STATISTICS_EXTENSION} with pipelineExecutableInfo is not offered)")
        return self.pipelines.statistics(spirv, entry_point, workgroup, spec)

    def query_pool(self, count: int) -> QueryPool | None:
        """``count`` timestamp queries, or None when the compute queue has no valid timestamp bits."""
        if not self.timestamps:
            return None
        return QueryPool(self.device, count, self.timestamp_bits, self.phys.limits["timestampPeriod"])

    def memory_info(self) -> dict[str, Any]:
        """Heaps (with usage and budget under VK_EXT_memory_budget), the allocator's blocks and the staging
        ring."""
        return {"device": self.phys.name, "heaps": self.allocator.heap_info(), "zero_copy": self.zero_copy,
                **self.allocator.stats(), "staging_bytes": self.staging.capacity}

    # -- lifetime -------------------------------------------------------------------------------------------
    def on_close(self, release: Callable[[], None]) -> None:
        """Have ``release`` hand back what its owner made on this device, when the core closes (after the
        device is idle, before anything of the core is destroyed)."""
        self._on_close.append(release)

    def close(self) -> None:
        """Destroy every Vulkan object of this core, its owners' first, once the device has finished its work
        (a timed-out run included); safe to call more than once."""
        if self.closed:
            return
        self.closed = self.closing = True
        try:
            self._destroy()
        finally:
            self.closing = False

    def forget(self) -> None:
        """Drop this core without a driver call: in a process forked from the one that made it, its objects
        are the parent's."""
        self.closed = True
        self._on_close.clear()
        self._teardown.clear()

    def _destroy(self) -> None:
        steps = _Steps()
        if self._teardown:
            lib.vkDeviceWaitIdle(self.device)
            steps.mark("vkDeviceWaitIdle")
        while self._on_close:
            self._on_close.pop()()
        steps.mark("owners' objects")
        while self._teardown:
            what, destroy = self._teardown.pop()
            try:
                destroy()
            except HLXError:  # the pipeline cache's save on a lost device: destroy the rest regardless
                pass
            steps.mark(what)
        log.debug("closed %s: %s", self.phys.name, steps)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"<DeviceCore {self.phys.name!r} Vulkan {self.api_version} {'closed' if self.closed else 'open'}>"
