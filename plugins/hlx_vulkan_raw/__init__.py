"""hlx_vulkan_raw: the raw Vulkan backend of HLX (the ``vulkan`` cffi package over libvulkan).

Two products on one device core: ``VulkanSession`` executes plans for ``hlx.run``; ``VulkanContext`` with
``Buffer`` and ``Kernel`` is the handle API. Everything but ``VulkanBackend`` is imported lazily, so
importing this package works on a machine without a Vulkan loader; touching the rest there raises
E_BACKEND_UNAVAILABLE.
"""
from __future__ import annotations

from typing import Any

from hlx_vulkan_raw.backend import VulkanBackend

_LAZY = {
    "VulkanSession": "hlx_vulkan_raw.session",
    "VulkanContext": "hlx_vulkan_raw.context",
    "list_devices": "hlx_vulkan_raw.devices",
    "Buffer": "hlx_vulkan_raw.api",
    "Kernel": "hlx_vulkan_raw.api",
    "validation_counts": "hlx_vulkan_raw.instance",
    "reset_validation_counts": "hlx_vulkan_raw.instance",
    "validation_messages": "hlx_vulkan_raw.instance",
    "VulkanError": "hlx_vulkan_raw.errors",
    "VulkanUsageError": "hlx_vulkan_raw.errors",
}

__all__ = ["VulkanBackend", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hlx_vulkan_raw' has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(module), name)
