"""Batch invariance: a row computed in a batch of 1 to 128 rows is the same bits as in any other batch.

Every library kernel whose KernelSpec declares ``batch_invariant`` is checked on every available backend
(cpu, Vulkan and wgpu on lavapipe here): the full 128-row result against batches of other sizes taken
from its start and its end. gemm is not declared (its CPU reference rounds a float64 BLAS product whose
order depends on the number of rows), but its shaders keep the order, the switches between its block
shapes included (batches of up to 64 rows run on gemm_skinny): the GPU backends are held to that too.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pytest
from _backends import backend_or_skip, f32

import hlx
from hlx.kernels import add, conv2d, gemm, mul, relu, saxpy, softmax
from hlx_core.kernels.library import BY_NAME, GEMM128_MIN_GROUPS, LIBRARY

ROWS = 128
BATCHES = (1, 3, 64, 127)
BACKENDS = ("cpu", "vulkan", "wgpu")

# kernel -> (inputs with a leading batch axis of ROWS, build(batched inputs) -> contract)
Case = tuple[Callable[[np.random.Generator], list[np.ndarray]], Callable[..., dict]]
_W = np.random.default_rng(7).standard_normal((4, 3, 3, 3)).astype(np.float32)  # conv2d's filters: shared
CASES: dict[str, Case] = {
    "add": (lambda rng: [f32(rng, ROWS, 37), f32(rng, ROWS, 37)], add),
    "mul": (lambda rng: [f32(rng, ROWS, 37), f32(rng, ROWS, 37)], mul),
    "saxpy": (lambda rng: [f32(rng, ROWS, 37), f32(rng, ROWS, 37)], lambda x, y: saxpy(1.7, x, y)),
    "relu": (lambda rng: [f32(rng, ROWS, 37)], relu),
    "softmax": (lambda rng: [f32(rng, ROWS, 300) * 4], softmax),
    "conv2d": (lambda rng: [f32(rng, ROWS, 3, 7, 7)], lambda x: conv2d(x, _W, stride=1, padding=1)),
}


def _run(contract: dict, backend: str) -> np.ndarray:
    return hlx.run(contract, backend=backend, memo=False).arrays()[0]


def _same_rows(got: np.ndarray, want: np.ndarray) -> int:
    """How many elements differ in their bits."""
    return int((got.view(np.uint8).reshape(got.shape + (-1,)) != want.view(np.uint8).reshape(want.shape + (-1,)))
               .any(axis=-1).sum())


def test_every_declaration_has_a_case():
    declared = {spec.name for spec in LIBRARY if spec.batch_invariant}
    assert declared == set(CASES)
    assert not BY_NAME["gemm"].batch_invariant and not BY_NAME["gemm128"].batch_invariant
    assert not BY_NAME["reduce_sum"].batch_invariant  # it folds the whole tensor: no row to keep


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kernel", sorted(CASES))
def test_a_row_does_not_depend_on_its_batch(kernel, backend, rng):
    backend = backend_or_skip(backend)
    make_inputs, build = CASES[kernel]
    inputs = make_inputs(rng)
    full = _run(build(*inputs), backend)
    for m in BATCHES:
        for start in (0, ROWS - m):
            part = _run(build(*(np.ascontiguousarray(x[start:start + m]) for x in inputs)), backend)
            assert _same_rows(part, full[start:start + m]) == 0, (kernel, backend, m, start)


@pytest.mark.parametrize("backend", ("vulkan", "wgpu"))
def test_gemm_shaders_keep_the_order_across_batches_and_tile_shapes(backend, rng):
    backend = backend_or_skip(backend)
    a, b = f32(rng, ROWS, 37), f32(rng, 37, 70)  # K a multiple of neither tile's K step
    full = _run(gemm(a, b), backend)
    for m in BATCHES:
        for start in (0, ROWS - m):
            part = _run(gemm(np.ascontiguousarray(a[start:start + m]), b), backend)
            assert _same_rows(part, full[start:start + m]) == 0, (m, start)
    # 12 x 16 tiles of 128x128 make the helper switch to the gemm128 shader; 128 rows of it run on gemm's.
    big_a, big_b = f32(rng, 12 * 128, 8), f32(rng, 8, 16 * 128)
    assert 12 * 16 >= GEMM128_MIN_GROUPS
    assert gemm(big_a, big_b)["901"]["kernel_name"] == "gemm128"
    rows = np.ascontiguousarray(big_a[640:768])
    assert gemm(rows, big_b)["901"]["kernel_name"] == "gemm"
    assert _same_rows(_run(gemm(rows, big_b), backend), _run(gemm(big_a, big_b), backend)[640:768]) == 0
