"""The peers HLX is measured against in the same process: torch (cuBLAS, cuDNN) and CuPy on CUDA, NumPy
on the host.

CUDA peers are timed with CUDA events around ``inner`` back-to-back calls, so a sample is the device's
time per call with the launch queue kept full, as HLX's GPU timestamps are. torch computes in full fp32
(TF32 off in matmul and cuDNN) and accumulates half-precision products in fp32, as HLX's kernels do.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from hlx_core.bench import nvml


@dataclass(frozen=True)
class Peer:
    """A peer implementation as the rows name it: ``impl`` (torch, cupy, numpy), the device and driver it
    ran on, the clock its samples come from, and the module itself."""

    impl: str
    device: str
    driver: str
    clock: str
    module: Any


def cuda_torch() -> Any:
    """The torch module when it is importable and sees a CUDA device, with TF32 off (the peer computes in
    full fp32 as HLX does); None otherwise, and the peer columns are skipped."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False
    return torch


def cuda_cupy() -> Any:
    """The cupy module when it is importable and finds a CUDA device, else None."""
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
    except Exception:  # ImportError, or CUDARuntimeError without a driver
        return None
    return cupy


def _cuda_version(packed: int) -> str:
    """CUDA's packed runtime version (13020) as it is written (13.2)."""
    return f"{packed // 1000}.{packed % 1000 // 10}"


def _cuda_driver(cuda_version: str) -> str:
    driver = nvml.driver_version()
    return f"{driver} (CUDA {cuda_version})" if driver else f"CUDA {cuda_version}"


def available(*, numpy_peer: bool = True) -> list[Peer]:
    """The peers importable here, in the order ratios prefer them: torch, cupy, numpy."""
    found = []
    torch = cuda_torch()
    if torch is not None:
        found.append(Peer(f"torch {torch.__version__.split('+')[0]}", torch.cuda.get_device_name(0),
                          _cuda_driver(str(torch.version.cuda)), "cuda-events", torch))
    cupy = cuda_cupy()
    if cupy is not None:
        name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
        found.append(Peer(f"cupy {cupy.__version__}", name.decode() if isinstance(name, bytes) else str(name),
                          _cuda_driver(_cuda_version(cupy.cuda.runtime.runtimeGetVersion())), "cuda-events", cupy))
    if numpy_peer:
        found.append(Peer(f"numpy {np.__version__}", host_cpu(), "-", "wall", np))
    return found


def host_cpu() -> str:
    """The host CPU's model name (Linux), else the machine type."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.machine() or "cpu"


def events(xp: Any, fn: Callable[[], object], inner: int | None = None, target_s: float = 0.02
           ) -> Callable[[], float]:
    """A sample taker for a CUDA peer (``xp``: the torch or cupy module): device seconds per call of ``fn``
    over ``inner`` back-to-back calls between two CUDA events on the current stream. Without ``inner``, as
    many calls as fill about ``target_s`` (measured once over 3 calls), so that small kernels are not timed
    by their launches."""
    cuda = xp.cuda
    torch = getattr(xp, "__name__", "") == "torch"

    def timed(calls: int) -> float:
        start, end = (cuda.Event(enable_timing=True), cuda.Event(enable_timing=True)) if torch else \
            (cuda.Event(), cuda.Event())
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        end.synchronize()
        ms = start.elapsed_time(end) if torch else cuda.get_elapsed_time(start, end)
        return ms / 1e3 / calls

    if inner is None:
        timed(3)
        inner = int(min(max(target_s / max(timed(3), 1e-9), 1), 10_000))
    calls = inner
    return lambda: timed(calls)
