"""``hlx.plugin``: the one import a backend author needs (re-exported from hlx_core, no logic here).

The protocol a backend implements, the planned form of a contract it executes, the device kit GPU
backends share, the pluggy marker for hook functions, and the kernel registry for NumPy references.
docs/PLUGINS.md walks through it; examples/hlx-backend-example is a complete backend built on it alone.
"""
from hlx_core.backend import Availability, Backend, DeviceInfo, DeviceKind, Execution, Session
from hlx_core.device.layout import BufferLayout, BufferSlot, align, buffer_layout, host_bytes, to_array
from hlx_core.device.limits import DeviceLimits, check_plan
from hlx_core.device.lru import LRU
from hlx_core.device.poison import POISON_BYTE, POISON_WORD, cleared_slots, fill_word, poison_bytes, poison_enabled
from hlx_core.device.residency import Residency
from hlx_core.device.selection import select_device
from hlx_core.errors import BackendError, HLXError
from hlx_core.hookspecs import ENTRY_POINT_GROUP, hookimpl
from hlx_core.kernels.spec import KernelRegistry, KernelSpec
from hlx_core.plan import Binding, InputRef, OutputRef, Plan, Shader, Stage, StageRef
from hlx_core.registry import kernel_registry, register_plugin, unregister_plugin

__all__ = [
    # the protocol
    "Backend", "Session", "Availability", "DeviceInfo", "DeviceKind", "Execution",
    # what a session executes
    "Plan", "Stage", "Shader", "Binding", "InputRef", "OutputRef", "StageRef",
    # the device kit
    "BufferLayout", "BufferSlot", "buffer_layout", "align", "to_array", "host_bytes",
    "DeviceLimits", "check_plan", "LRU", "Residency", "select_device",
    "POISON_BYTE", "POISON_WORD", "poison_bytes", "poison_enabled", "cleared_slots", "fill_word",
    # registration
    "hookimpl", "ENTRY_POINT_GROUP", "KernelSpec", "KernelRegistry", "kernel_registry",
    "register_plugin", "unregister_plugin",
    # errors
    "HLXError", "BackendError",
]
