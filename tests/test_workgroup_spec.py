"""Workgroup sizes computed from specialization constants (OpSpecConstantOp) are planned with the contract's
values and run with them on the GPU backends.

The shader (tests/planner_src/workgroup_from_spec_op.spvasm, assembled here with spirv-as) has
WorkgroupSize = (2 * X, 1, 1) with X = SpecId 0 (default 8), and every invocation writes 2 * X at its
global index: a stale size would leave elements unwritten (poisoned) or write past the output.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import hlx
from hlx_core.planner import plan

SRC = Path(__file__).parent / "planner_src" / "workgroup_from_spec_op.spvasm"


@pytest.fixture(scope="module")
def spirv(tmp_path_factory) -> bytes:
    exe = shutil.which("spirv-as")
    if exe is None:
        pytest.skip("spirv-as not installed (spirv-tools)")
    out = tmp_path_factory.mktemp("wg") / "wg.spv"
    subprocess.run([exe, "--target-env", "vulkan1.1", "-o", str(out), str(SRC)], check=True)
    return out.read_bytes()


def _contract(spirv: bytes, groups: int, x: int | None, workgroup: list[int] | None = None) -> dict:
    body = {"kernel_name": "spec_workgroup", "shader_handle": hlx.shader_contract(spirv),
            "dispatch": [groups, 1, 1],
            "bindings": [{"output": {"dtype": "uint32", "shape": [groups * 2 * (x or 8)]}}]}
    if x is not None:
        body["specialization_constants"] = {"0": x}
    if workgroup is not None:
        body["workgroup_size"] = workgroup
    return {"901": body}


@pytest.mark.parametrize("x", [None, 3, 16])
def test_planned_size_follows_the_spec_constant(spirv: bytes, x: int | None) -> None:
    stage = plan(_contract(spirv, 2, x)).stages[0]
    assert stage.workgroup_size == (2 * (x or 8), 1, 1)


def test_contract_size_must_agree_with_the_computed_one(spirv: bytes) -> None:
    assert plan(_contract(spirv, 1, 5, [10, 1, 1])).stages[0].workgroup_size == (10, 1, 1)
    with pytest.raises(hlx.ContractError) as err:
        plan(_contract(spirv, 1, 5, [16, 1, 1]))
    assert err.value.path == "901.workgroup_size[0]" and "computed from spec constants" in err.value.message


@pytest.mark.parametrize("backend", [b for b in ("vulkan",) if b in hlx.backends()])
@pytest.mark.parametrize("x", [3, 16])
def test_runs_with_the_computed_size(spirv: bytes, backend: str, x: int) -> None:
    out = hlx.run(_contract(spirv, 3, x), backend=backend).arrays()[0]
    assert np.array_equal(out, np.full(3 * 2 * x, 2 * x, dtype=np.uint32))


@pytest.mark.skipif("wgpu" not in hlx.backends(), reason="wgpu backend unavailable")
def test_wgpu_refuses_it_clearly_and_stays_usable(spirv: bytes, rng) -> None:
    """naga cannot translate OpSpecConstantOp: a coded error naming it, then the backend still runs."""
    with pytest.raises(hlx.HLXError) as err:
        hlx.run(_contract(spirv, 1, 4), backend="wgpu")
    assert err.value.code == "E_WGPU_VALIDATION" and "SpecConstantOp" in str(err.value)
    a = rng.integers(-1000, 1000, 64, dtype=np.int32)
    assert np.array_equal(hlx.run(hlx.kernels.add(a, a), backend="wgpu").arrays()[0], a + a)
