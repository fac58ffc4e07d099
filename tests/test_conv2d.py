"""conv2d's implicit-GEMM shader (shaders/conv2d.comp) past what the conformance cases reach: a grid smaller
than the pixel blocks (the workgroups loop over the rest, as they do past 65535 blocks) gives the same bits
as the builder's grid, and the same bits on every run; within conv2d's bound of float64 on shapes off
every tile (outputs poisoned by this suite's HLX_POISON_OUTPUTS=1, so an unwritten element shows)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import hlx
from hlx_core.kernels import references as ref
from hlx_core.kernels import tolerances as tol
from hlx_core.plan import OutputRef

SHADERS = Path(__file__).resolve().parents[1] / "shaders"
GPU = [b for b in ("vulkan", "wgpu") if b in hlx.backends()]
# x shape, w shape, stride, padding: K past one 64-channel block, N*OH*OW past 128-pixel blocks, C off the
# 8-channel steps, filters of 1 to 15 taps, odd H and W, stride 2, padding 0 and 2, N = 1, K = 1
SHAPES = [((2, 3, 17, 19), (70, 3, 3, 3), 1, 1), ((1, 6, 23, 21), (9, 6, 3, 5), 2, 2),
          ((3, 2, 11, 13), (1, 2, 1, 1), 1, 0), ((1, 19, 12, 9), (130, 19, 2, 2), 2, 0)]


def _within_bound(x: np.ndarray, w: np.ndarray, stride: int, padding: int, got: np.ndarray) -> bool:
    params = {"stride": stride, "padding": padding}
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    (bound,) = tol.conv2d([x64, w64], [np.zeros_like(x64), np.zeros_like(w64)], params,
                          [OutputRef(np.dtype(np.float32), got.shape)])
    return bool(np.all(np.abs(got - ref.conv2d_f64(x, w, stride, padding)) <= bound))


@pytest.mark.parametrize("backend", GPU)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"x{'x'.join(map(str, s[0]))}-w{'x'.join(map(str, s[1]))}")
def test_conv2d_on_a_short_grid_gives_the_builders_bits(backend: str, shape: tuple, rng: np.random.Generator) -> None:
    xs, ws, stride, padding = shape
    x, w = rng.standard_normal(xs, dtype=np.float32), rng.standard_normal(ws, dtype=np.float32)
    built = hlx.kernels.conv2d(x, w, stride=stride, padding=padding)["901"]
    (got,) = hlx.run({"901": built}, backend=backend).arrays()
    assert _within_bound(x, w, stride, padding, got)
    params = built["params"]
    out = hlx.out("float32", got.shape)
    short = [1, built["dispatch"][1], 1]  # one workgroup walks every pixel block of its channels
    # The library's source built for SPIR-V 1.0: other bytes than shaders/conv2d.spv, which the conformance
    # check would hold to the builder's dispatch, for the same code.
    spv = hlx.compile_glsl((SHADERS / "conv2d.comp").read_text(), include_dirs=[SHADERS], target_env="vulkan1.0")
    looped = hlx.Kernel(spv)(x, w, out, workgroups=short, backend=backend, **params)
    assert looped.arrays()[0].tobytes() == got.tobytes()
    (again,) = hlx.run({"901": built}, backend=backend, memo=False).arrays()
    assert again.tobytes() == got.tobytes()
