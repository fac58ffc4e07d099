"""Fake backends for the memo and determinism tests: one that declares kernels deterministic, and one that
declares them so but gives other bytes on every run (its sessions run the CPU reference, as plugin_fakes'
do, then drift)."""
from __future__ import annotations

import numpy as np
from plugin_fakes import FakeBackend, FakeSession

from hlx_core.backend import Execution


class DeclaringBackend(FakeBackend):
    """A fake backend (its sessions run the CPU reference) that declares ``add`` and ``relu`` deterministic."""

    deterministic_kernels = frozenset({"add", "relu"})


class DriftingSession(FakeSession):
    """Runs the CPU reference, then moves the first element of every float output by one ulp per run: a
    backend whose results change from run to run."""

    def _execute(self, plan):
        execution = super()._execute(plan)
        arrays = []
        for array in execution.arrays:
            array = np.array(array)
            if array.dtype.kind == "f" and array.size:
                flat = array.reshape(-1)
                for _ in range(self.owner.executions):
                    flat[0] = np.nextafter(flat[0], np.inf)
            arrays.append(array)
        return Execution(arrays, execution.timings)


class DriftingBackend(DeclaringBackend):
    """Declares its kernels deterministic, and is not."""

    def open(self, device=None):
        session = DriftingSession(self, self.devices[0])
        self.sessions.append(session)
        return session
