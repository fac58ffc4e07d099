"""From a 900 to a wgpu shader module: the SPIR-V through naga when it accepts it, else the WGSL variant.

The SPIR-V is first adapted to what naga and the adapter take (``spirv_patch``): a spec-constant workgroup
size is frozen to the plan's, push constants become a uniform buffer when the device has no "immediates",
and read-only buffers get the variable-level NonWritable naga reads. Which path ran, and why, is recorded on
the ``CompiledShader`` so tests and users can see it.

Binding types must equal naga's view of each buffer (wgpu refuses a pipeline otherwise): for SPIR-V,
"read-only-storage" where reflection finds the buffer read-only (the rule the NonWritable patch follows),
else "storage"; WGSL sources are read for their ``var<storage, read>`` / ``var<uniform>`` declarations.
One exception: WebGPU refuses a buffer bound read-only and read-write in the same dispatch, which Vulkan
allows, so a read-only binding that a stage feeds the same buffer as a writable one is left read-write
(``shared_with_writable``), in the module and its layout.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from hlx_core.errors import BackendError
from hlx_core.plan import InputRef, OutputRef, Stage
from hlx_core.spirv.validate import validate_module

from hlx_wgpu import spirv_patch
from hlx_wgpu.errors import wgpu_call
from hlx_wgpu.native import create_trusted_module, runtime_checks_wanted

ShaderPath = Literal["spirv", "wgsl"]
PushMode = Literal["none", "immediates", "uniform"]
BindingType = Literal["storage", "read-only-storage", "uniform"]

_WGSL_VAR = re.compile(r"((?:@\w+\s*\([^)]*\)\s*)+)var\s*<\s*([^>]*)>")
_WGSL_ATTR = re.compile(r"@(group|binding)\s*\(\s*(\d+)\s*\)")
_WGSL_IMMEDIATE = re.compile(r"var\s*<\s*immediate\s*>")

# SPIR-V capabilities naga takes only when the device has a wgpu feature enabled (the device asks for all of
# them the adapter has), so a shader declaring one on an adapter without it is refused naming the feature.
CAPABILITY_FEATURES = {
    "Float16": "shader-f16", "StorageBuffer16BitAccess": "shader-f16",
    "UniformAndStorageBuffer16BitAccess": "shader-f16", "Float64": "shader-f64", "Int64": "shader-int64",
    "Int16": "shader-i16", "AtomicFloat32AddEXT": "shader-float32-atomic", "GroupNonUniform": "subgroup",
    "GroupNonUniformVote": "subgroup", "GroupNonUniformArithmetic": "subgroup", "GroupNonUniformBallot": "subgroup",
    "GroupNonUniformShuffle": "subgroup", "GroupNonUniformShuffleRelative": "subgroup",
    "GroupNonUniformQuad": "subgroup",
    # No wgpu feature HLX enables offers these: a module using them is refused on every adapter.
    "CooperativeMatrixKHR": "cooperative matrices", "CooperativeMatrixNV": "cooperative matrices",
    "BFloat16TypeKHR": "bfloat16", "BFloat16CooperativeMatrixKHR": "bfloat16",
}


@dataclass(frozen=True)
class CompiledShader:
    """A shader module and how it was made: ``path`` ran, ``patches`` were applied to the SPIR-V, and
    ``refusal`` is naga's message for the SPIR-V when the WGSL path ran instead."""

    module: Any
    path: ShaderPath
    push_mode: PushMode
    binding_types: dict[int, BindingType]
    patches: tuple[str, ...] = ()
    refusal: str | None = None
    # Group-0 bindings a WGSL variant declares read_write: the slots the SPIR-V's reflection marks written
    # (``BufferLayout.written``) do not describe that module, and an input bound there must not stay resident.
    written: frozenset[int] = frozenset()


def wgsl_binding_types(source: str) -> dict[int, BindingType]:
    """Group-0 binding index -> layout type, read from the WGSL variable declarations."""
    types: dict[int, BindingType] = {}
    for attrs, space in _WGSL_VAR.findall(source):
        found = dict(_WGSL_ATTR.findall(attrs))
        if found.get("group") != "0" or "binding" not in found:
            continue
        parts = [p.strip() for p in space.split(",")]
        if parts[0] == "uniform":
            types[int(found["binding"])] = "uniform"
        elif parts[0] == "storage":
            writable = len(parts) > 1 and parts[1] == "read_write"
            types[int(found["binding"])] = "storage" if writable else "read-only-storage"
    return types


def _spirv_binding_type(kind: str, readonly: bool) -> BindingType:
    if kind == "uniform":
        return "uniform"
    return "read-only-storage" if readonly else "storage"


def shared_with_writable(stage: Stage) -> frozenset[int]:
    """Read-only group-0 bindings of ``stage`` fed the same buffer (same input handle or same earlier
    output) as a binding that is not read-only."""
    declared = {b.binding: _spirv_binding_type(b.kind, b.readonly) for b in stage.shader.info.bindings
                if b.set == 0}
    types = [declared.get(i, "storage") for i in range(len(stage.bindings))]

    def source(i: int) -> object:
        ref = stage.bindings[i]
        return ref.handle if isinstance(ref, InputRef) else ("out", i) if isinstance(ref, OutputRef) else ref

    writable = {source(i) for i, t in enumerate(types) if t == "storage"}
    return frozenset(i for i, t in enumerate(types) if t == "read-only-storage" and source(i) in writable)


def missing_features(stage: Stage, features: frozenset[str]) -> list[str]:
    """The wgpu features the stage's SPIR-V capabilities need that ``features`` lacks, each with why."""
    need: dict[str, list[str]] = {}
    for cap in stage.shader.info.capabilities:
        feature = CAPABILITY_FEATURES.get(cap)
        if feature is not None and feature not in features:
            need.setdefault(feature, []).append(cap)
    return [f"{f} (SPIR-V capability {', '.join(caps)})" for f, caps in sorted(need.items())]


def wgsl_immediates_to_uniform(source: str) -> str:
    """Declare the WGSL ``var<immediate>`` block as the uniform buffer the backend binds instead."""
    return _WGSL_IMMEDIATE.sub(f"@group({spirv_patch.UNIFORM_GROUP}) @binding(0) var<uniform>", source)


class ShaderCache:
    """Compiled modules keyed by (shader handle, frozen workgroup size, push mode, read-only bindings kept
    read-write because the stage aliases them with a written one). ``features`` are the
    device's enabled features and ``adapter`` its name, for refusals that name what is missing."""

    def __init__(self, device: Any, features: frozenset[str], adapter: str) -> None:
        self._device = device
        self._features = features
        self._adapter = adapter
        self._modules: dict[tuple, CompiledShader] = {}
        self._checks = runtime_checks_wanted()

    def _module(self, code: bytes | str, label: str) -> Any:
        if self._checks:
            return self._device.create_shader_module(label=label, code=code)
        return create_trusted_module(self._device, code, label)

    def __len__(self) -> int:
        return len(self._modules)

    def get(self, stage: Stage, push_mode: PushMode) -> CompiledShader:
        info = stage.shader.info
        frozen = stage.workgroup_size if any(i is not None for i in info.local_size_ids) else None
        shared = shared_with_writable(stage)
        key = (stage.shader.handle, frozen, push_mode, shared)
        if key not in self._modules:
            self._modules[key] = self._compile(stage, frozen, push_mode, shared)
        return self._modules[key]

    def _compile(self, stage: Stage, frozen: tuple[int, int, int] | None, push_mode: PushMode,
                 shared: frozenset[int]) -> CompiledShader:
        shader = stage.shader
        # naga checks what it translates, not the whole module: the planner validated it (remembered by
        # content), and a Plan built by hand is validated here, before the driver can see it.
        validate_module(shader.spirv)
        try:
            return self._compile_spirv(stage, frozen, push_mode, shared)
        except BackendError as refused:
            if refused.code not in ("E_WGPU_VALIDATION", "E_UNSUPPORTED"):
                raise
            if not shader.wgsl_source:
                raise BackendError(refused.code, f"{refused.message} (the 900 has no wgsl_source to fall "
                                   "back to)") from refused
            return self._compile_wgsl(stage, push_mode, refused.message)

    def _compile_spirv(self, stage: Stage, frozen: tuple[int, int, int] | None, push_mode: PushMode,
                       shared: frozenset[int]) -> CompiledShader:
        shader = stage.shader
        missing = missing_features(stage, self._features)
        if missing:
            raise BackendError("E_UNSUPPORTED", f"the SPIR-V of kernel {stage.kernel_name!r} needs wgpu features "
                               f"that adapter {self._adapter!r} lacks: {'; '.join(missing)}")
        spirv, patches = shader.spirv, []
        if frozen is not None:
            spirv = spirv_patch.fix_workgroup_size(spirv, shader.info.local_size_ids, frozen)
            patches.append("workgroup-size")
        if push_mode == "uniform":
            spirv = spirv_patch.push_constants_to_uniform(spirv)
            patches.append("push-constants-to-uniform")
        readable = spirv_patch.drop_buffer_block_non_readable(spirv)
        if readable is not spirv:
            spirv = readable
            patches.append("buffer-block-readable")
        full = spirv_patch.drop_relaxed_precision(spirv)
        if full is not spirv:
            spirv = full
            patches.append("full-precision")
        marked = spirv_patch.mark_readonly_variables(spirv, skip=frozenset((0, b) for b in shared))
        if marked is not spirv:
            spirv = marked
            patches.append("readonly-variables")
        with wgpu_call(f"the SPIR-V of kernel {stage.kernel_name!r}"):
            module = self._module(spirv, stage.kernel_name)
        group0 = [b for b in shader.info.bindings if b.set == 0]
        types: dict[int, BindingType] = {
            b.binding: _spirv_binding_type(b.kind, b.readonly and b.binding not in shared) for b in group0}
        return CompiledShader(module, "spirv", push_mode, types, tuple(patches))

    def _compile_wgsl(self, stage: Stage, push_mode: PushMode, refusal: str) -> CompiledShader:
        source = stage.shader.wgsl_source or ""
        if push_mode == "uniform":
            source = wgsl_immediates_to_uniform(source)
        with wgpu_call(f"the WGSL variant of kernel {stage.kernel_name!r} (its SPIR-V was refused too: "
                       f"{refusal})"):
            module = self._module(source, stage.kernel_name)
        types = wgsl_binding_types(source)
        return CompiledShader(module, "wgsl", push_mode, types, refusal=refusal,
                              written=frozenset(b for b, t in types.items() if t == "storage"))
