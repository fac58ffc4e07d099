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
from typing import Any, Sequence

from hlx_core.errors import SpirvError
from hlx_core.spirv import enums as E
from hlx_core.spirv.header import HEADER_WORDS, check_header
from hlx_core.spirv.specexpr import (
    COMPOSITE_EXTRACT,
    INT_KINDS,
    Composite,
    Expr,
    Literal,
    Op,
    Spec,
    check_size,
    evaluate,
    make_op,
    spec_ids,
)
from hlx_core.spirv.types import CooperativeMatrixType, DescriptorBinding, EntryPoint, PushMember, SpecConstant

_SPEC_SCALAR_OPS = (E.OP_SPEC_CONSTANT, E.OP_SPEC_CONSTANT_TRUE, E.OP_SPEC_CONSTANT_FALSE)
_SCALAR_CONSTANT_OPS = (E.OP_CONSTANT, E.OP_CONSTANT_TRUE, E.OP_CONSTANT_FALSE) + _SPEC_SCALAR_OPS
_COMPOSITE_CONSTANT_OPS = (E.OP_CONSTANT_COMPOSITE, E.OP_SPEC_CONSTANT_COMPOSITE)
_CONSTANT_OPS = _SCALAR_CONSTANT_OPS + _COMPOSITE_CONSTANT_OPS + (E.OP_CONSTANT_NULL, E.OP_SPEC_CONSTANT_OP)
_WIDTHS = {"int": (8, 16, 32, 64), "uint": (8, 16, 32, 64), "float": (16, 32, 64)}
# Operands a type instruction needs (after its result id), and the types whose first operand is a type.
_TYPE_OPERANDS = {E.OP_TYPE_INT: 2, E.OP_TYPE_FLOAT: 1, E.OP_TYPE_VECTOR: 2, E.OP_TYPE_MATRIX: 2,
                  E.OP_TYPE_IMAGE: 7, E.OP_TYPE_SAMPLED_IMAGE: 1, E.OP_TYPE_ARRAY: 2, E.OP_TYPE_RUNTIME_ARRAY: 1,
                  E.OP_TYPE_POINTER: 2}
_ELEMENT_TYPED = (E.OP_TYPE_VECTOR, E.OP_TYPE_MATRIX, E.OP_TYPE_IMAGE, E.OP_TYPE_SAMPLED_IMAGE, E.OP_TYPE_ARRAY,
                  E.OP_TYPE_RUNTIME_ARRAY, E.OP_TYPE_COOPERATIVE_MATRIX_KHR, E.OP_TYPE_COOPERATIVE_MATRIX_NV)
# Cooperative-matrix types live outside the contiguous range of type opcodes: (component type, scope, rows,
# columns[, use]), all but the first constant ids.
_COOPERATIVE_OPERANDS = {E.OP_TYPE_COOPERATIVE_MATRIX_KHR: 5, E.OP_TYPE_COOPERATIVE_MATRIX_NV: 4}
_TYPE_OPERANDS.update(_COOPERATIVE_OPERANDS)
# Constants or types nested deeper than this are refused (real shaders nest a few levels), so hostile
# modules cannot exhaust Python's recursion limit.
_MAX_NESTING = 64


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
    member_names: dict[tuple[int, int], str] = field(default_factory=dict)
    capabilities: list[str] = field(default_factory=list)
    extensions: list[str] = field(default_factory=list)
    entries: list[tuple[int, int, str, tuple[int, ...]]] = field(default_factory=list)
    modes: dict[int, dict[int, tuple[int, ...]]] = field(default_factory=dict)
    decorations: dict[int, dict[int, tuple[int, ...]]] = field(default_factory=dict)
    member_decorations: dict[tuple[int, int], dict[int, tuple[int, ...]]] = field(default_factory=dict)
    types: dict[int, tuple[int, tuple[int, ...]]] = field(default_factory=dict)
    constants: dict[int, tuple[int, int, tuple[int, ...]]] = field(default_factory=dict)
    variables: list[tuple[int, int, int]] = field(default_factory=list)  # (id, pointer type, storage class)
    exprs: dict[int, Expr] = field(default_factory=dict)  # constant id -> its expression, built on demand
    forward_pointers: set[int] = field(default_factory=set)  # pointer types declared by OpTypeForwardPointer

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


def _deeper(depth: int, type_id: int) -> int:
    if depth >= _MAX_NESTING:
        raise _invalid(f"type %{type_id} is nested more than {_MAX_NESTING} deep")
    return depth + 1


def _new_id(mod: _Module, result_id: int) -> None:
    if result_id in mod.types or result_id in mod.constants:
        raise _invalid(f"result id %{result_id} is defined twice")


def _record(mod: _Module, opcode: int, ops: tuple[int, ...]) -> None:
    if opcode == E.OP_NAME:
        mod.names[ops[0]] = _string(ops, 1)[0]
    elif opcode == E.OP_MEMBER_NAME:
        mod.member_names[(ops[0], ops[1])] = _string(ops, 2)[0]
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
    elif E.OP_TYPE_BOOL <= opcode <= E.OP_TYPE_POINTER or opcode in _COOPERATIVE_OPERANDS:
        _new_id(mod, ops[0])
        args = tuple(ops[1:])
        if len(args) < _TYPE_OPERANDS.get(opcode, 0):
            raise _invalid(f"type %{ops[0]} (opcode {opcode}) has {len(args)} operand(s), "
                           f"needs {_TYPE_OPERANDS[opcode]}")
        # Types are declared before use (SPIR-V's logical layout; only an OpTypeForwardPointer may be named
        # early), which also rules out a type containing itself.
        for ref in args if opcode == E.OP_TYPE_STRUCT else args[:1] if opcode in _ELEMENT_TYPED else ():
            if ref not in mod.types and ref not in mod.forward_pointers:
                raise _invalid(f"type %{ops[0]} refers to %{ref}, which is not a type declared before it")
        mod.types[ops[0]] = (opcode, args)
    elif opcode == E.OP_TYPE_FORWARD_POINTER:
        mod.forward_pointers.add(ops[0])
    elif opcode in _CONSTANT_OPS:
        _new_id(mod, ops[1])
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
    if op in (E.OP_TYPE_INT, E.OP_TYPE_FLOAT):
        kind = "float" if op == E.OP_TYPE_FLOAT else "int" if args[1] else "uint"
        if op == E.OP_TYPE_FLOAT and len(args) > 1:
            raise _invalid(f"{_float_name(args)} type %{type_id} has no constant values HLX reads")
        if args[0] not in _WIDTHS[kind]:
            raise _invalid(f"unsupported {kind} width {args[0]} in type %{type_id}")
        return kind, args[0]
    raise _invalid(f"type %{type_id} is not a scalar (opcode {op})")


def _component_kind(mod: _Module, type_id: int, depth: int = 0) -> tuple[str, int]:
    """The scalar kind of a scalar, or of the components of a vector, matrix or array type."""
    op, args = mod.type_of(type_id, "a constant")
    if op in (E.OP_TYPE_VECTOR, E.OP_TYPE_MATRIX, E.OP_TYPE_ARRAY):
        return _component_kind(mod, args[0], _deeper(depth, type_id))
    if op == E.OP_TYPE_STRUCT:
        return "struct", 0
    return _scalar_kind(mod, type_id)


def _literal(kind: str, width: int, words: tuple[int, ...]) -> int | float:
    """A numeric literal: low-order word first; narrow integers occupy the low bits of one word."""
    bits = 0
    for n, w in enumerate(words[:max(1, width // 32)]):
        bits |= w << (32 * n)
    bits &= (1 << width) - 1
    if kind == "float":
        fmt = {16: "<e", 32: "<f", 64: "<d"}[width]
        return struct.unpack(fmt, bits.to_bytes(width // 8, "little"))[0]
    if kind == "int" and bits >> (width - 1):
        bits -= 1 << width
    return bits


def _null(mod: _Module, type_id: int) -> Expr:
    """The value of OpConstantNull: zero, false, or a vector of them."""
    op, args = mod.type_of(type_id, "a constant")
    if op == E.OP_TYPE_VECTOR:
        kind, width = _scalar_kind(mod, args[0])
        return Composite(kind, width, (_null(mod, args[0]),) * args[1])
    kind, width = _scalar_kind(mod, type_id)
    return Literal(kind, width, {"bool": False, "float": 0.0}.get(kind, 0))


def _expr(mod: _Module, const_id: int, depth: int = 0) -> Expr:
    """The expression behind a constant id: a literal, a specialization constant (when it has a SpecId), a
    composite, or an OpSpecConstantOp over other constants. Built only for values reflection needs."""
    node = mod.exprs.get(const_id)
    if node is not None:
        return node
    if depth > _MAX_NESTING:
        raise _invalid(f"constant %{const_id} is nested more than {_MAX_NESTING} deep or refers to itself")
    try:
        opcode, type_id, args = mod.constants[const_id]
    except KeyError:
        raise _invalid(f"%{const_id} is not a constant") from None
    if opcode in _COMPOSITE_CONSTANT_OPS:
        kind, width = _component_kind(mod, type_id)
        node = Composite(kind, width, tuple(_expr(mod, c, depth + 1) for c in args))
    elif opcode == E.OP_SPEC_CONSTANT_OP:
        if not args:
            raise _invalid(f"OpSpecConstantOp %{const_id} has no opcode")
        kind, width = _component_kind(mod, type_id)
        node = make_op(args[0], kind, width, args[1:], lambda i: _expr(mod, i, depth + 1))
    elif opcode == E.OP_CONSTANT_NULL:
        node = _null(mod, type_id)
    else:
        kind, width = _scalar_kind(mod, type_id)
        value = {E.OP_CONSTANT_TRUE: True, E.OP_SPEC_CONSTANT_TRUE: True, E.OP_CONSTANT_FALSE: False,
                 E.OP_SPEC_CONSTANT_FALSE: False}.get(opcode)
        if value is None:
            value = _literal(kind, width, args)
        spec = mod.deco(const_id, E.DEC_SPEC_ID) if opcode in _SPEC_SCALAR_OPS else None
        node = Spec(spec[0], kind, width, value) if spec else Literal(kind, width, value)
    mod.exprs[const_id] = check_size(node)
    return node


def _integer(mod: _Module, const_id: int, what: str) -> int:
    """An integer scalar constant at the specialization defaults."""
    node = _expr(mod, const_id)
    value = evaluate(node)
    if node.kind not in INT_KINDS or isinstance(value, tuple):
        raise _invalid(f"{what} %{const_id} is not an integer scalar constant")
    return int(value)  # type: ignore[arg-type]


def _count(mod: _Module, const_id: int, what: str) -> int:
    """An array length (at least 1, as SPIR-V requires) at the specialization defaults."""
    value = _integer(mod, const_id, what)
    if value < 1:
        raise _invalid(f"{what} %{const_id} is {value}; SPIR-V array lengths are at least 1")
    return value


def _spec_constants(mod: _Module) -> tuple[SpecConstant, ...]:
    """Scalar spec constants by SpecId; a compiler may emit one id twice, the named copy wins."""
    found: dict[int, SpecConstant] = {}
    for const_id, (opcode, _type_id, _args) in mod.constants.items():
        if opcode not in _SPEC_SCALAR_OPS:
            continue
        node = _expr(mod, const_id)
        if not isinstance(node, Spec):
            continue
        sc = SpecConstant(id=node.id, name=mod.names.get(const_id, ""), type=node.kind,  # type: ignore[arg-type]
                          width=node.width, default=node.default)
        if node.id not in found or (sc.name and not found[node.id].name):
            found[node.id] = sc
    return tuple(found[k] for k in sorted(found))


# -- workgroup size ----------------------------------------------------------------------------------------

def _local_size(mod: _Module, func: int) -> tuple[tuple[int, int, int], tuple[int | None, ...],
                                                   tuple[Expr | None, ...]]:
    """LocalSize / LocalSizeId of ``func``, overridden by a WorkgroupSize built-in constant as the spec says:
    (sizes at the specialization defaults, the SpecId of each axis that is one spec constant, the expression
    of each axis that depends on spec constants). Unknown sizes read as 0."""
    axes: list[Expr] | None = None
    for const_id, (_opcode, _t, _args) in mod.constants.items():
        builtin = mod.deco(const_id, E.DEC_BUILTIN)
        if builtin and builtin[0] == E.BUILTIN_WORKGROUP_SIZE:
            vector = _expr(mod, const_id)
            axes = (list(vector.items) if isinstance(vector, Composite) else
                    [Op(COMPOSITE_EXTRACT, vector.kind, vector.width, (vector,), (i,)) for i in range(3)])
    modes = mod.modes.get(func, {})
    if axes is None and E.MODE_LOCAL_SIZE_ID in modes:
        axes = [_expr(mod, c) for c in _three(modes[E.MODE_LOCAL_SIZE_ID], "LocalSizeId")]
    if axes is None:
        x, y, z = _three(modes.get(E.MODE_LOCAL_SIZE, (0, 0, 0)), "LocalSize")
        return (x, y, z), (None, None, None), (None, None, None)
    x, y, z = _three(axes, "the WorkgroupSize built-in")
    values = []
    for axis in (x, y, z):
        value = evaluate(axis)
        if axis.kind not in INT_KINDS or isinstance(value, tuple) or value < 0:  # type: ignore[operator]
            raise _invalid(f"workgroup size component {value!r} is not a non-negative integer")
        values.append(int(value))  # type: ignore[arg-type]
    ids = tuple(a.id if isinstance(a, Spec) else None for a in (x, y, z))
    exprs = tuple(a if spec_ids(a) else None for a in (x, y, z))
    return (values[0], values[1], values[2]), ids, exprs


def _three(items: Sequence[Any], what: str) -> Sequence[Any]:
    if len(items) != 3:
        raise _invalid(f"workgroup size from {what} has {len(items)} components, expected 3")
    return items


# -- block layout ------------------------------------------------------------------------------------------

def _size_of(mod: _Module, type_id: int, matrix_stride: int | None = None, row_major: bool = False,
             depth: int = 0) -> int:
    """Bytes a value of ``type_id`` occupies in an explicitly laid-out block (runtime arrays count 0).
    Matrix strides and majorness are member decorations, so the caller passes them down."""
    op, args = mod.type_of(type_id, "a block member")
    depth = _deeper(depth, type_id)
    if op == E.OP_TYPE_BOOL:
        return 4
    if op in (E.OP_TYPE_INT, E.OP_TYPE_FLOAT):
        return args[0] // 8
    if op == E.OP_TYPE_VECTOR:
        return args[1] * _size_of(mod, args[0], depth=depth)
    if op == E.OP_TYPE_MATRIX:
        col_type, cols = args[:2]
        col_op, col_args = mod.type_of(col_type, "a matrix")
        if col_op != E.OP_TYPE_VECTOR:
            raise _invalid(f"matrix type %{type_id} has columns of type %{col_type}, which is not a vector")
        rows = col_args[1]
        if matrix_stride is None:
            return cols * _size_of(mod, col_type, depth=depth)
        return (rows if row_major else cols) * matrix_stride
    if op == E.OP_TYPE_ARRAY:
        length = _count(mod, args[1], "array length")
        stride = mod.deco(type_id, E.DEC_ARRAY_STRIDE)
        return length * (stride[0] if stride else _size_of(mod, args[0], matrix_stride, row_major, depth))
    if op == E.OP_TYPE_RUNTIME_ARRAY:
        return 0
    if op == E.OP_TYPE_POINTER and args[0] == E.SC_PHYSICAL_STORAGE_BUFFER:
        return 8  # a GL_EXT_buffer_reference pointer: a 64-bit device address
    if op == E.OP_TYPE_STRUCT:
        end = 0
        for m, member_type in enumerate(args):
            offset = mod.member_deco(type_id, m, E.DEC_OFFSET)
            stride = mod.member_deco(type_id, m, E.DEC_MATRIX_STRIDE)
            size = _size_of(mod, member_type, stride[0] if stride else None,
                            mod.member_deco(type_id, m, E.DEC_ROW_MAJOR) is not None, depth)
            end = max(end, (offset[0] if offset else end) + size)
        return end
    raise _invalid(f"type %{type_id} (opcode {op}) cannot appear in a buffer block")


def _float_name(args: tuple[int, ...]) -> str:
    """The dtype name of an OpTypeFloat: IEEE "float16"/"float32"/..., or its FP encoding ("bfloat16")."""
    if len(args) > 1:
        return E.FP_ENCODINGS.get(args[1], f"float{args[0]}-encoding{args[1]}")
    return f"float{args[0]}"


def _dtype(mod: _Module, type_id: int) -> str:
    """The dtype name of a scalar type ("float32", "int8", "bool", "bfloat16"), else ""."""
    op, args = mod.type_of(type_id, "a block member")
    if op == E.OP_TYPE_BOOL:
        return "bool"
    if op == E.OP_TYPE_FLOAT:
        return _float_name(args)
    if op == E.OP_TYPE_INT:
        return f"{'int' if args[1] else 'uint'}{args[0]}"
    return ""


def _cooperative_matrices(mod: _Module) -> tuple[CooperativeMatrixType, ...]:
    """Every cooperative-matrix type the module declares (sizes at the specialization defaults), in
    declaration order: what a device must offer to run it."""
    found = []
    for op, args in mod.types.values():
        if op not in _COOPERATIVE_OPERANDS:
            continue
        scope = _integer(mod, args[1], "cooperative-matrix scope")
        use = E.MATRIX_USES.get(_integer(mod, args[4], "cooperative-matrix use"), "unknown") if len(args) > 4 else ""
        found.append(CooperativeMatrixType(
            component=_dtype(mod, args[0]), scope=E.SCOPES.get(scope, f"scope{scope}"),
            rows=_count(mod, args[2], "cooperative-matrix rows"),
            cols=_count(mod, args[3], "cooperative-matrix columns"),
            use=use, khr=op == E.OP_TYPE_COOPERATIVE_MATRIX_KHR))
    return tuple(found)


def _member(mod: _Module, struct_id: int, m: int, type_id: int) -> PushMember:
    """A push block member: its scalar dtype, vector length and array length (arrays of arrays, matrices
    and structs read as type "")."""
    offset = mod.member_deco(struct_id, m, E.DEC_OFFSET)
    name = mod.member_names.get((struct_id, m), f"member{m}")
    array_size = stride = 0
    op, args = mod.type_of(type_id, "a block member")
    if op == E.OP_TYPE_ARRAY:
        array_size = _count(mod, args[1], "array length")
        stride_deco = mod.deco(type_id, E.DEC_ARRAY_STRIDE)
        stride = stride_deco[0] if stride_deco else _size_of(mod, args[0])
        type_id = args[0]
        op, args = mod.type_of(type_id, "a block member")
    components = 1
    if op == E.OP_TYPE_VECTOR:
        components, type_id = args[1], args[0]
    return PushMember(name=name, offset=offset[0] if offset else 0, type=_dtype(mod, type_id),
                      components=components, array_size=array_size, stride=stride)


def _push_members(mod: _Module, block: int) -> tuple[PushMember, ...]:
    op, args = mod.type_of(block, "the push-constant block")
    if op != E.OP_TYPE_STRUCT:
        return ()
    members = (_member(mod, block, m, t) for m, t in enumerate(args))
    return tuple(sorted(members, key=lambda p: p.offset))


def _element(mod: _Module, block: int) -> str:
    """The element dtype of a buffer block whose only member is an array of scalars or vectors, else ""."""
    members = mod.type_of(block, "a block")[1]
    if len(members) != 1:
        return ""
    op, args = mod.type_of(members[0], "a block member")
    if op not in (E.OP_TYPE_ARRAY, E.OP_TYPE_RUNTIME_ARRAY):
        return ""
    op, inner = mod.type_of(args[0], "a block member")
    return _dtype(mod, inner[0] if op == E.OP_TYPE_VECTOR else args[0])


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
            count *= _count(mod, args[1], "array length")
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
        name=where["name"], count=count, element=_element(mod, block))


def _entry_point(mod: _Module, model: int, func: int, name: str, interface: tuple[int, ...]) -> EntryPoint:
    # From SPIR-V 1.4 the interface lists every global the entry point statically uses; before, only
    # Input/Output variables, so every buffer in the module is taken as used.
    used = set(interface) if mod.version >= (1, 4) else None
    bindings: list[DescriptorBinding] = []
    unsupported: list[dict[str, Any]] = []
    push_size = 0
    push_members: tuple[PushMember, ...] = ()
    for var, ptr_type, storage in mod.variables:
        if used is not None and var not in used:
            continue
        if storage == E.SC_PUSH_CONSTANT:
            push_size = max(push_size, _size_of(mod, _pointee(mod, ptr_type)))
            push_members = _push_members(mod, _pointee(mod, ptr_type))
        elif storage in (E.SC_UNIFORM, E.SC_STORAGE_BUFFER, E.SC_UNIFORM_CONSTANT):
            desc = _descriptor(mod, var, ptr_type, storage)
            (bindings if isinstance(desc, DescriptorBinding) else unsupported).append(desc)  # type: ignore[arg-type]
    local_size, local_ids, local_exprs = _local_size(mod, func)
    return EntryPoint(
        name=name, execution_model=E.execution_model_name(model), local_size=local_size,
        local_size_ids=local_ids, workgroup_exprs=local_exprs,
        bindings=tuple(sorted(bindings, key=lambda b: (b.set, b.binding))),
        push_constant_size=push_size, push_constants=push_members, spec_constants=_spec_constants(mod),
        capabilities=tuple(mod.capabilities), extensions=tuple(mod.extensions), version=mod.version,
        cooperative_matrices=_cooperative_matrices(mod),
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
