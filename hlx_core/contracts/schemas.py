"""Schemas of the compute contracts: 900 VULKAN_SHADER, 901 COMPUTE_KERNEL, 902 PIPELINE_CONFIG.

Validation is structural: handles are checked for form and tag but never resolved (the runtime resolves
them). An inline 900 is reflected, so what can be checked against the shader itself (entry point, bindings,
workgroup size, specialization ids) is checked here, before any backend sees the contract.
"""
from __future__ import annotations

import math
from typing import Any

from hlx_core.codec import max_bytes
from hlx_core.codec.profile import MAX_LEN32
from hlx_core.codec.tensor import MAX_NDIM, tensor_dtype
from hlx_core.contracts.fields import (
    STRUCTURE,
    TYPE,
    as_bool,
    as_bytes,
    as_dims,
    as_float,
    as_handle,
    as_int,
    as_list,
    as_scalar,
    as_str,
    fail,
    fields_map,
)
from hlx_core.contracts.ids import COMPUTE_KERNEL, PIPELINE_CONFIG, VULKAN_SHADER
from hlx_core.errors import SpirvError
from hlx_core.spirv.reflect import reflect, reflect_entry
from hlx_core.spirv.types import EntryPoint

SHAPE = "E_SHAPE"
DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "float32", "float64", "bfloat16")
PUSH_CONSTANT_LIMIT = 256  # bytes: beyond the 128 every Vulkan device has, within what desktop GPUs offer
MEMORY_SCOPES = ("workgroup", "device", "queue_family", "subgroup", "cross_device")
_PUSH_TYPE_SIZES = {"int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "float16": 2, "int32": 4, "uint32": 4,
                    "float32": 4, "int64": 8, "uint64": 8, "float64": 8, "bfloat16": 2}
_SHADER_STAGES = ("compute", "vertex", "fragment", "geometry", "tessellation_control",
                  "tessellation_evaluation", "task", "mesh")


# -- 900 VULKAN_SHADER -------------------------------------------------------------------------------------

def binding_map(binding: Any) -> dict[str, Any]:
    """The contract form of a reflected DescriptorBinding."""
    return {"set": binding.set, "binding": binding.binding, "kind": binding.kind,
            "readonly": binding.readonly, "writeonly": binding.writeonly}


def shader_entry(fields: dict, path: str) -> EntryPoint:
    """Reflect an already-validated 900's entry point (cached by the reflector)."""
    try:
        return reflect_entry(fields["spirv_binary"], fields["entry_point"])
    except SpirvError as exc:
        raise SpirvError(exc.code, exc.message, path=f"{path}.entry_point") from None


def _check_bindings(given: Any, entry: EntryPoint, path: str) -> None:
    reflected = {(b.set, b.binding): binding_map(b) for b in entry.bindings}
    seen: set[tuple[int, int]] = set()
    for i, item in enumerate(as_list(given, path)):
        p = f"{path}[{i}]"
        item = fields_map(item, p, ("set", "binding", "kind", "readonly", "writeonly"), ("set", "binding", "kind"))
        key = (as_int(item["set"], f"{p}.set", 0), as_int(item["binding"], f"{p}.binding", 0))
        kind = as_str(item["kind"], f"{p}.kind")
        if key in seen:
            raise fail(STRUCTURE, p, f"(set {key[0]}, binding {key[1]}) is listed twice")
        seen.add(key)
        if key not in reflected:
            raise fail(STRUCTURE, p, f"the shader declares no buffer at set {key[0]}, binding {key[1]}")
        want = reflected[key]
        if kind != want["kind"]:
            raise fail(STRUCTURE, f"{p}.kind", f"{kind!r} given, the shader declares a {want['kind']!r} buffer")
        for flag in ("readonly", "writeonly"):
            if flag in item and as_bool(item[flag], f"{p}.{flag}") != want[flag]:
                raise fail(STRUCTURE, f"{p}.{flag}", f"{flag}={item[flag]} given, the shader says {want[flag]}")
    missing = sorted(set(reflected) - seen)
    if missing:
        raise fail(STRUCTURE, path, "the shader also declares " +
                   ", ".join(f"set {s} binding {b}" for s, b in missing) + ", which the list omits")


def validate_900(fields: Any, path: str = VULKAN_SHADER) -> dict:
    """Normalised 900: shader_stage filled in, descriptor_bindings derived from reflection (or checked)."""
    fields = fields_map(fields, path, ("spirv_binary", "entry_point", "shader_stage", "descriptor_bindings",
                                       "wgsl_source"), ("spirv_binary", "entry_point"))
    out: dict[str, Any] = {"spirv_binary": as_bytes(fields["spirv_binary"], f"{path}.spirv_binary"),
                           "entry_point": as_str(fields["entry_point"], f"{path}.entry_point")}
    stage = as_str(fields.get("shader_stage", "compute"), f"{path}.shader_stage")
    if stage != "compute":
        what = "a graphics stage" if stage in _SHADER_STAGES else "not a shader stage"
        raise fail(TYPE, f"{path}.shader_stage", f"{stage!r} is {what}; HLX supports only 'compute' shaders")
    out["shader_stage"] = stage
    try:
        reflect(out["spirv_binary"])
    except SpirvError as exc:
        raise SpirvError(exc.code, exc.message, path=f"{path}.spirv_binary") from None
    entry = shader_entry(out, path)
    # An empty list asks for the bindings to be derived, as leaving the field out does.
    if "descriptor_bindings" in fields and as_list(fields["descriptor_bindings"], f"{path}.descriptor_bindings"):
        _check_bindings(fields["descriptor_bindings"], entry, f"{path}.descriptor_bindings")
    out["descriptor_bindings"] = [binding_map(b) for b in entry.bindings]
    if "wgsl_source" in fields:
        out["wgsl_source"] = as_str(fields["wgsl_source"], f"{path}.wgsl_source")
    return out


# -- 901 COMPUTE_KERNEL ------------------------------------------------------------------------------------

def _output_spec(value: Any, path: str) -> dict:
    spec = fields_map(value, path, ("dtype", "shape"), ("dtype", "shape"))
    dtype = as_str(spec["dtype"], f"{path}.dtype")
    if dtype not in DTYPES:
        raise fail(TYPE, f"{path}.dtype", f"{dtype!r} is not a tensor dtype; one of {', '.join(DTYPES)}")
    shape = as_list(spec["shape"], f"{path}.shape", lambda v, p: as_int(v, p, 0))
    _check_output_size(dtype, shape, f"{path}.shape")
    return {"dtype": dtype, "shape": shape}


def _check_output_size(dtype: str, shape: list[int], path: str) -> None:
    """An output must be a tensor LC-B can hold: at most MAX_NDIM dimensions, and its payload within the
    ext32 limit and the codec's size limit (``set_limits``). Its size counts a 0 dimension as 1: a backend
    sizes buffers and NumPy allocates from every dimension, so [2**62, 0] is refused here as a contract
    error instead of failing inside a backend."""
    if len(shape) > MAX_NDIM:
        raise fail(SHAPE, path, f"{len(shape)} dimensions; an LC-B tensor has at most {MAX_NDIM}")
    nbytes = tensor_dtype(dtype).itemsize * math.prod(max(d, 1) for d in shape)
    payload = 2 + 8 * len(shape) + nbytes  # the tensor header, then the elements
    limit = min(MAX_LEN32, max_bytes() - 6)  # (6: the largest ext header)
    if payload > limit:
        raise fail(SHAPE, path, f"output {dtype}{shape} takes {nbytes} bytes (a 0 dimension counted as 1), "
                                f"over the {limit - 2 - 8 * len(shape)} bytes an LC-B tensor of this rank may hold")


def _binding(value: Any, path: str, earlier: list[int | None] | None) -> Any:
    """One binding: an input tensor handle, an output spec, or (inside a 902) an earlier stage's output.
    ``earlier`` holds the output counts of the stages before this one (None: a handle, count unknown)."""
    if isinstance(value, str):
        return as_handle(value, path, "tensor")
    if not isinstance(value, dict):
        raise fail(TYPE, path, f"expected a tensor handle, {{'output': ...}} or {{'stage', 'output'}}, "
                               f"got {type(value).__name__}")
    if "stage" not in value:
        fields_map(value, path, ("output",), ("output",))
        return {"output": _output_spec(value["output"], f"{path}.output")}
    ref = fields_map(value, path, ("stage", "output"), ("stage", "output"))
    if earlier is None:
        raise fail(STRUCTURE, path, "a {'stage', 'output'} binding is only valid inside a 902 pipeline")
    stage = as_int(ref["stage"], f"{path}.stage", 0)
    output = as_int(ref["output"], f"{path}.output", 0)
    if stage >= len(earlier):
        raise fail(STRUCTURE, f"{path}.stage", f"stage {stage} is not an earlier stage "
                                               f"(this is stage {len(earlier)})")
    _check_output_index(earlier[stage], stage, output, f"{path}.output")
    return {"stage": stage, "output": output}


def _check_output_index(count: int | None, stage: int, output: int, path: str) -> None:
    if count is not None and output >= count:
        raise fail(STRUCTURE, path, f"stage {stage} has {count} output(s); output {output} does not exist")


def is_output(binding: Any) -> bool:
    """True for an {"output": {"dtype", "shape"}} binding (not a {"stage", "output"} reference)."""
    return isinstance(binding, dict) and isinstance(binding.get("output"), dict)


def output_count(fields: dict) -> int:
    """How many outputs a validated 901 produces (its {"output": ...} bindings)."""
    return sum(1 for b in fields["bindings"] if is_output(b))


def _spec_constants(value: Any, path: str, entry: EntryPoint | None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(TYPE, path, f"expected a map of spec id -> value, got {type(value).__name__}")
    known = {sc.id: sc for sc in entry.spec_constants} if entry else {}
    out: dict[str, Any] = {}
    for key in sorted(value, key=str):
        p = f"{path}.{key}"
        if isinstance(key, bool) or not (isinstance(key, int) and key >= 0 or isinstance(key, str) and key.isdigit()
                                         and key.isascii()):
            raise fail(TYPE, p, f"spec constant key {key!r} is not a digit string such as '0'")
        sid = int(key)
        val = as_scalar(value[key], p)
        sc = known.get(sid)
        if entry is not None and sc is None:
            raise fail(STRUCTURE, p, f"the shader has no specialization constant with id {sid} "
                                     f"(ids: {sorted(known) or 'none'})")
        if sc is not None:
            val = _spec_value(val, sc.type, sc.width, p)
        out[str(sid)] = val
    return out


def _spec_value(val: Any, kind: str, width: int, path: str) -> Any:
    """Check a value against the shader's declared spec-constant type."""
    if kind == "bool":
        return as_bool(val, path)
    if kind == "float":
        return as_float(val, path)
    lo, hi = (-(2 ** (width - 1)), 2 ** (width - 1) - 1) if kind == "int" else (0, 2**width - 1)
    return as_int(val, path, lo, hi)


def _params(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(TYPE, path, f"expected a map of name -> scalar, got {type(value).__name__}")
    out = {}
    for key, val in value.items():
        p = f"{path}.{key}"
        as_str(key, p)
        out[key] = as_list(val, p, as_scalar) if isinstance(val, (list, tuple)) else as_scalar(val, p)
    return out


def _push_layout(value: Any, path: str) -> list[dict]:
    def entry(item: Any, p: str) -> dict:
        item = fields_map(item, p, ("name", "offset", "type"), ("name", "offset", "type"))
        kind = as_str(item["type"], f"{p}.type")
        if kind not in _PUSH_TYPE_SIZES:
            raise fail(TYPE, f"{p}.type", f"{kind!r} is not a push-constant type; one of "
                                          f"{', '.join(_PUSH_TYPE_SIZES)}")
        size = _PUSH_TYPE_SIZES[kind]
        offset = as_int(item["offset"], f"{p}.offset", 0, PUSH_CONSTANT_LIMIT - size)
        if offset % size:
            raise fail(STRUCTURE, f"{p}.offset", f"offset {offset} is not aligned to {kind}'s {size} bytes")
        return {"name": as_str(item["name"], f"{p}.name"), "offset": offset, "type": kind}
    return as_list(value, path, entry)


def _check_outputs_writable(out: dict, entry: EntryPoint, path: str) -> None:
    """An output bound to a buffer the shader declares readonly could never be written: refuse it here.
    (Binding layout and workgroup size are checked by the planner, for stored shaders too.)"""
    declared = {b.binding: b for b in entry.bindings if b.set == 0}
    for i, b in enumerate(out["bindings"]):
        if is_output(b) and i in declared and declared[i].readonly:
            raise fail(STRUCTURE, f"{path}.bindings[{i}]", f"an output is bound to buffer {declared[i].name or i!r}, "
                                                          "which the shader declares readonly")


def validate_901(fields: Any, path: str = COMPUTE_KERNEL, earlier: list[int | None] | None = None) -> dict:
    """Normalised 901. ``earlier``: output counts of the preceding stages when inside a 902."""
    fields = fields_map(fields, path, ("kernel_name", "shader_handle", "workgroup_size", "dispatch", "bindings",
                                       "push_constants", "specialization_constants", "params",
                                       "shared_memory_bytes", "push_constants_layout"),
                        ("kernel_name", "shader_handle", "dispatch", "bindings"))
    out: dict[str, Any] = {"kernel_name": as_str(fields["kernel_name"], f"{path}.kernel_name")}
    shader = fields["shader_handle"]
    entry = None
    if isinstance(shader, dict):
        inner = fields_map(shader, f"{path}.shader_handle", (VULKAN_SHADER,), (VULKAN_SHADER,))
        shader_fields = validate_900(inner[VULKAN_SHADER], f"{path}.shader_handle.{VULKAN_SHADER}")
        out["shader_handle"] = {VULKAN_SHADER: shader_fields}
        entry = shader_entry(shader_fields, f"{path}.shader_handle.{VULKAN_SHADER}")
    else:
        out["shader_handle"] = as_handle(shader, f"{path}.shader_handle", "contract")
    if "workgroup_size" in fields:
        out["workgroup_size"] = as_dims(fields["workgroup_size"], f"{path}.workgroup_size")
    out["dispatch"] = as_dims(fields["dispatch"], f"{path}.dispatch")
    out["bindings"] = as_list(fields["bindings"], f"{path}.bindings", lambda v, p: _binding(v, p, earlier))
    if "push_constants" in fields:
        pc = as_bytes(fields["push_constants"], f"{path}.push_constants")
        if len(pc) % 4 or len(pc) > PUSH_CONSTANT_LIMIT:
            raise fail(STRUCTURE, f"{path}.push_constants",
                       f"{len(pc)} bytes; push constants are a multiple of 4 bytes, at most {PUSH_CONSTANT_LIMIT}")
        out["push_constants"] = pc
    if "specialization_constants" in fields:
        out["specialization_constants"] = _spec_constants(fields["specialization_constants"],
                                                          f"{path}.specialization_constants", entry)
    if "params" in fields:
        out["params"] = _params(fields["params"], f"{path}.params")
    if "shared_memory_bytes" in fields:
        out["shared_memory_bytes"] = as_int(fields["shared_memory_bytes"], f"{path}.shared_memory_bytes", 0)
    if "push_constants_layout" in fields:
        out["push_constants_layout"] = _push_layout(fields["push_constants_layout"], f"{path}.push_constants_layout")
    if entry is not None:
        _check_outputs_writable(out, entry, path)
    return out


# -- 902 PIPELINE_CONFIG -----------------------------------------------------------------------------------

def validate_902(fields: Any, path: str = PIPELINE_CONFIG) -> dict:
    """Normalised 902: stages validated in order so stage references can be checked against earlier ones."""
    fields = fields_map(fields, path, ("pipeline_id", "stages", "sync_barriers", "outputs"),
                        ("pipeline_id", "stages"))
    out: dict[str, Any] = {"pipeline_id": as_str(fields["pipeline_id"], f"{path}.pipeline_id")}
    raw_stages = as_list(fields["stages"], f"{path}.stages", min_len=1)
    stages: list[Any] = []
    counts: list[int | None] = []
    for i, stage in enumerate(raw_stages):
        p = f"{path}.stages[{i}]"
        if isinstance(stage, dict):
            inner = fields_map(stage, p, (COMPUTE_KERNEL,), (COMPUTE_KERNEL,))
            c901 = validate_901(inner[COMPUTE_KERNEL], f"{p}.{COMPUTE_KERNEL}", earlier=list(counts))
            stages.append({COMPUTE_KERNEL: c901})
            counts.append(output_count(c901))
        else:
            stages.append(as_handle(stage, p, "contract"))
            counts.append(None)
    out["stages"] = stages
    n = len(stages)
    if "sync_barriers" in fields:
        def barrier(item: Any, p: str) -> dict:
            item = fields_map(item, p, ("stage_idx", "memory_scope"), ("stage_idx", "memory_scope"))
            scope = as_str(item["memory_scope"], f"{p}.memory_scope")
            if scope not in MEMORY_SCOPES:
                raise fail(TYPE, f"{p}.memory_scope", f"{scope!r} is not one of {', '.join(MEMORY_SCOPES)}")
            return {"stage_idx": as_int(item["stage_idx"], f"{p}.stage_idx", 0, n - 1), "memory_scope": scope}
        out["sync_barriers"] = as_list(fields["sync_barriers"], f"{path}.sync_barriers", barrier)
    if "outputs" in fields:
        def output(item: Any, p: str) -> dict:
            item = fields_map(item, p, ("stage", "output"), ("stage", "output"))
            stage = as_int(item["stage"], f"{p}.stage", 0, n - 1)
            index = as_int(item["output"], f"{p}.output", 0)
            _check_output_index(counts[stage], stage, index, f"{p}.output")
            return {"stage": stage, "output": index}
        out["outputs"] = as_list(fields["outputs"], f"{path}.outputs", output)
    return out

