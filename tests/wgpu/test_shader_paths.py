"""For every library kernel: which path wgpu takes (SPIR-V through naga, or the 900's WGSL variant), as
recorded in docs/WGPU.md; that its inputs are bound read-only (which wgpu accepts only where naga's module
reads them as read-only); and the uniform-buffer push-constant fallback gives the same bits as immediates."""
from __future__ import annotations

import re
from pathlib import Path

import ml_dtypes
import numpy as np

from hlx import kernels as K
from hlx_core.kernels.library import LIBRARY
from hlx_core.plan import OutputRef
from hlx_core.planner import plan

# kernel -> path wgpu takes on this build of wgpu-native (naga); docs/WGPU.md carries the same table.
EXPECTED_PATHS = {
    "add": "spirv", "mul": "spirv", "saxpy": "spirv", "relu": "spirv", "reduce_sum": "spirv",
    "softmax": "spirv", "transpose": "spirv", "gemm": "spirv", "gemm128": "spirv", "conv2d": "spirv",
    "gemm_skinny": "spirv", "gemm_f16": "spirv", "gemm_bf16": "spirv",
}
DOC = Path(__file__).resolve().parents[2] / "docs" / "WGPU.md"
_DOC_ROW = re.compile(r"^\|\s*`?(\w+)`?\s*\|\s*(SPIR-V via naga|WGSL)\s*\|", re.MULTILINE)


def _contracts(rng: np.random.Generator) -> dict[str, dict]:
    f = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    return {
        "add": K.add(f(1000), f(1000)), "mul": K.mul(f(1000), f(1000)), "saxpy": K.saxpy(1.5, f(1000), f(1000)),
        "relu": K.relu(f(1000)), "reduce_sum": K.reduce_sum(f(3000)), "softmax": K.softmax(f(7, 33)),
        "transpose": K.transpose(f(19, 37)), "gemm": K.gemm(f(130, 17), f(17, 45)),
        "gemm128": K.gemm(f(1800, 3), f(3, 1800)), "gemm_skinny": K.gemm(f(33, 17), f(17, 45)),
        "gemm_f16": K.gemm(f(33, 17).astype(np.float16), f(17, 45).astype(np.float16)),
        "gemm_bf16": K.gemm(f(33, 17).astype(ml_dtypes.bfloat16), f(17, 45).astype(ml_dtypes.bfloat16)),
        "conv2d": K.conv2d(f(1, 3, 9, 9), f(4, 3, 3, 3), stride=1, padding=1),
    }


def test_table_covers_the_library():
    assert set(EXPECTED_PATHS) == {spec.name for spec in LIBRARY}


def test_docs_table_matches():
    rows = dict(_DOC_ROW.findall(DOC.read_text()))
    assert {k: ("spirv" if v == "SPIR-V via naga" else "wgsl") for k, v in rows.items()} == EXPECTED_PATHS


def test_every_library_kernel_takes_its_path(session, uniform_session, rng):
    contracts = _contracts(rng)
    assert set(contracts) == set(EXPECTED_PATHS)
    for name, contract in contracts.items():
        p = plan(contract)
        with_immediates = session.execute(p).arrays
        through_uniform = uniform_session.execute(p).arrays
        for x, y in zip(with_immediates, through_uniform):
            assert x.tobytes() == y.tobytes(), name
        for s in (session, uniform_session):
            compiled = s.shader_paths[name]
            assert compiled.path == EXPECTED_PATHS[name], (name, compiled.refusal)
        if "immediates" in session.core.features:
            assert session.shader_paths[name].push_mode == "immediates", name
        assert uniform_session.shader_paths[name].push_mode == "uniform", name
        for stage in p.stages:
            layout = {i: "storage" if isinstance(b, OutputRef) else "read-only-storage"
                      for i, b in enumerate(stage.bindings)}
            for s in (session, uniform_session):
                assert s.shader_paths[stage.kernel_name].binding_types == layout, stage.kernel_name
