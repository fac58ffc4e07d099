"""SPIR-V header checks and reflection, compared with spirv-cross on real shaders.

The test shaders in tests/spirv_src are compiled at test time with glslangValidator for the targets named in
their "// targets:" line (default: vulkan1.0 and vulkan1.3, i.e. SPIR-V 1.0 and 1.6); every shader in
shaders/ is checked as committed. spirv-cross --reflect and spirv-dis are the independent references.
"""
from __future__ import annotations

import json
import random
import re
import shutil
import struct
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hlx_core.contracts.shader import shader_contract
from hlx_core.errors import ContractError, SpirvError
from hlx_core.spirv.header import check_header
from hlx_core.spirv.reflect import reflect, reflect_entry
from hlx_core.spirv.specexpr import Composite, Literal, Op, Spec, evaluate, make_op, op_name, size, spec_ids
from hlx_core.spirv.types import EntryPoint

ROOT = Path(__file__).resolve().parent.parent
SRC = Path(__file__).resolve().parent / "spirv_src"
# Debian 12's spirv-cross predates cooperative matrices: tests/test_coopmat_shaders.py reflects those modules.
LIBRARY = sorted(p for p in (ROOT / "shaders").glob("*.spv") if "_coopmat" not in p.stem)
TOOLS = ("glslangValidator", "spirv-cross", "spirv-dis", "spirv-as", "spirv-opt")
needs_tools = pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS),
                                 reason="SPIR-V tools (glslang-tools, spirv-cross, spirv-tools) not installed")


def _targets(src: Path) -> list[str]:
    m = re.search(r"^// targets: (.+)$", src.read_text(), re.M)
    return m.group(1).split() if m else ["vulkan1.0", "vulkan1.3"]


CASES = [(src.stem, target) for src in sorted(SRC.glob("*.comp")) for target in _targets(src)]


def _run(*cmd: str, stdin: bytes | None = None) -> bytes:
    proc = subprocess.run(cmd, input=stdin, capture_output=True, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed: {proc.stdout.decode()} {proc.stderr.decode()}"
    return proc.stdout


@pytest.fixture(scope="session")
def compiled(tmp_path_factory) -> dict[tuple[str, str], Path]:
    """Every (shader, target) compiled once per session, in parallel."""
    out = tmp_path_factory.mktemp("spv")

    def build(case: tuple[str, str]) -> tuple[tuple[str, str], Path]:
        name, target = case
        dst = out / f"{name}-{target}.spv"
        _run("glslangValidator", "-V", "--target-env", target, "-o", str(dst), str(SRC / f"{name}.comp"))
        return case, dst

    with ThreadPoolExecutor(4) as pool:
        return dict(pool.map(build, CASES))


def assemble(text: str, env: str = "spv1.6") -> bytes:
    return _run("spirv-as", "--target-env", env, "-", "-o", "-", stdin=text.encode())


# -- the reference: spirv-cross --reflect and spirv-dis ------------------------------------------------------

_SCALARS = {"float": 4, "int": 4, "uint": 4, "bool": 4, "double": 8, "int64_t": 8, "uint64_t": 8,
            "float16_t": 2, "int16_t": 2, "uint16_t": 2, "int8_t": 1, "uint8_t": 1}
_VEC = {"vec": "float", "ivec": "int", "uvec": "uint", "dvec": "double", "bvec": "bool"}
_SPEC_TYPES = {"bool": ("bool", 32), "int": ("int", 32), "uint": ("uint", 32), "float": ("float", 32),
               "double": ("float", 64), "int64_t": ("int", 64), "uint64_t": ("uint", 64),
               "int16_t": ("int", 16), "uint16_t": ("uint", 16), "float16_t": ("float", 16)}


def _member_size(member: dict, types: dict) -> int:
    """Size of a block member from spirv-cross's type description (an independent layout computation)."""
    name = member["type"]
    if member.get("physical_pointer"):
        return 8  # a buffer_reference: a 64-bit device address
    if "array" in member:
        assert len(member["array"]) == 1, "test shaders use one-dimensional arrays"
        return member["array"][0] * member["array_stride"]
    if name in types:
        return _struct_size(types[name], types)
    if name in _SCALARS:
        return _SCALARS[name]
    m = re.fullmatch(r"(d?)mat(\d)(?:x(\d))?", name)
    if m:
        cols, rows = int(m.group(2)), int(m.group(3) or m.group(2))
        return (rows if member.get("row_major") else cols) * member["matrix_stride"]
    m = re.fullmatch(r"([a-z]*vec)(\d)", name)
    assert m, f"unexpected member type {name}"
    return int(m.group(2)) * _SCALARS[_VEC[m.group(1)]]


def _struct_size(struct_type: dict, types: dict) -> int:
    return max((m["offset"] + _member_size(m, types) for m in struct_type["members"]), default=0)


def _dis(path: Path) -> str:
    return _run("spirv-dis", "--raw-id", str(path)).decode()


def _fold(path: Path, out: Path, defaults: dict[int, int] | None = None) -> Path:
    """The module with its specialization constants frozen (optionally to other defaults) and every
    OpSpecConstantOp folded by spirv-opt: the independent reference for sizes computed from spec constants."""
    opts = ["--set-spec-const-default-value", " ".join(f"{k}:{v}" for k, v in defaults.items())] if defaults else []
    _run("spirv-opt", *opts, "--freeze-spec-const", "--fold-spec-const-op-composite", str(path), "-o", str(out))
    return out


def _dis_workgroup_size(dis: str) -> tuple[int, int, int] | None:
    """LocalSizeId operands of a folded module, read from spirv-dis (spirv-cross reports 0 for them)."""
    m = re.search(r"OpExecutionModeId %\w+ LocalSizeId (%\w+) (%\w+) (%\w+)", dis)
    if m is None:
        return None
    consts = dict(re.findall(r"^\s*(%\w+) = OpConstant %\w+ (\d+)$", dis, re.M))
    return tuple(int(consts[x]) for x in m.groups())  # type: ignore[return-value]


def _folded_workgroup_size(folded: Path) -> tuple[int, int, int]:
    ref = json.loads(_run("spirv-cross", str(folded), "--reflect"))["entryPoints"][0]
    assert not any(ref["workgroup_size_is_spec_constant_id"])
    return _dis_workgroup_size(_dis(folded)) or tuple(ref["workgroup_size"])  # type: ignore[return-value]


def assert_matches_spirv_cross(path: Path, tmp: Path) -> None:
    """Reflection against spirv-cross: ids, names and flags from the module itself; sizes (workgroup, array
    lengths, descriptor counts, push-constant blocks) from the module spirv-opt folded, since spirv-cross
    reports an OpSpecConstantOp array length by its id."""
    data = path.read_bytes()
    ref = json.loads(_run("spirv-cross", str(path), "--reflect"))
    folded = _fold(path, tmp / f"{path.stem}-folded.spv")
    sizes = json.loads(_run("spirv-cross", str(folded), "--reflect"))
    dis = _dis(path)
    (ref_entry,) = ref["entryPoints"]
    assert ref_entry["mode"] == "comp"
    entry = reflect_entry(data, ref_entry["name"])
    assert entry.execution_model == "GLCompute"

    for axis in range(3):
        if ref_entry["workgroup_size_is_spec_constant_id"][axis]:
            assert entry.local_size_ids[axis] == ref_entry["workgroup_size"][axis]
            assert entry.workgroup_exprs[axis] is not None
        else:
            assert entry.local_size_ids[axis] is None and entry.workgroup_exprs[axis] is None
    assert entry.local_size == _folded_workgroup_size(folded)

    expected = set()
    for kind, key in (("storage", "ssbos"), ("uniform", "ubos")):
        for res in sizes.get(key, []):
            count = res["array"][0] if "array" in res else 1
            expected.add((res["set"], res["binding"], kind, kind == "uniform" or bool(res.get("readonly")),
                          bool(res.get("writeonly")), count))
    got = {(b.set, b.binding, b.kind, b.readonly, b.writeonly, b.count) for b in entry.bindings}
    assert got == expected
    assert [(b.set, b.binding) for b in entry.bindings] == sorted((b.set, b.binding) for b in entry.bindings)

    push = sizes.get("push_constants", [])
    want_push = max((_struct_size(sizes["types"][p["type"]], sizes["types"]) for p in push), default=0)
    assert entry.push_constant_size == want_push

    ref_specs = {}
    for sc in ref.get("specialization_constants", []):
        ref_specs.setdefault(sc["id"], sc)
    assert [sc.id for sc in entry.spec_constants] == sorted(ref_specs)
    for sc in entry.spec_constants:
        want = ref_specs[sc.id]
        assert (sc.type, sc.width) == _SPEC_TYPES[want["type"]]
        if "default_value" in want:
            assert sc.default == want["default_value"]
            assert type(sc.default) is type(want["default_value"])

    assert list(entry.capabilities) == re.findall(r"^\s*OpCapability (\w+)$", dis, re.M)
    assert list(entry.extensions) == re.findall(r'^\s*OpExtension "([^"]+)"$', dis, re.M)
    major, minor = map(int, re.search(r"^; Version: (\d+)\.(\d+)$", dis, re.M).groups())
    assert entry.version == (major, minor) == check_header(data)


@needs_tools
@pytest.mark.parametrize("case", CASES, ids=[f"{n}-{t}" for n, t in CASES])
def test_test_shaders_match_spirv_cross(compiled, case, tmp_path):
    assert_matches_spirv_cross(compiled[case], tmp_path)


@needs_tools
@pytest.mark.parametrize("path", LIBRARY, ids=[p.stem for p in LIBRARY])
def test_library_shaders_match_spirv_cross(path, tmp_path):
    assert_matches_spirv_cross(path, tmp_path)


# -- hand-checked facts about the test shaders ---------------------------------------------------------------

def _entry(compiled, name: str, target: str = "vulkan1.3"):
    return reflect_entry(compiled[(name, target)].read_bytes())


@needs_tools
def test_binding_names_flags_and_order(compiled):
    for target in ("vulkan1.0", "vulkan1.3"):
        e = _entry(compiled, "sets_bindings", target)
        assert [(b.set, b.binding, b.name, b.kind, b.readonly, b.writeonly) for b in e.bindings] == [
            (0, 0, "in_a", "storage", True, False), (0, 1, "out_b", "storage", False, True),
            (0, 2, "Accum", "storage", False, False), (1, 0, "params", "uniform", True, False),
            (1, 5, "Lut", "storage", True, False), (3, 7, "flags", "storage", True, False)]
        assert e.local_size == (64, 1, 1) and e.local_size_ids == (None, None, None)
        assert e.workgroup_size({7: 3}) == (64, 1, 1) and e.workgroup_spec_ids == frozenset()


@needs_tools
def test_push_constant_layouts(compiled):
    # n@0, outer@16 (176 bytes), row-major mat2x3@192 (3 rows x 8), ivec2[2]@216, tail@232.
    assert _entry(compiled, "push_nested").push_constant_size == 236
    assert _entry(compiled, "push_std430_scalars", "vulkan1.0").push_constant_size == 28  # vec3 @16
    assert _entry(compiled, "minimal").push_constant_size == 0
    for target in ("vulkan1.0", "vulkan1.3"):  # buffer_reference pointer@0 (8 bytes), n@8, scale@12
        e = _entry(compiled, "push_pointer", target)
        assert e.push_constant_size == 16 and "PhysicalStorageBufferAddresses" in e.capabilities


@needs_tools
def test_spec_constant_defaults_of_every_type(compiled):
    for target in ("vulkan1.0", "vulkan1.3"):
        specs = {sc.id: (sc.name, sc.type, sc.width, sc.default)
                 for sc in _entry(compiled, "spec_types", target).spec_constants}
        assert specs == {
            0: ("USE_BIAS", "bool", 32, True), 1: ("NEGATE", "bool", 32, False),
            2: ("OFFSET", "int", 32, -42), 3: ("COUNT", "uint", 32, 4000000000),
            4: ("SCALE", "float", 32, 0.375), 5: ("DSCALE", "float", 64, -2.5e-3),
            6: ("BIG", "int", 64, -5000000000), 7: ("UBIG", "uint", 64, 18000000000000000000),
            9: ("SMALL", "int", 16, -7), 10: ("USMALL", "uint", 16, 65000), 11: ("HALF", "float", 16, 1.5)}
        assert {"Float64", "Int64", "Int16", "Float16"} <= set(_entry(compiled, "spec_types", target).capabilities)


@needs_tools
def test_spec_constant_workgroup_size(compiled):
    # SPIR-V 1.0: LocalSize plus a WorkgroupSize built-in from OpSpecConstantComposite; 1.6: LocalSizeId.
    for target in ("vulkan1.0", "vulkan1.3"):
        e = _entry(compiled, "spec_workgroup", target)
        assert e.local_size == (32, 4, 2)
        assert e.local_size_ids == (12, 13, None)
        assert {sc.id: sc.default for sc in e.spec_constants} == {12: 32, 13: 4, 14: 8}


@needs_tools
def test_descriptor_arrays_and_uniform_blocks(compiled):
    e = _entry(compiled, "ubo_std140")
    assert [(b.binding, b.kind, b.count) for b in e.bindings] == [
        (0, "uniform", 1), (1, "uniform", 1), (2, "storage", 3), (3, "storage", 1)]
    assert e.local_size == (4, 4, 4)


@needs_tools
def test_statically_used_bindings_from_spirv_1_4(compiled, tmp_path):
    old = _entry(compiled, "unused_binding", "vulkan1.0")
    assert [b.name for b in old.bindings] == ["Used", "Unused"]  # SPIR-V 1.0: every buffer counts
    trimmed = tmp_path / "trimmed.spv"
    _run("spirv-opt", "--remove-unused-interface-variables", str(compiled[("unused_binding", "vulkan1.3")]),
         "-o", str(trimmed))
    assert [b.name for b in reflect_entry(trimmed.read_bytes()).bindings] == ["Used"]


@needs_tools
def test_reflect_accepts_bytearray_and_memoryview(compiled):
    data = compiled[("minimal", "vulkan1.0")].read_bytes()
    assert reflect(bytearray(data)) == reflect(memoryview(data)) == reflect(data)


# -- modules written in assembly: what GLSL cannot express ---------------------------------------------------

_PREAMBLE = """OpCapability Shader
OpMemoryModel Logical GLSL450
"""
_MAIN = """%void = OpTypeVoid
%fn = OpTypeFunction %void
{entry_fns}
"""


def _fn(name: str) -> str:
    return f"%{name} = OpFunction %void None %fn\n%l_{name} = OpLabel\nOpReturn\nOpFunctionEnd\n"


@needs_tools
def test_several_entry_points_and_stages():
    data = assemble(_PREAMBLE + """OpEntryPoint Vertex %vs "vs"
OpEntryPoint GLCompute %cs "main"
OpEntryPoint GLCompute %cs2 "second"
OpExecutionMode %cs LocalSize 4 2 1
OpExecutionMode %cs2 LocalSize 256 1 1
""" + _MAIN.format(entry_fns=_fn("vs") + _fn("cs") + _fn("cs2")))
    entries = reflect(data)
    assert [(e.name, e.execution_model, e.local_size) for e in entries] == [
        ("vs", "Vertex", (0, 0, 0)), ("main", "GLCompute", (4, 2, 1)), ("second", "GLCompute", (256, 1, 1))]
    assert reflect_entry(data, "second").local_size == (256, 1, 1)
    with pytest.raises(SpirvError, match="'vs' is a Vertex shader") as exc:
        reflect_entry(data, "vs")
    assert exc.value.code == "E_SPIRV_INVALID"
    with pytest.raises(SpirvError, match=r"no entry point named 'nope'.*'second' \(GLCompute\)"):
        reflect_entry(data, "nope")


@needs_tools
def test_local_size_id_with_plain_constants_and_workgroup_builtin_override():
    ids = assemble(_PREAMBLE + """OpEntryPoint GLCompute %cs "main"
OpExecutionModeId %cs LocalSizeId %c8 %c2 %c1
%uint = OpTypeInt 32 0
%c8 = OpConstant %uint 8
%c2 = OpConstant %uint 2
%c1 = OpConstant %uint 1
""" + _MAIN.format(entry_fns=_fn("cs")))
    e = reflect_entry(ids)
    assert (e.local_size, e.local_size_ids) == ((8, 2, 1), (None, None, None))

    builtin = assemble(_PREAMBLE + """OpEntryPoint GLCompute %cs "main"
OpExecutionMode %cs LocalSize 1 1 1
OpDecorate %wg BuiltIn WorkgroupSize
%uint = OpTypeInt 32 0
%v3 = OpTypeVector %uint 3
%c16 = OpConstant %uint 16
%c3 = OpConstant %uint 3
%wg = OpConstantComposite %v3 %c16 %c3 %c3
""" + _MAIN.format(entry_fns=_fn("cs")), env="spv1.0")
    assert reflect_entry(builtin).local_size == (16, 3, 3)


@needs_tools
def test_compute_entry_without_workgroup_size_is_refused():
    data = assemble(_PREAMBLE + 'OpEntryPoint GLCompute %cs "main"\n' + _MAIN.format(entry_fns=_fn("cs")))
    assert reflect(data)[0].local_size == (0, 0, 0)
    with pytest.raises(SpirvError, match="no workgroup size"):
        reflect_entry(data)


@needs_tools
def test_unknown_capability_images_and_plain_structs():
    data = assemble("""OpCapability Shader
OpCapability ImageQuery
OpExtension "SPV_KHR_storage_buffer_storage_class"
OpMemoryModel Logical GLSL450
OpEntryPoint GLCompute %cs "main"
OpExecutionMode %cs LocalSize 1 1 1
OpName %img "img"
OpName %loose "loose"
OpDecorate %img DescriptorSet 2
OpDecorate %img Binding 4
OpDecorate %loose DescriptorSet 0
OpDecorate %loose Binding 1
%float = OpTypeFloat 32
%image = OpTypeImage %float 2D 0 0 0 2 Rgba32f
%pimg = OpTypePointer UniformConstant %image
%img = OpVariable %pimg UniformConstant
%S = OpTypeStruct %float
%ps = OpTypePointer Uniform %S
%loose = OpVariable %ps Uniform
""" + _MAIN.format(entry_fns=_fn("cs")), env="spv1.0")
    # Patch the ImageQuery capability (50) to a number no table knows.
    words = list(struct.unpack(f"<{len(data) // 4}I", data))
    words[words.index(50, 5)] = 77777
    e = reflect_entry(struct.pack(f"<{len(words)}I", *words))
    assert e.capabilities == ("Shader", "Capability77777")
    assert e.extensions == ("SPV_KHR_storage_buffer_storage_class",)
    assert e.bindings == ()
    assert e.extra["unsupported_descriptors"] == [
        {"set": 2, "binding": 4, "name": "img", "kind": "image"},
        {"set": 0, "binding": 1, "name": "loose", "kind": "struct without Block decoration"}]


@needs_tools
def test_variable_level_access_and_layout_without_strides():
    # NonWritable / NonReadable on the variable itself; a block laid out without Offset, ArrayStride or
    # MatrixStride decorations is packed member after member.
    data = assemble("""OpCapability Shader
OpMemoryModel Logical GLSL450
OpEntryPoint GLCompute %cs "main" %ro %wo %pc
OpExecutionMode %cs LocalSize 1 1 1
OpDecorate %Buf Block
OpMemberDecorate %Buf 0 Offset 0
OpDecorate %ro DescriptorSet 0
OpDecorate %ro Binding 0
OpDecorate %ro NonWritable
OpDecorate %wo DescriptorSet 0
OpDecorate %wo Binding 1
OpDecorate %wo NonReadable
OpDecorate %Push Block
%float = OpTypeFloat 32
%bool = OpTypeBool
%uint = OpTypeInt 32 0
%c3 = OpConstant %uint 3
%v2 = OpTypeVector %float 2
%m2 = OpTypeMatrix %v2 2
%arr = OpTypeArray %float %c3
%rt = OpTypeRuntimeArray %float
%Buf = OpTypeStruct %rt
%pbuf = OpTypePointer StorageBuffer %Buf
%ro = OpVariable %pbuf StorageBuffer
%wo = OpVariable %pbuf StorageBuffer
%Push = OpTypeStruct %m2 %arr %bool
%ppush = OpTypePointer PushConstant %Push
%pc = OpVariable %ppush PushConstant
""" + _MAIN.format(entry_fns=_fn("cs")), env="spv1.4")
    e = reflect_entry(data)
    assert [(b.binding, b.readonly, b.writeonly) for b in e.bindings] == [(0, True, False), (1, False, True)]
    assert e.push_constant_size == 16 + 12 + 4  # mat2 as 2 x vec2, float[3], bool as 4 bytes


# -- OpSpecConstantOp: sizes computed from specialization constants -----------------------------------------

# One OpSpecConstantOp per 32-bit opcode over the spec constants %a %b (int), %u %v (uint), %s (a shift) and
# %p (bool). Each result, hashed to 16 bits ((31 * high half + low half) mod 2^16) plus one, is the descriptor
# count of its own binding, so every opcode's value is observable on its own and compared with what spirv-opt
# folds it to. SMod and the 64-bit conversions are checked by hand (test_spec_expression_semantics):
# spirv-opt v2023.1 folds SMod wrongly when |a| < |b| and leaves 64-bit OpSpecConstantOps unfolded.
_SPEC_OPS = {
    "sneg": "%int SNegate %a", "not": "%uint Not %u", "iadd": "%int IAdd %a %b", "isub": "%uint ISub %u %v",
    "imul": "%int IMul %a %b", "udiv": "%uint UDiv %u %v", "sdiv": "%int SDiv %a %b", "umod": "%uint UMod %u %v",
    "srem": "%int SRem %a %b", "srl": "%uint ShiftRightLogical %u %s", "sra": "%int ShiftRightArithmetic %a %s",
    "sll": "%uint ShiftLeftLogical %u %s", "or": "%uint BitwiseOr %u %v", "xor": "%int BitwiseXor %a %b",
    "and": "%uint BitwiseAnd %u %v", "mixed": "%uint IAdd %a %u",
    "ieq": "%bool IEqual %a %b", "ine": "%bool INotEqual %u %v", "ugt": "%bool UGreaterThan %a %b",
    "sgt": "%bool SGreaterThan %a %b", "uge": "%bool UGreaterThanEqual %u %v",
    "sge": "%bool SGreaterThanEqual %a %b", "ult": "%bool ULessThan %u %v", "slt": "%bool SLessThan %a %b",
    "ule": "%bool ULessThanEqual %a %b", "sle": "%bool SLessThanEqual %a %b",
    "lor": "%bool LogicalOr %p %ieq", "land": "%bool LogicalAnd %p %ugt", "lnot": "%bool LogicalNot %p",
    "leq": "%bool LogicalEqual %p %slt", "lne": "%bool LogicalNotEqual %p %sgt", "sel": "%uint Select %p %u %v",
    "ext": "%uint CompositeExtract %vec 1", "ins": "%v3 CompositeInsert %s %vec 0",
    "insx": "%uint CompositeExtract %ins 0", "shuf": "%v3 VectorShuffle %vec %ins 4 0 5",
    "shufx": "%uint CompositeExtract %shuf 0", "shufy": "%uint CompositeExtract %shuf 1",
}
INT_MIN, INT_MAX = -(2**31), 2**31 - 1


def _spec_op_module(a: int, b: int, u: int, v: int, s: int, p: bool) -> tuple[str, list[str]]:
    """SPIR-V 1.5 assembly of the module described above, and the op name behind each binding."""
    head = ["OpCapability Shader", "OpMemoryModel Logical GLSL450", 'OpEntryPoint GLCompute %main "main"',
            "OpExecutionMode %main LocalSize 1 1 1", "OpDecorate %Block Block", "OpMemberDecorate %Block 0 Offset 0"]
    head += [f"OpDecorate %{n} SpecId {i}" for i, n in enumerate("abuvsp")]
    body = ["%void = OpTypeVoid", "%fn = OpTypeFunction %void", "%bool = OpTypeBool", "%int = OpTypeInt 32 1",
            "%uint = OpTypeInt 32 0", "%v3 = OpTypeVector %uint 3", "%float = OpTypeFloat 32",
            "%Block = OpTypeStruct %float", f"%a = OpSpecConstant %int {a}", f"%b = OpSpecConstant %int {b}",
            f"%u = OpSpecConstant %uint {u}", f"%v = OpSpecConstant %uint {v}", f"%s = OpSpecConstant %uint {s}",
            f"%p = OpSpecConstant{'True' if p else 'False'} %bool", "%c1 = OpConstant %uint 1",
            "%c3 = OpConstant %uint 3", "%c7 = OpConstant %uint 7", "%mask = OpConstant %uint 65535",
            "%c16 = OpConstant %uint 16", "%c31 = OpConstant %uint 31",
            "%vec = OpSpecConstantComposite %v3 %u %v %c7"]
    names: list[str] = []
    for name, expr in _SPEC_OPS.items():
        body.append(f"%{name} = OpSpecConstantOp {expr}")
        kind = expr.split()[0]
        if kind == "%v3":
            continue
        if kind == "%bool":
            body.append(f"%n_{name} = OpSpecConstantOp %uint Select %{name} %c7 %c3")
        else:
            body += [f"%h_{name} = OpSpecConstantOp %uint ShiftRightLogical %{name} %c16",
                     f"%m_{name} = OpSpecConstantOp %uint IMul %h_{name} %c31",
                     f"%s_{name} = OpSpecConstantOp %uint IAdd %m_{name} %{name}",
                     f"%n_{name} = OpSpecConstantOp %uint BitwiseAnd %s_{name} %mask"]
        body += [f"%c_{name} = OpSpecConstantOp %uint IAdd %n_{name} %c1",
                 f"%arr_{name} = OpTypeArray %Block %c_{name}",
                 f"%ptr_{name} = OpTypePointer Uniform %arr_{name}", f"%var_{name} = OpVariable %ptr_{name} Uniform"]
        head += [f"OpDecorate %var_{name} DescriptorSet 0", f"OpDecorate %var_{name} Binding {len(names)}"]
        names.append(name)
    head[2] += "".join(f" %var_{n}" for n in names)  # SPIR-V 1.4+: the interface lists the used globals
    return "\n".join(head + body + ["%main = OpFunction %void None %fn", "%l = OpLabel", "OpReturn",
                                    "OpFunctionEnd"]) + "\n", names


def _pick(rng, edges: list[int], lo: int, hi: int) -> int:
    """An edge value half of the time, else a fresh random one in [lo, hi)."""
    return int(rng.choice(edges)) if rng.random() < 0.5 else int(rng.integers(lo, hi))


@needs_tools
def test_spec_constant_ops_match_spirv_opt_folding(rng, tmp_path):
    for k in range(6):
        a = _pick(rng, [INT_MIN, INT_MAX, -1, 0, 1, 7, -7], INT_MIN, INT_MAX + 1)
        b = _pick(rng, [INT_MIN, INT_MAX, 1, 3, -3, 7], INT_MIN, INT_MAX + 1) or 5
        if a == INT_MIN and b == -1:  # the one signed overflow SDiv leaves undefined
            b = 2
        u = _pick(rng, [0, 1, 2**32 - 1, 2**31], 0, 2**32)
        v = _pick(rng, [1, 3, 2**32 - 1, 2**31], 1, 2**32)
        text, names = _spec_op_module(a, b, u, v, _pick(rng, [0, 1, 16, 31], 0, 32), bool(rng.integers(2)))
        path = tmp_path / f"ops{k}.spv"
        path.write_bytes(assemble(text, "spv1.5"))
        _run("spirv-val", "--target-env", "vulkan1.2", str(path))
        ref = json.loads(_run("spirv-cross", str(_fold(path, tmp_path / f"ops{k}-folded.spv")), "--reflect"))
        want = {r["binding"]: r["array"][0] for r in ref["ubos"] if r["array_size_is_literal"] == [True]}
        got = {b_.binding: b_.count for b_ in reflect_entry(path.read_bytes()).bindings}
        assert len(want) == len(names)
        assert {names[i]: got[i] for i in got} == {names[i]: want[i] for i in want}, text.splitlines()[6:12]


_WORKGROUP_EXPRS = """%uint = OpTypeInt 32 0
%bool = OpTypeBool
%t = OpSpecConstant %uint 8
%w = OpSpecConstant %uint 3
%c1 = OpConstant %uint 1
%c2 = OpConstant %uint 2
%c3 = OpConstant %uint 3
%x = OpSpecConstantOp %uint IMul %t %c2
%gt = OpSpecConstantOp %bool UGreaterThan %t %w
%y = OpSpecConstantOp %uint Select %gt %t %w
%m = OpSpecConstantOp %uint UMod %w %c3
%z = OpSpecConstantOp %uint IAdd %m %c1
"""


@needs_tools
@pytest.mark.parametrize("form", ["LocalSizeId", "WorkgroupSize"])
def test_workgroup_size_from_spec_constant_ops(rng, tmp_path, form):
    """A workgroup size computed from spec constants (what GLSL cannot write, other front ends can): its
    defaults and its value under fresh specialization values, against spirv-opt's folding."""
    if form == "LocalSizeId":
        text, env = (_PREAMBLE + 'OpEntryPoint GLCompute %cs "main"\nOpExecutionModeId %cs LocalSizeId %x %y %z\n'
                     "OpDecorate %t SpecId 3\nOpDecorate %w SpecId 4\n" + _WORKGROUP_EXPRS), "spv1.6"
    else:
        text, env = (_PREAMBLE + 'OpEntryPoint GLCompute %cs "main"\nOpExecutionMode %cs LocalSize 1 1 1\n'
                     "OpDecorate %t SpecId 3\nOpDecorate %w SpecId 4\nOpDecorate %wg BuiltIn WorkgroupSize\n"
                     + _WORKGROUP_EXPRS + "%v3 = OpTypeVector %uint 3\n"
                     "%wg = OpSpecConstantComposite %v3 %x %y %z\n"), "spv1.0"
    path = tmp_path / "wg.spv"
    path.write_bytes(assemble(text + _MAIN.format(entry_fns=_fn("cs")), env))
    e = reflect_entry(path.read_bytes())
    assert e.local_size == (16, 8, 1) == _folded_workgroup_size(_fold(path, tmp_path / "f.spv"))
    assert e.local_size_ids == (None, None, None) and e.workgroup_spec_ids == {3, 4}
    assert e.workgroup_size() == e.workgroup_size({}) == e.local_size
    for k in range(4):
        t, w = (int(x) for x in rng.integers(1, 300, 2))
        folded = _fold(path, tmp_path / f"f{k}.spv", {3: t, 4: w})
        assert e.workgroup_size({3: t, 4: w}) == e.workgroup_size([("3", t), ("4", w)]) \
            == _folded_workgroup_size(folded) == (2 * t, max(t, w), w % 3 + 1)
    assert e.workgroup_size({3: 5}) == (10, 5, 1)  # w keeps its default


@needs_tools
def test_sizes_from_spec_constant_expressions_in_glsl(compiled):
    # spec_ops.comp: descriptor counts and the push block's trailing array sized by spec-constant
    # expressions, with N = 3, K = -5, WIDE = true, SHIFT = 2; values worked out from the source.
    for target in ("vulkan1.0", "vulkan1.3"):
        e = _entry(compiled, "spec_ops", target)
        assert [(b.set, b.binding, b.count) for b in e.bindings] == [
            (0, 0, 7), (0, 1, 2), (0, 2, 3), (0, 3, 5), (0, 4, 2), (0, 5, 4), (0, 6, 3), (0, 7, 15), (1, 0, 1)]
        assert e.push_constant_size == 8 + 4 * 4
        assert e.local_size == (1, 2, 1) and e.local_size_ids == (0, None, None)
        assert e.workgroup_size({0: 64}) == (64, 2, 1) and e.workgroup_spec_ids == {0}


def _i(width: int, value: int) -> Literal:
    return Literal("int", width, value)


def _u(width: int, value: int) -> Literal:
    return Literal("uint", width, value)


def _op(name: str, kind: str, width: int, *args, literals=()) -> Op:
    opcode = {n: c for c, n in ((c, op_name(c)) for c in range(256))}[name]
    return make_op(opcode, kind, width, tuple(range(len(args))) + tuple(literals), lambda i: args[i])


def test_spec_expression_semantics():
    """What spirv-opt cannot check: SMod, SRem and SDiv for every sign combination (SPIR-V: SRem takes the
    sign of operand 1, SMod of operand 2, SDiv rounds toward zero), 64-bit and mixed-width arithmetic,
    vectors, and the results SPIR-V leaves undefined."""
    for a, b, div, rem, mod in [(7, 3, 2, 1, 1), (-7, 3, -2, -1, 2), (7, -3, -2, 1, -2), (-7, -3, 2, -1, -1),
                                (6, -3, -2, 0, 0), (-(2**31), 7, -306783378, -2, 5)]:
        assert evaluate(_op("SDiv", "int", 32, _i(32, a), _i(32, b))) == div
        assert evaluate(_op("SRem", "int", 32, _i(32, a), _i(32, b))) == rem
        assert evaluate(_op("SMod", "int", 32, _i(32, a), _i(32, b))) == mod
    assert evaluate(_op("SDiv", "int", 32, _i(32, -(2**31)), _i(32, -1))) == -(2**31)  # wraps
    assert evaluate(_op("IMul", "int", 64, _i(64, 3_000_000_000), _i(64, 5))) == 15_000_000_000
    assert evaluate(_op("IMul", "uint", 64, _u(64, 2**63), _u(64, 2))) == 0
    assert evaluate(_op("SConvert", "int", 64, _i(32, -6))) == -6
    assert evaluate(_op("UConvert", "uint", 32, _op("SConvert", "int", 64, _i(32, -6)))) == 2**32 - 6
    assert evaluate(_op("UConvert", "uint", 64, _u(32, 2**32 - 6))) == 2**32 - 6  # zero-extended
    assert evaluate(_op("SConvert", "int", 16, _i(32, 70000))) == 70000 - 65536
    assert evaluate(_op("ShiftRightArithmetic", "int", 32, _i(32, -64), _u(32, 3))) == -8
    assert evaluate(_op("ShiftRightLogical", "uint", 32, _i(32, -64), _u(32, 28))) == 15
    assert evaluate(_op("ShiftLeftLogical", "int", 32, _i(32, 3), _u(32, 31))) == -(2**31)
    assert evaluate(_op("SNegate", "int", 32, _i(32, -(2**31)))) == -(2**31)
    assert evaluate(_op("Not", "uint", 16, _u(16, 5))) == 0xFFFA
    assert evaluate(_op("IAdd", "uint", 32, _i(32, -1), _u(32, 2))) == 1  # int operand, uint result
    assert evaluate(_op("SLessThan", "bool", 32, _i(32, -1), _i(32, 0))) is True
    assert evaluate(_op("ULessThan", "bool", 32, _i(32, -1), _i(32, 0))) is False
    t, f = Literal("bool", 32, True), Literal("bool", 32, False)
    assert evaluate(_op("LogicalNotEqual", "bool", 32, t, f)) is True
    vec = Composite("int", 32, (_i(32, 1), _i(32, -2), _i(32, 3)))
    other = Composite("int", 32, (_i(32, 10), _i(32, 20), _i(32, 30)))
    assert evaluate(_op("IMul", "int", 32, vec, other)) == (10, -40, 90)
    assert evaluate(_op("Select", "int", 32, f, vec, other)) == (10, 20, 30)  # scalar condition, SPIR-V 1.4
    mask = Composite("bool", 32, (t, f, t))
    assert evaluate(_op("Select", "int", 32, mask, vec, other)) == (1, 20, 3)
    assert evaluate(_op("VectorShuffle", "int", 32, vec, other, literals=(5, 0, 1))) == (30, 1, -2)
    assert evaluate(_op("CompositeInsert", "int", 32, _i(32, 7), vec, literals=(1,))) == (1, 7, 3)
    nested = Composite("int", 32, (vec, other))
    assert evaluate(_op("CompositeInsert", "int", 32, _i(32, 7), nested, literals=(1, 2))) == ((1, -2, 3), (10, 20, 7))
    assert evaluate(_op("CompositeExtract", "int", 32, nested, literals=(0, 1))) == -2

    n = Spec(5, "uint", 32, 4)
    expr = _op("UDiv", "uint", 32, _u(32, 64), n)
    assert evaluate(expr) == 16 and evaluate(expr, {5: 8}) == 8 and evaluate(expr, {5: 8.0}) == 8
    assert spec_ids(expr) == {5} and size(expr) == 3
    for spec, match in [({5: 0}, "division by zero"), ({5: "x"}, "not a value for a 32-bit uint")]:
        with pytest.raises((SpirvError, ContractError), match=match):
            evaluate(expr, spec)
    with pytest.raises(ContractError, match="not a value") as cexc:
        evaluate(expr, {5: 1.5})
    assert cexc.value.path == "specialization_constants.5"
    undefined = [(_op("ShiftLeftLogical", "uint", 32, _u(32, 1), _u(32, 32)), "shift by 32 of a 32-bit"),
                 (_op("SMod", "int", 32, _i(32, 1), _i(32, 0)), "division by zero"),
                 (_op("VectorShuffle", "int", 32, vec, other, literals=(0xFFFFFFFF,)), "undefined component"),
                 (_op("CompositeExtract", "int", 32, vec, literals=(3,)), "index 3 is outside"),
                 (_op("CompositeExtract", "int", 32, _i(32, 1), literals=(0,)), "index 0 is outside"),
                 (_op("CompositeInsert", "int", 32, _i(32, 1), vec, literals=(0, 0)), "index 0 is outside"),
                 (_op("CompositeInsert", "int", 32, _i(32, 1), vec), "has no index"),
                 (_op("VectorShuffle", "int", 32, _i(32, 1), vec, literals=(0,)), "needs vector operands"),
                 (_op("IAdd", "int", 32, vec, _i(32, 1)), "mixes vectors"),
                 (_op("Select", "int", 32, mask, vec, _i(32, 1)), "mixes vectors")]
    for expr, match in undefined:
        with pytest.raises(SpirvError, match=match) as exc:
            evaluate(expr)
        assert exc.value.code == "E_SPIRV_INVALID"
    malformed = [(lambda: _op("IAdd", "int", 32, _i(32, 1)), "IAdd has 1 operand"),
                 (lambda: _op("IAdd", "int", 32, t, _i(32, 1)), "needs integer operands, got bool, int"),
                 (lambda: _op("LogicalOr", "bool", 32, t, _i(32, 1)), "needs bool operands"),
                 (lambda: _op("Select", "int", 32, _i(32, 1), vec, vec), "needs bool operands, got int"),
                 (lambda: _op("IAdd", "int", 32, _i(32, 1), _i(32, 1), literals=(3,)), "has 3 operand"),
                 (lambda: make_op(129, "float", 32, (), lambda i: vec), "opcode 129: HLX evaluates integer")]
    for build, match in malformed:
        with pytest.raises(SpirvError, match=match):
            build()


def test_workgroup_size_refuses_bad_spec_values():
    tile = Spec(3, "int", 32, 8)
    e = EntryPoint("main", "GLCompute", (16, 1, 1), (None, None, None),
                   (_op("IMul", "int", 32, tile, _i(32, 2)), None, None))
    assert e.workgroup_size({3: 4}) == (8, 1, 1) and e.workgroup_spec_ids == {3}
    with pytest.raises(SpirvError, match="workgroup size x evaluates to -8"):
        e.workgroup_size({3: -4})
    with pytest.raises(ContractError, match="id 'x' is not an int"):
        e.workgroup_size({"x": 4})


@needs_tools
@pytest.mark.parametrize("body, match", [
    # an opcode outside what OpSpecConstantOp evaluates, sizing a push-constant array
    ("OpCapability Kernel\n%len = OpSpecConstantOp %uint QuantizeToF16 %c2\n", "opcode 116"),
    # a spec-constant op that is its own operand (spirv-as accepts the forward reference)
    ("%len = OpSpecConstantOp %uint IAdd %len %c2\n", "refers to itself"),
    # a doubling chain whose expression tree has 2**12 nodes
    ("".join(f"%d{i + 1} = OpSpecConstantOp %uint IAdd %d{i} %d{i}\n" for i in range(11))
     + "%len = OpSpecConstantOp %uint IAdd %d11 %d11\n", "more than 1024 nodes"),
    ("%len = OpConstantComposite %v2 %c2 %c2\n", "array length %\\d+ is not an integer scalar"),
    ("%len = OpConstantNull %Push\n", "%\\d+ is not a scalar"),
    ("%len = OpSpecConstantOp %uint ISub %c2 %c2\n", "array length %\\d+ is 0; SPIR-V array lengths are at least 1"),
], ids=["unsupported-op", "self-reference", "too-large", "composite-length", "null-struct", "zero-length"])
def test_malformed_spec_constant_expressions(body, match):
    lines = body.splitlines(keepends=True)
    caps = "".join(line for line in lines if line.startswith("OpCapability"))
    decls = "".join(line for line in lines if not line.startswith("OpCapability"))
    data = assemble(_PREAMBLE.replace("OpCapability Shader\n", "OpCapability Shader\n" + caps)
                    + 'OpEntryPoint GLCompute %cs "main" %pc\nOpExecutionMode %cs LocalSize 1 1 1\n'
                    "OpDecorate %Push Block\nOpMemberDecorate %Push 0 Offset 0\nOpDecorate %arr ArrayStride 4\n"
                    "%uint = OpTypeInt 32 0\n%v2 = OpTypeVector %uint 2\n%c2 = OpConstant %uint 2\n"
                    "%d0 = OpSpecConstant %uint 1\nOpDecorate %d0 SpecId 0\n"
                    "%Push = OpTypeStruct %uint\n" + decls
                    + "%arr = OpTypeArray %uint %len\n%Pc = OpTypeStruct %arr\nOpDecorate %Pc Block\n"
                    "OpMemberDecorate %Pc 0 Offset 0\n%ppc = OpTypePointer PushConstant %Pc\n"
                    "%pc = OpVariable %ppc PushConstant\n" + _MAIN.format(entry_fns=_fn("cs")), "spv1.4")
    with pytest.raises(SpirvError, match=match) as exc:
        reflect(data)
    assert exc.value.code == "E_SPIRV_INVALID"


@needs_tools
def test_constant_null_and_local_size_operand_count():
    # OpConstantNull is a valid zero operand; a LocalSize with one operand is refused, not a crash.
    data = assemble(_PREAMBLE + 'OpEntryPoint GLCompute %cs "main"\nOpExecutionModeId %cs LocalSizeId %x %c1 %c1\n'
                    "%uint = OpTypeInt 32 0\n%c1 = OpConstant %uint 1\n%zero = OpConstantNull %uint\n"
                    "%s = OpSpecConstant %uint 4\nOpDecorate %s SpecId 2\n"
                    "%x = OpSpecConstantOp %uint IAdd %s %zero\n" + _MAIN.format(entry_fns=_fn("cs")))
    e = reflect_entry(data)
    assert e.local_size == (4, 1, 1) and e.workgroup_size({2: 9}) == (9, 1, 1)
    short = _module((15, [5, 3, *_str_words(b"main")]), (16, [3, 17, 8]))
    with pytest.raises(SpirvError, match="LocalSize has 1 components"):
        reflect(short)


# -- malformed modules ---------------------------------------------------------------------------------------

def _header(magic=0x07230203, version=0x00010000, bound=10) -> bytes:
    return struct.pack("<5I", magic, version, 0, bound, 0)


@pytest.mark.parametrize("data, check", [
    (b"", "length check failed: 0 bytes"),
    (_header()[:16], "at least 20"),
    (_header() + b"\0\0", "not a multiple of 4"),
    (_header(magic=0xDEADBEEF), "magic check failed: 0xdeadbeef"),
    (_header(magic=0x03022307), "byte-swapped"),
    (_header(version=0x00000100), r"version check failed.*\(0\.1\)"),
    (_header(version=0x00010700), r"version check failed.*\(1\.7\)"),
    (_header(version=0x00020000), r"version check failed.*\(2\.0\)"),
    (_header(version=0x00010001), "version check failed"),
    (_header(bound=0), "bound check failed"),
], ids=["empty", "short", "odd-length", "magic", "byte-swapped", "v0.1", "v1.7", "v2.0", "low-byte", "bound"])
def test_header_checks(data, check):
    with pytest.raises(SpirvError, match=check) as exc:
        check_header(data)
    assert exc.value.code == "E_SPIRV_INVALID"
    with pytest.raises(SpirvError, match=check):
        reflect(data)


def test_header_accepts_every_supported_version():
    for minor in range(7):
        assert check_header(_header(version=0x00010000 | minor << 8)) == (1, minor)


@pytest.mark.parametrize("value", ["not bytes", 123, None])
def test_non_bytes_are_refused(value):
    with pytest.raises(SpirvError, match="must be bytes"):
        reflect(value)


def _module(*instructions: tuple[int, list[int]]) -> bytes:
    words = []
    for opcode, operands in instructions:
        words += [(len(operands) + 1) << 16 | opcode, *operands]
    return _header() + struct.pack(f"<{len(words)}I", *words)


def _str_words(text: bytes) -> list[int]:
    text += b"\0" * (4 - len(text) % 4)
    return list(struct.unpack(f"<{len(text) // 4}I", text))


@pytest.mark.parametrize("data, message", [
    (_header() + struct.pack("<I", 0), "word count 0"),
    (_header() + struct.pack("<I", 9 << 16 | 17), "past the end"),
    (_module((17, [])), "too short"),
    (_module((5, [1, 0x41414141])), "not nul-terminated"),
    (_module((5, [1, *_str_words(b"\xff\xfe")])), "not UTF-8"),
    (_module((15, [5, 3, *_str_words(b"main")]), (50, [99, 7, 0]), (71, [7, 1, 0])),
     "%99, which is not a type"),  # a spec constant whose type does not exist
    (_module((15, [5, 3, *_str_words(b"main")]), (16, [3, 38, 7, 7, 7])), "%7 is not a constant"),
    (_module((15, [5, 3, *_str_words(b"main")]), (16, [3, 38, 7, 7])), "2 components, expected 3"),
    (_module((21, [1, 32, 0]), (22, [1, 32])), "result id %1 is defined twice"),
    (_module((21, [1, 32, 0]), (43, [1, 2, 5]), (43, [1, 2, 6])), "result id %2 is defined twice"),
    (_module((30, [5, 9])), "type %5 refers to %9, which is not a type declared before it"),
    (_module((28, [5, 9, 2])), "type %5 refers to %9"),
    (_module((21, [1, 32])), r"type %1 \(opcode 21\) has 1 operand\(s\), needs 2"),
], ids=["zero-count", "overrun", "short", "unterminated", "non-utf8", "no-type", "no-constant", "two-dims",
        "duplicate-type", "duplicate-constant", "undeclared-member", "undeclared-element", "short-type"])
def test_malformed_modules(data, message):
    with pytest.raises(SpirvError, match=message) as exc:
        reflect(data)
    assert exc.value.code == "E_SPIRV_INVALID"


def test_malformed_types_in_blocks():
    uint, vec, ptr, var, struct_, float_ = 1, 2, 3, 4, 5, 6
    not_pointer = _module((15, [5, 9, *_str_words(b"main")]), (16, [9, 17, 1, 1, 1]),
                          (21, [uint, 32, 0]), (59, [uint, var, 12]))
    with pytest.raises(SpirvError, match="is not a pointer"):
        reflect(not_pointer)
    odd_float = _module((15, [5, 9, *_str_words(b"main")]), (16, [9, 17, 1, 1, 1]),
                        (22, [float_, 8]), (50, [float_, 7, 0]), (71, [7, 1, 3]))
    with pytest.raises(SpirvError, match="unsupported float width 8"):
        reflect(odd_float)
    for width in (0, 7, 128):  # OpTypeInt of a width SPIR-V does not have, under a spec constant
        odd_int = _module((15, [5, 9, *_str_words(b"main")]), (16, [9, 17, 1, 1, 1]), (21, [uint, width, 1]),
                          (50, [uint, 7, 5]), (71, [7, 1, 3]))
        with pytest.raises(SpirvError, match=f"unsupported int width {width}"):
            reflect(odd_int)
    vector_spec = _module((15, [5, 9, *_str_words(b"main")]), (21, [uint, 32, 0]), (23, [vec, uint, 2]),
                          (50, [vec, 7, 0]), (71, [7, 1, 3]))
    with pytest.raises(SpirvError, match="is not a scalar"):
        reflect(vector_spec)
    composite_size = _module((15, [5, 9, *_str_words(b"main")]), (16, [9, 17, 1, 1, 1]), (21, [uint, 32, 0]),
                             (23, [vec, uint, 3]), (44, [vec, 7, 8, 8, 8]), (43, [uint, 8, 4]),
                             (28, [struct_, uint, 7]), (30, [10, struct_]), (32, [ptr, 9, 10]),
                             (59, [ptr, var, 9]))
    with pytest.raises(SpirvError, match="array length %7 is not an integer scalar"):
        reflect(composite_size)
    image_in_push = _module((15, [5, 9, *_str_words(b"main")]), (16, [9, 17, 1, 1, 1]), (26, [11]),
                            (30, [10, 11]), (32, [ptr, 9, 10]), (59, [ptr, var, 9]))
    with pytest.raises(SpirvError, match="cannot appear in a buffer block"):
        reflect(image_in_push)
    scalar_columns = _module((15, [5, 9, *_str_words(b"main")]), (16, [9, 17, 1, 1, 1]), (22, [float_, 32]),
                             (24, [11, float_, 2]), (30, [10, 11]), (32, [ptr, 9, 10]), (59, [ptr, var, 9]))
    with pytest.raises(SpirvError, match="matrix type %11 has columns of type %6, which is not a vector"):
        reflect(scalar_columns)
    nested = [(21, [uint, 32, 0]), (43, [uint, 50, 1])] + [(28, [100 + i, 99 + i if i else uint, 50])
                                                          for i in range(70)]
    deep = _module((15, [5, 9, *_str_words(b"main")]), (16, [9, 17, 1, 1, 1]), *nested, (30, [10, 169]),
                   (32, [ptr, 9, 10]), (59, [ptr, var, 9]))
    with pytest.raises(SpirvError, match="nested more than 64 deep"):
        reflect(deep)


def _mutants(module: bytes, rnd: random.Random, n: int):
    """``n`` copies of a module with a few words replaced: random values, small ids, other opcodes or word
    counts in instruction headers, flipped bits."""
    words = list(struct.unpack(f"<{len(module) // 4}I", module))
    opcodes = [5, 16, 21, 22, 23, 24, 28, 29, 30, 32, 39, 43, 44, 46, 50, 51, 52, 59, 71, 72, 331]
    for _ in range(n):
        w = list(words)
        for _ in range(rnd.choice((1, 1, 2, 4))):
            i = rnd.randrange(5, len(w))
            op = rnd.randrange(5)
            if op == 0:
                w[i] = rnd.randrange(2**32)
            elif op == 1:
                w[i] = rnd.randrange(64)
            elif op == 2:
                w[i] ^= 1 << rnd.randrange(32)
            elif op == 3:
                w[i] = (w[i] & 0xFFFF0000) | rnd.choice(opcodes)
            else:
                w[i] = (w[i] & 0xFFFF) | rnd.randrange(1, 8) << 16
        yield struct.pack(f"<{len(w)}I", *w)


@needs_tools
def test_mutated_modules_raise_only_spirv_errors(compiled, rng):
    """Reflection of damaged modules (library shaders and test shaders) raises nothing but HLXError: no
    IndexError, no RecursionError, no hang on a type that contains itself."""
    rnd = random.Random(int(rng.integers(2**63)))
    modules = [p.read_bytes() for p in LIBRARY] + [p.read_bytes() for p in compiled.values()]
    refused = 0
    for k, data in enumerate(m for module in modules for m in _mutants(module, rnd, 10_000 // len(modules))):
        try:
            for entry in reflect(data):
                entry.workgroup_size({0: k % 70})
                hash(entry)
        except (SpirvError, ContractError):
            refused += 1
        except Exception as exc:  # the property under test
            pytest.fail(f"{type(exc).__name__}: {exc} on a mutant (seed above)")
    assert refused > 100


# -- shader_contract -----------------------------------------------------------------------------------------

@needs_tools
def test_shader_contract(compiled):
    data = compiled[("sets_bindings", "vulkan1.3")].read_bytes()
    c = shader_contract(data)
    assert list(c) == ["900"]
    f = c["900"]
    assert f["spirv_binary"] == data and f["entry_point"] == "main" and f["shader_stage"] == "compute"
    assert "wgsl_source" not in f
    assert f["descriptor_bindings"] == [
        {"set": s, "binding": b, "kind": k, "readonly": r, "writeonly": w} for s, b, k, r, w in [
            (0, 0, "storage", True, False), (0, 1, "storage", False, True), (0, 2, "storage", False, False),
            (1, 0, "uniform", True, False), (1, 5, "storage", True, False), (3, 7, "storage", True, False)]]
    with_wgsl = shader_contract(bytearray(data), wgsl_source="@compute fn main() {}")
    assert with_wgsl["900"]["wgsl_source"] == "@compute fn main() {}"
    assert isinstance(with_wgsl["900"]["spirv_binary"], bytes)


@needs_tools
def test_shader_contract_errors(compiled):
    data = compiled[("minimal", "vulkan1.0")].read_bytes()
    with pytest.raises(SpirvError, match="no entry point named 'kernel'") as exc:
        shader_contract(data, "kernel")
    assert exc.value.code == "E_SPIRV_INVALID" and exc.value.path == "900.entry_point"
    with pytest.raises(SpirvError, match="magic check failed") as exc:
        shader_contract(b"\0" * 24)
    assert exc.value.path == "900.spirv_binary"
    with pytest.raises(ContractError) as cexc:
        shader_contract(data, entry_point=3)
    assert cexc.value.code == "E_CONTRACT_FIELD_TYPE"
