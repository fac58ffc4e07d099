"""Error bounds of the library kernels: how far from exact arithmetic a correct implementation may land.

Each function has the ``Tolerance`` signature ``(inputs, errors, params, outputs) -> bounds``
(``hlx_core.kernels.spec``): ``inputs`` are the stage's input arrays as float64, ``errors`` a bound on each
input element's own distance from its exact value (zeros for tensors from the store, an earlier stage's
bound for a pipeline's intermediates), and the result holds, for each output, a float64 array of its shape
bounding ``|result - exact|`` element by element, where ``exact`` is real arithmetic on the exact inputs.
Feeding each stage's bounds to the next is how a pipeline's tolerance follows from its kernels'.

The bounds come from each operation's rounding analysis in the output dtype (``roundoff``: 2**-24 for
float32, 0 for integers, whose arithmetic is exact modulo 2**32 on every backend), whatever the summation
order or fused multiply-adds, so a correct backend always meets them while a dropped or doubled term does
not. Every float bound adds the dtype's smallest normal number: Vulkan lets a device flush subnormal
results to zero. Second-order terms (a rounding of an already wrong input) are below these margins.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from hlx_core.kernels import references as ref
from hlx_core.plan import OutputRef

# Additions from a leaf to a chunk's sum in one pass, at most: a thread's ordered sum of its groups
# (REDUCE_GROUPS - 1), its four lanes (2), the tree over the workgroup's threads (8).
REDUCE_DEPTH = ref.REDUCE_GROUPS - 1 + 2 + int(np.log2(ref.REDUCE_THREADS))


def roundoff(dtype: Any) -> float:
    """The unit roundoff of ``dtype`` (half its machine epsilon); 0 for integer dtypes."""
    dtype = np.dtype(dtype)
    return float(np.finfo(dtype).eps) / 2 if dtype.kind == "f" else 0.0


def _floor(dtype: Any) -> float:
    """The absolute slack for a flushed subnormal: the smallest normal number of a float dtype, else 0."""
    dtype = np.dtype(dtype)
    return float(np.finfo(dtype).tiny) if dtype.kind == "f" else 0.0


def _any(*errors: np.ndarray) -> bool:
    """Whether any input carries an error (the products below cost a GEMM or a convolution each)."""
    return any(bool(np.any(e)) for e in errors)


def _product_error(a: np.ndarray, b: np.ndarray, ea: np.ndarray, eb: np.ndarray) -> np.ndarray:
    """How far ``a * b`` moves when its factors are off by up to ``ea`` and ``eb``."""
    return np.abs(a) * eb + ea * np.abs(b) + ea * eb


def add(inputs: list[np.ndarray], errors: list[np.ndarray], params: dict[str, Any],
        outputs: list[OutputRef]) -> list[np.ndarray]:
    (a, b), (ea, eb), dtype = inputs, errors, outputs[0].dtype
    return [roundoff(dtype) * np.abs(a + b) + ea + eb + _floor(dtype)]


def mul(inputs: list[np.ndarray], errors: list[np.ndarray], params: dict[str, Any],
        outputs: list[OutputRef]) -> list[np.ndarray]:
    (a, b), (ea, eb), dtype = inputs, errors, outputs[0].dtype
    return [roundoff(dtype) * np.abs(a * b) + _product_error(a, b, ea, eb) + _floor(dtype)]


def saxpy(inputs: list[np.ndarray], errors: list[np.ndarray], params: dict[str, Any],
          outputs: list[OutputRef]) -> list[np.ndarray]:
    """Two roundings (or one, fused) of alpha * x + y, alpha as the float32 the shader reads."""
    (x, y), (ex, ey), dtype = inputs, errors, outputs[0].dtype
    alpha = abs(float(np.float32(params["alpha"])))
    return [3 * roundoff(dtype) * (alpha * np.abs(x) + np.abs(y)) + alpha * ex + ey + _floor(dtype)]


def relu(inputs: list[np.ndarray], errors: list[np.ndarray], params: dict[str, Any],
         outputs: list[OutputRef]) -> list[np.ndarray]:
    """No rounding; max(x, 0) moves no more than x does."""
    return [np.array(errors[0], dtype=np.float64)]


def transpose(inputs: list[np.ndarray], errors: list[np.ndarray], params: dict[str, Any],
              outputs: list[OutputRef]) -> list[np.ndarray]:
    return [np.ascontiguousarray(np.asarray(errors[0], dtype=np.float64).T)]


def _chunk_sums(v: np.ndarray) -> np.ndarray:
    """The sum of each REDUCE_CHUNK-element chunk of ``v`` (float64), as one reduce_sum pass groups them."""
    flat = np.ascontiguousarray(v, dtype=np.float64).reshape(-1)
    chunks = max(1, -(-flat.size // ref.REDUCE_CHUNK))
    padded = np.zeros(chunks * ref.REDUCE_CHUNK)
    padded[:flat.size] = flat
    return padded.reshape(chunks, ref.REDUCE_CHUNK).sum(axis=1)


def reduce_sum(inputs: list[np.ndarray], errors: list[np.ndarray], params: dict[str, Any],
               outputs: list[OutputRef]) -> list[np.ndarray]:
    """One pass: each element reaches its chunk's sum through at most REDUCE_DEPTH additions, each rounding
    once."""
    (x,), (ex,), out = inputs, errors, outputs[0]
    u = roundoff(out.dtype)
    bound = REDUCE_DEPTH * (u * _chunk_sums(np.abs(x)) + _floor(out.dtype)) + _chunk_sums(ex)
    return [bound.reshape(out.shape)]


def softmax(inputs: list[np.ndarray], errors: list[np.ndarray], params: dict[str, Any],
            outputs: list[OutputRef]) -> list[np.ndarray]:
    """Vulkan allows exp (3 + 2|d|) ulp of error at d = x - rowmax; the row sum adds ``cols`` rounded
    terms; the shader scales by the sum's reciprocal, which Vulkan allows 2.5 ulp (5u), and the multiply
    rounds once more (u); an input error e moves each p by at most p * 2e (the row's largest e)."""
    (x,), (ex,), dtype = inputs, errors, outputs[0].dtype
    if x.size == 0:
        return [np.zeros(x.shape)]
    u = roundoff(dtype)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    d = np.abs(x - x.max(axis=1, keepdims=True))
    rel_exp = (3 + 2 * d) * 2 * u + d * u
    rel_sum = rel_exp.max(axis=1, keepdims=True) + x.shape[1] * u
    rel_in = 2 * np.max(ex, axis=1, keepdims=True)
    return [p * (rel_exp + rel_sum + rel_in + 6 * u) + 2 * _floor(dtype)]


def gemm(inputs: list[np.ndarray], errors: list[np.ndarray], params: dict[str, Any],
         outputs: list[OutputRef]) -> list[np.ndarray]:
    """|fl(a @ b) - a @ b| <= (K + 2) u (|a| @ |b|), whatever the summation order or fma use."""
    (a, b), (ea, eb), dtype = inputs, errors, outputs[0].dtype
    k = a.shape[1]
    moved = np.abs(a) @ eb + ea @ np.abs(b) + ea @ eb if _any(ea, eb) else 0.0
    return [(k + 2) * roundoff(dtype) * (np.abs(a) @ np.abs(b)) + moved + _floor(dtype)]


def gemm_half(inputs: list[np.ndarray], errors: list[np.ndarray], params: dict[str, Any],
              outputs: list[OutputRef]) -> list[np.ndarray]:
    """float16/bfloat16 inputs, float32 accumulation and output: each product of two 16-bit floats is exact
    in float32, so only the K - 1 additions and the final rounding err, but tensor cores add with
    truncation rather than rounding to nearest (one ulp per addition, not half), so the bound is twice
    gemm's: |C - A @ B| <= 2 (K + 2) 2**-24 (|A| @ |B|) + tiny, against the float64 product of the 16-bit
    inputs themselves."""
    (bound,) = gemm(inputs, errors, params, outputs)
    return [2 * bound]


def conv2d(inputs: list[np.ndarray], errors: list[np.ndarray], params: dict[str, Any],
           outputs: list[OutputRef]) -> list[np.ndarray]:
    """A GEMM over each output's R*S*C taps: (taps + 2) u times the convolution of |x| with |w|."""
    (x, w), (ex, ew), dtype = inputs, errors, outputs[0].dtype
    stride, padding = int(params["stride"]), int(params["padding"])
    taps = w.shape[1] * w.shape[2] * w.shape[3]

    def conv(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return ref.conv2d_f64(a, b, stride, padding)

    moved = conv(np.abs(x), ew) + conv(ex, np.abs(w)) + conv(ex, ew) if _any(ex, ew) else 0.0
    return [(taps + 2) * roundoff(dtype) * conv(np.abs(x), np.abs(w)) + moved + _floor(dtype)]
