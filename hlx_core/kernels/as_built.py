"""Checks a stage that runs a library shader against what the kernel's helper would build for its inputs.

A contract written by hand (JSON for ``hlx run``, say) can pair a library shader with push constants or
outputs that do not fit its input tensors: a GPU would then read or write past its buffers, and the CPU
reference would compute something else. The planner calls ``conform`` for every stage whose SPIR-V is a
library shader, so such a contract is refused with a ``ContractError`` before anything runs, and a
contract that gives only ``push_constants`` gets the ``params`` the CPU reference reads.
"""
from __future__ import annotations

import functools
from typing import Any, Sequence

import numpy as np

from hlx_core.errors import ContractError
from hlx_core.kernels.build import Operand
from hlx_core.kernels.library import BY_NAME, LIBRARY
from hlx_core.kernels.spec import KernelSpec
from hlx_shaders import FOLDER

TensorSpec = tuple[np.dtype, tuple[int, ...], bool]  # dtype, shape, is an output


@functools.lru_cache(maxsize=1)
def _library_spirv() -> dict[bytes, KernelSpec]:
    files = FOLDER
    return {(files / f"{spec.shader}.spv").read_bytes(): spec for spec in LIBRARY if spec.shader}


def library_kernel(spirv: bytes) -> KernelSpec | None:
    """The library kernel whose committed SPIR-V is exactly ``spirv``, else None."""
    return _library_spirv().get(spirv)


def _repath(exc: ContractError, path: str) -> ContractError:
    """``exc`` (about "901.params.<name>") with its path moved under the stage's ``path``."""
    inner = exc.path.split(".", 1)[1] if exc.path and "." in exc.path else "params"
    return ContractError(exc.code, exc.message, path=f"{path}.{inner}")


def _describe(fields: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in fields.items())


def conform(spec: KernelSpec, kernel_name: str, bindings: Sequence[TensorSpec], params: dict[str, Any],
            push: bytes, dispatch: Sequence[int], path: str) -> tuple[dict[str, Any], bool]:
    """Refuse a stage of ``spec``'s shader that its helper would not build; return the stage's params and
    whether the stage is exactly as built, dispatch included (what ``spec.writes_all_outputs`` holds for).

    ``bindings`` are the stage's bindings as (dtype, shape, is_output); ``push`` its push-constant bytes
    (already checked to be the shader's block size); ``path`` the stage's contract path ("901", or
    "902.stages[i].901")."""
    other = BY_NAME.get(kernel_name)
    if other is not None and other.reference is not spec.reference:
        raise ContractError("E_CONTRACT_STRUCTURE", f"kernel_name {kernel_name!r} names the library kernel whose "
                            f"shader is {other.shader}.spv, but this stage runs {spec.shader}.spv",
                            path=f"{path}.kernel_name")
    outputs = [i for i, (_, _, is_out) in enumerate(bindings) if is_out]
    if len(bindings) - len(outputs) != spec.tensors or (outputs and outputs[0] < spec.tensors):
        raise ContractError("E_CONTRACT_STRUCTURE", f"the {spec.shader} shader binds {spec.tensors} input "
                            "tensor(s) first, then its output(s)", path=f"{path}.bindings")
    fields = spec.unpack_push_constants(push)
    if params:
        try:
            packed = spec.pack_push_constants(params)
        except ContractError as exc:
            raise _repath(exc, path) from None
        if packed != push:
            given = spec.unpack_push_constants(packed)
            raise ContractError("E_CONTRACT_STRUCTURE", f"params ({_describe(given)}) and push_constants "
                                f"({_describe(fields)}) disagree", path=f"{path}.params")
    operands = [Operand("", dtype, shape) for dtype, shape, _ in bindings[:spec.tensors]]
    try:
        built = spec.build(0, *operands, **{k: fields[k] for k in spec.scalars})[0]
    except ContractError as exc:  # E_CONTRACT_FIELD_TYPE: a bad scalar (alpha, stride, padding)
        field = "bindings" if exc.code != "E_CONTRACT_FIELD_TYPE" else "params" if params else "push_constants"
        raise ContractError(exc.code, exc.message, path=f"{path}.{field}") from None
    want = spec.unpack_push_constants(built["push_constants"])
    wrong = {k: v for k, v in fields.items() if want[k] != v}
    if wrong:
        needed = ", ".join(f"{k}={want[k]}" for k in wrong)
        raise ContractError("E_DTYPE" if set(wrong) == {"kind"} else "E_SHAPE",
                            f"push constants {_describe(wrong)} do not fit the input tensors of the "
                            f"{spec.shader} shader, which need {needed}", path=f"{path}.push_constants")
    written = built["bindings"][spec.tensors:]
    if len(outputs) != len(written):
        raise ContractError("E_CONTRACT_STRUCTURE", f"the {spec.shader} shader writes {len(written)} output(s)",
                            path=f"{path}.bindings")
    for i, out in zip(outputs, written):
        dtype, shape, _ = bindings[i]
        want_dtype, want_shape = np.dtype(out["output"]["dtype"]), tuple(out["output"]["shape"])
        if (dtype, tuple(shape)) != (want_dtype, want_shape):
            raise ContractError("E_DTYPE" if dtype != want_dtype else "E_SHAPE",
                                f"output {dtype.name}{list(shape)}: the {spec.shader} shader writes "
                                f"{want_dtype.name}{list(want_shape)} for these inputs",
                                path=f"{path}.bindings[{i}].output")
    if spec.grid_z is not None and dispatch[2] != spec.grid_z:
        raise ContractError("E_CONTRACT_STRUCTURE", f"dispatch {list(dispatch)}: the {spec.shader} shader takes "
                            f"{spec.grid_z} workgroup(s) along z (KernelSpec.grid_z)", path=f"{path}.dispatch")
    # gemm() picks gemm or gemm128 by size; the other tile's dispatch rule is not gemm()'s to give.
    as_built = built["kernel_name"] == spec.name
    if as_built and list(dispatch) != built["dispatch"]:
        raise ContractError("E_CONTRACT_STRUCTURE", f"dispatch {list(dispatch)}: the {spec.shader} shader needs "
                            f"{built['dispatch']} workgroups for these inputs (docs/KERNELS.md)",
                            path=f"{path}.dispatch")
    return built["params"], as_built
