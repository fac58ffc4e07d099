"""Specialization-constant expressions: the values of ``OpSpecConstantOp`` results.

A workgroup size, an array length or a descriptor count may be an expression over specialization constants
(GLSL ``float v[N + 1u]`` becomes ``OpSpecConstantOp IAdd %N %uint_1``; ``gl_WorkGroupSize.x`` a
``CompositeExtract``). Reflection keeps such a value as a small immutable tree, so it can be evaluated at the
defaults now and, for workgroup sizes, again with the values a contract specialises
(``EntryPoint.workgroup_size``).

Integers are computed as bit patterns of their type's width, wrapping as on the device; the signed opcodes
read their operands as two's complement. The opcodes are those SPIR-V allows in ``OpSpecConstantOp`` for
shaders (integer and logical arithmetic, comparisons, ``Select``, conversions between integer widths and
composite access). Float arithmetic is Kernel-only and refused, as are results the specification leaves
undefined (division by zero, shifts by the operand width or more): a size computed from them means nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Union

from hlx_core.errors import ContractError, SpirvError

#: Largest expression (nodes, counting shared sub-expressions each time they are used) reflection accepts;
#: real shaders use a handful, and the bound keeps hashing and evaluation of hostile modules cheap.
MAX_NODES = 1024


@dataclass(frozen=True)
class Literal:
    """A constant: ``value`` as Python reads it (a signed int for ``int``, bool for ``bool``)."""

    kind: str
    width: int
    value: bool | int | float


@dataclass(frozen=True)
class Spec:
    """A specialization constant: its SpecId and the default used when no value is given."""

    id: int
    kind: str
    width: int
    default: bool | int | float


@dataclass(frozen=True)
class Op:
    """An ``OpSpecConstantOp``: ``kind``/``width`` of its result (of each component for a vector)."""

    opcode: int
    kind: str
    width: int
    args: tuple["Expr", ...]
    literals: tuple[int, ...] = ()


@dataclass(frozen=True)
class Composite:
    """A composite constant (a vector such as the ``WorkgroupSize`` built-in)."""

    kind: str
    width: int
    items: tuple["Expr", ...]


Expr = Union[Literal, Spec, Op, Composite]
Value = Union[bool, int, float, tuple]

INT_KINDS = ("int", "uint")


def _invalid(message: str) -> SpirvError:
    return SpirvError("E_SPIRV_INVALID", message)


def _signed(bits: int, width: int) -> int:
    return bits - (1 << width) if bits >> (width - 1) else bits


def _div(a: int, b: int) -> int:
    """Integer division rounding toward zero (SDiv, SRem), unlike Python's floor division."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def _shift(amount: int, width: int) -> int:
    if not 0 <= amount < width:
        raise _invalid(f"shift by {amount} of a {width}-bit value is undefined in SPIR-V")
    return amount


def _nonzero(b: int) -> int:
    if b == 0:
        raise _invalid("integer division by zero in a specialization-constant expression")
    return b


# opcode -> (name, operand kind, number of operands, function, which operands read as signed). Integer
# functions get the operands as unsigned bit patterns of their width, or as two's-complement values where
# ``signed`` says so, plus the width of the first operand; the caller masks the result to its width.
_ALL, _FIRST = "all", "first"
_OPS: dict[int, tuple[str, str, int, Callable[..., Any], str]] = {
    113: ("UConvert", "int", 1, lambda a, w: a, ""),
    114: ("SConvert", "int", 1, lambda a, w: a, _ALL),
    126: ("SNegate", "int", 1, lambda a, w: -a, _ALL),
    200: ("Not", "int", 1, lambda a, w: ~a, ""),
    128: ("IAdd", "int", 2, lambda a, b, w: a + b, ""),
    130: ("ISub", "int", 2, lambda a, b, w: a - b, ""),
    132: ("IMul", "int", 2, lambda a, b, w: a * b, ""),
    134: ("UDiv", "int", 2, lambda a, b, w: a // _nonzero(b), ""),
    135: ("SDiv", "int", 2, lambda a, b, w: _div(a, _nonzero(b)), _ALL),
    137: ("UMod", "int", 2, lambda a, b, w: a % _nonzero(b), ""),
    138: ("SRem", "int", 2, lambda a, b, w: a - b * _div(a, _nonzero(b)), _ALL),
    139: ("SMod", "int", 2, lambda a, b, w: a % _nonzero(b), _ALL),  # Python's % takes the divisor's sign
    194: ("ShiftRightLogical", "int", 2, lambda a, b, w: a >> _shift(b, w), ""),
    195: ("ShiftRightArithmetic", "int", 2, lambda a, b, w: a >> _shift(b, w), _FIRST),
    196: ("ShiftLeftLogical", "int", 2, lambda a, b, w: a << _shift(b, w), ""),
    197: ("BitwiseOr", "int", 2, lambda a, b, w: a | b, ""),
    198: ("BitwiseXor", "int", 2, lambda a, b, w: a ^ b, ""),
    199: ("BitwiseAnd", "int", 2, lambda a, b, w: a & b, ""),
    170: ("IEqual", "int", 2, lambda a, b, w: a == b, ""),
    171: ("INotEqual", "int", 2, lambda a, b, w: a != b, ""),
    172: ("UGreaterThan", "int", 2, lambda a, b, w: a > b, ""),
    173: ("SGreaterThan", "int", 2, lambda a, b, w: a > b, _ALL),
    174: ("UGreaterThanEqual", "int", 2, lambda a, b, w: a >= b, ""),
    175: ("SGreaterThanEqual", "int", 2, lambda a, b, w: a >= b, _ALL),
    176: ("ULessThan", "int", 2, lambda a, b, w: a < b, ""),
    177: ("SLessThan", "int", 2, lambda a, b, w: a < b, _ALL),
    178: ("ULessThanEqual", "int", 2, lambda a, b, w: a <= b, ""),
    179: ("SLessThanEqual", "int", 2, lambda a, b, w: a <= b, _ALL),
    164: ("LogicalEqual", "bool", 2, lambda a, b: a == b, ""),
    165: ("LogicalNotEqual", "bool", 2, lambda a, b: a != b, ""),
    166: ("LogicalOr", "bool", 2, lambda a, b: a or b, ""),
    167: ("LogicalAnd", "bool", 2, lambda a, b: a and b, ""),
    168: ("LogicalNot", "bool", 1, lambda a: not a, ""),
}
SELECT, VECTOR_SHUFFLE, COMPOSITE_EXTRACT, COMPOSITE_INSERT = 169, 79, 81, 82
#: Opcodes that pick or move values: name and number of id operands.
_PICK_OPS = {SELECT: ("Select", 3), VECTOR_SHUFFLE: ("VectorShuffle", 2),
             COMPOSITE_EXTRACT: ("CompositeExtract", 1), COMPOSITE_INSERT: ("CompositeInsert", 2)}
#: Opcodes whose id operands are followed by literal indices.
_LITERAL_INDICES = (VECTOR_SHUFFLE, COMPOSITE_EXTRACT, COMPOSITE_INSERT)


def op_name(opcode: int) -> str:
    entry = _OPS.get(opcode) or _PICK_OPS.get(opcode)
    return entry[0] if entry else f"opcode {opcode}"


def make_op(opcode: int, kind: str, width: int, operands: tuple[int, ...],
            arg: Callable[[int], Expr]) -> Op:
    """An Op from the operands of ``OpSpecConstantOp`` that follow its opcode literal; ``arg`` turns an id
    into its expression. Checks what can be checked without values: opcode, operand count and kinds."""
    if opcode in _OPS:
        name, operand_kind, n_ids = _OPS[opcode][:3]
    elif opcode in _PICK_OPS:
        (name, n_ids), operand_kind = _PICK_OPS[opcode], "any"
    else:
        raise _invalid(f"OpSpecConstantOp with opcode {opcode}: HLX evaluates integer and logical "
                       "arithmetic, comparisons, Select, integer conversions and composite access")
    ids, literals = operands[:n_ids], tuple(operands[n_ids:])
    if len(ids) != n_ids or (literals and opcode not in _LITERAL_INDICES):
        raise _invalid(f"OpSpecConstantOp {name} has {len(operands)} operand(s), expected {n_ids}")
    args = tuple(arg(i) for i in ids)
    if opcode == SELECT:  # the condition is bool; the objects may be anything (of one type)
        operand_kind, checked = "bool", args[:1]
    else:
        checked = args
    want = {"int": INT_KINDS, "bool": ("bool",)}.get(operand_kind)
    if want is not None and any(a.kind not in want for a in checked):
        raise _invalid(f"OpSpecConstantOp {name} needs {'integer' if operand_kind == 'int' else 'bool'} "
                       f"operands, got {', '.join(a.kind for a in checked)}")
    return Op(opcode, kind, width, args, literals)


def check_size(node: Expr) -> Expr:
    """``node``, unless it is larger than MAX_NODES (E_SPIRV_INVALID)."""
    if size(node) > MAX_NODES:
        raise _invalid(f"a specialization-constant expression has more than {MAX_NODES} nodes")
    return node


def size(node: Expr) -> int:
    """Nodes in the expression, shared sub-expressions counted at each use (counting stops past
    MAX_NODES, so this is cheap even for a hostile module)."""
    if isinstance(node, (Literal, Spec)):
        return 1
    total = 1
    for item in _children(node):
        total += size(item)
        if total > MAX_NODES:
            break
    return total


def _children(node: Op | Composite) -> tuple[Expr, ...]:
    return node.args if isinstance(node, Op) else node.items


def spec_ids(node: Expr | None) -> frozenset[int]:
    """The SpecIds an expression depends on."""
    if node is None or isinstance(node, Literal):
        return frozenset()
    if isinstance(node, Spec):
        return frozenset((node.id,))
    return frozenset().union(*(spec_ids(i) for i in _children(node)))


def evaluate(node: Expr, spec: Mapping[int, Any] | None = None) -> Value:
    """The value of ``node`` with the given specialization values (SpecId -> value; others keep their
    defaults): an int (signed for ``int`` types), bool, float, or a tuple of them for a composite."""
    return _external(node.kind, node.width, _eval(node, spec or {}))


def _external(kind: str, width: int, value: Value) -> Value:
    if isinstance(value, tuple):
        return tuple(_external(kind, width, v) for v in value)
    if kind == "int" and not isinstance(value, bool):
        return _signed(value, width)  # type: ignore[arg-type]
    return value


def _bits(value: Any, kind: str, width: int, sid: int | None = None) -> Value:
    """A value in the evaluator's form: the bit pattern of an integer, a bool, a float."""
    try:
        if kind == "bool":
            return bool(value)
        if kind == "float":
            return float(value)
        if isinstance(value, float) and not value.is_integer():
            raise ValueError("not an integer")
        return int(value) & ((1 << width) - 1)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ContractError("E_CONTRACT_FIELD_TYPE", f"{value!r:.60} is not a value for a {width}-bit {kind} "
                            f"specialization constant ({exc})",
                            path=f"specialization_constants.{sid}" if sid is not None else None) from None


def _eval(node: Expr, spec: Mapping[int, Any]) -> Value:
    if isinstance(node, Literal):
        return _bits(node.value, node.kind, node.width)
    if isinstance(node, Spec):
        return _bits(spec.get(node.id, node.default), node.kind, node.width, node.id)
    if isinstance(node, Composite):
        return tuple(_eval(item, spec) for item in node.items)
    args = [_eval(a, spec) for a in node.args]
    if node.opcode in _OPS:
        return _arith(node, args)
    return _pick(node, args)


def _arith(node: Op, args: list[Value]) -> Value:
    """An arithmetic, logical or comparison opcode, component by component for vectors."""
    if any(isinstance(a, tuple) for a in args):
        n = len(args[0]) if isinstance(args[0], tuple) else -1
        if any(not isinstance(a, tuple) or len(a) != n for a in args):
            raise _invalid(f"OpSpecConstantOp {op_name(node.opcode)} mixes vectors of different sizes or "
                           "vectors and scalars")
        return tuple(_arith(node, [a[i] for a in args]) for i in range(n))  # type: ignore[index]
    _name, operand_kind, _n, fn, signed = _OPS[node.opcode]
    if operand_kind == "bool":
        return fn(*args)
    widths = [a.width for a in node.args]
    ints = [_signed(v, w) if signed == _ALL or (signed == _FIRST and i == 0) else v  # type: ignore[arg-type]
            for i, (v, w) in enumerate(zip(args, widths))]
    out = fn(*ints, widths[0])
    return out if isinstance(out, bool) else out & ((1 << node.width) - 1)


def _pick(node: Op, args: list[Value]) -> Value:
    """Select, VectorShuffle, CompositeExtract, CompositeInsert."""
    name = op_name(node.opcode)
    if node.opcode == SELECT:
        cond, a, b = args
        if not isinstance(cond, tuple):  # a scalar condition picks whole objects (SPIR-V 1.4)
            return a if cond else b
        if not (isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b) == len(cond)):
            raise _invalid("OpSpecConstantOp Select mixes vectors of different sizes")
        return tuple(x if c else y for c, x, y in zip(cond, a, b))
    if node.opcode == VECTOR_SHUFFLE:
        pool = _vector(args[0], name) + _vector(args[1], name)
        if any(i >= len(pool) for i in node.literals):
            raise _invalid(f"OpSpecConstantOp {name} selects an undefined component")
        return tuple(pool[i] for i in node.literals)
    if node.opcode == COMPOSITE_EXTRACT:
        return _at(args[0], node.literals, name)
    if not node.literals:
        raise _invalid(f"OpSpecConstantOp {name} has no index")
    return _insert(args[1], node.literals, args[0], name)


def _vector(value: Value, name: str) -> tuple:
    if not isinstance(value, tuple):
        raise _invalid(f"OpSpecConstantOp {name} needs vector operands")
    return value


def _at(value: Value, path: tuple[int, ...], name: str) -> Value:
    for i in path:
        if not isinstance(value, tuple) or i >= len(value):
            raise _invalid(f"OpSpecConstantOp {name} index {i} is outside the composite")
        value = value[i]
    return value


def _insert(value: Value, path: tuple[int, ...], new: Value, name: str) -> Value:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if not isinstance(value, tuple) or head >= len(value):
        raise _invalid(f"OpSpecConstantOp {name} index {head} is outside the composite")
    return value[:head] + (_insert(value[head], rest, new, name),) + value[head + 1:]
