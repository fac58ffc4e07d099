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

REDUCE_THREADS = 256  # invocations of a reduce_sum workgroup
REDUCE_GROUPS = 8  # uvec4 groups each invocation loads and adds in order before the workgroup's tree
REDUCE_CHUNK = 4 * REDUCE_GROUPS * REDUCE_THREADS  # 8192 elements one reduce_sum workgroup folds


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
    """One reduce_sum pass: the partial sum of each 8192-element chunk (zero-padded), in the shader's order.
    Thread t of a chunk's workgroup loads the uvec4 groups v[j] = chunk[4(256j + t) .. 4(256j + t) + 3]
    for j < 8 and adds them in order per component (s = v[0] + v[1] + ... + v[7]), folds its four lanes as
    (s.x + s.y) + (s.z + s.w), and then the 256 threads' values are added as a halving tree:
    r[t] = r[t] + r[t + h] for h = 128, 64, ..., 1."""
    flat = np.ascontiguousarray(x).reshape(-1)
    chunks = max(1, -(-flat.size // REDUCE_CHUNK))
    v = np.zeros(chunks * REDUCE_CHUNK, dtype=flat.dtype)
    v[:flat.size] = flat
    v = v.reshape(chunks, REDUCE_GROUPS, REDUCE_THREADS, 4)
    s = v[:, 0]
    for j in range(1, REDUCE_GROUPS):
        s = np.add(s, v[:, j], dtype=v.dtype)
    r = np.add(np.add(s[..., 0], s[..., 1], dtype=v.dtype), np.add(s[..., 2], s[..., 3], dtype=v.dtype),
               dtype=v.dtype)
    while r.shape[1] > 1:
        half = r.shape[1] // 2
        r = np.add(r[:, :half], r[:, half:], dtype=r.dtype)
    return r[:, 0]


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
