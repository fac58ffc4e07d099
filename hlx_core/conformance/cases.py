"""The conformance kit's cases: each builds a contract of a library kernel or pipeline from fresh random
inputs, with what NumPy says the answer is (computed independently of the library's references).

An expected array in the output's own dtype (integer arithmetic, float32 add, mul, relu, transpose) must
be met bit for bit; one in float64 is exact arithmetic, which a backend must meet within the bound the
kernels declare (``KernelSpec.tolerance``, carried through a pipeline by ``hlx_core.compare.reference``).
The tolerances live with the kernels, so the kit, ``hlx.compare`` and ``hlx parity`` hold every backend
to the same ones.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from hlx_core.codec.tensor import tensor_dtype
from hlx_core.compare import Reference, reference
from hlx_core.kernels import helpers as K


@dataclass
class Case:
    contract: dict
    expected: list[np.ndarray]  # in the output dtype: bit for bit; in float64: within the declared bound


def _bytes(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(np.uint8)


def check_expected(case: Case, arrays: list[np.ndarray], what: str, ref: Reference | None = None) -> None:
    """Assert that ``arrays`` (a backend's outputs of ``case.contract``) are what NumPy expects; the bounds
    are those of ``ref`` (the contract's reference, computed when not given)."""
    ref = ref if ref is not None else reference(case.contract)
    assert len(arrays) == len(case.expected), f"{what}: {len(arrays)} outputs, expected {len(case.expected)}"
    for k, (got, want) in enumerate(zip(arrays, case.expected)):
        name = f"{what} output {k}"
        assert got.shape == want.shape, f"{name}: shape {got.shape}, expected {want.shape}"
        if want.dtype != np.float64:
            assert got.dtype == want.dtype, f"{name}: dtype {got.dtype}, expected {want.dtype}"
            assert np.array_equal(_bytes(got), _bytes(want)), f"{name}: not bit-equal to NumPy"
            continue
        bound = ref.bounds[k]
        assert bound is not None, f"{name}: the kernels declare no tolerance"
        assert got.dtype == np.float32, f"{name}: dtype {got.dtype}"
        assert np.isfinite(got).all(), f"{name}: non-finite values"
        err = np.abs(got.astype(np.float64) - want)
        worst = np.unravel_index(np.argmax(err - bound), err.shape) if err.size else ()
        assert (err <= bound).all(), (f"{name}: error {err[worst]:.3g} exceeds the declared bound {bound[worst]:.3g} "
                                      f"at {worst} (got {got[worst]!r}, exact {want[worst]!r})")


def _f32(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _words(rng: np.random.Generator, dtype: str, *shape: int) -> np.ndarray:
    if dtype == "float32":
        return _f32(rng, *shape, scale=100.0)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)


def _f64(*arrays: np.ndarray) -> list[np.ndarray]:
    return [a.astype(np.float64) for a in arrays]


def _binary(op: str, dtype: str, n: int) -> Callable[[np.random.Generator], Case]:
    def make(rng: np.random.Generator) -> Case:
        a, b = _words(rng, dtype, n), _words(rng, dtype, n)
        expected = np.add(a, b, dtype=a.dtype) if op == "add" else np.multiply(a, b, dtype=a.dtype)
        return Case(getattr(K, op)(a, b), [expected])
    return make


def _saxpy(rng: np.random.Generator) -> Case:
    alpha = np.float32(rng.uniform(-3, 3))
    x, y = _f32(rng, 1001), _f32(rng, 1001)
    x64, y64 = _f64(x, y)
    return Case(K.saxpy(float(alpha), x, y), [float(alpha) * x64 + y64])


def _relu(*shape: int) -> Callable[[np.random.Generator], Case]:
    def make(rng: np.random.Generator) -> Case:
        x = _f32(rng, *shape)
        return Case(K.relu(x), [np.where(x > 0, x, np.float32(0))])
    return make


def _reduce_sum(dtype: str, n: int) -> Callable[[np.random.Generator], Case]:
    def make(rng: np.random.Generator) -> Case:
        if dtype == "float32":
            x = _f32(rng, n)
            return Case(K.reduce_sum(x), [np.array(x.astype(np.float64).sum())])
        x = rng.integers(-2**31, 2**31, size=n, dtype=np.int32)
        return Case(K.reduce_sum(x), [np.array(x.sum(dtype=np.int32))])
    return make


def softmax64(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _softmax(rows: int, cols: int) -> Callable[[np.random.Generator], Case]:
    def make(rng: np.random.Generator) -> Case:
        x = _f32(rng, rows, cols, scale=4.0)
        return Case(K.softmax(x), [softmax64(x.astype(np.float64))])
    return make


def _transpose(dtype: str, rows: int, cols: int) -> Callable[[np.random.Generator], Case]:
    def make(rng: np.random.Generator) -> Case:
        x = _words(rng, dtype, rows, cols)
        return Case(K.transpose(x), [np.ascontiguousarray(x.T)])
    return make


def _gemm(m: int, k: int, n: int, dtype: str = "float32") -> Callable[[np.random.Generator], Case]:
    """A product of float32, float16 or bfloat16 inputs (the 16-bit kernels return float32)."""
    def make(rng: np.random.Generator) -> Case:
        a, b = (x.astype(tensor_dtype(dtype)) for x in (_f32(rng, m, k), _f32(rng, k, n)))
        a64, b64 = _f64(a, b)
        return Case(K.gemm(a, b), [a64 @ b64])
    return make


def conv2d_direct(x: np.ndarray, w: np.ndarray, stride: int, padding: int) -> np.ndarray:
    """Convolution by explicit loops over the output (float64): independent of the library's reference."""
    n, c, h, wd = x.shape
    k, _, r, s = w.shape
    xp = np.zeros((n, c, h + 2 * padding, wd + 2 * padding))
    xp[:, :, padding:padding + h, padding:padding + wd] = x
    oh, ow = (h + 2 * padding - r) // stride + 1, (wd + 2 * padding - s) // stride + 1
    y = np.zeros((n, k, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * stride:i * stride + r, j * stride:j * stride + s]
            y[:, :, i, j] = np.tensordot(patch, w.astype(np.float64), axes=([1, 2, 3], [1, 2, 3]))
    return y


def _conv2d(xs: tuple[int, ...], ws: tuple[int, ...], stride: int,
            padding: int) -> Callable[[np.random.Generator], Case]:
    def make(rng: np.random.Generator) -> Case:
        x, w = _f32(rng, *xs), _f32(rng, *ws)
        return Case(K.conv2d(x, w, stride=stride, padding=padding), [conv2d_direct(x, w, stride, padding)])
    return make


def _mlp(rng: np.random.Generator) -> Case:
    """softmax(relu(x @ w1) @ w2) as one 902: both gemms' rounding reaches the softmax's inputs."""
    x, w1, w2 = _f32(rng, 8, 33), _f32(rng, 33, 65), _f32(rng, 65, 10)
    logits = np.maximum(x.astype(np.float64) @ w1, 0) @ w2
    contract = K.pipeline([K.gemm(x, w1), K.relu(K.stage(0)), K.gemm(K.stage(1), w2), K.softmax(K.stage(2))])
    return Case(contract, [softmax64(logits)])


def _int_chain(rng: np.random.Generator) -> Case:
    """An exact 902 whose last step is itself multi-pass: reduce_sum(mul(add(a, b), c)), int32."""
    a, b, c = (rng.integers(-2**31, 2**31, size=(40, 50), dtype=np.int32) for _ in range(3))
    expected = np.array((((a + b) * c)).sum(dtype=np.int32))
    contract = K.pipeline([K.add(a, b), K.mul(K.stage(0), c), K.reduce_sum(K.stage(1))])
    return Case(contract, [expected])


def _two_outputs(rng: np.random.Generator) -> Case:
    """A 902 returning two steps' outputs (the ``outputs`` argument), one transposed word array each."""
    x = _words(rng, "uint32", 19, 23)
    y = _f32(rng, 19, 23)
    contract = K.pipeline([K.transpose(x), K.relu(y), K.transpose(K.stage(1))],
                          outputs=[K.stage(0), K.stage(2)])
    return Case(contract, [np.ascontiguousarray(x.T), np.ascontiguousarray(np.maximum(y, 0).T)])


CASES: dict[str, Callable[[np.random.Generator], Case]] = {
    **{f"{op}-{dt}": _binary(op, dt, 1000) for op in ("add", "mul") for dt in ("float32", "int32", "uint32")},
    "add-float32-1": _binary("add", "float32", 1),
    "saxpy": _saxpy,
    "relu": _relu(37, 29),
    "relu-empty": _relu(0, 5),
    "reduce_sum-float32-1": _reduce_sum("float32", 1),
    "reduce_sum-float32-777": _reduce_sum("float32", 777),
    "reduce_sum-float32-300000": _reduce_sum("float32", 300_000),
    "reduce_sum-int32-5000": _reduce_sum("int32", 5000),
    "softmax-7x300": _softmax(7, 300),
    "softmax-1x1": _softmax(1, 1),
    **{f"transpose-{dt}": _transpose(dt, 33, 65) for dt in ("float32", "int32", "uint32")},
    "transpose-1x1": _transpose("float32", 1, 1),
    "gemm-33x65x17": _gemm(33, 65, 17),
    "gemm-1x1x1": _gemm(1, 1, 1),
    "gemm-64x64x64": _gemm(64, 64, 64),
    "gemm-140x16x130": _gemm(140, 16, 130),  # past 128 rows: the 64x64 tiles
    "gemm-8x0x5": _gemm(8, 0, 5),
    "gemm128-1801x7x1799": _gemm(1801, 7, 1799),  # 15x15 tiles of 128: the large-matrix shader
    # up to 32 rows, or 128 on a small grid: the few-rows shader (the cases above of 64 rows or fewer run on
    # it too); K over several 256-deep chunks and off its 16-step, M and N off the 16x16 blocks
    "gemm_skinny-17x1031x257": _gemm(17, 1031, 257),
    "gemm_f16-67x37x131": _gemm(67, 37, 131, "float16"),  # odd K and N: halves straddle the words
    "gemm_bf16-130x19x65": _gemm(130, 19, 65, "bfloat16"),
    "conv2d-3x3": _conv2d((2, 3, 9, 11), (4, 3, 3, 2), 1, 0),
    "conv2d-stride2-pad1": _conv2d((1, 2, 8, 7), (3, 2, 3, 3), 2, 1),
    "conv2d-1x1": _conv2d((1, 1, 1, 1), (1, 1, 1, 1), 1, 0),
    # the 64-channel x 128-pixel blocks of shaders/conv2d.comp, 8 channels a step: K and N*OH*OW off the
    # blocks (2 x 6 of them), C off the steps, odd sizes, stride 2, padding 2, N = 1, K = 1
    "conv2d-k70-646px": _conv2d((2, 3, 17, 19), (70, 3, 3, 3), 1, 1),
    "conv2d-stride2-pad2-n1": _conv2d((1, 5, 13, 9), (7, 5, 5, 3), 2, 2),
    "conv2d-k1-c17": _conv2d((3, 17, 7, 5), (1, 17, 2, 3), 1, 0),
    "pipeline-mlp": _mlp,
    "pipeline-int-chain": _int_chain,
    "pipeline-two-outputs": _two_outputs,
}
