"""What the library kernels' builders share: operands, the dtype and shape checks, workgroup counts, bodies.

A builder (``KernelSpec.build``) turns operands of known dtype and shape into 901 bodies. It refuses what
its shader cannot run with a ``ContractError`` (E_DTYPE / E_SHAPE) before anything runs; the helpers in
``hlx.kernels`` call builders for users, and the planner replays them on hand-written contracts of library
shaders (``hlx_core.kernels.as_built``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence, Union

import numpy as np

from hlx_core.codec.handle import Handle
from hlx_core.errors import ContractError
from hlx_core.kernels.spec import KernelSpec

MAX_GROUPS = 65535  # the smallest maxComputeWorkGroupCount Vulkan allows, per dimension
MAX_U32 = 2**32 - 1


@dataclass(frozen=True)
class Operand:
    """A tensor argument whose dtype and shape are known; ``binding`` is what the 901 binds: a tensor
    handle or an earlier stage's output ``{"stage": s, "output": j}``."""

    binding: Union[Handle, dict]
    dtype: np.dtype
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return math.prod(self.shape)  # (exact: a Python int, where an int64 product could wrap)


_NAMES: dict[np.dtype, str] = {}
_NAMES_MAX = 256


def dtype_name(dtype: np.dtype) -> str:
    """``dtype.name``, remembered per dtype: NumPy works the name out in Python on every access, and a
    builder asks several times per contract. Equal dtypes have equal names, so a hit is never stale."""
    try:
        name = _NAMES.get(dtype)
    except TypeError:  # an unhashable dtype-like (a structured dtype's field list)
        return np.dtype(dtype).name
    if name is None:
        name = np.dtype(dtype).name
        if len(_NAMES) < _NAMES_MAX:
            _NAMES[dtype] = name
    return name


def check_dtype(kernel: str, name: str, op: Operand, allowed: Sequence[str]) -> None:
    if dtype_name(op.dtype) not in allowed:
        raise ContractError("E_DTYPE", f"{kernel}: {name} has dtype {op.dtype.name}; supported: "
                            f"{', '.join(allowed)}")


def check_ndim(kernel: str, name: str, op: Operand, ndim: int) -> None:
    if len(op.shape) != ndim:
        raise ContractError("E_SHAPE", f"{kernel}: {name} must be {ndim}-D, got shape {op.shape}")


def check_same(kernel: str, a: Operand, b: Operand, names: str) -> None:
    if a.dtype != b.dtype:
        raise ContractError("E_DTYPE", f"{kernel}: {names} differ in dtype ({a.dtype.name} vs {b.dtype.name})")
    if a.shape != b.shape:
        raise ContractError("E_SHAPE", f"{kernel}: {names} differ in shape ({a.shape} vs {b.shape})")


def u32(kernel: str, what: str, value: int) -> int:
    """A count the shader indexes with 32-bit unsigned ints."""
    if value > MAX_U32:
        raise ContractError("E_SHAPE", f"{kernel}: {what} = {value} exceeds the 32-bit index range")
    return int(value)


def groups(n: int, per_group: int) -> int:
    """Workgroups for n items at per_group each: at least 1 (empty tensors still dispatch)."""
    return max(1, -(-n // per_group))


def tiles(kernel: str, what: str, n: int, tile: int) -> int:
    """Workgroups along a dimension the shader does not loop over: must fit the dispatch limit."""
    count = groups(n, tile)
    if count > MAX_GROUPS:
        raise ContractError("E_SHAPE", f"{kernel}: {what} = {n} needs {count} workgroups of {tile}; at most "
                            f"{MAX_GROUPS} fit one dispatch dimension")
    return count


def grid_stride(n: int, per_group: int = 256) -> list[int]:
    """The dispatch of a shader that loops over what one grid of at most MAX_GROUPS workgroups misses."""
    return [min(groups(n, per_group), MAX_GROUPS), 1, 1]


def body(spec: KernelSpec, dispatch: Sequence[int], inputs: Sequence[Operand],
         outputs: Sequence[tuple[np.dtype, tuple[int, ...]]], params: dict[str, Any]) -> dict:
    """One 901 body of ``spec``'s shader (``shader_handle`` is added by the helpers): inputs bound first,
    then the outputs; params packed into the push constants."""
    return {
        "kernel_name": spec.name,
        "dispatch": [int(d) for d in dispatch],
        "bindings": [op.binding for op in inputs]
                    + [{"output": {"dtype": dtype_name(dt), "shape": [int(d) for d in shape]}}
                       for dt, shape in outputs],
        "push_constants": spec.pack_push_constants(params),
        "push_constants_layout": spec.push_constants_layout(),
        "params": params,
    }
