"""Turning wgpu-py exceptions into HLX errors with stable codes.

wgpu-py raises ``GPUValidationError`` (naga's shader diagnostics, layout mismatches, a lost parent device),
``GPUOutOfMemoryError``, ``GPUInternalError``, ``GPUPipelineError`` and plain ``RuntimeError``/``ValueError``
from its own checks. Every call into wgpu goes through ``wgpu_call`` so none of these escape, and the message
keeps wgpu's (and naga's) own text, which is what a user needs to fix a shader.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from hlx_core.errors import BackendError, HLXError

_LOST = re.compile(r"device (is )?lost|DeviceLost|device was lost", re.IGNORECASE)


class DeviceLost(BackendError):
    """The wgpu device is gone; the session replaces it before its next run."""

    default_code = "E_DEVICE_LOST"


class Timeout(BackendError):
    """A run outlived HLX_WGPU_TIMEOUT_S and is still on the device: its session is ``broken`` until a later
    run has waited for it."""

    default_code = "E_TIMEOUT"


def _code_for(exc: BaseException) -> str:
    import wgpu

    if _LOST.search(str(exc)):
        return "E_DEVICE_LOST"
    if isinstance(exc, (wgpu.GPUOutOfMemoryError, MemoryError)):
        return "E_DEVICE_OOM"
    if isinstance(exc, wgpu.GPUInternalError):
        return "E_BACKEND_INTERNAL"
    return "E_WGPU_VALIDATION"


def translate(exc: BaseException, where: str) -> BackendError:
    """The BackendError for a wgpu exception raised while doing ``where``."""
    code = _code_for(exc)
    text = str(exc).strip() or type(exc).__name__
    cls = DeviceLost if code == "E_DEVICE_LOST" else BackendError
    return cls(code, f"wgpu refused {where}: {text}")


@contextmanager
def wgpu_call(where: str) -> Iterator[None]:
    """Run wgpu calls; HLX errors pass through, everything wgpu raises becomes a BackendError."""
    try:
        yield
    except HLXError:
        raise
    except Exception as exc:  # wgpu-py raises several unrelated exception types
        raise translate(exc, where) from exc
