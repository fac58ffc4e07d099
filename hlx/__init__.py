"""HLX: a deterministic, content-addressed GPU compute runtime.

This module is the public facade: it re-exports the API from hlx_core and holds no logic.
"""
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
from hlx_core.compare import compare
from hlx_core.compile import compile_glsl
from hlx_core.contracts.shader import shader_contract
from hlx_core.contracts.validate import validate
from hlx_core.errors import BackendError, CodecError, ContractError, HandleError, HLXError, SpirvError
from hlx_core.kernels.user import Kernel, out
from hlx_core.runtime import Result, backend_info, backends, run
from hlx_core.scale.executor import as_completed, executor, run_many
from hlx_core.submit import submit
from hlx_core.version import package_version

__version__: str = package_version()

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
