"""Pure-Python SPIR-V reflection of compute entry points.

Backends need the workgroup size, the descriptor bindings, the push-constant size and the specialization
constants of a shader to build pipeline layouts; reading them from the word stream keeps HLX free of native
reflection libraries and gives every backend the same answer. Results are cached per module, since the same
shader is reflected by validation, planning and every backend.
"""
from __future__ import annotations

import functools
import struct
from dataclasses import dataclass, field
from typing import Any

from hlx_core.errors import SpirvError
from hlx_core.spirv import enums as E
from hlx_core.spirv.header import HEADER_WORDS, check_header
from hlx_core.spirv.types import DescriptorBinding, EntryPoint, SpecConstant

_SPEC_SCALAR_OPS = (E.OP_SPEC_CONSTANT, E.OP_SPEC_CONSTANT_TRUE, E.OP_SPEC_CONSTANT_FALSE)
_SCALAR_CONSTANT_OPS = (E.OP_CONSTANT, E.OP_CONSTANT_TRUE, E.OP_CONSTANT_FALSE) + _SPEC_SCALAR_OPS
_COMPOSITE_CONSTANT_OPS = (E.OP_CONSTANT_COMPOSITE, E.OP_SPEC_CONSTANT_COMPOSITE)


def _invalid(message: str) -> SpirvError:
    return SpirvError("E_SPIRV_INVALID", message)


def _string(words: tuple[int, ...], start: int) -> tuple[str, int]:
    """Decode a nul-terminated UTF-8 literal starting at ``words[start]``; return it and the next index."""
    raw = bytearray()
    i = start
    while i < len(words):
        chunk = struct.pack("<I", words[i])
        i += 1
        end = chunk.find(b"\0")
        if end >= 0:
            raw += chunk[:end]
            try:
                return raw.decode("utf-8"), i
            except UnicodeDecodeError as exc:
                raise _invalid(f"string literal is not UTF-8: {exc}") from None
        raw += chunk
    raise _invalid("string literal is not nul-terminated within its instruction")


@dataclass
class _Module:
    """The facts reflection needs, gathered in one pass over the instructions."""

    version: tuple[int, int]
    names: dict[int, str] = field(default_factory=dict)
    capabilities: list[str] = field(default_factory=list)
    extensions: list[str] = field(default_factory=list)
    entries: list[tuple[int, int, str, tuple[int, ...]]] = field(default_factory=list)
    modes: dict[int, dict[int, tuple[int, ...]]] = field(default_factory=dict)
    decorations: dict[int, dict[int, tuple[int, ...]]] = field(default_factory=dict)
    member_decorations: dict[tuple[int, int], dict[int, tuple[int, ...]]] = field(default_factory=dict)
    types: dict[int, tuple[int, tuple[int, ...]]] = field(default_factory=dict)
    constants: dict[int, tuple[int, int, tuple[int, ...]]] = field(default_factory=dict)
    variables: list[tuple[int, int, int]] = field(default_factory=list)  # (id, pointer type, storage class)

    def deco(self, target: int, decoration: int) -> tuple[int, ...] | None:
        return self.decorations.get(target, {}).get(decoration)

    def member_deco(self, struct_id: int, member: int, decoration: int) -> tuple[int, ...] | None:
        return self.member_decorations.get((struct_id, member), {}).get(decoration)

    def type_of(self, type_id: int, where: str) -> tuple[int, tuple[int, ...]]:
        try:
            return self.types[type_id]
        except KeyError:
            raise _invalid(f"{where} refers to %{type_id}, which is not a type") from None


def _parse(data: bytes, version: tuple[int, int]) -> _Module:
    words = struct.unpack(f"<{len(data) // 4}I", data)
    mod = _Module(version=version)
    i = HEADER_WORDS
    while i < len(words):
        count, opcode = words[i] >> 16, words[i] & 0xFFFF
        if count == 0 or i + count > len(words):
            raise _invalid(f"instruction at word {i} (opcode {opcode}) has word count {count}, "
                           f"past the end of the module ({len(words)} words)")
        ops = words[i + 1:i + count]
        i += count
        try:
            _record(mod, opcode, ops)
        except IndexError:
            raise _invalid(f"instruction at word {i - count} (opcode {opcode}) is too short") from None
    return mod


def _record(mod: _Module, opcode: int, ops: tuple[int, ...]) -> None:
    if opcode == E.OP_NAME:
        mod.names[ops[0]] = _string(ops, 1)[0]
    elif opcode == E.OP_CAPABILITY:
        mod.capabilities.append(E.capability_name(ops[0]))
    elif opcode == E.OP_EXTENSION:
        mod.extensions.append(_string(ops, 0)[0])
    elif opcode == E.OP_ENTRY_POINT:
        name, nxt = _string(ops, 2)
        mod.entries.append((ops[0], ops[1], name, tuple(ops[nxt:])))
    elif opcode in (E.OP_EXECUTION_MODE, E.OP_EXECUTION_MODE_ID):
        mod.modes.setdefault(ops[0], {})[ops[1]] = tuple(ops[2:])
    elif opcode in (E.OP_DECORATE, E.OP_DECORATE_ID):
        mod.decorations.setdefault(ops[0], {})[ops[1]] = tuple(ops[2:])
    elif opcode == E.OP_MEMBER_DECORATE:
        mod.member_decorations.setdefault((ops[0], ops[1]), {})[ops[2]] = tuple(ops[3:])
    elif E.OP_TYPE_BOOL <= opcode <= E.OP_TYPE_POINTER:
        mod.types[ops[0]] = (opcode, tuple(ops[1:]))
    elif opcode in _SCALAR_CONSTANT_OPS or opcode in _COMPOSITE_CONSTANT_OPS:
        mod.constants[ops[1]] = (opcode, ops[0], tuple(ops[2:]))
    elif opcode == E.OP_VARIABLE:
        mod.variables.append((ops[1], ops[0], ops[2]))


# -- constants -----------------------------------------------------------------------------------------------

def _scalar_kind(mod: _Module, type_id: int) -> tuple[str, int]:
    """("bool"|"int"|"uint"|"float", width) of a scalar type. A bool reads as 32 bits wide because Vulkan
    passes boolean specialization data as a VkBool32."""
    op, args = mod.type_of(type_id, "a constant")
    if op == E.OP_TYPE_BOOL:
        return "bool", 32
    if op == E.OP_TYPE_INT:
        return ("int" if args[1] else "uint"), args[0]
    if op == E.OP_TYPE_FLOAT:
        return "float", args[0]
    raise _invalid(f"type %{type_id} is not a scalar (opcode {op})")


def _literal(kind: str, width: int, words: tuple[int, ...]) -> int | float:
    """A numeric literal: low-order word first; narrow integers occupy the low bits of one word."""
    bits = 0
    for n, w in enumerate(words[:max(1, width // 32)]):
        bits |= w << (32 * n)
    bits &= (1 << width) - 1
    if kind == "float":
        fmt = {16: "<e", 32: "<f", 64: "<d"}.get(width)
        if fmt is None:
            raise _invalid(f"unsupported float width {width}")
        return struct.unpack(fmt, bits.to_bytes(width // 8, "little"))[0]
    if kind == "int" and bits >> (width - 1):
        bits -= 1 << width
    return bits


def _scalar_value(mod: _Module, const_id: int) -> tuple[bool | int | float, int | None]:
    """Default value of a (spec) scalar constant and its SpecId (None for a plain constant)."""
    try:
        opcode, type_id, args = mod.constants[const_id]
    except KeyError:
        raise _invalid(f"%{const_id} is not a constant with a literal value") from None
    spec = mod.deco(const_id, E.DEC_SPEC_ID) if opcode in _SPEC_SCALAR_OPS else None
    spec_id = spec[0] if spec else None
    if opcode in (E.OP_CONSTANT_TRUE, E.OP_SPEC_CONSTANT_TRUE):
        return True, spec_id
    if opcode in (E.OP_CONSTANT_FALSE, E.OP_SPEC_CONSTANT_FALSE):
        return False, spec_id
    if opcode in _COMPOSITE_CONSTANT_OPS:
        raise _invalid(f"%{const_id} is a composite where a scalar constant was expected")
    kind, width = _scalar_kind(mod, type_id)
    return _literal(kind, width, args), spec_id


def _spec_constants(mod: _Module) -> tuple[SpecConstant, ...]:
    """Scalar spec constants by SpecId; a compiler may emit one id twice, the named copy wins."""
    found: dict[int, SpecConstant] = {}
    for const_id, (opcode, type_id, _args) in mod.constants.items():
        if opcode not in _SPEC_SCALAR_OPS:
            continue
        value, spec_id = _scalar_value(mod, const_id)
        if spec_id is None:
            continue
        kind, width = _scalar_kind(mod, type_id)
        sc = SpecConstant(id=spec_id, name=mod.names.get(const_id, ""), type=kind, width=width, default=value)
        if spec_id not in found or (sc.name and not found[spec_id].name):
            found[spec_id] = sc
    return tuple(found[k] for k in sorted(found))


# -- workgroup size ----------------------------------------------------------------------------------------

def _local_size(mod: _Module, func: int) -> tuple[tuple[int, int, int], tuple[int | None, int | None, int | None]]:
    """LocalSize / LocalSizeId of ``func``, overridden by a WorkgroupSize built-in constant as the spec says.
    Unknown sizes read as 0."""
    size_ids: tuple[int, ...] | None = None
    for const_id, (opcode, _t, args) in mod.constants.items():
        builtin = mod.deco(const_id, E.DEC_BUILTIN)
        if builtin and builtin[0] == E.BUILTIN_WORKGROUP_SIZE and opcode in _COMPOSITE_CONSTANT_OPS:
            size_ids = args
    modes = mod.modes.get(func, {})
    if size_ids is None and E.MODE_LOCAL_SIZE_ID in modes:
        size_ids = modes[E.MODE_LOCAL_SIZE_ID]
    if size_ids is not None:
        if len(size_ids) != 3:
            raise _invalid(f"workgroup size has {len(size_ids)} components, expected 3")
        pairs = [_scalar_value(mod, c) for c in size_ids]
        return (tuple(int(v) for v, _ in pairs), tuple(s for _, s in pairs))  # type: ignore[return-value]
    if E.MODE_LOCAL_SIZE in modes:
        x, y, z = modes[E.MODE_LOCAL_SIZE][:3]
        return (x, y, z), (None, None, None)
    return (0, 0, 0), (None, None, None)


# -- block layout ------------------------------------------------------------------------------------------

def _size_of(mod: _Module, type_id: int, matrix_stride: int | None = None, row_major: bool = False) -> int:
    """Bytes a value of ``type_id`` occupies in an explicitly laid-out block (runtime arrays count 0).
    Matrix strides and majorness are member decorations, so the caller passes them down."""
    op, args = mod.type_of(type_id, "a block member")
    if op == E.OP_TYPE_BOOL:
        return 4
    if op in (E.OP_TYPE_INT, E.OP_TYPE_FLOAT):
        return args[0] // 8
    if op == E.OP_TYPE_VECTOR:
        return args[1] * _size_of(mod, args[0])
    if op == E.OP_TYPE_MATRIX:
        col_type, cols = args
        rows = mod.type_of(col_type, "a matrix")[1][1]
        if matrix_stride is None:
            return cols * _size_of(mod, col_type)
        return (rows if row_major else cols) * matrix_stride
    if op == E.OP_TYPE_ARRAY:
        length = int(_scalar_value(mod, args[1])[0])
        stride = mod.deco(type_id, E.DEC_ARRAY_STRIDE)
        return length * (stride[0] if stride else _size_of(mod, args[0], matrix_stride, row_major))
    if op == E.OP_TYPE_RUNTIME_ARRAY:
        return 0
    if op == E.OP_TYPE_STRUCT:
        end = 0
        for m, member_type in enumerate(args):
            offset = mod.member_deco(type_id, m, E.DEC_OFFSET)
            stride = mod.member_deco(type_id, m, E.DEC_MATRIX_STRIDE)
            size = _size_of(mod, member_type, stride[0] if stride else None,
                            mod.member_deco(type_id, m, E.DEC_ROW_MAJOR) is not None)
            end = max(end, (offset[0] if offset else end) + size)
        return end
    raise _invalid(f"type %{type_id} (opcode {op}) cannot appear in a buffer block")


# -- descriptors -------------------------------------------------------------------------------------------

def _pointee(mod: _Module, ptr_type: int) -> int:
    op, args = mod.type_of(ptr_type, "a variable")
    if op != E.OP_TYPE_POINTER:
        raise _invalid(f"variable type %{ptr_type} is not a pointer")
    return args[1]


def _strip_arrays(mod: _Module, type_id: int) -> tuple[int, int]:
    """(element type, descriptor count) of a possibly arrayed descriptor; runtime arrays count 0."""
    count = 1
    while True:
        op, args = mod.type_of(type_id, "a descriptor")
        if op == E.OP_TYPE_ARRAY:
            count *= int(_scalar_value(mod, args[1])[0])
        elif op == E.OP_TYPE_RUNTIME_ARRAY:
            count = 0
        else:
            return type_id, count
        type_id = args[0]


def _all_members(mod: _Module, var: int, struct_id: int, decoration: int) -> bool:
    """A decoration on the variable, or on every member of its block, applies to the whole buffer."""
    if mod.deco(var, decoration) is not None:
        return True
    members = mod.type_of(struct_id, "a block")[1]
    return bool(members) and all(mod.member_deco(struct_id, m, decoration) is not None
                                 for m in range(len(members)))


def _descriptor(mod: _Module, var: int, ptr_type: int, storage: int) -> DescriptorBinding | dict[str, Any]:
    """A buffer's DescriptorBinding, or a description of a descriptor HLX cannot bind (images, samplers)."""
    block, count = _strip_arrays(mod, _pointee(mod, ptr_type))
    dset = mod.deco(var, E.DEC_DESCRIPTOR_SET)
    bnd = mod.deco(var, E.DEC_BINDING)
    where = {"set": dset[0] if dset else 0, "binding": bnd[0] if bnd else 0,
             "name": mod.names.get(var) or mod.names.get(block, "")}
    op = mod.type_of(block, "a descriptor")[0]
    if op != E.OP_TYPE_STRUCT:
        return {**where, "kind": {E.OP_TYPE_IMAGE: "image", E.OP_TYPE_SAMPLER: "sampler",
                                  E.OP_TYPE_SAMPLED_IMAGE: "sampled_image"}.get(op, f"type{op}")}
    if storage == E.SC_STORAGE_BUFFER or mod.deco(block, E.DEC_BUFFER_BLOCK) is not None:
        kind = "storage"
    elif mod.deco(block, E.DEC_BLOCK) is not None:
        kind = "uniform"
    else:
        return {**where, "kind": "struct without Block decoration"}
    return DescriptorBinding(
        set=where["set"], binding=where["binding"], kind=kind,
        readonly=kind == "uniform" or _all_members(mod, var, block, E.DEC_NON_WRITABLE),
        writeonly=_all_members(mod, var, block, E.DEC_NON_READABLE),
        name=where["name"], count=count)


def _entry_point(mod: _Module, model: int, func: int, name: str, interface: tuple[int, ...]) -> EntryPoint:
    # From SPIR-V 1.4 the interface lists every global the entry point statically uses; before, only
    # Input/Output variables, so every buffer in the module is taken as used.
    used = set(interface) if mod.version >= (1, 4) else None
    bindings: list[DescriptorBinding] = []
    unsupported: list[dict[str, Any]] = []
    push_size = 0
    for var, ptr_type, storage in mod.variables:
        if used is not None and var not in used:
            continue
        if storage == E.SC_PUSH_CONSTANT:
            push_size = max(push_size, _size_of(mod, _pointee(mod, ptr_type)))
        elif storage in (E.SC_UNIFORM, E.SC_STORAGE_BUFFER, E.SC_UNIFORM_CONSTANT):
            desc = _descriptor(mod, var, ptr_type, storage)
            (bindings if isinstance(desc, DescriptorBinding) else unsupported).append(desc)  # type: ignore[arg-type]
    local_size, local_ids = _local_size(mod, func)
    return EntryPoint(
        name=name, execution_model=E.execution_model_name(model), local_size=local_size,
        local_size_ids=local_ids, bindings=tuple(sorted(bindings, key=lambda b: (b.set, b.binding))),
        push_constant_size=push_size, spec_constants=_spec_constants(mod),
        capabilities=tuple(mod.capabilities), extensions=tuple(mod.extensions), version=mod.version,
        extra={"unsupported_descriptors": unsupported} if unsupported else {})


@functools.lru_cache(maxsize=256)
def _reflect_cached(data: bytes) -> tuple[EntryPoint, ...]:
    version = check_header(data)
    mod = _parse(data, version)
    return tuple(_entry_point(mod, *entry) for entry in mod.entries)


def reflect(spirv: bytes) -> tuple[EntryPoint, ...]:
    """Every entry point of a SPIR-V module, in declaration order (non-compute ones carry their
    ``execution_model`` and a local size of (0, 0, 0)). Raises SpirvError E_SPIRV_INVALID."""
    if not isinstance(spirv, (bytes, bytearray, memoryview)):
        check_header(spirv)  # raises with the type in the message
    return _reflect_cached(bytes(spirv))


def reflect_entry(spirv: bytes, entry_point: str = "main") -> EntryPoint:
    """The GLCompute entry point named ``entry_point``; E_SPIRV_INVALID when it is absent, of another
    stage, or has no workgroup size."""
    entries = reflect(spirv)
    named = [e for e in entries if e.name == entry_point]
    compute = [e for e in named if e.execution_model == E.GL_COMPUTE]
    if not compute:
        if named:
            raise _invalid(f"entry point {entry_point!r} is a {named[0].execution_model} shader; "
                           "HLX runs only GLCompute (compute) entry points")
        have = ", ".join(f"{e.name!r} ({e.execution_model})" for e in entries) or "none"
        raise _invalid(f"no entry point named {entry_point!r}; the module has: {have}")
    entry = compute[0]
    if 0 in entry.local_size:
        raise _invalid(f"compute entry point {entry_point!r} declares no workgroup size (LocalSize)")
    return entry
