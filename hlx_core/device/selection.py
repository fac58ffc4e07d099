"""Choosing a device the same way on every backend and in the runtime.

A selector is an index into the backend's ranked device list (0 is the best), a digit string, a UUID (with
or without dashes) or a case-insensitive substring of the name; None reads the backend's environment
variable (e.g. HLX_VULKAN_DEVICE), else takes the best device.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from hlx_core.errors import BackendError


class Named(Protocol):
    index: int
    name: str


D = TypeVar("D", bound=Named)


def check_selector(selector: Any, backend: str = "a") -> None:
    """E_DEVICE_UNKNOWN unless ``selector`` is None, an int (NumPy's too) or a string."""
    if selector is None or isinstance(selector, str):
        return
    if isinstance(selector, bool) or not hasattr(selector, "__index__"):
        raise BackendError("E_DEVICE_UNKNOWN", f"{backend} device is an index, a name substring or a UUID, "
                                               f"not {type(selector).__name__}")


def matches(device: Named, selector: Any) -> bool:
    """Whether a checked ``selector`` names ``device`` (None names every device)."""
    if selector is None:
        return True
    if not isinstance(selector, str):
        return device.index == int(selector)
    wanted = selector.strip().lower()
    if wanted.isdecimal():
        return device.index == int(wanted)
    bare = wanted.replace("-", "")
    uuid = str(getattr(device, "uuid", "") or "").replace("-", "").lower()
    if len(bare) == 32 and uuid == bare:
        return True
    return bool(wanted) and wanted in device.name.lower()


def select_device(devices: Sequence[D], selector: Any, *, backend: str, env: str | None = None) -> D:
    """The first of ``devices`` (ranked best first) that ``selector`` names, the first one for None and no
    environment variable: E_BACKEND_UNAVAILABLE when there is no device at all,
    E_DEVICE_UNKNOWN for a selector of the wrong type or one that matches nothing (listing the devices)."""
    if not devices:
        raise BackendError("E_BACKEND_UNAVAILABLE", f"{backend}: no device found")
    if selector is None:
        selector = os.environ.get(env) if env else None
        if not selector:
            return devices[0]  # the list is ranked: the backend's best
    check_selector(selector, backend)
    for d in devices:
        if matches(d, selector):
            return d
    listed = ", ".join(f"{d.index} {d.name!r}" for d in devices)
    raise BackendError("E_DEVICE_UNKNOWN", f"{backend} has no device matching {selector!r}; devices: {listed}")
