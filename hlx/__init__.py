"""HLX: a deterministic, content-addressed GPU compute runtime.

This module is the public facade: it re-exports the API from hlx_core and holds no logic. What a first
``hlx.run`` needs is imported here; the rest (``compare``, ``compile_glsl``, ``Kernel``, ``run_many`` …,
``__version__``) on first use (``__getattr__``), so a new process does not pay for modules it never uses.
"""
from __future__ import annotations

import importlib
from typing import Any

# First: the exit hook it registers then runs after every other of HLX's (hlx_core/exit.py).
from hlx_core import exit as _exit  # noqa: F401

# isort: split
from hlx import kernels
from hlx_core.cas.api import (
    collapse,
    exists,
    flush,
    get_default_store,
    resolve,
    set_default_store,
    snapshot,
    transaction,
)
from hlx_core.cas.disk import DiskStore
from hlx_core.cas.store import MemoryStore, Store
from hlx_core.codec import decode, encode, pre_serialize, set_limits
from hlx_core.codec.handle import Handle
from hlx_core.errors import BackendError, CodecError, ContractError, HandleError, HLXError, SpirvError
from hlx_core.runtime import Result, backend_info, backends, run

# public name -> the module that defines it, imported on first use
_LAZY = {
    "compare": "hlx_core.compare",
    "compile_glsl": "hlx_core.compile",
    "shader_contract": "hlx_core.contracts.shader",
    "validate": "hlx_core.contracts.validate",
    "Kernel": "hlx_core.kernels.user",
    "out": "hlx_core.kernels.user",
    "as_completed": "hlx_core.scale.executor",
    "executor": "hlx_core.scale.executor",
    "run_many": "hlx_core.scale.executor",
    "submit": "hlx_core.submit",
}

__all__ = [
    "HLXError", "CodecError", "ContractError", "HandleError", "SpirvError", "BackendError",
    "encode", "decode", "pre_serialize", "set_limits",
    "Handle", "Store", "MemoryStore", "DiskStore",
    "collapse", "resolve", "exists", "flush", "get_default_store", "set_default_store", "snapshot",
    "transaction",
    "validate", "shader_contract",
    "compile_glsl", "Kernel", "out",
    "run", "submit", "Result", "backends", "backend_info", "kernels", "compare",
    "run_many", "executor", "as_completed",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from hlx_core.version import package_version

        value: Any = package_version()
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'hlx' has no attribute {name!r}")
    globals()[name] = value  # asked once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
