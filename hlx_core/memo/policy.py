"""When ``hlx.run`` memoizes: the ``memo=`` argument, and the default a backend's declaration gives.

``memo=None`` (the default) memoizes a run only when its backend declares every stage's kernel
deterministic (``Backend.deterministic_kernels``). A stage counts as a library kernel only when it runs the
library's own SPIR-V under that kernel's name: a user's shader that borrows a library kernel's name is not
covered by the declaration (nor is a library shader run under another name, which the CPU reference would
look up by that name), and neither is any kernel the backend does not name.
"""
from __future__ import annotations

from typing import Literal, Union

from hlx_core.backend import Backend
from hlx_core.errors import HLXError
from hlx_core.kernels.as_built import library_kernel
from hlx_core.kernels.library import BY_NAME
from hlx_core.plan import Plan

Memo = Union[bool, None, Literal["verify", "refresh"]]


def check_mode(memo: object) -> Memo:
    """``memo`` itself, or E_CONFIG when it is none of True, False, None, "verify", "refresh"."""
    if memo is None or isinstance(memo, bool) or memo in ("verify", "refresh"):
        return memo  # type: ignore[return-value]
    raise HLXError("E_CONFIG", f"memo={memo!r}: expected True, False, None (the backend's default), "
                               "'verify' or 'refresh'")


def declared_deterministic(backend: Backend, plan: Plan) -> bool:
    """Whether ``backend`` declares every stage of ``plan`` deterministic."""
    declared = backend.deterministic_kernels
    if not declared:
        return False
    for stage in plan.stages:
        library = library_kernel(stage.shader.spirv)
        runs_library = library is not None and library.name == stage.kernel_name
        if stage.kernel_name not in declared or (stage.kernel_name in BY_NAME and not runs_library):
            return False
    return True


def enabled(memo: Memo, backend: Backend, plan: Plan) -> bool:
    """Whether this run looks up or writes a memo record."""
    return declared_deterministic(backend, plan) if memo is None else memo is not False
