"""The process-wide VkInstance: created lazily under a lock, destroyed at interpreter exit.

There is one instance per validation mode (normally exactly one per process: with validation when
``HLX_VULKAN_VALIDATION=1`` or a context asks for it). With validation, a VK_EXT_debug_utils messenger routes
every message to the logger ``hlx.vulkan`` at the matching level and counts messages per severity, so tests
can assert that a whole session produced no warnings or errors (``validation_counts()``). Synchronization
validation is switched on with it (``HLX_VULKAN_SYNC_VALIDATION=0`` turns it off): a missing or wrong barrier
is then reported as an error, so "zero messages" also means every hazard between dispatches and copies is
covered.

In a child made by fork() the instances and device cores are the parent's driver objects: the child forgets
them without a driver call (see ``_after_fork_in_child``) and creates its own on first use.
"""
from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import deque
from typing import Callable

from hlx_core.settings import env_flag

from hlx_vulkan_raw.errors import VulkanError, check, create, result_error, usage
from hlx_vulkan_raw.loader import NULL, chain, cstr, ffi, lib, make_version, new_struct, version_str, vk

log = logging.getLogger("hlx.vulkan")

VALIDATION_LAYER = "VK_LAYER_KHRONOS_validation"
DEBUG_UTILS = "VK_EXT_debug_utils"
VALIDATION_FEATURES = "VK_EXT_validation_features"  # offered by the validation layer itself
TARGET_API = make_version(1, 3, 0)
MIN_API = make_version(1, 1, 0)

_SEVERITIES = (  # (bit, name, logging level)
    (vk.VK_DEBUG_UTILS_MESSAGE_SEVERITY_VERBOSE_BIT_EXT, "verbose", logging.DEBUG),
    (vk.VK_DEBUG_UTILS_MESSAGE_SEVERITY_INFO_BIT_EXT, "info", logging.DEBUG),  # mostly loader chatter
    (vk.VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT, "warning", logging.WARNING),
    (vk.VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT, "error", logging.ERROR),
)

_lock = threading.RLock()
_counts: dict[str, int] = {name: 0 for _, name, _ in _SEVERITIES}
_recent: "deque[str]" = deque(maxlen=20)  # the latest warning/error messages, for test failure reports
_instances: dict[bool, "Instance"] = {}
_exit_hooks: "weakref.WeakSet" = weakref.WeakSet()  # device cores, closed before the instance dies


def validation_requested(explicit: bool = False) -> bool:
    """Validation is on when asked for explicitly or through HLX_VULKAN_VALIDATION=1."""
    return bool(explicit) or env_flag("HLX_VULKAN_VALIDATION", False)


def validation_counts() -> dict[str, int]:
    """Messages received from the validation layers (and the loader) per severity since process start or
    the last ``reset_validation_counts()``."""
    with _lock:
        return dict(_counts)


def reset_validation_counts() -> None:
    with _lock:
        for k in _counts:
            _counts[k] = 0
        _recent.clear()


def validation_messages() -> list[str]:
    """The most recent (up to 20) warning and error messages."""
    with _lock:
        return list(_recent)


@ffi.callback("PFN_vkDebugUtilsMessengerCallbackEXT")
def _on_message(severity, types, data, _user):  # called by the driver, possibly on its own threads
    try:
        name, level = "info", logging.INFO
        for bit, sev_name, sev_level in _SEVERITIES:
            if severity & bit:
                name, level = sev_name, sev_level
        with _lock:
            _counts[name] += 1
        msg_id = cstr(data.pMessageIdName) if data.pMessageIdName != NULL else ""
        text = cstr(data.pMessage) if data.pMessage != NULL else ""
        if level >= logging.WARNING:
            with _lock:
                _recent.append(f"{name}: {text}")
        log.log(level, "[%s] %s", msg_id, text)
    except Exception:  # an exception must never unwind into the driver
        pass
    return 0  # VK_FALSE: never abort the call


def _messenger_info():
    sev = 0
    for bit, name, _ in _SEVERITIES:
        if name != "verbose" or env_flag("HLX_VULKAN_VERBOSE", False):
            sev |= bit
    return new_struct(
        "VkDebugUtilsMessengerCreateInfoEXT", vk.VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        messageSeverity=sev,
        messageType=(vk.VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | vk.VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT
                     | vk.VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT),
        pfnUserCallback=_on_message)


def _layer_names() -> set[str]:
    count = ffi.new("uint32_t*")
    check(lib.vkEnumerateInstanceLayerProperties(count, NULL), "vkEnumerateInstanceLayerProperties")
    props = ffi.new("VkLayerProperties[]", count[0])
    check(lib.vkEnumerateInstanceLayerProperties(count, props), "vkEnumerateInstanceLayerProperties")
    return {cstr(props[i].layerName) for i in range(count[0])}


def _instance_extensions(layer: str | None = None) -> set[str]:
    """Instance extensions of the loader and drivers, or those a layer adds."""
    name = ffi.new("char[]", layer.encode()) if layer else NULL
    count = ffi.new("uint32_t*")
    check(lib.vkEnumerateInstanceExtensionProperties(name, count, NULL), "vkEnumerateInstanceExtensionProperties")
    props = ffi.new("VkExtensionProperties[]", count[0])
    check(lib.vkEnumerateInstanceExtensionProperties(name, count, props), "vkEnumerateInstanceExtensionProperties")
    return {cstr(props[i].extensionName) for i in range(count[0])}


def _sync_validation_requested() -> bool:
    return env_flag("HLX_VULKAN_SYNC_VALIDATION", True)


def _loader_version() -> int:
    out = ffi.new("uint32_t*")
    try:
        if lib.vkEnumerateInstanceVersion(out) == 0:
            return int(out[0])
    except AttributeError:  # a Vulkan 1.0 loader
        pass
    return make_version(1, 0, 0)


class Instance:
    """A VkInstance plus its debug messenger. Use ``get_instance``; never construct directly."""

    def __init__(self, validation: bool) -> None:
        self.validation = validation
        self.api_version = min(_loader_version(), TARGET_API)
        if self.api_version < MIN_API:
            raise usage("E_VK_INIT", f"the Vulkan loader offers only {version_str(self.api_version)}; HLX needs "
                        "Vulkan 1.1 or newer")
        layers: list[str] = []
        exts: list[str] = []
        self.sync_validation = False
        if validation:
            if VALIDATION_LAYER not in _layer_names():
                raise usage("E_VK_INIT", f"validation was requested but {VALIDATION_LAYER} is not installed "
                            "(Debian: vulkan-validationlayers)")
            layers.append(VALIDATION_LAYER)
            if DEBUG_UTILS in _instance_extensions():
                exts.append(DEBUG_UTILS)
            if _sync_validation_requested() and VALIDATION_FEATURES in _instance_extensions(VALIDATION_LAYER):
                exts.append(VALIDATION_FEATURES)
                self.sync_validation = True
        self._keep = [ffi.new("char[]", s.encode()) for s in layers + exts]
        layer_ptrs = ffi.new("char*[]", self._keep[:len(layers)]) if layers else NULL
        ext_ptrs = ffi.new("char*[]", self._keep[len(layers):]) if exts else NULL
        app_name = ffi.new("char[]", b"hlx")
        app = new_struct("VkApplicationInfo", vk.VK_STRUCTURE_TYPE_APPLICATION_INFO, pApplicationName=app_name,
                         applicationVersion=make_version(0, 1, 0), pEngineName=app_name,
                         engineVersion=make_version(0, 1, 0), apiVersion=self.api_version)
        info = new_struct("VkInstanceCreateInfo", vk.VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, pApplicationInfo=app,
                          enabledLayerCount=len(layers), ppEnabledLayerNames=layer_ptrs,
                          enabledExtensionCount=len(exts), ppEnabledExtensionNames=ext_ptrs)
        messenger_info = _messenger_info() if DEBUG_UTILS in exts else None
        links = [info]
        if self.sync_validation:
            enables = ffi.new("VkValidationFeatureEnableEXT[]",
                              [vk.VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT])
            features = new_struct("VkValidationFeaturesEXT", vk.VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT,
                                  enabledValidationFeatureCount=1, pEnabledValidationFeatures=enables)
            links.append(features)
        if messenger_info is not None:
            links.append(messenger_info)  # last: it is reused for the messenger, whose pNext must stay NULL
        chain(*links)  # the messenger also reports on instance creation and destruction
        try:
            self.handle = create("VkInstance*", lib.vkCreateInstance, info, NULL, what="vkCreateInstance")
        except VulkanError as exc:
            if exc.result != vk.VK_ERROR_INCOMPATIBLE_DRIVER:
                raise
            # The loader found no usable driver (ICD).
            raise result_error(exc.result, "vkCreateInstance (no Vulkan driver found; install one, e.g. "
                                           "mesa-vulkan-drivers, or check VK_ICD_FILENAMES)") from None
        self._messenger = None
        self._destroy_messenger: Callable | None = None
        if messenger_info is not None:
            self._create_messenger(messenger_info)

    def proc(self, name: str):
        """An instance-level extension entry point, or None when the driver lacks it."""
        fn = lib.vkGetInstanceProcAddr(self.handle, name.encode())
        return None if fn == NULL else ffi.cast(f"PFN_{name}", fn)

    def _create_messenger(self, info) -> None:
        create_messenger = self.proc("vkCreateDebugUtilsMessengerEXT")
        self._destroy_messenger = self.proc("vkDestroyDebugUtilsMessengerEXT")
        if create_messenger is None or self._destroy_messenger is None:
            return
        try:
            self._messenger = create("VkDebugUtilsMessengerEXT*", create_messenger, self.handle, info, NULL,
                                     what="vkCreateDebugUtilsMessengerEXT")
        except VulkanError:
            lib.vkDestroyInstance(self.handle, NULL)
            raise

    def destroy(self) -> None:
        if self.handle is None:
            return
        if self._messenger is not None and self._destroy_messenger is not None:
            self._destroy_messenger(self.handle, self._messenger, NULL)
            self._messenger = None
        lib.vkDestroyInstance(self.handle, NULL)
        self.handle = None


def get_instance(validation: bool = False) -> Instance:
    """The process's instance for this validation mode, created on first use (thread-safe)."""
    with _lock:
        inst = _instances.get(validation)
        if inst is None:
            start = time.perf_counter()
            inst = _instances[validation] = Instance(validation)
            log.debug("created the Vulkan instance in %.1f ms", (time.perf_counter() - start) * 1e3)
        return inst


def register_for_exit(obj) -> None:
    """Have ``obj.close()`` run at interpreter exit, before the instances are destroyed (``obj.closing``: a
    close still running on another thread; ``obj.forget()``: drop it in a forked child)."""
    with _lock:
        _exit_hooks.add(obj)


@atexit.register
def _shutdown() -> None:
    start = time.perf_counter()
    with _lock:
        for obj in list(_exit_hooks):
            try:
                obj.close()
            except Exception as exc:  # exit must go on; say what could not be released
                log.warning("cleanup at exit failed for %r: %s", obj, exc)
        if any(obj.closing for obj in list(_exit_hooks)):
            # Another thread is still closing a device (waiting for a timed-out run): destroying its
            # instance under it is undefined, so the instance is left to the end of the process.
            log.warning("a Vulkan device is still finishing work at exit; its instance is not destroyed")
        else:
            closed = time.perf_counter()
            for inst in _instances.values():
                inst.destroy()
            log.debug("at exit: devices closed in %.1f ms, instances destroyed in %.1f ms",
                      (closed - start) * 1e3, (time.perf_counter() - closed) * 1e3)
        _instances.clear()


def _after_fork_in_child() -> None:
    """In a forked child: the parent's instances and device cores share its driver objects without the
    driver's threads, so none is used, closed or destroyed here; the child creates its own."""
    global _lock
    _lock = threading.RLock()  # another thread of the parent may have held it at the fork
    for obj in list(_exit_hooks):
        obj.forget()
    _exit_hooks.clear()
    _instances.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
