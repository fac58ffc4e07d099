"""Kernel variants: another shader for a library kernel's stage, chosen by the backend for its device.

A helper builds the same contract on every machine (its handle must not depend on where it will run), so
it names the shader that runs anywhere: ``hlx.kernels.gemm`` on float16 inputs binds ``gemm_f16``, which
reads halves as packed words. A ``KernelSpec`` may list ``Variant``s, faster shaders of the same
computation for devices that support more (``gemm_f16_coopmat``: cooperative matrices). Before a plan is
prepared, a GPU backend calls ``specialise(plan, support)``: each stage of such a kernel's own 900 runs the
first variant the device takes (``ShaderSupport.refusals`` is empty and the subgroup size fits) and whose
``fits`` takes the stage's params (a tiling for small grids, say), with the variant's workgroup size and
dispatch for those params; other stages are left alone. The choice depends on the device and the contract
alone, so one contract gives one result per device class (which the memo keys on).
Only stages of the library's own 900 are rewritten: its params are the builder's (the planner's as-built
check holds them to the input shapes), so the variant's dispatch covers the output.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, Callable

from hlx_core.codec.handle import Handle
from hlx_core.device.shader_support import ShaderSupport
from hlx_core.kernels.shaders import library_shader, library_shader_object, library_variants
from hlx_core.plan import Plan, Shader, Stage
from hlx_core.spirv.reflect import reflect_entry


@dataclass(frozen=True)
class Variant:
    """A committed shader (``shaders/<shader>.spv``) that computes what its kernel's shader does, bound the
    same way (bindings, push constants, outputs); ``dispatch`` gives its workgroups from the stage's params;
    ``subgroup_size``, when set, is the one subgroup size its code assumes; ``fits``, when set, the params
    it is for (the next variant the device takes serves the others)."""

    shader: str
    dispatch: Callable[[dict[str, Any]], tuple[int, int, int]]
    subgroup_size: int | None = None
    fits: Callable[[dict[str, Any]], bool] | None = None


@functools.lru_cache(maxsize=None)
def variant_shader(stem: str) -> Shader:
    """The planned form of a committed shader, as a stage of it binds it."""
    contract = library_shader(stem)["900"]
    spirv = bytes(contract["spirv_binary"])
    return Shader(library_shader_object(stem)[0], spirv, "main", reflect_entry(spirv), contract.get("wgsl_source"))


def _by_handle() -> dict[Handle, tuple[Variant, ...]]:
    """The 900 handle of each library kernel that has variants -> its variants."""
    global _table
    if not _table:  # built once the library has recorded its kernels
        _table = {library_shader_object(stem)[0]: variants for stem, variants in library_variants().items()}
    return _table


_table: dict[Handle, tuple[Variant, ...]] | None = None


@functools.lru_cache(maxsize=256)
def runnable(handle: Handle, support: ShaderSupport) -> tuple[Variant, ...]:
    """The variants of the library shader ``handle`` a device with ``support`` runs, in declared order."""
    fixed = support.fixed_subgroup_size()
    return tuple(v for v in _by_handle().get(handle, ())
                 if (v.subgroup_size is None or fixed == v.subgroup_size)
                 and not support.refusals(variant_shader(v.shader).info))


def choose(handle: Handle, support: ShaderSupport, params: dict[str, Any]) -> Variant | None:
    """The variant a device with ``support`` runs for a stage of the library shader ``handle`` with
    ``params``, else None."""
    return next((v for v in runnable(handle, support) if v.fits is None or v.fits(params)), None)


def specialise(plan: Plan, support: ShaderSupport) -> Plan:
    """``plan`` with each stage of a kernel that has variants running the one this device takes (the same
    plan object when none applies). Worked out once per plan and device support, and kept with the plan
    (None standing for the plan itself, so the plan never refers to itself)."""
    key = ("variants", support)
    kept = plan.derived.get(key, plan)
    if kept is not plan:
        return plan if kept is None else kept
    specialised = _specialised(plan, support)
    plan.derived[key] = None if specialised is plan else specialised
    return specialised


def _specialised(plan: Plan, support: ShaderSupport) -> Plan:
    table = _by_handle()
    if not any(st.shader.handle in table for st in plan.stages):
        return plan
    stages: list[Stage] = []
    for st in plan.stages:
        variant = choose(st.shader.handle, support, st.params) if st.shader.handle in table else None
        if variant is None:
            stages.append(st)
            continue
        shader = variant_shader(variant.shader)
        stages.append(dataclasses.replace(st, shader=shader, workgroup_size=shader.info.local_size,
                                          dispatch=variant.dispatch(st.params)))
    if all(new is old for new, old in zip(stages, plan.stages)):
        return plan
    return dataclasses.replace(plan, stages=tuple(stages))
