"""The streaming kernels' edges on every backend: add, mul, saxpy, relu move uvec4 groups with a scalar tail
(shaders/stream.glsl), reduce_sum folds 8192-element chunks in a two-level fixed order, softmax keeps rows of
up to 8192 columns in registers (vec4 loads when cols is a multiple of 4), transpose moves 32x32 tiles.
Sizes around 4, the workgroup's 4096 elements, the 8192-element chunk and the 32-wide tile, on fresh random
inputs with outputs poisoned (tests/conftest.py): bit equality with NumPy where the kernel is exact,
reduce_sum bit-equal to the CPU reference's tree and within its bound of the float64 sum, softmax within
its declared tolerance and the same bytes run after run."""
from __future__ import annotations

import numpy as np
import pytest

import hlx
from hlx import kernels as K
from hlx_core.kernels import references as ref
from hlx_core.kernels import tolerances as tol
from hlx_core.kernels.tolerances import REDUCE_DEPTH
from hlx_core.plan import OutputRef

SIZES = [1, 3, 4, 5, 1021, 4095, 4097, 8191, 8192, 8193, 70001]
U = 2.0**-24


def _backends() -> list[str]:
    return ["cpu", *(b for b in ("vulkan", "wgpu") if b in hlx.backends())]


@pytest.fixture(params=_backends())
def backend(request) -> str:
    return request.param


def _words(rng: np.random.Generator, dtype: str, n: int) -> np.ndarray:
    if dtype == "int32":
        return rng.integers(-2**31, 2**31, size=n, dtype=np.int32)
    return rng.standard_normal(n).astype(np.float32)


def _run(contract: dict, backend: str) -> np.ndarray:
    (out,) = hlx.run(contract, backend=backend).arrays()
    return out


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", ["float32", "int32"])
def test_add_mul_bit_equal_to_numpy(backend: str, dtype: str, n: int, rng: np.random.Generator) -> None:
    a, b = _words(rng, dtype, n), _words(rng, dtype, n)
    assert _run(K.add(a, b), backend).tobytes() == np.add(a, b).tobytes()
    assert _run(K.mul(a, b), backend).tobytes() == np.multiply(a, b).tobytes()


@pytest.mark.parametrize("n", SIZES)
def test_relu_and_saxpy(backend: str, n: int, rng: np.random.Generator) -> None:
    x, y = _words(rng, "float32", n), _words(rng, "float32", n)
    assert _run(K.relu(x), backend).tobytes() == np.where(x > 0, x, np.float32(0)).tobytes()
    alpha = float(np.float32(rng.uniform(-3, 3)))
    got = _run(K.saxpy(alpha, x, y), backend).astype(np.float64)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    assert np.all(np.abs(got - (alpha * x64 + y64)) <= 3 * U * (abs(alpha) * np.abs(x64) + np.abs(y64)) + 2.0**-126)


@pytest.mark.parametrize("n", [*SIZES, 300_007])
@pytest.mark.parametrize("dtype", ["float32", "int32"])
def test_reduce_sum_replays_the_reference_tree(backend: str, dtype: str, n: int, rng: np.random.Generator) -> None:
    x = _words(rng, dtype, n)
    if dtype == "float32":  # magnitudes over six decades: another order of additions would round differently
        x = (x * np.float32(10.0) ** rng.uniform(-3, 3, n).astype(np.float32)).astype(np.float32)
    got = _run(K.reduce_sum(x), backend)
    assert got.shape == () and got.tobytes() == ref.tree_sum(x).tobytes()
    if dtype == "int32":
        assert got == x.sum(dtype=np.int32)  # wrapping: any order gives the modular sum
    else:
        passes = 1 if n <= ref.REDUCE_CHUNK else 2
        x64 = x.astype(np.float64)
        assert abs(float(got) - x64.sum()) <= passes * REDUCE_DEPTH * U * np.abs(x64).sum()


def test_reduce_sum_builds_the_chunk_passes(rng: np.random.Generator) -> None:
    """8192 elements are one pass; 8193 two, the second over 2 partials (a buffer under 16 bytes)."""
    assert "901" in K.reduce_sum(_words(rng, "float32", 8192))
    stages = [s["901"] for s in K.reduce_sum(_words(rng, "float32", 8193))["902"]["stages"]]
    assert [(s["params"]["n"], s["dispatch"]) for s in stages] == [(8193, [2, 1, 1]), (2, [1, 1, 1])]


def test_stream_dispatch_counts_whole_groups(rng: np.random.Generator) -> None:
    """A workgroup per 1024 whole uvec4 groups, at least one (the tail of n < 4 rides on it), at most 65535."""
    for n, groups in ((1, 1), (3, 1), (4096, 1), (4099, 1), (4100, 2), (70001, 18)):
        x = _words(rng, "float32", n)
        assert K.relu(x)["901"]["dispatch"] == [groups, 1, 1], n
        assert K.add(x, x)["901"]["dispatch"] == [groups, 1, 1], n


@pytest.mark.parametrize("cols", [1, 3, 4, 5, 1021, 4096, 8191, 8192, 8193, 8196])
def test_softmax_within_tolerance_and_repeatable(backend: str, cols: int, rng: np.random.Generator) -> None:
    """Up to 8192 columns the row stays in registers; 8193 and 8196 take the streamed path."""
    x = (rng.standard_normal((3, cols)) * 4).astype(np.float32)
    got = _run(K.softmax(x), backend)
    x64 = x.astype(np.float64)
    e = np.exp(x64 - x64.max(axis=1, keepdims=True))
    (bound,) = tol.softmax([x64], [np.zeros_like(x64)], {}, [OutputRef(np.dtype("float32"), x.shape)])
    assert np.all(np.abs(got - e / e.sum(axis=1, keepdims=True)) <= bound)
    assert _run(K.softmax(x), backend).tobytes() == got.tobytes()


@pytest.mark.parametrize("shape", [(1, 1), (1, 33), (31, 1), (32, 32), (33, 65), (64, 96), (257, 31)])
@pytest.mark.parametrize("dtype", ["float32", "int32"])
def test_transpose_bit_equal(backend: str, dtype: str, shape: tuple[int, int], rng: np.random.Generator) -> None:
    x = _words(rng, dtype, shape[0] * shape[1]).reshape(shape)
    assert _run(K.transpose(x), backend).tobytes() == np.ascontiguousarray(x.T).tobytes()
