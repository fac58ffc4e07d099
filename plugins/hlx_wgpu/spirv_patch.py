"""Word-level SPIR-V rewrites that let naga take modules it would otherwise refuse, that need a feature
the adapter lacks, or whose read-only buffers naga would not see as read-only.

Five rewrites, all semantics-preserving for the values HLX passes:

* ``fix_workgroup_size``: naga refuses a WorkgroupSize built from specialization constants
  (``layout(local_size_x_id = N)``: "Initializer must be a const-expression"). The plan already knows the
  workgroup size, so those spec constants become plain constants and the LocalSize mode takes the values.
* ``push_constants_to_uniform``: without the adapter feature "immediates" a push-constant block cannot be
  fed; the block becomes a uniform buffer at (set ``UNIFORM_GROUP``, binding 0) with the same member
  offsets, and the backend writes the push-constant bytes into it.
* ``mark_readonly_variables``: glslang marks a ``readonly buffer`` by decorating every *member* of its
  block NonWritable; naga's SPIR-V front end reads that only for ``BufferBlock`` structs and otherwise takes
  the access from the *variable*'s decorations, so a ``StorageBuffer`` block comes out read-write (and the
  driver loses the read-only hint: ~8% of GEMM on an H200). The variable gets the NonWritable its members
  already have. NonReadable is left alone there: WebGPU has no write-only storage buffers.
* ``drop_buffer_block_non_readable``: a ``writeonly buffer`` compiled for SPIR-V 1.0 (plain
  ``glslangValidator -V``) is a ``BufferBlock`` struct with NonReadable members, which naga refuses
  ("Storage address space doesn't support write-only access"). NonReadable only promises the shader never
  reads, so dropping it changes nothing the shader does; the buffer binds read-write, as in WebGPU it must.
* ``drop_relaxed_precision``: glslang decorates built-ins such as ``gl_SubgroupSize`` RelaxedPrecision
  (the softmax shader reads them); naga ignores the decoration but logs a warning for each one. It only
  allows lower precision, so dropping it keeps full precision, which the shader was valid with anyway.
"""
from __future__ import annotations

import struct
from collections.abc import Iterator

from hlx_core.spirv import enums as E
from hlx_core.spirv.header import HEADER_WORDS

UNIFORM_GROUP = 1  # bind group that carries push constants as a uniform buffer
_SPEC_OPS = {E.OP_SPEC_CONSTANT, E.OP_SPEC_CONSTANT_TRUE, E.OP_SPEC_CONSTANT_FALSE,
             E.OP_SPEC_CONSTANT_COMPOSITE, E.OP_SPEC_CONSTANT_OP}
# OpDecorate, OpMemberDecorate, OpDecorationGroup, OpGroupDecorate, OpGroupMemberDecorate, OpDecorateId,
# OpDecorateString, OpMemberDecorateString: the annotation section, where new decorations go.
_ANNOTATION_OPS = {E.OP_DECORATE, E.OP_MEMBER_DECORATE, 73, 74, 75, E.OP_DECORATE_ID, 5632, 5633}


def _instructions(words: list[int]) -> Iterator[tuple[int, int, int]]:
    """Yield (offset, opcode, word count) for every instruction after the header."""
    i = HEADER_WORDS
    while i < len(words):
        count, opcode = words[i] >> 16, words[i] & 0xFFFF
        if count == 0:
            return
        yield i, opcode, count
        i += count


def _words(spirv: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(spirv) // 4}I", spirv))


def _bytes(words: list[int]) -> bytes:
    return struct.pack(f"<{len(words)}I", *words)


def _instr(opcode: int, *operands: int) -> list[int]:
    return [((len(operands) + 1) << 16) | opcode, *operands]


def _with_annotations(words: list[int], added: list[int]) -> bytes:
    """``words`` with the ``added`` decorations at the start of the annotation section."""
    at = next((at for at, opcode, _ in _instructions(words) if opcode in _ANNOTATION_OPS), len(words))
    return _bytes(words[:at] + added + words[at:])


def fix_workgroup_size(spirv: bytes, ids: tuple[int | None, int | None, int | None],
                       size: tuple[int, int, int]) -> bytes:
    """Freeze the spec constants with SpecId in ``ids`` to ``size`` and set LocalSize to ``size``."""
    words = _words(spirv)
    wanted = {spec_id: value for spec_id, value in zip(ids, size) if spec_id is not None}
    frozen: dict[int, int] = {}  # result id -> value
    spec_results: set[int] = set()
    for at, opcode, count in _instructions(words):
        if opcode in _SPEC_OPS:
            spec_results.add(words[at + 2])
        if opcode == E.OP_DECORATE and count >= 4 and words[at + 2] == E.DEC_SPEC_ID \
                and words[at + 3] in wanted:
            frozen[words[at + 1]] = wanted[words[at + 3]]
    out: list[int] = words[:HEADER_WORDS]
    for at, opcode, count in _instructions(words):
        ins = words[at:at + count]
        if opcode == E.OP_DECORATE and count >= 4 and ins[2] == E.DEC_SPEC_ID and ins[1] in frozen:
            continue  # a frozen constant keeps no SpecId
        if opcode == E.OP_SPEC_CONSTANT and ins[2] in frozen:
            ins = _instr(E.OP_CONSTANT, ins[1], ins[2], frozen[ins[2]])
        elif opcode == E.OP_SPEC_CONSTANT_COMPOSITE and all(c in frozen or c not in spec_results
                                                            for c in ins[3:]):
            ins = [ins[0] & 0xFFFF0000 | E.OP_CONSTANT_COMPOSITE, *ins[1:]]
        elif opcode == E.OP_EXECUTION_MODE_ID and ins[2] == E.MODE_LOCAL_SIZE_ID:
            ins = _instr(E.OP_EXECUTION_MODE, ins[1], E.MODE_LOCAL_SIZE, *size)
        elif opcode == E.OP_EXECUTION_MODE and ins[2] == E.MODE_LOCAL_SIZE:
            ins = _instr(E.OP_EXECUTION_MODE, ins[1], E.MODE_LOCAL_SIZE, *size)
        out.extend(ins)
    return _bytes(out)


def push_constants_to_uniform(spirv: bytes) -> bytes:
    """Turn the PushConstant storage class into Uniform and bind the block at (UNIFORM_GROUP, 0)."""
    words = _words(spirv)
    variables: list[int] = []
    for at, opcode, _ in _instructions(words):  # storage classes are rewritten in place
        if opcode == E.OP_TYPE_POINTER and words[at + 2] == E.SC_PUSH_CONSTANT:
            words[at + 2] = E.SC_UNIFORM
        elif opcode == E.OP_VARIABLE and words[at + 3] == E.SC_PUSH_CONSTANT:
            words[at + 3] = E.SC_UNIFORM
            variables.append(words[at + 2])
    if not variables:
        return spirv
    decorations: list[int] = []
    for var in variables:
        decorations += _instr(E.OP_DECORATE, var, E.DEC_DESCRIPTOR_SET, UNIFORM_GROUP)
        decorations += _instr(E.OP_DECORATE, var, E.DEC_BINDING, 0)
    return _with_annotations(words, decorations)


def mark_readonly_variables(spirv: bytes, skip: frozenset[tuple[int, int]] = frozenset()) -> bytes:
    """Decorate NonWritable every buffer variable whose block (through any arrays) has all its members
    NonWritable: the rule reflection uses for ``readonly``, so the layouts built from reflection match what
    naga reads. Variables at a (descriptor set, binding) in ``skip`` are left as they are. Returns
    ``spirv`` itself when there is nothing to add."""
    words = _words(spirv)
    members: dict[int, int] = {}  # struct id -> member count
    non_writable: dict[int, set[int]] = {}  # struct id -> NonWritable members
    marked: set[int] = set()  # ids decorated NonWritable
    sets: dict[int, int] = {}  # variable -> DescriptorSet
    slots: dict[int, int] = {}  # variable -> Binding
    element: dict[int, int] = {}  # array or pointer type id -> element or pointee type id
    buffers: list[tuple[int, int]] = []  # (variable, pointer type) in StorageBuffer or Uniform
    for at, opcode, count in _instructions(words):
        ins = words[at:at + count]
        if opcode == E.OP_MEMBER_DECORATE and count >= 4 and ins[3] == E.DEC_NON_WRITABLE:
            non_writable.setdefault(ins[1], set()).add(ins[2])
        elif opcode == E.OP_DECORATE and count >= 3 and ins[2] == E.DEC_NON_WRITABLE:
            marked.add(ins[1])
        elif opcode == E.OP_DECORATE and count >= 4 and ins[2] in (E.DEC_DESCRIPTOR_SET, E.DEC_BINDING):
            (sets if ins[2] == E.DEC_DESCRIPTOR_SET else slots)[ins[1]] = ins[3]
        elif opcode == E.OP_TYPE_STRUCT:
            members[ins[1]] = count - 2
        elif opcode in (E.OP_TYPE_ARRAY, E.OP_TYPE_RUNTIME_ARRAY):
            element[ins[1]] = ins[2]
        elif opcode == E.OP_TYPE_POINTER:
            element[ins[1]] = ins[3]
        elif opcode == E.OP_VARIABLE and ins[3] in (E.SC_STORAGE_BUFFER, E.SC_UNIFORM):
            buffers.append((ins[2], ins[1]))
    decorations: list[int] = []
    for var, ptr_type in buffers:
        block = element.get(ptr_type)
        while block in element:
            block = element[block]
        if (var not in marked and (sets.get(var, 0), slots.get(var, 0)) not in skip and members.get(block)
                and len(non_writable.get(block, ())) == members[block]):
            decorations += _instr(E.OP_DECORATE, var, E.DEC_NON_WRITABLE)
    if not decorations:
        return spirv
    return _with_annotations(words, decorations)


def drop_buffer_block_non_readable(spirv: bytes) -> bytes:
    """``spirv`` without the member NonReadable decorations of its BufferBlock structs; ``spirv`` itself when
    it has none."""
    words = _words(spirv)
    blocks = {words[at + 1] for at, opcode, count in _instructions(words)
              if opcode == E.OP_DECORATE and count >= 3 and words[at + 2] == E.DEC_BUFFER_BLOCK}
    out: list[int] = words[:HEADER_WORDS]
    dropped = False
    for at, opcode, count in _instructions(words):
        if opcode == E.OP_MEMBER_DECORATE and count >= 4 and words[at + 3] == E.DEC_NON_READABLE \
                and words[at + 1] in blocks:
            dropped = True
            continue
        out.extend(words[at:at + count])
    return _bytes(out) if dropped else spirv


def drop_relaxed_precision(spirv: bytes) -> bytes:
    """``spirv`` without its RelaxedPrecision decorations; ``spirv`` itself when it has none."""
    words = _words(spirv)
    out: list[int] = words[:HEADER_WORDS]
    dropped = False
    for at, opcode, count in _instructions(words):
        if (opcode == E.OP_DECORATE and count >= 3 and words[at + 2] == E.DEC_RELAXED_PRECISION) or \
                (opcode == E.OP_MEMBER_DECORATE and count >= 4 and words[at + 3] == E.DEC_RELAXED_PRECISION):
            dropped = True
            continue
        out.extend(words[at:at + count])
    return _bytes(out) if dropped else spirv
