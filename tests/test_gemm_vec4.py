"""gemm and gemm128 read B as whole vec4 when N is a multiple of 4 and word by word otherwise (B's buffer
then ends inside a vec4, whose words are read one at a time): both paths on both GPU backends, each shader
named by hand so that small shapes reach gemm128 too, within gemm's bound of float64, outputs poisoned
(this suite's HLX_POISON_OUTPUTS=1) and not, the same bytes on Vulkan and wgpu.
"""
from __future__ import annotations

import numpy as np
import pytest
from _backends import backend_or_skip, f32

import hlx
from hlx import kernels as K
from hlx_core import registry
from hlx_core.device.poison import ENV_POISON
from hlx_core.kernels import tolerances as tol
from hlx_core.kernels.helpers import shader_handle
from hlx_core.plan import OutputRef
from hlx_core.planner import plan

GPU = ("vulkan", "wgpu")
TILES = {"gemm": 64, "gemm128": 128}
# (M, K, N): N a multiple of 4 (the vec4 path) with K off the K step; N odd with K * N odd (B's last vec4
# partial); N not a multiple of 4 with K * N one; N = 4; a row and a column past whole blocks, many K steps
SHAPES = [(70, 37, 132), (65, 19, 133), (33, 8, 135), (3, 5, 4), (129, 261, 260)]


def _contract(kernel: str, a: np.ndarray, b: np.ndarray) -> dict:
    """gemm()'s contract for a and b with ``kernel``'s shader and grid put in by hand."""
    (m, _), (_, n) = a.shape, b.shape
    body = K.gemm(a, b)["901"]
    tile = TILES[kernel]
    return {"901": {**body, "kernel_name": kernel, "shader_handle": shader_handle(kernel),
                    "dispatch": [-(-n // tile), -(-m // tile), 1]}}


def _within_bound(a: np.ndarray, b: np.ndarray, got: np.ndarray) -> bool:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    (bound,) = tol.gemm([a64, b64], [np.zeros_like(a64), np.zeros_like(b64)], {},
                        [OutputRef(np.dtype(np.float32), got.shape)])
    return got.shape == (a.shape[0], b.shape[1]) and bool(np.all(np.abs(got - a64 @ b64) <= bound))


@pytest.mark.parametrize("kernel", sorted(TILES))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_both_b_paths_within_the_bound_and_alike_on_both_backends(kernel, shape, rng):
    m, k, n = shape
    a, b = f32(rng, m, k), f32(rng, k, n)
    got = {}
    for backend in GPU:
        got[backend] = hlx.run(_contract(kernel, a, b), backend=backend_or_skip(backend), memo=False).arrays()[0]
        assert _within_bound(a, b, got[backend]), (kernel, backend, shape)
    assert got["vulkan"].tobytes() == got["wgpu"].tobytes()


@pytest.mark.parametrize("backend", GPU)
def test_without_poisoning_after_other_work(backend, rng, monkeypatch):
    monkeypatch.setenv(ENV_POISON, "0")
    monkeypatch.setenv("HLX_VULKAN_RESIDENCY_MB", "0")
    monkeypatch.setenv("HLX_WGPU_RESIDENT_BYTES", "0")
    session = registry.backend_entries()[backend_or_skip(backend)].backend.open()
    try:
        for kernel in sorted(TILES):
            for m, k, n in SHAPES:
                stale = f32(rng, m, 2) * 1000
                session.execute(plan(_contract(kernel, stale, f32(rng, 2, n))))  # same-size output, far off
                a, b = f32(rng, m, k), f32(rng, k, n)
                got = session.execute(plan(_contract(kernel, a, b))).arrays[0]
                assert _within_bound(a, b, got), (kernel, backend, m, k, n)
    finally:
        session.close()
