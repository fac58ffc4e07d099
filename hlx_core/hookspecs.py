"""Plugin hook specifications (pluggy project name "hlx").

A backend distribution exposes a module under the entry-point group ``hlx.backends``; that module holds
``@hookimpl`` functions for the hooks below. The built-in backends use exactly this mechanism, and so does
the built-in kernel library (``hlx_core.kernels.library``, registered by ``hlx_core.registry``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from hlx_core.backend import Backend
    from hlx_core.kernels.spec import KernelRegistry

PROJECT = "hlx"
ENTRY_POINT_GROUP = "hlx.backends"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class HLXSpec:
    """The hooks a plugin may implement."""

    @hookspec
    def hlx_register_backends(self) -> "list[Backend]":
        """Return the backends this plugin provides (instances of hlx_core.backend.Backend)."""

    @hookspec
    def hlx_register_kernels(self, registry: "KernelRegistry") -> None:
        """Add kernels (``hlx_core.kernels.spec.KernelSpec``: NumPy reference, and shader, push-constant layout
        and builder where the kernel has them) through ``registry.register``."""
