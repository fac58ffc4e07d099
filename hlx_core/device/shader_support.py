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
    multiply-add with component types ``a``, ``b``, ``c`` and ``result`` in ``scope``. A ``flexible`` one
    (VK_NV_cooperative_matrix2) takes every multiple of its m, n, k up to ``max_dimension``; one of
    workgroup scope only in a workgroup of ``workgroup_invocations``."""

    m: int
    n: int
    k: int
    a: str
    b: str
    c: str
    result: str
    scope: str = "subgroup"
    flexible: bool = False
    max_dimension: int = 0
    workgroup_invocations: int = 0

    @classmethod
    def from_dict(cls, d: Mapping) -> CooperativeMatrixShape:
        return cls(int(d["m"]), int(d["n"]), int(d["k"]), str(d["a"]), str(d["b"]), str(d["c"]),
                   str(d["result"]), str(d.get("scope", "subgroup")), bool(d.get("flexible", False)),
                   int(d.get("max_dimension", 0)), int(d.get("workgroup_invocations", 0)))

    def _sizes(self, rows: int, cols: int, want_rows: int, want_cols: int) -> bool:
        if not self.flexible:
            return (rows, cols) == (want_rows, want_cols)
        return (rows % want_rows == 0 and cols % want_cols == 0 and 0 < rows <= self.max_dimension
                and 0 < cols <= self.max_dimension)

    def fits(self, t: CooperativeMatrixType, invocations: int = 0) -> bool:
        """Whether a module's matrix type is an operand of this tile (``invocations``: the module's
        workgroup size, which a workgroup-scope flexible tile must match)."""
        if t.scope != self.scope:
            return False
        if self.workgroup_invocations and invocations != self.workgroup_invocations:
            return False
        if t.use == "a":
            return self._sizes(t.rows, t.cols, self.m, self.k) and t.component == self.a
        if t.use == "b":
            return self._sizes(t.rows, t.cols, self.k, self.n) and t.component == self.b
        return self._sizes(t.rows, t.cols, self.m, self.n) and t.component in (self.c, self.result)


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
            invocations = info.local_size[0] * info.local_size[1] * info.local_size[2]
            for t in info.cooperative_matrices:
                if t.khr and not any(shape.fits(t, invocations) for shape in self.cooperative_matrix):
                    out.append(f"a {t.scope}-scope {t.rows}x{t.cols} {t.component} cooperative matrix used as "
                               f"{t.use}, which no tile the device lists takes")
        return out

    def fixed_subgroup_size(self) -> int | None:
        """The subgroup size every pipeline gets, when the device has only one."""
        low, high = self.subgroup_sizes
        return low if low == high and low > 0 else None
