"""The "vulkan" backend: hlx_core's Backend protocol, opening VulkanSessions.

Importing this module never touches Vulkan; ``probe()`` does, once, and turns a missing loader or driver
into ``Availability(False, reason)`` so ``import hlx`` and the other backends keep working.
"""
from __future__ import annotations

import threading

from hlx_core.backend import Availability, Backend, Session
from hlx_core.distributions import version
from hlx_core.errors import BackendError, HLXError
from hlx_core.kernels.library import BY_NAME


class VulkanBackend(Backend):
    """Raw Vulkan through the ``vulkan`` cffi package."""

    name = "vulkan"
    deterministic_kernels = frozenset(BY_NAME)  # fixed-order shaders: the same bytes every run
    byte_settings = ("HLX_VULKAN_ROBUST",)  # out-of-range reads give zeros or whatever memory holds

    def __init__(self) -> None:
        self._availability: Availability | None = None
        self._lock = threading.Lock()

    def probe(self) -> Availability:
        with self._lock:
            if self._availability is None:
                self._availability = self._probe()
            return self._availability

    @staticmethod
    def _probe() -> Availability:
        try:
            from hlx_vulkan_raw.devices import list_devices
            from hlx_vulkan_raw.instance import get_instance
            from hlx_vulkan_raw.loader import version_str
            devices = list_devices()
            loader = version_str(get_instance().api_version)
        except HLXError as exc:
            return Availability(False, reason=exc.message or str(exc))
        except Exception as exc:  # a broken driver must not break backend discovery
            return Availability(False, reason=f"{type(exc).__name__}: {exc}")
        if not devices:
            return Availability(False, reason="the Vulkan loader found no Vulkan 1.1 device "
                                              "(install a driver, e.g. mesa-vulkan-drivers)")
        binding = version("vulkan") or "?"
        return Availability(True, devices=tuple(d.info() for d in devices),
                            version=f"vulkan-api {loader}, binding {binding}")

    def open(self, device: int | str | None = None) -> Session:
        avail = self.probe()
        if not avail.available:
            raise BackendError("E_BACKEND_UNAVAILABLE", f"vulkan: {avail.reason}")
        from hlx_vulkan_raw.session import VulkanSession
        return VulkanSession(device)
