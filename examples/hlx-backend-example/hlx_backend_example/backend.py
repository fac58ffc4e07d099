"""The "example" backend: runs library kernels with their NumPy references, stages on a thread pool.

A teaching example of the backend protocol, not a fast backend; everything it needs comes from
``hlx.plugin``:

- ``probe()`` says whether the backend works here and lists its devices (one, the host CPU);
- ``open(device)`` returns a ``Session``; HLX keeps one per (backend, device) and closes it at exit;
- ``Session._execute(plan)`` runs a ``Plan``: stages in order, each binding an ``InputRef`` (an array from
  the store), an ``OutputRef`` (an output to produce) or a ``StageRef`` (an earlier stage's output). The
  base class's ``execute`` calls it, after refusing a closed session with E_BACKEND_CLOSED.

What it does differently from the built-in CPU reference, to show where a backend has freedom and where
it has none:

- Stages that do not depend on each other run concurrently: each stage is a task on a thread pool that
  first waits for the stages whose outputs it reads.
- Kernels the registry marks ``exact`` must match the reference bit for bit, so they run on the inputs as
  they are. Every other kernel computes on float64 copies of floating inputs and is rounded once to the
  output dtype, which is within the parity tolerance of any correct float32 implementation.
"""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from hlx.plugin import (
    Availability,
    Backend,
    DeviceInfo,
    Execution,
    KernelSpec,
    Plan,
    Session,
    Stage,
    kernel_registry,
    select_device,
)

NAME = "example"
WORKERS = max(1, min(4, os.cpu_count() or 1))


def _device() -> DeviceInfo:
    return DeviceInfo(0, f"NumPy {np.__version__} on {WORKERS} host thread(s)", "cpu",
                      {"workers": WORKERS, "precision": "float64, rounded once"})


class ExampleBackend(Backend):
    """Registered by ``plugin.py``; ``name`` is what users pass as ``backend=``."""

    name = NAME

    def probe(self) -> Availability:
        # A real backend checks its library and driver here, cheaply, and says why it cannot run.
        return Availability(True, devices=(_device(),), version=f"numpy {np.__version__}")

    def open(self, device: int | str | None = None) -> Session:
        # select_device reads an index, a name substring or a UUID the way every backend does, and refuses
        # anything else with E_DEVICE_UNKNOWN listing the devices.
        return ExampleSession(select_device((_device(),), device, backend=NAME))


class ExampleSession(Session):
    """An open "device": here, a thread pool."""

    backend = NAME

    def __init__(self, device: DeviceInfo) -> None:
        self.device = device
        self._pool: ThreadPoolExecutor | None = ThreadPoolExecutor(WORKERS, thread_name_prefix="hlx-example")
        self._lock = threading.Lock()

    def _execute(self, plan: Plan) -> Execution:
        assert self._pool is not None  # the base class refuses a closed session before calling this
        start = time.perf_counter()
        # Look every kernel up before running anything: an unknown kernel raises E_NO_REFERENCE with a
        # message saying how to register one, and no stage has run half a pipeline.
        specs = [kernel_registry().get(stage.kernel_name) for stage in plan.stages]
        done: list[Future] = []
        for stage, spec in zip(plan.stages, specs):
            # Stages are in dependency order, so every stage a StageRef names is already in ``done``; the
            # pool is FIFO, so a task only ever waits for tasks that were started before it.
            done.append(self._pool.submit(self._run_stage, stage, spec, list(done)))
        outputs = [done[s].result()[j] for s, j in plan.outputs]
        return Execution(outputs, {"host_ms": (time.perf_counter() - start) * 1e3})

    @staticmethod
    def _run_stage(stage: Stage, spec: KernelSpec, earlier: list[Future]) -> list[np.ndarray]:
        # A StageRef reads an earlier stage's output: wait for that stage's task.
        inputs = stage.input_arrays(lambda ref: earlier[ref.stage].result()[ref.output])
        if not spec.exact:
            inputs = [a.astype(np.float64) if a.dtype.kind == "f" else a for a in inputs]
        # KernelSpec.run calls the reference and holds it to the stage: one array per output, of the
        # declared shape, rounded once to the declared dtype; a failing reference is a coded BackendError.
        return spec.run(inputs, stage, where=f"{NAME} backend")

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
            self.closed = True
