"""The SPIR-V rewrites give valid modules whose reflection shows the intended change."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from hlx_core.spirv.reflect import reflect_entry
from hlx_wgpu.spirv_patch import UNIFORM_GROUP, fix_workgroup_size, push_constants_to_uniform


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
