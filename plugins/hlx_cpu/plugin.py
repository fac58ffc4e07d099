"""Entry point of the CPU reference backend (group ``hlx.backends``, name ``cpu``)."""
from __future__ import annotations

from hlx_core.backend import Backend
from hlx_core.hookspecs import hookimpl

from hlx_cpu.backend import CpuBackend


@hookimpl
def hlx_register_backends() -> list[Backend]:
    return [CpuBackend()]
