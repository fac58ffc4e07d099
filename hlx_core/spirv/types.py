"""What SPIR-V reflection reports about a compute entry point; backends build layouts from this."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Mapping

from hlx_core.errors import ContractError, SpirvError
from hlx_core.spirv.specexpr import Expr, evaluate, spec_ids


@dataclass(frozen=True)
class DescriptorBinding:
    """One descriptor a shader declares: ``kind`` is "storage" (SSBO) or "uniform" (UBO)."""

    set: int
    binding: int
    kind: Literal["storage", "uniform"]
    readonly: bool = False
    writeonly: bool = False
    name: str = ""
    count: int = 1  # descriptor array length (0: runtime-sized); HLX binds single buffers
    # The dtype of the elements of the block's one (runtime) array member ("float32", ...), else "": what
    # ``hlx.Kernel`` holds a tensor bound here to.
    element: str = field(default="", compare=False)


@dataclass(frozen=True)
class PushMember:
    """One member of the push-constant block, as ``hlx.Kernel`` packs named scalars into it.

    ``type`` is the scalar dtype of the member or of its components ("float32", "uint32", "bool", ...; ""
    for a struct or matrix member, which only raw ``push_constants`` bytes can fill); ``components`` is a
    vector's length (1 for a scalar); ``array_size`` the length of an array member (0: not an array), whose
    elements lie ``stride`` bytes apart."""

    name: str
    offset: int
    type: str
    components: int = 1
    array_size: int = 0
    stride: int = 0


@dataclass(frozen=True)
class SpecConstant:
    """A specialization constant: ``type`` is "bool", "int", "uint" or "float" (with its bit ``width``)."""

    id: int
    name: str
    type: Literal["bool", "int", "uint", "float"]
    width: int
    default: bool | int | float


@dataclass(frozen=True)
class CooperativeMatrixType:
    """An OpTypeCooperativeMatrixKHR (or NV) a module declares: a ``rows`` x ``cols`` tile of ``component``
    ("float16", "bfloat16", "float32", ...) held by ``scope`` ("subgroup"; "workgroup" under
    VK_NV_cooperative_matrix2), used as operand "a", "b" or "accumulator" ("" for the NV type, which has
    no use operand)."""

    component: str
    scope: str
    rows: int
    cols: int
    use: str
    khr: bool = True


@dataclass(frozen=True)
class EntryPoint:
    """A compute entry point.

    ``local_size`` is the workgroup size at the specialization defaults. ``local_size_ids[i]`` is the
    SpecId whose value *is* ``local_size[i]`` (LocalSizeId or a WorkgroupSize built from spec constants),
    else None. ``workgroup_exprs[i]`` is the expression of an axis that depends on specialization constants
    at all, including through ``OpSpecConstantOp`` arithmetic (e.g. ``TILE * 2``), else None; use
    ``workgroup_size(spec)`` for the size a specialised pipeline runs with.
    """

    name: str
    execution_model: str
    local_size: tuple[int, int, int]
    local_size_ids: tuple[int | None, int | None, int | None] = (None, None, None)
    workgroup_exprs: tuple[Expr | None, Expr | None, Expr | None] = (None, None, None)
    bindings: tuple[DescriptorBinding, ...] = ()
    push_constant_size: int = 0
    push_constants: tuple[PushMember, ...] = ()  # the push block's members, in offset order
    spec_constants: tuple[SpecConstant, ...] = ()
    capabilities: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()
    version: tuple[int, int] = (1, 0)
    cooperative_matrices: tuple[CooperativeMatrixType, ...] = ()  # types declared in the module
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def workgroup_spec_ids(self) -> frozenset[int]:
        """The SpecIds the workgroup size depends on (directly or through spec-constant arithmetic)."""
        return frozenset().union(*(spec_ids(e) for e in self.workgroup_exprs))

    def workgroup_size(self, spec: Mapping[Any, Any] | Iterable[tuple[Any, Any]] = ()) -> tuple[int, int, int]:
        """The workgroup size when specialised with ``spec`` (SpecId, as int or digit string -> value;
        constants not given keep their defaults). Raises E_SPIRV_INVALID when an expression is undefined
        for these values (division by zero, an oversized shift) or not a non-negative size."""
        if not any(self.workgroup_exprs):
            return self.local_size
        values = {_spec_id(k): v for k, v in (spec.items() if isinstance(spec, Mapping) else spec)}
        size = [self.local_size[i] if e is None else evaluate(e, values) for i, e in enumerate(self.workgroup_exprs)]
        for i, value in enumerate(size):
            if isinstance(value, (bool, tuple, float)) or value < 0:  # type: ignore[operator]
                raise SpirvError("E_SPIRV_INVALID", f"workgroup size {'xyz'[i]} evaluates to {value!r}")
        return (int(size[0]), int(size[1]), int(size[2]))  # type: ignore[arg-type]


def _spec_id(key: Any) -> int:
    if isinstance(key, int) and not isinstance(key, bool) or isinstance(key, str) and key.isascii() and key.isdigit():
        return int(key)
    raise ContractError("E_CONTRACT_FIELD_TYPE", f"specialization constant id {key!r:.40} is not an int",
                        path="specialization_constants")
