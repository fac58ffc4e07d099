"""The one place the ``vulkan`` cffi package is imported.

The package dlopens libvulkan when imported and raises OSError when the loader is missing, so importing it
is guarded here: a machine without Vulkan gets ``E_BACKEND_UNAVAILABLE`` with the reason, and ``import hlx``
(which never imports this module) keeps working. Everything else in the plugin uses ``ffi`` and ``lib``
from here: calling the C entry points directly keeps the hot path cheap and lets every VkResult go through
one error mapping instead of the package's own exception classes.
"""
from __future__ import annotations

import cffi

from hlx_core.errors import BackendError

try:
    import vulkan as vk
except (OSError, ImportError) as _exc:  # no libvulkan.so.1, or the binding is not installed
    raise BackendError("E_BACKEND_UNAVAILABLE",
                       f"the Vulkan loader could not be loaded ({type(_exc).__name__}: {_exc}); "
                       "install libvulkan1 and a driver (e.g. mesa-vulkan-drivers)") from None

ffi = vk.ffi
lib = vk.lib
NULL = ffi.NULL

# Structs newer than the binding's headers (VK_KHR_shader_bfloat16, VK_NV_cooperative_matrix2), laid out as in
# the Vulkan specification. They live in a second cffi namespace (declarations only, no library) and are
# linked into pNext chains by address, so HLX reads these features instead of guessing from extension names.
ext_ffi = cffi.FFI()
ext_ffi.cdef("""
typedef struct {
    uint32_t sType; void* pNext;
    uint32_t shaderBFloat16Type; uint32_t shaderBFloat16DotProduct; uint32_t shaderBFloat16CooperativeMatrix;
} VkPhysicalDeviceShaderBfloat16FeaturesKHR;
typedef struct {
    uint32_t sType; void* pNext;
    uint32_t cooperativeMatrixWorkgroupScope; uint32_t cooperativeMatrixFlexibleDimensions;
    uint32_t cooperativeMatrixReductions; uint32_t cooperativeMatrixConversions;
    uint32_t cooperativeMatrixPerElementOperations; uint32_t cooperativeMatrixTensorAddressing;
    uint32_t cooperativeMatrixBlockLoads;
} VkPhysicalDeviceCooperativeMatrix2FeaturesNV;
""")
EXT_STRUCT_TYPES = {
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
    """``ffi.new("<ctype>*")`` with sType and fields set (``ext_ffi`` for the structs it declares); the
    caller keeps referenced memory alive."""
    p = (ext_ffi if ctype in EXT_STRUCT_TYPES else ffi).new(ctype + "*")
    if stype is not None:
        p.sType = stype
    for k, v in fields.items():
        setattr(p, k, v)
    return p


def chain(*structs) -> None:
    """Link structs (cdata pointers) through pNext in the order given."""
    for a, b in zip(structs, structs[1:]):
        a.pNext = ffi.cast("void*", b)


def cstr(s) -> str:
    """A C char array/pointer as a Python string."""
    return ffi.string(s).decode("utf-8", "replace")
