"""The one place the ``vulkan`` cffi package is loaded.

Only the package's cffi declarations (``vulkan._vulkancache``, its ``ffi``) are used, with libvulkan opened
here: everything in the plugin calls the C entry points through ``lib`` and reads enum values from it (``vk``),
which keeps the hot path cheap and lets every VkResult go through one error mapping instead of the package's
own exception classes. The package's Python layer (``vulkan/_vulkan.py``, a 1 MB module of wrappers and
constants, ~15 ms to import in every new process) is never imported. A missing binding or loader gives
``E_BACKEND_UNAVAILABLE`` with the reason, and ``import hlx`` (which never imports this module) keeps working.
"""
from __future__ import annotations

import ctypes
import importlib.util
import os
import sys
from typing import Any

from hlx_core.errors import BackendError

BINDING_FFI = "vulkan._vulkancache"  # the binding's out-of-line cffi module: declarations only, no Python layer
LIBRARY_NAMES = ("libvulkan.so.1", "vulkan-1.dll", "libvulkan.dylib")


def _binding_ffi() -> Any:
    """The binding's ``ffi``, loaded from its file without the package's ``__init__`` (which imports the
    Python layer); registered under its own name, so a later ``import vulkan`` shares it."""
    loaded = sys.modules.get(BINDING_FFI)
    if loaded is not None:
        return loaded.ffi
    package = importlib.util.find_spec("vulkan")
    if package is None or not package.submodule_search_locations:
        raise ImportError("the vulkan binding is not installed (pip install vulkan)")
    spec = importlib.util.spec_from_file_location(
        BINDING_FFI, os.path.join(list(package.submodule_search_locations)[0], "_vulkancache.py"))
    if spec is None or spec.loader is None:
        raise ImportError("the vulkan binding has no _vulkancache module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[BINDING_FFI] = module
    return module.ffi


def _open(ffi: Any) -> Any:
    for name in LIBRARY_NAMES:
        try:
            return ffi.dlopen(name)
        except OSError as exc:
            error = exc
    raise error


try:
    ffi = _binding_ffi()
    lib = _open(ffi)
except (OSError, ImportError) as _exc:  # no libvulkan.so.1, or the binding is not installed
    raise BackendError("E_BACKEND_UNAVAILABLE",
                       f"the Vulkan loader could not be loaded ({type(_exc).__name__}: {_exc}); "
                       "install libvulkan1 and a driver (e.g. mesa-vulkan-drivers)") from None

vk = lib  # enum values (vk.VK_SUCCESS): the C headers' own, as the declarations give them
NULL = ffi.NULL


def _feature_struct(name: str, *fields: str) -> type[ctypes.Structure]:
    """A feature struct as the Vulkan specification lays it out: sType, pNext, then VkBool32 fields."""
    return type(name, (ctypes.Structure,), {"_fields_": [("sType", ctypes.c_uint32), ("pNext", ctypes.c_void_p),
                                                         *((f, ctypes.c_uint32) for f in fields)]})


# Structs newer than the binding's headers (VK_KHR_shader_bfloat16, VK_NV_cooperative_matrix2), so HLX reads
# these features instead of guessing from extension names. They are ctypes structures linked into pNext
# chains by address: declaring them to cffi would parse C (pycparser) in every process that probes Vulkan.
EXT_STRUCTS: dict[str, type[ctypes.Structure]] = {
    "VkPhysicalDeviceShaderBfloat16FeaturesKHR": _feature_struct(
        "VkPhysicalDeviceShaderBfloat16FeaturesKHR",
        "shaderBFloat16Type", "shaderBFloat16DotProduct", "shaderBFloat16CooperativeMatrix"),
    "VkPhysicalDeviceCooperativeMatrix2FeaturesNV": _feature_struct(
        "VkPhysicalDeviceCooperativeMatrix2FeaturesNV",
        "cooperativeMatrixWorkgroupScope", "cooperativeMatrixFlexibleDimensions", "cooperativeMatrixReductions",
        "cooperativeMatrixConversions", "cooperativeMatrixPerElementOperations",
        "cooperativeMatrixTensorAddressing", "cooperativeMatrixBlockLoads"),
}
# VK_NV_cooperative_matrix2's properties: the largest flexible dimension, and one entry per type combination
# and scope that takes any multiple of its (M, N, K) granularity (with the workgroup size a workgroup-scope
# entry requires).
EXT_STRUCTS["VkPhysicalDeviceCooperativeMatrix2PropertiesNV"] = type(
    "VkPhysicalDeviceCooperativeMatrix2PropertiesNV", (ctypes.Structure,),
    {"_fields_": [("sType", ctypes.c_uint32), ("pNext", ctypes.c_void_p),
                  *((f, ctypes.c_uint32) for f in ("cooperativeMatrixWorkgroupScopeMaxWorkgroupSize",
                                                   "cooperativeMatrixFlexibleDimensionsMaxDimension",
                                                   "cooperativeMatrixWorkgroupScopeReservedSharedMemory"))]})
EXT_STRUCTS["VkCooperativeMatrixFlexibleDimensionsPropertiesNV"] = type(
    "VkCooperativeMatrixFlexibleDimensionsPropertiesNV", (ctypes.Structure,),
    {"_fields_": [("sType", ctypes.c_uint32), ("pNext", ctypes.c_void_p),
                  *((f, ctypes.c_uint32) for f in ("MGranularity", "NGranularity", "KGranularity", "AType",
                                                   "BType", "CType", "ResultType", "saturatingAccumulation",
                                                   "scope", "workgroupInvocations"))]})
EXT_STRUCT_TYPES = {
    "VkCooperativeMatrixFlexibleDimensionsPropertiesNV": 1000593001,
    "VkPhysicalDeviceCooperativeMatrix2PropertiesNV": 1000593002,
    "VkPhysicalDeviceShaderBfloat16FeaturesKHR": 1000141000,     # ..._SHADER_BFLOAT16_FEATURES_KHR
    "VkPhysicalDeviceCooperativeMatrix2FeaturesNV": 1000593000,  # ..._COOPERATIVE_MATRIX_2_FEATURES_NV
}


def make_version(major: int, minor: int, patch: int = 0) -> int:
    """VK_MAKE_API_VERSION with variant 0."""
    return (major << 22) | (minor << 12) | patch


def version_str(version: int) -> str:
    """A packed Vulkan version as "major.minor.patch"."""
    return f"{(version >> 22) & 0x7F}.{(version >> 12) & 0x3FF}.{version & 0xFFF}"


def new_struct(ctype: str, stype: int | None = None, **fields):
    """``ffi.new("<ctype>*")`` with sType and fields set (a zeroed ctypes structure for ``EXT_STRUCTS``);
    the caller keeps referenced memory alive."""
    p = EXT_STRUCTS[ctype]() if ctype in EXT_STRUCTS else ffi.new(ctype + "*")
    if stype is not None:
        p.sType = stype
    for k, v in fields.items():
        setattr(p, k, v)
    return p


def address(struct: Any) -> int:
    """The address of a struct made by ``new_struct`` (a cffi pointer or a ctypes structure)."""
    if isinstance(struct, ctypes.Structure):
        return ctypes.addressof(struct)
    return int(ffi.cast("uintptr_t", struct))


def chain(*structs) -> None:
    """Link structs made by ``new_struct`` through pNext in the order given."""
    for a, b in zip(structs, structs[1:]):
        a.pNext = address(b) if isinstance(a, ctypes.Structure) else ffi.cast("void*", address(b))


def cstr(s) -> str:
    """A C char array/pointer as a Python string."""
    return ffi.string(s).decode("utf-8", "replace")
