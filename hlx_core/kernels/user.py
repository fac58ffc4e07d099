"""``hlx.Kernel``: one's own compute shader as a callable, with the bookkeeping reflection can do.

A Kernel reads its shader once (GLSL is compiled, every module goes through spirv-val like any untrusted
one) and reflects it: the buffers in binding order, the element dtype of each, the push-constant members,
the workgroup size. A call then takes plain arrays and named scalars, packs the scalars at their reflected
offsets and types, rounds the grid up to whole workgroups and runs the resulting 901. ``contract`` returns
that 901 without running it, or, given ``stage(i)`` markers, a deferred call ``hlx.kernels.pipeline`` binds.
A user kernel has no NumPy reference: it runs on the GPU backends only.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np

from hlx_core.codec import encode_chunks
from hlx_core.codec.handle import Handle, blake3_digest, tag_of
from hlx_core.codec.tensor import tensor_dtype
from hlx_core.compile import compile_glsl, spirv_from_file
from hlx_core.contracts.ids import COMPUTE_KERNEL
from hlx_core.contracts.shader import shader_contract
from hlx_core.errors import ContractError
from hlx_core.kernels.build import MAX_GROUPS, Operand
from hlx_core.kernels.helpers import Deferred, StageOutput, _operand, put_object
from hlx_core.spirv.reflect import reflect_entry
from hlx_core.spirv.types import PushMember
from hlx_core.spirv.validate import validate_module

GLSL_SUFFIXES = (".comp", ".glsl")


@dataclass(frozen=True)
class OutputSpec:
    """An output binding: what ``hlx.out(dtype, shape)`` returns."""

    dtype: np.dtype
    shape: tuple[int, ...]


def out(dtype: Any, shape: int | Sequence[int]) -> OutputSpec:
    """An output of ``dtype`` and ``shape`` for a ``Kernel`` call."""
    try:
        kind = tensor_dtype(dtype) if isinstance(dtype, str) else np.dtype(dtype)
    except TypeError:
        raise ContractError("E_DTYPE", f"hlx.out: {dtype!r} is not a dtype") from None
    dims = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 0 for d in dims):
        raise ContractError("E_SHAPE", f"hlx.out: shape {shape!r} is not a tuple of ints >= 0")
    return OutputSpec(kind, tuple(int(d) for d in dims))


def _load(shader: Any) -> tuple[bytes, str]:
    """(SPIR-V, default kernel name) from GLSL text, a .comp/.glsl/.spv path, or SPIR-V bytes."""
    if isinstance(shader, (bytes, bytearray, memoryview)):
        return bytes(shader), ""
    if isinstance(shader, os.PathLike) or isinstance(shader, str) and "\n" not in shader \
            and shader.endswith((*GLSL_SUFFIXES, ".spv")):
        path = Path(shader)
        return spirv_from_file(path), path.stem
    if isinstance(shader, str):
        return compile_glsl(shader), ""
    raise ContractError("E_CONTRACT_FIELD_TYPE", "Kernel: shader must be GLSL source, a path to a .comp, .glsl "
                        f"or .spv file, or SPIR-V bytes, not {type(shader).__name__}")


class Kernel:
    """A compute shader callable as ``k(*bindings, grid=..., **scalars) -> hlx.Result``."""

    def __init__(self, shader: Any, entry_point: str = "main", *, name: str | None = None) -> None:
        spirv, stem = _load(shader)
        self.entry = reflect_entry(spirv, entry_point)
        validate_module(spirv)
        self.spirv = spirv
        self.name = name or stem or f"kernel_{blake3_digest([spirv]).hex()[:12]}"
        self.shader = shader_contract(spirv, entry_point)
        chunks = tuple(encode_chunks(self.shader))  # encoded and hashed once: every call stores it again
        self._shader_object = (Handle.from_digest(tag_of(self.shader), blake3_digest(chunks)), chunks)
        self.bindings = tuple(b for b in self.entry.bindings if b.set == 0)
        if len(self.bindings) != len(self.entry.bindings) or \
                [b.binding for b in self.bindings] != list(range(len(self.bindings))):
            raise ContractError("E_CONTRACT_STRUCTURE", f"{self.name}: HLX binds buffers at set 0, bindings "
                                "0..n-1; the shader declares " + ", ".join(
                                    f"set {b.set} binding {b.binding}" for b in self.entry.bindings))

    @property
    def scalars(self) -> tuple[PushMember, ...]:
        """The push-constant block's members: the named scalars a call takes."""
        return self.entry.push_constants

    @property
    def workgroup_size(self) -> tuple[int, int, int]:
        return self.entry.local_size

    def __repr__(self) -> str:
        names = ", ".join(p.name for p in self.scalars)
        return f"Kernel({self.name!r}, bindings={len(self.bindings)}, scalars=[{names}], " \
               f"workgroup_size={self.workgroup_size})"

    def __call__(self, *bindings: Any, grid: int | Sequence[int] | None = None,
                 workgroups: int | Sequence[int] | None = None, backend: str = "auto",
                 device: int | str | None = None, store: Any = None, **scalars: Any) -> Any:
        """Run the kernel once: ``hlx.run`` of ``contract(...)``."""
        from hlx_core.runtime import run  # the runtime imports the kernel library: import it when used

        contract = self._direct(bindings, grid, workgroups, store, scalars)
        return run(contract, backend=backend, device=device, store=store)

    def submit(self, *bindings: Any, grid: int | Sequence[int] | None = None,
               workgroups: int | Sequence[int] | None = None, backend: str = "auto",
               device: int | str | None = None, store: Any = None, **scalars: Any) -> Any:
        """Start the call on HLX's thread pool (``hlx.submit``): a ``concurrent.futures.Future`` of the Result.
        Arguments are checked and packed now, so a bad one raises here."""
        from hlx_core.submit import submit

        contract = self._direct(bindings, grid, workgroups, store, scalars)
        return submit(contract, backend=backend, device=device, store=store)

    def contract(self, *bindings: Any, grid: int | Sequence[int] | None = None,
                 workgroups: int | Sequence[int] | None = None, store: Any = None,
                 **scalars: Any) -> Union[dict, Deferred]:
        """The 901 of a call (or, with ``stage(i)`` bindings, a call ``pipeline`` binds)."""
        if len(bindings) != len(self.bindings):
            raise ContractError("E_CONTRACT_STRUCTURE", f"{self.name}: the shader declares "
                                f"{len(self.bindings)} buffer(s) ({self._names()}); {len(bindings)} given",
                                path="bindings")
        dispatch = self._dispatch(grid, workgroups)
        push = self._pack(scalars)
        args = tuple(self._argument(value, i, store) for i, value in enumerate(bindings))
        shader = put_object(self.shader, self._shader_object, store)
        build = functools.partial(_build, self, shader, dispatch, push)
        if any(isinstance(a, StageOutput) for a in args):
            return Deferred(self.name, build, args, {}, store)
        return {COMPUTE_KERNEL: build(0, *args)[0]}

    # ------------------------------------------------------------------------------------------- helpers

    def _direct(self, bindings: tuple[Any, ...], grid: Any, workgroups: Any, store: Any,
                scalars: dict[str, Any]) -> dict:
        """The 901 of a call run now (``__call__``, ``submit``): stage() bindings have nothing to bind."""
        contract = self.contract(*bindings, grid=grid, workgroups=workgroups, store=store, **scalars)
        if isinstance(contract, Deferred):
            raise ContractError("E_CONTRACT_STRUCTURE", f"{self.name}: stage() bindings only mean something "
                                "inside hlx.kernels.pipeline([...]); call k.contract(...) there")
        return contract

    def _names(self) -> str:
        return ", ".join(b.name or str(b.binding) for b in self.bindings)

    def _label(self, i: int) -> str:
        return f"{self.name}: binding {i} ({self.bindings[i].name or 'unnamed'})"

    def _argument(self, value: Any, i: int, store: Any) -> Any:
        if isinstance(value, OutputSpec):
            if self.bindings[i].readonly:
                raise ContractError("E_CONTRACT_STRUCTURE", f"{self._label(i)} is readonly; it cannot be an "
                                    "output", path=f"bindings[{i}]")
            return Operand({"output": {"dtype": value.dtype.name, "shape": list(value.shape)}},
                           value.dtype, value.shape)
        element = self.bindings[i].element
        if isinstance(value, (list, tuple, int, float)) and element not in ("", "bool"):
            value = np.asarray(value, dtype=element)  # Python numbers carry no dtype: take the buffer's
        return _operand(value, self.name, f"binding {i}", store)

    def _dispatch(self, grid: Any, workgroups: Any) -> list[int]:
        if (grid is None) == (workgroups is None):
            raise ContractError("E_CONTRACT_FIELD_MISSING", f"{self.name}: give grid= (invocations per axis) "
                                "or workgroups= (the dispatch), exactly one", path="grid")
        given = grid if grid is not None else workgroups
        what = "grid" if grid is not None else "workgroups"
        axes = (given,) if isinstance(given, (int, np.integer)) else tuple(given) \
            if isinstance(given, (tuple, list)) else None
        if not axes or len(axes) > 3 or any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) or a < 0
                                             for a in axes):
            raise ContractError("E_CONTRACT_FIELD_TYPE", f"{self.name}: {what}={given!r}: expected an int or a "
                                "tuple of 1 to 3 ints >= 0", path=what)
        axes = tuple(int(a) for a in axes) + (1,) * (3 - len(axes))
        counts = [max(1, -(-a // s)) for a, s in zip(axes, self.workgroup_size)] if grid is not None \
            else [max(1, a) for a in axes]
        if max(counts) > MAX_GROUPS:
            raise ContractError("E_LIMIT_EXCEEDED", f"{self.name}: {what}={given!r} needs {counts} workgroups; at "
                                f"most {MAX_GROUPS} fit one dispatch dimension", path=what)
        return counts

    def _pack(self, scalars: dict[str, Any]) -> bytes:
        members = {p.name: p for p in self.scalars}
        unknown = sorted(set(scalars) - set(members))
        if unknown:
            raise ContractError("E_CONTRACT_STRUCTURE", f"{self.name}: unknown scalar {unknown[0]!r}; the push "
                                f"constants are: {', '.join(members) or 'none'}", path=f"scalars.{unknown[0]}")
        missing = [n for n in members if n not in scalars]
        if missing:
            raise ContractError("E_CONTRACT_FIELD_MISSING", f"{self.name}: scalar {missing[0]!r} is not given "
                                f"(the push constants are: {', '.join(members)})", path=f"scalars.{missing[0]}")
        block = bytearray(self.entry.push_constant_size)
        for name, member in members.items():
            for offset, raw in _member_bytes(member, scalars[name], f"{self.name}: scalar {name!r}"):
                block[offset:offset + len(raw)] = raw
        return bytes(block)


def _build(kernel: Kernel, shader: Handle, dispatch: list[int], push: bytes, base: int,
           *operands: Operand) -> list[dict]:
    """The call's one 901 body, its bindings' dtypes checked against the shader's buffers."""
    for i, (op, declared) in enumerate(zip(operands, kernel.bindings)):
        if declared.element and declared.element != "bool" and op.dtype.name != declared.element:
            raise ContractError("E_DTYPE", f"{kernel._label(i)} holds {declared.element} elements; a "
                                f"{op.dtype.name} tensor was given", path=f"bindings[{i}]")
    body: dict[str, Any] = {"kernel_name": kernel.name, "shader_handle": shader, "dispatch": dispatch,
                            "bindings": [op.binding for op in operands]}
    if push:
        body["push_constants"] = push
    return [body]


def _member_bytes(member: PushMember, value: Any, label: str) -> list[tuple[int, bytes]]:
    """(offset, little-endian bytes) pieces of one push member's value, refusing what does not fit it."""
    if not member.type:
        raise ContractError("E_CONTRACT_FIELD_TYPE", f"{label} is a struct or matrix, which named scalars "
                            "cannot fill", path=f"scalars.{member.name}")
    dtype = np.dtype("uint32" if member.type == "bool" else member.type).newbyteorder("<")
    shape = ((member.array_size,) if member.array_size else ()) + ((member.components,) if member.components > 1
                                                                     else ())
    values = np.asarray(value, dtype=object) if not isinstance(value, np.ndarray) else value
    if values.shape != shape:
        want = "a scalar" if not shape else f"shape {shape}"
        raise ContractError("E_CONTRACT_FIELD_TYPE", f"{label} takes {want} of {member.type}, got {value!r:.60}",
                            path=f"scalars.{member.name}")
    flat = [_scalar(v, dtype, member.type, label, member.name) for v in np.ravel(values).tolist()]
    per_row = member.components
    rows = max(1, member.array_size)
    pieces = []
    for r in range(rows):
        chunk = b"".join(flat[r * per_row:(r + 1) * per_row])
        pieces.append((member.offset + r * member.stride, chunk))
    return pieces


def _scalar(value: Any, dtype: np.dtype, type_name: str, label: str, name: str) -> bytes:
    path = f"scalars.{name}"
    if type_name == "bool":
        if not isinstance(value, (bool, np.bool_)):
            raise ContractError("E_CONTRACT_FIELD_TYPE", f"{label} is a bool, got {value!r:.40}", path=path)
        return np.array(int(value), dtype).tobytes()
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
                or not info.min <= int(value) <= info.max:
            raise ContractError("E_CONTRACT_FIELD_TYPE", f"{label} is {type_name}; {value!r:.40} is not a "
                                f"{type_name} value", path=path)
        return np.array(int(value), dtype).tobytes()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ContractError("E_CONTRACT_FIELD_TYPE", f"{label} is {type_name}; {value!r:.40} is not a number",
                            path=path)
    with np.errstate(over="ignore"):
        packed = np.array(float(value), dtype)
    if not np.isfinite(packed):
        raise ContractError("E_CONTRACT_FIELD_TYPE", f"{label}: {value!r} is not a finite {type_name}", path=path)
    return packed.tobytes()
