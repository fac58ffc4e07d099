"""Contract validation: 900/901/902 and the value contracts 14-22, with error codes and field paths."""
from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hlx_core.contracts.validate import validate
from hlx_core.errors import ContractError, SpirvError

SRC = Path(__file__).resolve().parent / "spirv_src"
pytestmark = pytest.mark.skipif(shutil.which("glslangValidator") is None, reason="glslang-tools not installed")

T_A = "&h_tensor_" + "a" * 64
T_B = "&h_tensor_" + "b" * 64
SHADER_HANDLE = "&h_contract_" + "c" * 64


@pytest.fixture(scope="module")
def spv(tmp_path_factory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("contract_spv")
    shaders = {}
    for name in ("matmul", "spec_workgroup", "sets_bindings"):
        dst = out / f"{name}.spv"
        subprocess.run(["glslangValidator", "-V", "--target-env", "vulkan1.1", "-o", str(dst),
                        str(SRC / f"{name}.comp")], check=True, capture_output=True)
        shaders[name] = dst.read_bytes()
    return shaders


def shader(spirv: bytes, **extra) -> dict:
    return {"900": {"spirv_binary": spirv, "entry_point": "main", "shader_stage": "compute", **extra}}


def matmul_901(spv, **overrides) -> dict:
    """The original HLX test case: a "matrix_mul" kernel with a 16x16x1 workgroup."""
    fields = {"kernel_name": "matrix_mul", "shader_handle": shader(spv["matmul"]), "workgroup_size": (16, 16, 1),
              "dispatch": (4, 4, 1), "bindings": [T_A, T_B, {"output": {"dtype": "float32", "shape": (64, 64)}}],
              "push_constants": struct.pack("<3I", 64, 64, 64)}
    fields.update(overrides)
    return {"901": fields}


def assert_error(code: str, path: str, contract, match: str = "") -> ContractError:
    with pytest.raises(ContractError, match=match or None) as exc:
        validate(contract)
    assert (exc.value.code, exc.value.path) == (code, path), str(exc.value)
    return exc.value


# -- 900 VULKAN_SHADER ---------------------------------------------------------------------------------------

def test_900_round_trips_through_lcb_and_the_store(spv):
    import hlx

    c = validate(shader(spv["matmul"]))
    assert c["900"]["descriptor_bindings"] == [
        {"set": 0, "binding": 0, "kind": "storage", "readonly": True, "writeonly": False},
        {"set": 0, "binding": 1, "kind": "storage", "readonly": True, "writeonly": False},
        {"set": 0, "binding": 2, "kind": "storage", "readonly": False, "writeonly": True}]
    assert hlx.decode(hlx.encode(c)) == c
    assert validate(hlx.decode(hlx.encode(c))) == c
    store = hlx.MemoryStore()
    handle = hlx.collapse(c, store=store)
    assert handle.tag == "contract"
    assert hlx.resolve(handle, store=store) == c


def test_900_normalises_defaults_and_checks_given_bindings(spv):
    bare = {"900": {"spirv_binary": bytearray(spv["sets_bindings"]), "entry_point": "main"}}
    full = validate(bare)
    assert full["900"]["shader_stage"] == "compute" and isinstance(full["900"]["spirv_binary"], bytes)
    given = list(reversed(full["900"]["descriptor_bindings"]))
    assert validate(shader(spv["sets_bindings"], descriptor_bindings=given)) == full
    without_flags = [{k: b[k] for k in ("set", "binding", "kind")} for b in given]
    assert validate(shader(spv["sets_bindings"], descriptor_bindings=without_flags)) == full
    assert validate(shader(spv["matmul"], wgsl_source="fn main() {}"))["900"]["wgsl_source"] == "fn main() {}"


def test_900_without_entry_point_is_refused(spv):
    assert_error("E_CONTRACT_FIELD_MISSING", "900.entry_point",
                 {"900": {"spirv_binary": spv["matmul"], "shader_stage": "compute"}})


def test_900_refuses_other_stages(spv):
    assert_error("E_CONTRACT_FIELD_TYPE", "900.shader_stage", shader(spv["matmul"], shader_stage="fragment"),
                 "supports only 'compute'")
    assert_error("E_CONTRACT_FIELD_TYPE", "900.shader_stage", shader(spv["matmul"], shader_stage="banana"),
                 "not a shader stage")


def test_900_field_errors(spv):
    assert_error("E_CONTRACT_FIELD_TYPE", "900.spirv_binary", shader("not bytes"))
    assert_error("E_CONTRACT_FIELD_TYPE", "900.entry_point", shader(spv["matmul"], entry_point=7))
    assert_error("E_CONTRACT_STRUCTURE", "900.spirv", {"900": {"spirv": b"", "entry_point": "main"}},
                 "unknown field 'spirv'")
    assert_error("E_CONTRACT_FIELD_TYPE", "900.wgsl_source", shader(spv["matmul"], wgsl_source=b"x"))
    with pytest.raises(SpirvError, match="magic check failed") as exc:
        validate(shader(b"\1" * 40))
    assert exc.value.path == "900.spirv_binary"
    with pytest.raises(SpirvError, match="no entry point named 'gemm'") as exc:
        validate({"900": {"spirv_binary": spv["matmul"], "entry_point": "gemm"}})
    assert exc.value.path == "900.entry_point"


@pytest.mark.parametrize("edit, path, match", [
    (lambda bs: bs[1].update(kind="uniform"), "900.descriptor_bindings[1].kind", "declares a 'storage'"),
    (lambda bs: bs[0].update(readonly=False), "900.descriptor_bindings[0].readonly", "the shader says True"),
    (lambda bs: bs[2].update(writeonly=False), "900.descriptor_bindings[2].writeonly", "the shader says True"),
    (lambda bs: bs.pop(), "900.descriptor_bindings", "set 0 binding 2, which the list omits"),
    (lambda bs: bs.append(dict(bs[0])), "900.descriptor_bindings[3]", "listed twice"),
    (lambda bs: bs[0].update(binding=9), "900.descriptor_bindings[0]", "no buffer at set 0, binding 9"),
])
def test_900_descriptor_bindings_must_match_reflection(spv, edit, path, match):
    bindings = [dict(b) for b in validate(shader(spv["matmul"]))["900"]["descriptor_bindings"]]
    edit(bindings)
    assert_error("E_CONTRACT_STRUCTURE", path, shader(spv["matmul"], descriptor_bindings=bindings), match)


def test_900_descriptor_binding_item_types(spv):
    assert_error("E_CONTRACT_FIELD_MISSING", "900.descriptor_bindings[0].kind",
                 shader(spv["matmul"], descriptor_bindings=[{"set": 0, "binding": 0}]))
    assert_error("E_CONTRACT_FIELD_TYPE", "900.descriptor_bindings[0].set",
                 shader(spv["matmul"], descriptor_bindings=[{"set": "0", "binding": 0, "kind": "storage"}]))
    assert_error("E_CONTRACT_FIELD_TYPE", "900.descriptor_bindings",
                 shader(spv["matmul"], descriptor_bindings={"set": 0}))


# -- 901 COMPUTE_KERNEL --------------------------------------------------------------------------------------

def test_901_matrix_mul(spv):
    import hlx

    c = validate(matmul_901(spv))
    f = c["901"]
    assert f["kernel_name"] == "matrix_mul" and f["workgroup_size"] == [16, 16, 1] and f["dispatch"] == [4, 4, 1]
    assert f["bindings"][2] == {"output": {"dtype": "float32", "shape": [64, 64]}}
    assert f["shader_handle"] == validate(shader(spv["matmul"]))
    assert hlx.decode(hlx.encode(c)) == c
    store = hlx.MemoryStore()
    assert hlx.resolve(hlx.collapse(c, store=store), store=store) == c


def test_901_with_stored_shader_and_optional_fields(spv):
    import hlx

    store = hlx.MemoryStore()
    shader_handle = hlx.collapse(validate(shader(spv["matmul"])), store=store)
    tensor = hlx.collapse(np.arange(6, dtype=np.float32), store=store)
    c = validate({"901": {
        "kernel_name": "k", "shader_handle": shader_handle, "dispatch": [np.int64(2), 1, 1],
        "bindings": (tensor, T_B, {"output": {"dtype": "uint8", "shape": ()}}),
        "specialization_constants": {0: 8, "2": 0.5}, "params": {"alpha": np.float32(0.5), "dims": (1, 2),
                                                                  "flag": True},
        "shared_memory_bytes": 4096,
        "push_constants_layout": [{"name": "alpha", "offset": 4, "type": "float32"},
                                  {"name": "n", "offset": 8, "type": "uint64"}]}})
    f = c["901"]
    assert f["shader_handle"] is shader_handle and f["bindings"][0] is tensor  # handles pass through as given
    assert f["dispatch"] == [2, 1, 1] and type(f["dispatch"][0]) is int
    assert f["bindings"][2] == {"output": {"dtype": "uint8", "shape": []}}
    assert f["specialization_constants"] == {"0": 8, "2": 0.5}  # stored shader: ids unknown, types kept
    assert f["params"] == {"alpha": 0.5, "dims": [1, 2], "flag": True} and type(f["params"]["alpha"]) is float
    assert f["shared_memory_bytes"] == 4096 and "workgroup_size" not in f and "push_constants" not in f


def test_901_spec_constants_against_inline_shader(spv):
    body = matmul_901(spv, specialization_constants={"0": 8, "1": True, "2": 3})["901"]
    assert validate({"901": body})["901"]["specialization_constants"] == {"0": 8, "1": True, "2": 3.0}
    wg = {"901": {"kernel_name": "wg", "shader_handle": shader(spv["spec_workgroup"]), "dispatch": [1, 1, 1],
                  "workgroup_size": [64, 2, 2], "bindings": [T_A], "specialization_constants": {"14": 16}}}
    assert validate(wg)["901"]["workgroup_size"] == [64, 2, 2]
    for spec, path, code, match in [
        ({"7": 1}, "901.specialization_constants.7", "E_CONTRACT_STRUCTURE", r"no specialization constant with id 7"),
        ({"0": -1}, "901.specialization_constants.0", "E_CONTRACT_FIELD_TYPE", "out of range"),
        ({"0": True}, "901.specialization_constants.0", "E_CONTRACT_FIELD_TYPE", "expected an integer"),
        ({"1": 1}, "901.specialization_constants.1", "E_CONTRACT_FIELD_TYPE", "expected a bool"),
        ({"2": "x"}, "901.specialization_constants.2", "E_CONTRACT_FIELD_TYPE", "bool, int or float"),
        ({"x": 1}, "901.specialization_constants.x", "E_CONTRACT_FIELD_TYPE", "not a digit string"),
        ({-1: 1}, "901.specialization_constants.-1", "E_CONTRACT_FIELD_TYPE", "not a digit string"),
        ([1], "901.specialization_constants", "E_CONTRACT_FIELD_TYPE", "map of spec id"),
    ]:
        assert_error(code, path, matmul_901(spv, specialization_constants=spec), match)


@pytest.mark.parametrize("overrides, code, path, match", [
    ({"dispatch": None}, "E_CONTRACT_FIELD_MISSING", "901.dispatch", "required"),
    ({"dispatch": [0, 1, 1]}, "E_CONTRACT_FIELD_TYPE", "901.dispatch[0]", "out of range"),
    ({"dispatch": [1, 1]}, "E_CONTRACT_FIELD_TYPE", "901.dispatch", "expected 3 items"),
    ({"workgroup_size": [16, True, 1]}, "E_CONTRACT_FIELD_TYPE", "901.workgroup_size[1]", "integer"),
    ({"kernel_name": None}, "E_CONTRACT_FIELD_MISSING", "901.kernel_name", ""),
    ({"kernel_name": 5}, "E_CONTRACT_FIELD_TYPE", "901.kernel_name", "string"),
    ({"shader_handle": T_A}, "E_CONTRACT_FIELD_TYPE", "901.shader_handle", "tag 'tensor'"),
    ({"shader_handle": {"900": {"entry_point": "main"}}}, "E_CONTRACT_FIELD_MISSING",
     "901.shader_handle.900.spirv_binary", ""),
    ({"shader_handle": {"901": {}}}, "E_CONTRACT_STRUCTURE", "901.shader_handle.901", "unknown field"),
    ({"bindings": [T_A, T_B, {"output": {"dtype": "complex64", "shape": [4]}}]},
     "E_CONTRACT_FIELD_TYPE", "901.bindings[2].output.dtype", "not a tensor dtype"),
    ({"bindings": [T_A, T_B, {"output": {"dtype": "float32", "shape": [4, -1]}}]},
     "E_CONTRACT_FIELD_TYPE", "901.bindings[2].output.shape[1]", "out of range"),
    ({"bindings": [T_A, T_B, {"output": {"dtype": "float32"}}]},
     "E_CONTRACT_FIELD_MISSING", "901.bindings[2].output.shape", ""),
    ({"bindings": [T_A, SHADER_HANDLE, {"output": {"dtype": "float32", "shape": [1]}}]},
     "E_CONTRACT_FIELD_TYPE", "901.bindings[1]", "tag 'contract'"),
    ({"bindings": [T_A, "&h_tensor_xyz", {"output": {"dtype": "float32", "shape": [1]}}]},
     "E_CONTRACT_FIELD_TYPE", "901.bindings[1]", "not a handle"),
    ({"bindings": [T_A, 3, {"output": {"dtype": "float32", "shape": [1]}}]},
     "E_CONTRACT_FIELD_TYPE", "901.bindings[1]", "got int"),
    ({"bindings": [T_A, {"stage": 0, "output": 0}, {"output": {"dtype": "float32", "shape": [1]}}]},
     "E_CONTRACT_STRUCTURE", "901.bindings[1]", "only valid inside a 902"),
    ({"bindings": [{"output": {"dtype": "float32", "shape": [1]}}, T_B, {"output": {"dtype": "float32",
                                                                                 "shape": [1]}}]},
     "E_CONTRACT_STRUCTURE", "901.bindings[0]", "declares readonly"),
    ({"bindings": "all"}, "E_CONTRACT_FIELD_TYPE", "901.bindings", "expected a list"),
    ({"push_constants": b"\0" * 6}, "E_CONTRACT_STRUCTURE", "901.push_constants", "multiple of 4"),
    ({"push_constants": b"\0" * 260}, "E_CONTRACT_STRUCTURE", "901.push_constants", "at most 256"),
    ({"push_constants": [1, 2]}, "E_CONTRACT_FIELD_TYPE", "901.push_constants", "expected bytes"),
    ({"params": {"a": {"b": 1}}}, "E_CONTRACT_FIELD_TYPE", "901.params.a", "bool, int or float"),
    ({"params": {"a": [1, "x"]}}, "E_CONTRACT_FIELD_TYPE", "901.params.a[1]", ""),
    ({"params": {"a": float("nan")}}, "E_CONTRACT_FIELD_TYPE", "901.params.a", "not finite"),
    ({"params": {1: 2}}, "E_CONTRACT_FIELD_TYPE", "901.params.1", "string"),
    ({"params": [1]}, "E_CONTRACT_FIELD_TYPE", "901.params", "map of name"),
    ({"shared_memory_bytes": -1}, "E_CONTRACT_FIELD_TYPE", "901.shared_memory_bytes", "out of range"),
    ({"push_constants_layout": [{"name": "n", "offset": 0, "type": "vec3"}]},
     "E_CONTRACT_FIELD_TYPE", "901.push_constants_layout[0].type", "not a push-constant type"),
    ({"push_constants_layout": [{"name": "n", "offset": 2, "type": "uint32"}]},
     "E_CONTRACT_STRUCTURE", "901.push_constants_layout[0].offset", "not aligned"),
    ({"push_constants_layout": [{"name": "n", "offset": 256, "type": "uint32"}]},
     "E_CONTRACT_FIELD_TYPE", "901.push_constants_layout[0].offset", "out of range"),
    ({"push_constants_layout": [{"name": "n", "type": "uint32"}]},
     "E_CONTRACT_FIELD_MISSING", "901.push_constants_layout[0].offset", ""),
    ({"dispath": [1, 1, 1]}, "E_CONTRACT_STRUCTURE", "901.dispath", "unknown field"),
])
def test_901_errors(spv, overrides, code, path, match):
    contract = matmul_901(spv, **{k: v for k, v in overrides.items() if v is not None})
    for k, v in overrides.items():
        if v is None:
            del contract["901"][k]
    assert_error(code, path, contract, match)


# -- 902 PIPELINE_CONFIG -------------------------------------------------------------------------------------

def two_stage_902(spv, **overrides) -> dict:
    """The original HLX test case: two stages and a workgroup barrier between them."""
    first = matmul_901(spv)
    second = matmul_901(spv, kernel_name="matrix_mul_again",
                        bindings=[{"stage": 0, "output": 0}, T_B,
                                  {"output": {"dtype": "float32", "shape": [64, 64]}}])
    fields = {"pipeline_id": "mm2", "stages": [first, second],
              "sync_barriers": [{"stage_idx": 0, "memory_scope": "workgroup"}],
              "outputs": [{"stage": 1, "output": 0}, {"stage": 0, "output": 0}]}
    fields.update(overrides)
    return {"902": fields}


def test_902_two_stages_with_a_workgroup_barrier(spv):
    import hlx

    c = validate(two_stage_902(spv))
    f = c["902"]
    assert f["pipeline_id"] == "mm2" and len(f["stages"]) == 2
    assert f["stages"][1]["901"]["bindings"][0] == {"stage": 0, "output": 0}
    assert f["sync_barriers"] == [{"stage_idx": 0, "memory_scope": "workgroup"}]
    assert hlx.decode(hlx.encode(c)) == c
    store = hlx.MemoryStore()
    assert hlx.resolve(hlx.collapse(c, store=store), store=store) == c


def test_902_with_stored_stages(spv):
    # A stage given by handle has an unknown output count, so references into it are left to the runtime.
    stored_first = SHADER_HANDLE
    second = matmul_901(spv, bindings=[{"stage": 0, "output": 5}, T_B,
                                       {"output": {"dtype": "float32", "shape": [1]}}])
    c = validate({"902": {"pipeline_id": "p", "stages": (stored_first, second),
                          "outputs": [{"stage": 0, "output": 3}]}})
    assert c["902"]["stages"][0] == SHADER_HANDLE and "sync_barriers" not in c["902"]


@pytest.mark.parametrize("overrides, code, path, match", [
    ({"stages": []}, "E_CONTRACT_STRUCTURE", "902.stages", "at least 1"),
    ({"stages": [T_A]}, "E_CONTRACT_FIELD_TYPE", "902.stages[0]", "tag 'tensor'"),
    ({"stages": [{"900": {}}]}, "E_CONTRACT_STRUCTURE", "902.stages[0].900", "unknown field"),
    ({"pipeline_id": None}, "E_CONTRACT_FIELD_MISSING", "902.pipeline_id", ""),
    ({"sync_barriers": [{"stage_idx": 2, "memory_scope": "workgroup"}]},
     "E_CONTRACT_FIELD_TYPE", "902.sync_barriers[0].stage_idx", "out of range"),
    ({"sync_barriers": [{"stage_idx": 0, "memory_scope": "galaxy"}]},
     "E_CONTRACT_FIELD_TYPE", "902.sync_barriers[0].memory_scope", "not one of"),
    ({"sync_barriers": [{"stage_idx": 0}]}, "E_CONTRACT_FIELD_MISSING", "902.sync_barriers[0].memory_scope", ""),
    ({"outputs": [{"stage": 1, "output": 1}]}, "E_CONTRACT_STRUCTURE", "902.outputs[0].output",
     "stage 1 has 1 output"),
    ({"outputs": [{"stage": 2, "output": 0}]}, "E_CONTRACT_FIELD_TYPE", "902.outputs[0].stage", "out of range"),
])
def test_902_errors(spv, overrides, code, path, match):
    contract = two_stage_902(spv, **{k: v for k, v in overrides.items() if v is not None})
    for k, v in overrides.items():
        if v is None:
            del contract["902"][k]
    assert_error(code, path, contract, match)


@pytest.mark.parametrize("ref, path, match", [
    ({"stage": 1, "output": 0}, "902.stages[1].901.bindings[0].stage", "not an earlier stage"),
    ({"stage": 3, "output": 0}, "902.stages[1].901.bindings[0].stage", "not an earlier stage"),
    ({"stage": 0, "output": 1}, "902.stages[1].901.bindings[0].output", "stage 0 has 1 output"),
    ({"stage": 0}, "902.stages[1].901.bindings[0].output", ""),
])
def test_902_stage_references(spv, ref, path, match):
    contract = two_stage_902(spv)
    contract["902"]["stages"][1]["901"]["bindings"][0] = ref
    code = "E_CONTRACT_FIELD_MISSING" if "output" not in ref else "E_CONTRACT_STRUCTURE"
    assert_error(code, path, contract, match)


# -- shape of a contract and the value contracts -------------------------------------------------------------

@pytest.mark.parametrize("contract, code, match", [
    ([("901", {})], "E_CONTRACT_STRUCTURE", "got list"),
    ({}, "E_CONTRACT_STRUCTURE", "exactly one key"),
    ({"14": {"@0": 1}, "15": {"@0": 1.0}}, "E_CONTRACT_STRUCTURE", "exactly one key"),
    ({"abc": {}}, "E_CONTRACT_STRUCTURE", "not a digit string"),
    ({901: {}}, "E_CONTRACT_STRUCTURE", "not a digit string"),
    ({"٩": {}}, "E_CONTRACT_STRUCTURE", "not a digit string"),
    ({"999": {}}, "E_CONTRACT_UNKNOWN", "unknown contract id '999'"),
    ({"901": [1, 2]}, "E_CONTRACT_STRUCTURE", "map of fields"),
])
def test_contract_shape(contract, code, match):
    with pytest.raises(ContractError, match=match) as exc:
        validate(contract)
    assert exc.value.code == code


@pytest.mark.parametrize("contract, normalised", [
    ({"14": {"@0": np.int64(-2**63)}}, {"14": {"@0": -2**63}}),
    ({"15": {"@0": 2}}, {"15": {"@0": 2.0}}),
    ({"15": {"@0": np.float32(0.25)}}, {"15": {"@0": 0.25}}),
    ({"16": {"@0": "héllo"}}, {"16": {"@0": "héllo"}}),
    ({"17": {"@0": bytearray(b"\x00\xff")}}, {"17": {"@0": b"\x00\xff"}}),
    ({"18": {"@0": (1, (2, "x"), {"k": (3,)})}}, {"18": {"@0": [1, [2, "x"], {"k": [3]}]}}),
    ({"19": {"@0": {"name": "Alice", "tags": ("a",)}}}, {"19": {"@0": {"name": "Alice", "tags": ["a"]}}}),
    ({"20": {"@0": T_A}}, {"20": {"@0": T_A}}),
    ({"21": {}}, {"21": {}}),
    ({"22": {"@0": np.bool_(True)}}, {"22": {"@0": True}}),
])
def test_value_contracts(contract, normalised):
    import hlx

    got = validate(contract)
    assert got == normalised
    assert all(type(a) is type(b) for a, b in zip(got[next(iter(got))].values(),
                                                  normalised[next(iter(normalised))].values()))
    assert hlx.decode(hlx.encode(got)) == got


@pytest.mark.parametrize("contract, code, path", [
    ({"14": {"@0": True}}, "E_CONTRACT_FIELD_TYPE", "14.@0"),
    ({"14": {"@0": 2**63}}, "E_CONTRACT_FIELD_TYPE", "14.@0"),
    ({"14": {"@0": 1.5}}, "E_CONTRACT_FIELD_TYPE", "14.@0"),
    ({"14": {}}, "E_CONTRACT_FIELD_MISSING", "14.@0"),
    ({"14": {"@0": 1, "@1": 2}}, "E_CONTRACT_STRUCTURE", "14.@1"),
    ({"15": {"@0": float("inf")}}, "E_CONTRACT_FIELD_TYPE", "15.@0"),
    ({"15": {"@0": "1.0"}}, "E_CONTRACT_FIELD_TYPE", "15.@0"),
    ({"16": {"@0": 16}}, "E_CONTRACT_FIELD_TYPE", "16.@0"),
    ({"17": {"@0": "bytes"}}, "E_CONTRACT_FIELD_TYPE", "17.@0"),
    ({"18": {"@0": {"a": 1}}}, "E_CONTRACT_FIELD_TYPE", "18.@0"),
    ({"18": {"@0": [{1: 2}]}}, "E_CONTRACT_FIELD_TYPE", "18.@0[0]"),
    ({"19": {"@0": [1]}}, "E_CONTRACT_FIELD_TYPE", "19.@0"),
    ({"19": {"@0": {1: "one"}}}, "E_CONTRACT_FIELD_TYPE", "19.@0"),
    ({"20": {"@0": "&h_shader_abc123"}}, "E_CONTRACT_FIELD_TYPE", "20.@0"),
    ({"21": {"@0": None}}, "E_CONTRACT_STRUCTURE", "21.@0"),
    ({"22": {"@0": 1}}, "E_CONTRACT_FIELD_TYPE", "22.@0"),
    # what LC-B cannot encode fails validation (with its path), not the later collapse
    ({"18": {"@0": [1, {2, 3}]}}, "E_CONTRACT_FIELD_TYPE", "18.@0[1]"),
    ({"18": {"@0": [{"x": [float("nan")]}]}}, "E_CONTRACT_FIELD_TYPE", "18.@0[0].x[0]"),
    ({"19": {"@0": {"k": object()}}}, "E_CONTRACT_FIELD_TYPE", "19.@0.k"),
    ({"19": {"@0": {"e\u0301": 1}}}, "E_CONTRACT_FIELD_TYPE", "19.@0.e\u0301"),
    ({"16": {"@0": "e\u0301"}}, "E_CONTRACT_FIELD_TYPE", "16.@0"),
    ({"16": {"@0": "\ud800"}}, "E_CONTRACT_FIELD_TYPE", "16.@0"),
])
def test_value_contract_errors(contract, code, path):
    assert_error(code, path, contract)


def test_validate_copies_and_is_the_public_api(spv):
    import hlx

    contract = two_stage_902(spv)
    before = repr(contract)
    out = validate(contract)
    assert repr(contract) == before
    out["902"]["stages"][0]["901"]["bindings"].append(T_A)
    assert repr(contract) == before
    assert hlx.validate is validate
    assert issubclass(hlx.ContractError, hlx.HLXError)
