"""The CPU reference backend: runs each stage's NumPy reference from the kernel registry.

It is the parity oracle the GPU backends are checked against, so it favours clarity over speed: no
shader is executed, the stage's ``kernel_name`` selects the reference, and every result is checked against
the OutputRef it must fill before it is handed on.
"""
from __future__ import annotations

import platform
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from hlx_core.backend import Availability, Backend, DeviceInfo, Execution, Session
from hlx_core.errors import BackendError, HLXError
from hlx_core.kernels.registry import get_registry
from hlx_core.plan import InputRef, OutputRef, Plan, Stage, StageRef


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


def _device() -> DeviceInfo:
    return DeviceInfo(index=0, name=f"NumPy {np.__version__} on {_cpu_model()}", kind="cpu",
                      details={"numpy": np.__version__, "machine": platform.machine()})


class CpuBackend(Backend):
    """Always available: one device, the host CPU."""

    name = "cpu"

    def probe(self) -> Availability:
        return Availability(available=True, devices=(_device(),), version=f"numpy {np.__version__}")

    def open(self, device: int | str | None = None) -> Session:
        dev = _device()
        if device is None or device == 0 or (isinstance(device, str) and device.lower() in dev.name.lower()):
            return CpuSession(dev)
        raise BackendError("E_DEVICE_UNKNOWN", f"cpu backend has one device, index 0 ({dev.name!r}); "
                           f"no device matches {device!r}")


class CpuSession(Session):
    """Executes plans stage by stage with NumPy; holds no resources."""

    backend = "cpu"

    def __init__(self, device: DeviceInfo) -> None:
        self.device = device
        self.closed = False

    def execute(self, plan: Plan) -> Execution:
        if self.closed:
            raise BackendError("E_BACKEND_CLOSED", "this cpu session is closed; open a new one")
        start = time.perf_counter()
        results: dict[tuple[int, int], np.ndarray] = {}
        timings: dict[str, float] = {}
        for s, stage in enumerate(plan.stages):
            t0 = time.perf_counter()
            for j, array in enumerate(self._run_stage(s, stage, results)):
                results[(s, j)] = array
            timings[f"stage{s}_host_ms"] = (time.perf_counter() - t0) * 1e3
        timings["host_ms"] = (time.perf_counter() - start) * 1e3
        return Execution(arrays=[results[key] for key in plan.outputs], timings=timings)

    def _run_stage(self, s: int, stage: Stage, results: dict[tuple[int, int], np.ndarray]) -> list[np.ndarray]:
        spec = get_registry().get(stage.kernel_name)
        inputs: list[np.ndarray] = []
        outputs: list[OutputRef] = []
        for b in stage.bindings:
            if isinstance(b, InputRef):
                inputs.append(b.array)
            elif isinstance(b, StageRef):
                inputs.append(results[(b.stage, b.output)])
            else:
                outputs.append(b)
        try:
            produced = spec.reference(inputs, dict(stage.params), outputs)
        except HLXError:
            raise
        except Exception as exc:  # a reference is plugin code: report it as this stage's failure
            raise BackendError("E_REFERENCE_FAILED", f"stage {s} ({stage.kernel_name}): the NumPy reference "
                               f"raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(produced, (list, tuple)) or len(produced) != len(outputs):
            raise BackendError("E_REFERENCE_OUTPUT", f"stage {s} ({stage.kernel_name}): the reference must return "
                               f"a list of {len(outputs)} array(s)")
        return [_conform(s, stage.kernel_name, j, array, ref) for j, (array, ref) in enumerate(zip(produced, outputs))]

    def close(self) -> None:
        self.closed = True


def _conform(s: int, kernel: str, j: int, array: np.ndarray, ref: OutputRef) -> np.ndarray:
    """The reference's result as exactly the dtype and shape the plan declared (a fresh, writable array)."""
    array = np.asarray(array)
    if tuple(array.shape) != tuple(ref.shape):
        raise BackendError("E_REFERENCE_OUTPUT", f"stage {s} ({kernel}) output {j}: the reference made shape "
                           f"{tuple(array.shape)}, the contract declares {tuple(ref.shape)}")
    return np.array(array, dtype=np.dtype(ref.dtype), copy=True, order="C")
