"""What SPIR-V a device runs beyond the core: the one check of a module against it, for every GPU backend.

A module declares capabilities (``Float16``, ``CooperativeMatrixKHR``, ``BFloat16TypeKHR`` ...) and, for
cooperative matrices, tile types (``EntryPoint.cooperative_matrices``). A backend describes its device as
a ``ShaderSupport``: the capabilities it refuses, each with what is missing (a device feature, an
extension, no WebGPU equivalent), and the cooperative-matrix tiles the device lists. ``refusals`` says why
a module cannot run there; backends raise E_UNSUPPORTED with it at pipeline creation, and the kernel
library uses the same answer to choose a kernel's variant per device (hlx_core/kernels/variants.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from hlx_core.spirv.types import CooperativeMatrixType, EntryPoint


@dataclass(frozen=True)
class CooperativeMatrixShape:
    """One tile a device offers (VkCooperativeMatrixPropertiesKHR): an (m x k) * (k x n) + (m x n)
    multiply-add with component types ``a``, ``b``, ``c`` and ``result`` in ``scope``."""

    m: int
    n: int
    k: int
    a: str
    b: str
    c: str
    result: str
    scope: str = "subgroup"

    @classmethod
    def from_dict(cls, d: Mapping) -> CooperativeMatrixShape:
        return cls(int(d["m"]), int(d["n"]), int(d["k"]), str(d["a"]), str(d["b"]), str(d["c"]),
                   str(d["result"]), str(d.get("scope", "subgroup")))

    def fits(self, t: CooperativeMatrixType) -> bool:
        """Whether a module's matrix type is an operand of this tile."""
        if t.scope != self.scope:
            return False
        if t.use == "a":
            return (t.rows, t.cols, t.component) == (self.m, self.k, self.a)
        if t.use == "b":
            return (t.rows, t.cols, t.component) == (self.k, self.n, self.b)
        return (t.rows, t.cols) == (self.m, self.n) and t.component in (self.c, self.result)


@dataclass(frozen=True)
class ShaderSupport:
    """A device's answer to "can this module run here?".

    ``refused`` maps each capability the device cannot take to what is missing; ``cooperative_matrix``
    lists its tiles (KHR types must match one, operand by operand); ``subgroup_sizes`` is its
    (min, max) subgroup size, for code that assumes one."""

    refused: tuple[tuple[str, str], ...] = ()
    cooperative_matrix: tuple[CooperativeMatrixShape, ...] = ()
    subgroup_sizes: tuple[int, int] = (0, 0)

    @classmethod
    def build(cls, refused: Mapping[str, str], shapes: Iterable[Mapping] = (),
              subgroup_sizes: tuple[int, int] = (0, 0)) -> ShaderSupport:
        return cls(tuple(sorted(refused.items())), tuple(CooperativeMatrixShape.from_dict(s) for s in shapes),
                   (int(subgroup_sizes[0]), int(subgroup_sizes[1])))

    def refusals(self, info: EntryPoint) -> list[str]:
        """Why the module of ``info`` cannot run on this device: each refused capability and each
        cooperative-matrix type no listed tile takes; empty when it can."""
        refused = dict(self.refused)
        out = [f"{cap} ({refused[cap]})" for cap in dict.fromkeys(info.capabilities) if cap in refused]
        if "CooperativeMatrixKHR" not in refused:
            for t in info.cooperative_matrices:
                if t.khr and not any(shape.fits(t) for shape in self.cooperative_matrix):
                    out.append(f"a {t.scope}-scope {t.rows}x{t.cols} {t.component} cooperative matrix used as "
                               f"{t.use}, which no tile the device lists takes")
        return out

    def fixed_subgroup_size(self) -> int | None:
        """The subgroup size every pipeline gets, when the device has only one."""
        low, high = self.subgroup_sizes
        return low if low == high and low > 0 else None
