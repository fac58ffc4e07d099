"""The CPU reference backend: runs each stage's NumPy reference from the kernel registry.

It is the parity oracle the GPU backends are checked against, so it favours clarity over speed: no
shader is executed, the stage's ``kernel_name`` selects the reference, and ``KernelSpec.run`` runs it only
for a stage of the very shader it models (a library kernel's own 900, or the one a plugin registered it
for; E_NO_REFERENCE otherwise, so a custom shader named like a library kernel never gets that kernel's
results here and its own on a GPU) and checks every result against the OutputRef it must fill.
"""
from __future__ import annotations

import platform
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from hlx_core.backend import Availability, Backend, DeviceInfo, Execution, Session
from hlx_core.device.isa import cpu_isa
from hlx_core.device.selection import select_device
from hlx_core.kernels.library import BY_NAME
from hlx_core.plan import Plan
from hlx_core.registry import kernel_registry


@lru_cache(maxsize=1)
def _cpu_model() -> str:
    """The CPU's marketing name where the OS tells it, else the architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


@lru_cache(maxsize=1)
def _blas() -> str:
    """The BLAS NumPy was built with (its matmul and einsum run there), as "name version"."""
    blas = getattr(np.__config__, "CONFIG", {}).get("Build Dependencies", {}).get("blas", {})
    return f"{blas.get('name', 'unknown')} {blas.get('version', '')}".strip()


def _device() -> DeviceInfo:
    return DeviceInfo(index=0, name=f"NumPy {np.__version__} on {_cpu_model()}", kind="cpu",
                      details={"numpy": np.__version__, "machine": platform.machine()},
                      device_class={"numpy": np.__version__, "blas": _blas(), "isa": cpu_isa()})


class CpuBackend(Backend):
    """Always available: one device, the host CPU."""

    name = "cpu"
    deterministic_kernels = frozenset(BY_NAME)  # NumPy references: the same bytes every run

    def probe(self) -> Availability:
        return Availability(available=True, devices=(_device(),), version=f"numpy {np.__version__}")

    def open(self, device: int | str | None = None) -> Session:
        return CpuSession(select_device((_device(),), device, backend="cpu"))


class CpuSession(Session):
    """Executes plans stage by stage with NumPy; holds no resources."""

    backend = "cpu"

    def __init__(self, device: DeviceInfo) -> None:
        self.device = device

    def _execute(self, plan: Plan) -> Execution:
        start = time.perf_counter()
        results: dict[tuple[int, int], np.ndarray] = {}
        timings: dict[str, float] = {}
        for s, stage in enumerate(plan.stages):
            t0 = time.perf_counter()
            spec = kernel_registry().get(stage.kernel_name)
            inputs = stage.input_arrays(lambda ref: results[(ref.stage, ref.output)])
            for j, array in enumerate(spec.run(inputs, stage, where=f"stage {s}")):
                results[(s, j)] = array
            timings[f"stage{s}_host_ms"] = (time.perf_counter() - t0) * 1e3
        timings["host_ms"] = (time.perf_counter() - start) * 1e3
        return Execution(arrays=[results[key] for key in plan.outputs], timings=timings)

    def close(self) -> None:
        self.closed = True

