"""NVIDIA's management library (``pynvml`` from the nvidia-ml-py wheel, ``pip install 'hlx[bench]'``):
the driver version for the rows of CUDA peers and the total-energy counter the power suite reads.

Absent library, absent driver and a device without the counter all read as None, so callers can say
what they skip instead of failing."""
from __future__ import annotations

from typing import Any

_state: dict[str, Any] = {}


def library() -> Any:
    """pynvml, initialised once, or None where it cannot be imported or finds no NVIDIA driver."""
    if "nvml" not in _state:
        try:
            import pynvml
            pynvml.nvmlInit()
        except Exception:  # ImportError, or NVMLError where no driver is loaded
            pynvml = None
        _state["nvml"] = pynvml
    return _state["nvml"]


def driver_version() -> str | None:
    nvml = library()
    if nvml is None:
        return None
    version = nvml.nvmlSystemGetDriverVersion()
    return version.decode() if isinstance(version, bytes) else str(version)


def device(uuid: str = "") -> Any:
    """The NVML handle of the GPU whose UUID is ``uuid`` (a Vulkan device UUID, dashes or not), else of
    GPU 0 when there is exactly one; None otherwise."""
    nvml = library()
    if nvml is None:
        return None
    count = nvml.nvmlDeviceGetCount()
    want = uuid.replace("-", "").lower()
    for i in range(count):
        handle = nvml.nvmlDeviceGetHandleByIndex(i)
        text = nvml.nvmlDeviceGetUUID(handle)
        text = text.decode() if isinstance(text, bytes) else str(text)
        if want and text.lower().removeprefix("gpu-").replace("-", "") == want:
            return handle
    return nvml.nvmlDeviceGetHandleByIndex(0) if count == 1 else None


def energy_joules(handle: Any) -> float | None:
    """The device's total-energy counter since the driver loaded, in joules; None where it has none."""
    nvml = library()
    try:
        return nvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1e3  # millijoules
    except Exception:  # NVMLError_NotSupported on GPUs before Volta
        return None
