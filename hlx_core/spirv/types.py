"""What SPIR-V reflection reports about a compute entry point; backends build layouts from this."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


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


@dataclass(frozen=True)
class SpecConstant:
    """A specialization constant: ``type`` is "bool", "int", "uint" or "float" (with its bit ``width``)."""

    id: int
    name: str
    type: Literal["bool", "int", "uint", "float"]
    width: int
    default: bool | int | float


@dataclass(frozen=True)
class EntryPoint:
    """A compute entry point. ``local_size_ids[i]`` is the spec-constant id that overrides
    ``local_size[i]`` (from LocalSizeId or a WorkgroupSize built from spec constants), else None."""

    name: str
    execution_model: str
    local_size: tuple[int, int, int]
    local_size_ids: tuple[int | None, int | None, int | None] = (None, None, None)
    bindings: tuple[DescriptorBinding, ...] = ()
    push_constant_size: int = 0
    spec_constants: tuple[SpecConstant, ...] = ()
    capabilities: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()
    version: tuple[int, int] = (1, 0)
    extra: dict = field(default_factory=dict, compare=False)
