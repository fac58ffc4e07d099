"""The SPIR-V rewrites give valid modules that carry the intended change."""
from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hlx import kernels as K
from hlx_core.planner import plan
from hlx_core.spirv import enums as E
from hlx_core.spirv.header import HEADER_WORDS
from hlx_core.spirv.reflect import reflect_entry

from hlx_wgpu.spirv_patch import (
    UNIFORM_GROUP,
    drop_relaxed_precision,
    fix_workgroup_size,
    mark_readonly_variables,
    push_constants_to_uniform,
)

SHADERS = Path(__file__).resolve().parents[2] / "shaders"  # the kernel library's SPIR-V


def _spirv_val(tmp_path, module: bytes) -> None:
    if shutil.which("spirv-val") is None:
        pytest.skip("spirv-val is not installed (apt-get install spirv-tools)")
    path = tmp_path / "m.spv"
    path.write_bytes(module)
    res = subprocess.run(["spirv-val", "--target-env", "vulkan1.1", str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_fix_workgroup_size(spirv, tmp_path):
    info = reflect_entry(spirv["axpby"])
    assert info.local_size_ids[0] is not None
    patched = fix_workgroup_size(spirv["axpby"], info.local_size_ids, (96, 1, 1))
    _spirv_val(tmp_path, patched)
    after = reflect_entry(patched)
    assert after.local_size == (96, 1, 1) and after.local_size_ids == (None, None, None)
    assert [c.id for c in after.spec_constants] == [c.id for c in info.spec_constants if c.id != 0]


def test_push_constants_to_uniform(spirv, tmp_path):
    patched = push_constants_to_uniform(spirv["axpby"])
    _spirv_val(tmp_path, patched)
    before, after = reflect_entry(spirv["axpby"]), reflect_entry(patched)
    assert before.push_constant_size == 8 and after.push_constant_size == 0
    uniforms = [b for b in after.bindings if b.kind == "uniform"]
    assert [(b.set, b.binding) for b in uniforms] == [(UNIFORM_GROUP, 0)]
    assert push_constants_to_uniform(spirv["iadd"]) == spirv["iadd"]  # nothing to move


def _decorated(module: bytes, decoration: int) -> set[tuple[int, int]]:
    """(descriptor set, binding) of every variable that carries ``decoration`` itself."""
    words = struct.unpack(f"<{len(module) // 4}I", module)
    found, sets, slots, i = set(), {}, {}, HEADER_WORDS
    while i < len(words):
        count, opcode = words[i] >> 16, words[i] & 0xFFFF
        if opcode == E.OP_DECORATE:
            target, dec = words[i + 1], words[i + 2]
            if dec == decoration:
                found.add(target)
            elif dec in (E.DEC_DESCRIPTOR_SET, E.DEC_BINDING):
                (sets if dec == E.DEC_DESCRIPTOR_SET else slots)[target] = words[i + 3]
        i += count
    return {(sets[v], slots[v]) for v in found if v in slots}


def test_mark_readonly_variables_library_gemm(tmp_path):
    gemm = (SHADERS / "gemm.spv").read_bytes()
    assert _decorated(gemm, E.DEC_NON_WRITABLE) == set()  # glslang marks the members only
    patched = mark_readonly_variables(gemm)
    _spirv_val(tmp_path, patched)
    assert _decorated(patched, E.DEC_NON_WRITABLE) == {(0, 0), (0, 1)}  # A and B; C is written
    assert _decorated(patched, E.DEC_NON_READABLE) == set()  # WebGPU has no write-only storage buffers
    assert reflect_entry(patched).bindings == reflect_entry(gemm).bindings
    assert mark_readonly_variables(patched) is patched  # nothing left to add
    assert _decorated(mark_readonly_variables(gemm, skip=frozenset({(0, 1)})), E.DEC_NON_WRITABLE) == {(0, 0)}


def test_mark_readonly_variables_leaves_written_buffers(spirv, tmp_path):
    assert mark_readonly_variables(spirv["bump"]) is spirv["bump"]  # x written in place, y an output
    patched = mark_readonly_variables(push_constants_to_uniform(spirv["axpby"]))
    _spirv_val(tmp_path, patched)
    assert _decorated(patched, E.DEC_NON_WRITABLE) == {(0, 0), (0, 1)}  # not C, not the push-constant uniform


def _relaxed(module: bytes) -> int:
    """How many RelaxedPrecision decorations ``module`` has."""
    words = struct.unpack(f"<{len(module) // 4}I", module)
    found, i = 0, HEADER_WORDS
    while i < len(words):
        count, opcode = words[i] >> 16, words[i] & 0xFFFF
        found += opcode == E.OP_DECORATE and words[i + 2] == E.DEC_RELAXED_PRECISION
        found += opcode == E.OP_MEMBER_DECORATE and words[i + 3] == E.DEC_RELAXED_PRECISION
        i += count
    return found


def test_drop_relaxed_precision_library_softmax(tmp_path):
    softmax = (SHADERS / "softmax.spv").read_bytes()
    assert _relaxed(softmax) > 0  # glslang decorates the subgroup built-ins
    patched = drop_relaxed_precision(softmax)
    _spirv_val(tmp_path, patched)
    assert _relaxed(patched) == 0 and len(patched) == len(softmax) - 12 * _relaxed(softmax)  # 3 words each
    assert reflect_entry(patched).bindings == reflect_entry(softmax).bindings
    assert drop_relaxed_precision(patched) is patched  # nothing left to drop


def test_softmax_runs_on_wgpu_without_relaxed_precision(session):
    """naga logs a warning for every RelaxedPrecision decoration it meets: the library softmax gets the patch."""
    x = np.random.default_rng(3).standard_normal((9, 1024)).astype(np.float32)
    session.execute(plan(K.softmax(x)))
    assert "full-precision" in session.shader_paths["softmax"].patches
