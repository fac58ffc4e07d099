"""The module the ``hlx.backends`` entry point names. HLX imports it and calls its hooks.

Keep this module cheap to import: HLX imports every plugin when it first lists backends, and a slow or
failing import only costs this plugin (HLX reports the error and carries on), but users wait for it.
"""
from __future__ import annotations

from hlx.plugin import Backend, hookimpl

from hlx_backend_example.backend import ExampleBackend


@hookimpl
def hlx_register_backends() -> list[Backend]:
    """One backend instance, named "example": users select it with ``hlx.run(..., backend="example")``."""
    return [ExampleBackend()]
