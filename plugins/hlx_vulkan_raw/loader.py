"""The one place the ``vulkan`` cffi package is imported.

The package dlopens libvulkan when imported and raises OSError when the loader is missing, so importing it
is guarded here: a machine without Vulkan gets ``E_BACKEND_UNAVAILABLE`` with the reason, and ``import hlx``
(which never imports this module) keeps working. Everything else in the plugin uses ``ffi`` and ``lib``
from here: calling the C entry points directly keeps the hot path cheap and lets every VkResult go through
one error mapping instead of the package's own exception classes.
"""
from __future__ import annotations

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


def make_version(major: int, minor: int, patch: int = 0) -> int:
    """VK_MAKE_API_VERSION with variant 0."""
    return (major << 22) | (minor << 12) | patch


def version_str(version: int) -> str:
    """A packed Vulkan version as "major.minor.patch"."""
    return f"{(version >> 22) & 0x7F}.{(version >> 12) & 0x3FF}.{version & 0xFFF}"


def new_struct(ctype: str, stype: int | None = None, **fields):
    """``ffi.new("<ctype>*")`` with sType and fields set; the caller keeps referenced memory alive."""
    p = ffi.new(ctype + "*")
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
