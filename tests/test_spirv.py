"""SPIR-V header checks and reflection, compared with spirv-cross on real shaders.

The test shaders in tests/spirv_src are compiled at test time with glslangValidator for the targets named in
their "// targets:" line (default: vulkan1.0 and vulkan1.3, i.e. SPIR-V 1.0 and 1.6); every shader in
shaders/ is checked as committed. spirv-cross --reflect and spirv-dis are the independent references.
"""
from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hlx_core.errors import ContractError, SpirvError
from hlx_core.spirv.header import check_header
from hlx_core.spirv.reflect import reflect, reflect_entry
from hlx_core.spirv.shader import shader_contract

ROOT = Path(__file__).resolve().parent.parent
SRC = Path(__file__).resolve().parent / "spirv_src"
LIBRARY = sorted((ROOT / "shaders").glob("*.spv"))
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


def assert_matches_spirv_cross(path: Path) -> None:
    data = path.read_bytes()
    ref = json.loads(_run("spirv-cross", str(path), "--reflect"))
    dis = _dis(path)
    (ref_entry,) = ref["entryPoints"]
    assert ref_entry["mode"] == "comp"
    entry = reflect_entry(data, ref_entry["name"])
    assert entry.execution_model == "GLCompute"

    for axis in range(3):
        value = ref_entry["workgroup_size"][axis]
        if ref_entry["workgroup_size_is_spec_constant_id"][axis]:
            assert entry.local_size_ids[axis] == value
        elif value:  # spirv-cross reports 0 for LocalSizeId operands that are plain constants
            assert entry.local_size_ids[axis] is None
            assert entry.local_size[axis] == value

    expected = set()
    for kind, key in (("storage", "ssbos"), ("uniform", "ubos")):
        for res in ref.get(key, []):
            count = res["array"][0] if "array" in res else 1
            expected.add((res["set"], res["binding"], kind, kind == "uniform" or bool(res.get("readonly")),
                          bool(res.get("writeonly")), count))
    got = {(b.set, b.binding, b.kind, b.readonly, b.writeonly, b.count) for b in entry.bindings}
    assert got == expected
    assert [(b.set, b.binding) for b in entry.bindings] == sorted((b.set, b.binding) for b in entry.bindings)

    push = ref.get("push_constants", [])
    want_push = max((_struct_size(ref["types"][p["type"]], ref["types"]) for p in push), default=0)
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
def test_test_shaders_match_spirv_cross(compiled, case):
    assert_matches_spirv_cross(compiled[case])


@needs_tools
@pytest.mark.parametrize("path", LIBRARY, ids=[p.stem for p in LIBRARY])
def test_library_shaders_match_spirv_cross(path):
    assert_matches_spirv_cross(path)


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


@needs_tools
def test_push_constant_layouts(compiled):
    # n@0, outer@16 (176 bytes), row-major mat2x3@192 (3 rows x 8), ivec2[2]@216, tail@232.
    assert _entry(compiled, "push_nested").push_constant_size == 236
    assert _entry(compiled, "push_std430_scalars", "vulkan1.0").push_constant_size == 28  # vec3 @16
    assert _entry(compiled, "minimal").push_constant_size == 0


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
], ids=["zero-count", "overrun", "short", "unterminated", "non-utf8", "no-type", "no-constant", "two-dims"])
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
    vector_spec = _module((15, [5, 9, *_str_words(b"main")]), (21, [uint, 32, 0]), (23, [vec, uint, 2]), (50, [vec, 7, 0]), (71, [7, 1, 3]))
    with pytest.raises(SpirvError, match="is not a scalar"):
        reflect(vector_spec)
    composite_size = _module((15, [5, 9, *_str_words(b"main")]), (16, [9, 17, 1, 1, 1]), (21, [uint, 32, 0]),
                             (23, [vec, uint, 3]), (44, [vec, 7, 8, 8, 8]), (43, [uint, 8, 4]),
                             (28, [struct_, uint, 7]), (30, [10, struct_]), (32, [ptr, 9, 10]),
                             (59, [ptr, var, 9]))
    with pytest.raises(SpirvError, match="composite where a scalar"):
        reflect(composite_size)
    image_in_push = _module((15, [5, 9, *_str_words(b"main")]), (16, [9, 17, 1, 1, 1]), (26, [11]),
                            (30, [10, 11]), (32, [ptr, 9, 10]), (59, [ptr, var, 9]))
    with pytest.raises(SpirvError, match="cannot appear in a buffer block"):
        reflect(image_in_push)


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
