"""gemm128's shader is the split-K build of shaders/gemm128.glsl, run with one slice of K (its products equal
gemm's bit for bit: test_batch_invariance.py). A contract that dispatches it with more than one workgroup
along z, which would write slices past C, is refused, whether gemm() would pick that shader or not."""
from __future__ import annotations

import numpy as np
import pytest

from hlx import kernels as K
from hlx_core.errors import ContractError
from hlx_core.kernels.helpers import shader_handle
from hlx_core.planner import plan


def _gemm128_stage(a: np.ndarray, b: np.ndarray, dispatch: list[int]) -> dict:
    body = {k: v for k, v in K.gemm(a, b)["901"].items() if k not in ("params", "push_constants_layout")}
    return {"901": {**body, "kernel_name": "gemm128", "shader_handle": shader_handle("gemm128"),
                    "dispatch": dispatch}}


@pytest.mark.parametrize("shape, dispatch", [((200, 3, 190), [2, 2, 2]),
                                             ((1800, 3, 1800), [15, 15, 2])])
def test_more_than_one_slice_is_refused(rng, shape, dispatch):
    m, k, n = shape
    a, b = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32)
    with pytest.raises(ContractError) as err:
        plan(_gemm128_stage(a, b, dispatch))
    assert err.value.code == "E_CONTRACT_STRUCTURE" and err.value.path == "901.dispatch"


def test_one_slice_plans(rng):
    a, b = rng.standard_normal((200, 3)).astype(np.float32), rng.standard_normal((3, 190)).astype(np.float32)
    assert plan(_gemm128_stage(a, b, [2, 2, 1])).stages[0].dispatch == (2, 2, 1)
