"""The suites of ``hlx bench``, in the order ``all`` runs them; each module gives ``cases(bench)``."""
from __future__ import annotations

from types import ModuleType

from hlx_core.bench.suites import batch, dispatch, gemm, power, stream, warmstart

SUITES: dict[str, ModuleType] = {"gemm": gemm, "stream": stream, "dispatch": dispatch, "warmstart": warmstart,
                                 "batch": batch, "power": power}
