"""NumPy references of the library kernels: the parity oracle the CPU backend runs.

Each has the ``Reference`` signature ``(inputs, params, outputs) -> list[np.ndarray]``. Exact kernels
compute in their own dtype (IEEE float32 addition and multiplication are correctly rounded, integer
arithmetic wraps like the shaders'); the others compute in float64 and round once to float32.
``reduce_sum`` replays the shader's fixed addition tree in the input dtype, so even its float32 result is
bit-equal to a GPU's.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from hlx_core.plan import OutputRef

REDUCE_CHUNK = 512  # elements one reduce_sum workgroup folds (256 threads, two loads each)


def add(inputs: list[np.ndarray], params: dict[str, Any], outputs: list[OutputRef]) -> list[np.ndarray]:
    a, b = inputs
    return [np.add(a, b, dtype=a.dtype)]


def mul(inputs: list[np.ndarray], params: dict[str, Any], outputs: list[OutputRef]) -> list[np.ndarray]:
    a, b = inputs
    return [np.multiply(a, b, dtype=a.dtype)]


def saxpy(inputs: list[np.ndarray], params: dict[str, Any], outputs: list[OutputRef]) -> list[np.ndarray]:
    x, y = inputs
    alpha = np.float64(np.float32(params["alpha"]))  # the shader sees alpha as float32
    return [(alpha * x.astype(np.float64) + y.astype(np.float64)).astype(np.float32)]


def relu(inputs: list[np.ndarray], params: dict[str, Any], outputs: list[OutputRef]) -> list[np.ndarray]:
    (x,) = inputs
    return [np.where(x > 0, x, np.zeros((), x.dtype))]


def reduce_pass(x: np.ndarray) -> np.ndarray:
    """One reduce_sum pass: the partial sum of each 512-element chunk (zero-padded), in the shader's order:
    first s[t] = x[t] + x[t+256], then s[t] = s[t] + s[t+h] for h = 128, 64, ..., 1."""
    flat = np.ascontiguousarray(x).reshape(-1)
    chunks = max(1, -(-flat.size // REDUCE_CHUNK))
    v = np.zeros(chunks * REDUCE_CHUNK, dtype=flat.dtype)
    v[:flat.size] = flat
    v = v.reshape(chunks, REDUCE_CHUNK)
    while v.shape[1] > 1:
        half = v.shape[1] // 2
        v = np.add(v[:, :half], v[:, half:], dtype=v.dtype)
    return v[:, 0]


def tree_sum(x: np.ndarray) -> np.ndarray:
    """The full reduce_sum: passes until one value remains, as a 0-d array of x's dtype."""
    v = reduce_pass(x)
    while v.size > 1:
        v = reduce_pass(v)
    return v.reshape(())


def reduce_sum(inputs: list[np.ndarray], params: dict[str, Any], outputs: list[OutputRef]) -> list[np.ndarray]:
    """One pass (a reduce_sum stage); its output shape says whether it is the last one."""
    (x,) = inputs
    return [reduce_pass(x).reshape(outputs[0].shape)]


def softmax(inputs: list[np.ndarray], params: dict[str, Any], outputs: list[OutputRef]) -> list[np.ndarray]:
    (x,) = inputs
    x64 = x.astype(np.float64)
    e = np.exp(x64 - x64.max(axis=-1, keepdims=True)) if x64.size else x64
    return [(e / e.sum(axis=-1, keepdims=True)).astype(np.float32)]


def transpose(inputs: list[np.ndarray], params: dict[str, Any], outputs: list[OutputRef]) -> list[np.ndarray]:
    (x,) = inputs
    return [np.ascontiguousarray(x.T)]


def gemm(inputs: list[np.ndarray], params: dict[str, Any], outputs: list[OutputRef]) -> list[np.ndarray]:
    a, b = inputs
    return [(a.astype(np.float64) @ b.astype(np.float64)).astype(np.float32)]


def conv2d_f64(x: np.ndarray, w: np.ndarray, stride: int, pad: int) -> np.ndarray:
    """Direct convolution in float64 over the zero-padded input's sliding windows."""
    r, s = w.shape[2:]
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(xp, (r, s), axis=(2, 3))[:, :, ::stride, ::stride]
    return np.einsum("nchwrs,kcrs->nkhw", windows, w.astype(np.float64))


def conv2d(inputs: list[np.ndarray], params: dict[str, Any], outputs: list[OutputRef]) -> list[np.ndarray]:
    x, w = inputs
    return [conv2d_f64(x, w, int(params["stride"]), int(params["padding"])).astype(np.float32)]
