"""Entry point of the built-in Vulkan backend (group ``hlx.backends``), registered like any third party."""
from __future__ import annotations

from hlx_core.hookspecs import hookimpl

from hlx_vulkan_raw.backend import VulkanBackend


@hookimpl
def hlx_register_backends():
    return [VulkanBackend()]
