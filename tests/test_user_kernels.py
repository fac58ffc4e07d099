"""hlx.compile_glsl, hlx.Kernel and the user guide docs/OWN_KERNELS.md, on the GPU backends (lavapipe)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import hlx
from hlx.kernels import pipeline, relu, stage
from hlx_core.compile import find_compiler
from hlx_core.errors import HLXError

pytestmark = pytest.mark.skipif(find_compiler() is None, reason="no glslangValidator")
GUIDE = Path(__file__).resolve().parent.parent / "docs" / "OWN_KERNELS.md"
SAXPY = """#version 450
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer Y { float y[]; };
layout(std430, binding = 2) writeonly buffer Z { float z[]; };
layout(push_constant) uniform P { float alpha; uint n; vec2 v; int arr[3]; };
void main() { uint i = gl_GlobalInvocationID.x; if (i < n) z[i] = alpha * x[i] + y[i] + v.x + float(arr[1]); }
"""
GPU = [b for b in ("vulkan", "wgpu") if b in hlx.backends()]


def _args(n: int = 100):
    x, y = np.arange(n, dtype=np.float32), np.ones(n, np.float32)
    return x, y, dict(grid=n, alpha=2.0, n=n, v=(1.0, 0.0), arr=[0, 3, 0])


def test_compile_error_names_the_line():
    with pytest.raises(HLXError) as info:
        hlx.compile_glsl("#version 450\nlayout(local_size_x = 1) in;\nvoid main() { undefined_thing = 1; }")
    assert info.value.code == "E_COMPILE" and "<source>:3" in info.value.message
    with pytest.raises(HLXError, match="target_env"):
        hlx.compile_glsl(SAXPY, target_env="vulkan9")
    spv = hlx.compile_glsl("#version 450\nlayout(local_size_x = N) in;\nvoid main() {}", defines={"N": 8})
    assert hlx.Kernel(spv).workgroup_size == (8, 1, 1)


def test_reflected_push_members():
    k = hlx.Kernel(SAXPY)
    assert [(p.name, p.offset, p.type, p.components, p.array_size) for p in k.scalars] == [
        ("alpha", 0, "float32", 1, 0), ("n", 4, "uint32", 1, 0), ("v", 8, "float32", 2, 0), ("arr", 16, "int32", 1, 3)]
    assert [b.element for b in k.bindings] == ["float32"] * 3


@pytest.mark.parametrize("backend", GPU)
def test_kernel_runs_from_text_path_and_spirv(backend, tmp_path):
    x, y, kw = _args()
    (tmp_path / "saxpy.comp").write_text(SAXPY)
    want = 2 * x + y + 4
    for shader in (SAXPY, tmp_path / "saxpy.comp", str(tmp_path / "saxpy.comp"), hlx.compile_glsl(SAXPY)):
        r = hlx.Kernel(shader)(x, y.tolist(), hlx.out("float32", x.shape), backend=backend, **kw)
        assert np.array_equal(r.arrays()[0], want)
    assert hlx.Kernel(tmp_path / "saxpy.comp").name == "saxpy"
    assert np.array_equal(hlx.Kernel(SAXPY).submit(x, y, hlx.out("float32", 100), backend=backend, **kw)
                          .result().arrays()[0], want)


@pytest.mark.parametrize("backend", GPU)
def test_spirv_1_0_writeonly_buffer(backend, tmp_path):
    """Plain `glslangValidator -V` makes BufferBlock structs; their writeonly members run on wgpu too."""
    if shutil.which("glslangValidator") is None:
        pytest.skip("no glslangValidator on PATH")
    (tmp_path / "s.comp").write_text(SAXPY)
    subprocess.run(["glslangValidator", "-V", "-o", str(tmp_path / "s.spv"), str(tmp_path / "s.comp")], check=True,
                   capture_output=True)
    k = hlx.Kernel(tmp_path / "s.spv")
    assert k.entry.version == (1, 0) and k.bindings[2].writeonly
    x, y, kw = _args()
    assert np.array_equal(k(x, y, hlx.out("float32", 100), backend=backend, **kw).arrays()[0], 2 * x + y + 4)


@pytest.mark.parametrize("backend", GPU)
def test_user_kernel_in_a_pipeline(backend):
    k = hlx.Kernel(SAXPY)
    x, y, kw = _args(300)
    out = hlx.out("float32", x.shape)
    chain = pipeline([k.contract(x, y, out, **{**kw, "alpha": -1.0}), relu(stage(0)),
                      k.contract(stage(1), y, out, **kw)])
    first = np.maximum(-x + y + 4, 0)
    assert np.array_equal(hlx.run(chain, backend=backend).arrays()[0], 2 * first + y + 4)


@pytest.mark.parametrize("change, code, named", [
    (dict(alpha=None), "E_CONTRACT_FIELD_MISSING", "'alpha'"),
    (dict(beta=1), "E_CONTRACT_STRUCTURE", "'beta'"),
    (dict(n=-1), "E_CONTRACT_FIELD_TYPE", "'n'"),
    (dict(n=1.5), "E_CONTRACT_FIELD_TYPE", "'n'"),
    (dict(alpha="2"), "E_CONTRACT_FIELD_TYPE", "'alpha'"),
    (dict(v=(1.0,)), "E_CONTRACT_FIELD_TYPE", "'v'"),
    (dict(grid=None), "E_CONTRACT_FIELD_MISSING", "grid"),
    (dict(grid=(1, 2, 3, 4)), "E_CONTRACT_FIELD_TYPE", "grid"),
])
def test_bad_scalars_are_coded(change, code, named):
    x, y, kw = _args()
    kw.update(change)
    kw = {k: v for k, v in kw.items() if v is not None}
    with pytest.raises(HLXError) as info:
        hlx.Kernel(SAXPY).contract(x, y, hlx.out("float32", 100), **kw)
    assert info.value.code == code and named in info.value.message


def test_bad_bindings_are_coded():
    k = hlx.Kernel(SAXPY)
    x, y, kw = _args()
    with pytest.raises(HLXError) as info:
        k.contract(x, y, **kw)
    assert info.value.code == "E_CONTRACT_STRUCTURE" and "3 buffer(s)" in info.value.message
    with pytest.raises(HLXError) as info:
        k.contract(x.astype(np.int32), y, hlx.out("float32", 100), **kw)
    assert info.value.code == "E_DTYPE" and "binding 0 (X)" in info.value.message
    with pytest.raises(HLXError) as info:
        k.contract(x, y, hlx.out("int32", 100), **kw)
    assert info.value.code == "E_DTYPE" and "binding 2 (Z)" in info.value.message
    with pytest.raises(HLXError) as info:
        k.contract(hlx.out("float32", 100), y, hlx.out("float32", 100), **kw)
    assert info.value.code == "E_CONTRACT_STRUCTURE" and "readonly" in info.value.message
    with pytest.raises(HLXError) as info:
        k(stage(0), y, hlx.out("float32", 100), **kw)
    assert info.value.code == "E_CONTRACT_STRUCTURE"


def test_grid_rounds_up_to_workgroups():
    x, y, kw = _args()
    body = hlx.Kernel(SAXPY).contract(x, y, hlx.out("float32", 100), **{**kw, "grid": 129})["901"]
    assert body["dispatch"] == [3, 1, 1]
    body = hlx.Kernel(SAXPY).contract(x, y, hlx.out("float32", 100), **{**kw, "grid": None, "workgroups": (2, 1)})
    assert body["901"]["dispatch"] == [2, 1, 1]


def test_empty_descriptor_bindings_mean_derive():
    spv = hlx.compile_glsl(SAXPY)
    derived = hlx.validate({"900": {"spirv_binary": spv, "entry_point": "main"}})
    assert hlx.validate({"900": {"spirv_binary": spv, "entry_point": "main", "descriptor_bindings": []}}) == derived
    with pytest.raises(HLXError, match="which the list omits"):
        hlx.validate({"900": {"spirv_binary": spv, "entry_point": "main",
                              "descriptor_bindings": [{"set": 0, "binding": 0, "kind": "storage"}]}})


def test_user_guide_runs():
    """Every python block of docs/OWN_KERNELS.md runs and its assertions hold."""
    if not GPU:
        pytest.skip("no GPU backend")
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)
    assert len(blocks) >= 4
    for block in blocks:
        exec(compile(block, str(GUIDE), "exec"), {})
    saxpy = blocks[0].split('"""\n')[-1].strip().splitlines()
    assert len([line for line in saxpy if line.strip() and not line.startswith("x, y =")]) <= 4


def test_compiler_on_path_serves_as_well(monkeypatch):
    if shutil.which("glslangValidator") is None:
        pytest.skip("no glslangValidator on PATH")
    from hlx_core import compile as glsl
    monkeypatch.setattr(glsl, "_wheel_compiler", lambda: None)
    assert glsl.find_compiler() == shutil.which("glslangValidator")
    assert glsl.compile_glsl(SAXPY, defines=["ON_PATH"])[:4] == b"\x03\x02\x23\x07"
    monkeypatch.setenv("PATH", "")
    with pytest.raises(HLXError, match="no GLSL compiler") as info:
        glsl.compile_glsl(SAXPY, defines=["NO_COMPILER"])
    assert info.value.code == "E_COMPILE"


def test_user_shaders_go_through_spirv_val(monkeypatch):
    spv = hlx.compile_glsl("#version 450\nlayout(local_size_x = N) in;\nvoid main() {}", defines={"N": 93})
    monkeypatch.setenv("HLX_SPIRV_VAL", "/nonexistent/spirv-val")
    with pytest.raises(HLXError, match="cannot be validated") as info:
        hlx.Kernel(spv)
    assert info.value.code == "E_SPIRV_INVALID"


def test_non_readable_patch_touches_only_buffer_blocks(tmp_path):
    from hlx_core.kernels.shaders import library_shader
    from hlx_core.spirv import enums as E

    from hlx_wgpu.spirv_patch import drop_buffer_block_non_readable
    if shutil.which("glslangValidator") is None:
        pytest.skip("no glslangValidator on PATH")
    modern = library_shader("saxpy")["900"]["spirv_binary"]
    assert drop_buffer_block_non_readable(modern) is modern
    (tmp_path / "s.comp").write_text(SAXPY)
    subprocess.run(["glslangValidator", "-V", "-o", str(tmp_path / "s.spv"), str(tmp_path / "s.comp")], check=True,
                   capture_output=True)
    old = (tmp_path / "s.spv").read_bytes()
    patched = drop_buffer_block_non_readable(old)
    assert len(patched) == len(old) - 16  # one OpMemberDecorate (4 words) for the writeonly member
    assert E.DEC_NON_READABLE not in {d for (_s, _m), ds in _member_decorations(patched).items() for d in ds}


def _member_decorations(spirv: bytes) -> dict[tuple[int, int], set[int]]:
    import struct
    words = struct.unpack(f"<{len(spirv) // 4}I", spirv)
    found: dict[tuple[int, int], set[int]] = {}
    i = 5
    while i < len(words):
        count, opcode = words[i] >> 16, words[i] & 0xFFFF
        if opcode == 72:  # OpMemberDecorate
            found.setdefault((words[i + 1], words[i + 2]), set()).add(words[i + 3])
        i += count
    return found
