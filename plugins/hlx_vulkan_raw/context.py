"""VulkanContext: the seeds' handle API (``ctx.buffer(n)``, ``ctx.kernel(spirv)``, ``ctx.sync()``) on a DeviceCore.

The context is the unit of ownership: its buffers and kernels belong to it and are released by ``cleanup()``
(idempotent; also on garbage collection and at interpreter exit, through the core). Every public method takes
the context lock, so a context may be shared between threads.
"""
from __future__ import annotations

from typing import Any

from hlx_vulkan_raw.api import Buffer, ContextState, Kernel
from hlx_vulkan_raw.core import DeviceCore
from hlx_vulkan_raw.errors import guarded


class VulkanContext:
    """A Vulkan device opened for the handle API.

    ``device_index`` selects the device: an index into the ranked list (0 is the best device), a name
    substring or a UUID; None reads HLX_VULKAN_DEVICE, else takes the best. ``enable_validation`` (or
    HLX_VULKAN_VALIDATION=1) turns on the Khronos validation layer.
    """

    @guarded
    def __init__(self, device_index: int | str | None = None, enable_validation: bool = False) -> None:
        core = DeviceCore(device_index, enable_validation)
        self._state = ContextState(core)
        core.on_close(self._state.release)

    @property
    def core(self) -> DeviceCore:
        return self._state.core

    @property
    def closed(self) -> bool:
        return self._state.closed

    @property
    def device_name(self) -> str:
        return self.core.name

    @property
    def api_version(self) -> str:
        """The device's Vulkan version, "major.minor.patch"."""
        return self.core.api_version

    @property
    def zero_copy(self) -> bool:
        return self.core.zero_copy

    # -- shaders --------------------------------------------------------------------------------------------
    @guarded
    def load_shader(self, spirv: bytes, entry_point: str = "main") -> str:
        """Create (or find) the shader module for these bytes; returns its content id (E_SPIRV_INVALID
        for bad SPIR-V, E_UNSUPPORTED when the device lacks what the shader needs)."""
        with self._state.lock:
            self._state.live()
            module, _info = self.core.shaders.load(spirv, entry_point)
            return module.id

    def is_shader_cached(self, shader_id: str) -> bool:
        with self._state.lock:
            return isinstance(shader_id, str) and not self.closed and shader_id in self.core.shaders.modules

    def cache_size(self) -> int:
        """Number of cached shader modules."""
        with self._state.lock:
            return 0 if self.closed else len(self.core.shaders.modules)

    @guarded
    def clear_cache(self) -> None:
        """Destroy the cached shader modules (pipelines built from them stay valid)."""
        with self._state.lock:
            self._state.live()
            self.core.shaders.destroy()

    # -- memory ---------------------------------------------------------------------------------------------
    @guarded
    def get_memory_info(self) -> dict[str, Any]:
        """Heaps (with usage and budget under VK_EXT_memory_budget), the allocator's blocks, the staging ring
        and the number of live buffers."""
        with self._state.lock:
            self._state.live()
            return {**self.core.memory_info(), "buffers": self._state.buffer_count}

    # -- buffers and kernels --------------------------------------------------------------------------------
    @guarded
    def buffer(self, nbytes: int) -> Buffer:
        """A device buffer of ``nbytes`` (E_VK_BUFFER_SIZE, E_DEVICE_OOM)."""
        with self._state.lock:
            self._state.live()
            self._state.collect()
            return Buffer(self._state, nbytes)

    @guarded
    def kernel(self, spirv: bytes, entry_point: str = "main") -> Kernel:
        """A kernel for the shader's entry point (validated and reflected now)."""
        with self._state.lock:
            self._state.live()
            self._state.collect()
            k = Kernel(self._state, spirv, entry_point)
            self._state.add_kernel(k)
            return k

    @guarded
    def sync(self) -> None:
        """Wait until every launched kernel has finished."""
        with self._state.lock:
            self._state.live()
            self.core.submitter.sync()
            self._state.collect()

    # -- lifetime -------------------------------------------------------------------------------------------
    @guarded
    def cleanup(self) -> None:
        """Destroy every Vulkan object of this context; safe to call more than once."""
        with self._state.lock:
            self.core.close()

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
        state = "closed" if self.closed else "open"
        return f"<VulkanContext {self.device_name!r} Vulkan {self.api_version} {state}>"
