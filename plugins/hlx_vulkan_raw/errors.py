"""VkResult -> HLXError mapping and the plugin's error classes.

Every Vulkan call that returns a VkResult goes through ``check``; the error carries a stable HLX code and
the Vulkan name of the result (``VK_ERROR_OUT_OF_DEVICE_MEMORY``) plus what was being done, so a user sees
both the category and the driver's answer.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

from hlx_core.errors import BackendError, HLXError

from hlx_vulkan_raw.loader import ffi

VK_SUCCESS = 0

_RESULT_NAMES: dict[int, str] = {v: k for v, k in ffi.typeof("VkResult").elements.items()
                                 if k != "VK_RESULT_MAX_ENUM"}

# Codes by VkResult name; every other result (VK_ERROR_UNKNOWN, VK_INCOMPLETE, the surface and video results a
# compute runtime never provokes, ...) is E_VK_ERROR, still with its Vulkan name in the message.
_CODES_BY_NAME: dict[str, str] = {
    "VK_ERROR_OUT_OF_HOST_MEMORY": "E_HOST_OOM",
    "VK_ERROR_OUT_OF_DEVICE_MEMORY": "E_DEVICE_OOM",
    "VK_ERROR_FRAGMENTATION": "E_DEVICE_OOM",        # an allocation failed for fragmentation of a heap
    "VK_ERROR_INITIALIZATION_FAILED": "E_VK_INIT",
    "VK_ERROR_LAYER_NOT_PRESENT": "E_VK_INIT",
    "VK_ERROR_EXTENSION_NOT_PRESENT": "E_VK_INIT",
    "VK_ERROR_FEATURE_NOT_PRESENT": "E_VK_INIT",
    "VK_ERROR_INCOMPATIBLE_DRIVER": "E_VK_INIT",
    "VK_ERROR_DEVICE_LOST": "E_DEVICE_LOST",
    "VK_ERROR_MEMORY_MAP_FAILED": "E_VK_MEMORY_MAP",
    "VK_ERROR_TOO_MANY_OBJECTS": "E_LIMIT_EXCEEDED",
    "VK_ERROR_FRAGMENTED_POOL": "E_LIMIT_EXCEEDED",
    "VK_ERROR_OUT_OF_POOL_MEMORY": "E_LIMIT_EXCEEDED",
    "VK_ERROR_FORMAT_NOT_SUPPORTED": "E_UNSUPPORTED",
    "VK_ERROR_INVALID_SHADER_NV": "E_SPIRV_INVALID",
    "VK_ERROR_INCOMPATIBLE_SHADER_BINARY_EXT": "E_SPIRV_INVALID",
    "VK_ERROR_VALIDATION_FAILED_EXT": "E_VK_VALIDATION",
    "VK_TIMEOUT": "E_TIMEOUT",
    "VK_NOT_READY": "E_TIMEOUT",                     # a result asked for without waiting was not there yet
}
_CODES: dict[int, str] = {v: _CODES_BY_NAME.get(k, "E_VK_ERROR") for v, k in _RESULT_NAMES.items()
                          if k != "VK_SUCCESS"}


class VulkanError(BackendError):
    """A failure reported by the Vulkan driver or found by the Vulkan backend; ``result`` is the VkResult
    (None when the backend refused before calling the driver)."""

    default_code = "E_VK_ERROR"

    def __init__(self, code: str | None = None, message: str = "", *, path: str | None = None,
                 result: int | None = None) -> None:
        self.result = result
        super().__init__(code, message, path=path)


class VulkanUsageError(VulkanError):
    """A call the Vulkan backend refuses before reaching the driver (freed buffer, wrong bindings, ...)."""


def result_name(result: int) -> str:
    return _RESULT_NAMES.get(int(result), f"VkResult({int(result)})")


def result_error(result: int, what: str) -> VulkanError:
    """The HLXError for a failed VkResult, naming the call."""
    code = _CODES.get(int(result), "E_VK_ERROR")
    return VulkanError(code, f"{what} failed: {result_name(result)}", result=int(result))


def check(result: int, what: str) -> None:
    """Raise the mapped HLXError when ``result`` is not VK_SUCCESS (positive non-success codes included,
    since every call made through here treats them as failures)."""
    if result != VK_SUCCESS:
        raise result_error(result, what)


def create(ctype: str, fn: Callable[..., int], *args: Any, what: str) -> Any:
    """Call a Vulkan create/allocate function whose last parameter is the output pointer: ``fn(*args, out)``
    with ``out = ffi.new(ctype)``, checked, and the created object returned (``what`` names the call in
    the error)."""
    out = ffi.new(ctype)
    check(fn(*args, out), what)
    return out[0]


def usage(code: str, message: str, path: str | None = None) -> VulkanUsageError:
    return VulkanUsageError(code, message, path=path)


def guarded(fn: Callable) -> Callable:
    """Public entry points never leak a raw cffi, vulkan-package or Python exception: anything that is
    not already an HLXError becomes E_BACKEND_INTERNAL naming the call."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except HLXError:
            raise
        except Exception as exc:
            raise VulkanError("E_BACKEND_INTERNAL", f"{fn.__qualname__}: {type(exc).__name__}: {exc}") from exc

    return wrapper
