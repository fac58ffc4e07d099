"""Entry point of the wgpu backend (group ``hlx.backends``): registers ``WgpuBackend`` like any plugin.

Importing this module does not import wgpu; the backend loads it when probed, so a machine without wgpu
still imports HLX and sees the backend as unavailable with the reason.
"""
from __future__ import annotations

from hlx_core.hookspecs import hookimpl

from hlx_wgpu.backend import WgpuBackend


@hookimpl
def hlx_register_backends() -> list[WgpuBackend]:
    return [WgpuBackend()]
