"""A backend that is wrong on purpose, for the tests of ``hlx.compare`` and the conformance kit.

It runs each stage's NumPy reference, then spoils what ``SPOIL`` names: an exact kernel one ulp (or one)
off in a single element, a GEMM slightly scaled, and refuses what ``REFUSE`` names as E_UNSUPPORTED (a
capability its device lacks). Installed as a distribution of its own (entry point "wrong") or registered
in code with ``register_plugin``; it imports nothing of HLX but ``hlx.plugin``.
"""
from __future__ import annotations

import numpy as np

from hlx.plugin import (
    Availability,
    Backend,
    BackendError,
    DeviceInfo,
    Execution,
    Plan,
    Session,
    hookimpl,
    kernel_registry,
    select_device,
)

NAME = "wrong"


def one_ulp(array: np.ndarray) -> np.ndarray:
    """``array`` with its first element moved to the next representable value."""
    out = array.copy()
    flat = out.reshape(-1)
    if flat.size:
        if out.dtype.kind == "f":
            flat[0] = np.nextafter(flat[0], np.inf, dtype=out.dtype)
        else:
            flat[0] = flat[0] + out.dtype.type(1)
    return out


def scaled(array: np.ndarray) -> np.ndarray:
    """A relative error of 1e-3: far beyond any float32 kernel's tolerance."""
    return (array.astype(np.float64) * (1 + 1e-3)).astype(array.dtype)


SPOIL = {"add": one_ulp, "mul": one_ulp, "gemm": scaled, "gemm128": scaled, "gemm_skinny": scaled}
REFUSE = {"softmax"}


def _device() -> DeviceInfo:
    return DeviceInfo(0, "Wrong device", "cpu")


class WrongSession(Session):
    backend = NAME

    def __init__(self, owner: "WrongBackend", device: DeviceInfo) -> None:
        self.owner = owner
        self.device = device

    def _execute(self, plan: Plan) -> Execution:
        results: dict[tuple[int, int], np.ndarray] = {}
        for s, stage in enumerate(plan.stages):
            if stage.kernel_name in self.owner.refuse:
                raise BackendError("E_UNSUPPORTED", f"the wrong device cannot run {stage.kernel_name}")
            spec = kernel_registry().get(stage.kernel_name)
            inputs = stage.input_arrays(lambda ref: results[(ref.stage, ref.output)])
            spoil = self.owner.spoil.get(stage.kernel_name, lambda a: a)
            for j, array in enumerate(spec.run(inputs, stage, where=f"stage {s}")):
                results[(s, j)] = spoil(array)
        return Execution([results[key] for key in plan.outputs])

    def close(self) -> None:
        self.closed = True


class WrongBackend(Backend):
    name = NAME

    def __init__(self, spoil: dict | None = None, refuse: set[str] | None = None) -> None:
        self.spoil = SPOIL if spoil is None else spoil
        self.refuse = REFUSE if refuse is None else refuse

    def probe(self) -> Availability:
        return Availability(True, devices=(_device(),), version="0.0")

    def open(self, device: int | str | None = None) -> Session:
        return WrongSession(self, select_device((_device(),), device, backend=NAME))


@hookimpl
def hlx_register_backends() -> list[Backend]:
    return [WrongBackend()]
