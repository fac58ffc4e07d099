"""Entry point of the wgpu backend (group ``hlx.backends``): ``WgpuBackend`` (probe, open), registered like
any plugin.

Every run loads every plugin, so this module stays cheap: it imports neither wgpu nor the session code.
``probe()`` imports the adapter code and wgpu, ``open()`` the session; a machine without wgpu still imports
HLX and sees the backend as unavailable with the reason.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from hlx_core.backend import Availability, Backend
from hlx_core.errors import BackendError, HLXError
from hlx_core.hookspecs import hookimpl
from hlx_core.kernels.library import BY_NAME

if TYPE_CHECKING:
    from hlx_wgpu.backend import WgpuSession


class WgpuBackend(Backend):
    """``backend="wgpu"``: the same plans through wgpu-py."""

    name = "wgpu"
    deterministic_kernels = frozenset(BY_NAME)  # fixed-order shaders: the same bytes every run

    def __init__(self) -> None:
        self._availability: Availability | None = None

    def probe(self) -> Availability:
        if self._availability is None:
            from hlx_wgpu import adapter as adapters
            try:
                wgpu = adapters.import_wgpu()
                found = adapters.adapters()
                self._availability = Availability(True, None, tuple(a.device_info() for a in found),
                                                  str(getattr(wgpu, "__version__", "")))
            except HLXError as exc:
                self._availability = Availability(False, exc.message)
        return self._availability

    def open(self, device: int | str | None = None, *, power_preference: str | None = None,
             push_constants: str | None = None) -> WgpuSession:
        """A session on the adapter chosen by ``device`` (index or name substring), ``HLX_WGPU_ADAPTER`` or
        the power preference; ``push_constants="uniform"`` (or ``HLX_WGPU_PUSH_CONSTANTS``) feeds push
        constants through a uniform buffer even where the adapter has immediates."""
        from hlx_wgpu import adapter as adapters
        from hlx_wgpu.backend import ENV_PUSH, WgpuSession
        availability = self.probe()
        if not availability.available:
            raise BackendError("E_BACKEND_UNAVAILABLE", f"wgpu: {availability.reason}")
        chosen = adapters.select(device, power_preference)
        return WgpuSession(chosen, push_constants or os.environ.get(ENV_PUSH, "auto"))


@hookimpl
def hlx_register_backends() -> list[Backend]:
    return [WgpuBackend()]
