"""stream: memory-bound library kernels against torch's same operation (and NumPy), in GB/s of the bytes
each must read plus write, and conv2d against cuDNN in TFLOP/s.

HLX: each contract run warm in the session with its inputs resident, timed by GPU timestamps (a
multi-pass reduce_sum counts all its passes). torch: back-to-back calls between CUDA events, TF32 off.
NumPy: wall time on the host. Sizes are element counts (default 64M, quick 1M); softmax runs over rows of
1024, transpose over the squarest matrix of that many elements. Results are checked against float64 first.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from hlx_core.bench.harness import Bench, Case, check_close
from hlx_core.bench.peers import Peer, events
from hlx_core.bench.report import Row
from hlx_core.bench.timing import wall
from hlx_core.kernels import helpers as k
from hlx_core.kernels.references import conv2d_f64

SUITE = "stream"
ALPHA = 2.5


@dataclass(frozen=True)
class Op:
    """One streaming operation: how to shape ``n`` elements, its inputs' count, the bytes it must move
    per element, the HLX contract's helper, torch's and NumPy's versions, the float64 answer and its tolerance."""

    inputs: int
    bytes_per_element: int
    hlx: Callable[..., Any]
    torch: Callable[..., Any]
    numpy: Callable[..., Any]
    f64: Callable[..., np.ndarray]
    rtol: float = 1e-6
    shape: Callable[[int], tuple[int, ...]] = lambda n: (n,)
    signed: bool = True  # inputs in [-1, 1); else [0, 1), where a float32 sum stays close to float64's


def _softmax_shape(n: int) -> tuple[int, ...]:
    cols = min(n, 1024)
    return (max(n // cols, 1), cols)


def _square(n: int) -> tuple[int, ...]:
    rows = max(int(math.isqrt(n)), 1)
    return (rows, max(n // rows, 1))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


OPS: dict[str, Op] = {
    "add": Op(2, 12, k.add, lambda t, a, b: a + b, np.add, np.add),
    "mul": Op(2, 12, k.mul, lambda t, a, b: a * b, np.multiply, np.multiply),
    "saxpy": Op(2, 12, lambda x, y, store: k.saxpy(ALPHA, x, y, store=store),
                lambda t, x, y: t.add(y, x, alpha=ALPHA), lambda x, y: ALPHA * x + y, lambda x, y: ALPHA * x + y),
    "relu": Op(1, 8, k.relu, lambda t, x: t.relu(x), lambda x: np.maximum(x, 0), lambda x: np.maximum(x, 0)),
    "softmax": Op(1, 8, k.softmax, lambda t, x: t.softmax(x, dim=-1), _softmax, _softmax, 1e-5,
                  _softmax_shape),
    "transpose": Op(1, 8, k.transpose, lambda t, x: x.t().contiguous(), lambda x: np.ascontiguousarray(x.T),
                    lambda x: x.T, 0.0, _square),
    "reduce_sum": Op(1, 4, k.reduce_sum, lambda t, x: x.sum(), np.sum, lambda x: np.asarray(x.sum()), 1e-5,
                     signed=False),
}
# conv2d: (x shape, w shape, padding), full and quick
CONV = {False: ((32, 64, 56, 56), (64, 64, 3, 3), 1), True: ((2, 8, 16, 16), (8, 8, 3, 3), 1)}


def cases(bench: Bench) -> list[Case]:
    sizes = bench.sizes((64 << 20,), (1 << 20,))
    out = [Case(SUITE, f"{name} {_count(op, n)}", lambda name=name, n=n: streaming(bench, name, n))
           for n in sizes for name, op in OPS.items()]
    xs, ws, pad = CONV[bench.options.quick]
    out.append(Case(SUITE, f"conv2d x{list(xs)} w{list(ws)}", lambda: conv(bench, xs, ws, pad)))
    return out


def _count(op: Op, n: int) -> int:
    return math.prod(op.shape(n))


def _cuda_inputs(peer: Peer, arrays: list[np.ndarray]) -> list[Any]:
    return [peer.module.from_numpy(a).cuda() for a in arrays]


def streaming(bench: Bench, name: str, n: int) -> list[Row]:
    op = OPS[name]
    count = _count(op, n)
    case = f"{name} {count}"
    moved = float(op.bytes_per_element * count)
    repeat = bench.repeat(10, 3)

    def gbps(seconds: float) -> float:
        return moved / seconds / 1e9

    rng = np.random.default_rng(count)
    arrays = [rng.random(op.shape(n), dtype=np.float32) * np.float32(2 if op.signed else 1) - np.float32(op.signed)
              for _ in range(op.inputs)]
    p = bench.plan(op.hlx(*arrays, store=bench.store))
    got = bench.first_output(p)
    check_close(f"{case}", got, np.asarray(op.f64(*(a.astype(np.float64) for a in arrays))), op.rtol)
    take, clock = bench.kernel_seconds(p)
    rows = [bench.hlx_row(SUITE, case, bench.timed(take, repeat, gbps), "GB/s", clock)]
    torch = bench.peer("torch")
    if torch is not None:
        dev = _cuda_inputs(torch, arrays)
        stats = bench.timed(events(torch.module, lambda: op.torch(torch.module, *dev)), repeat, gbps)
        rows.append(bench.peer_row(SUITE, case, torch, stats, "GB/s"))
    numpy = bench.peer("numpy")
    if numpy is not None:
        rows.append(bench.peer_row(SUITE, case, numpy, bench.timed(wall(lambda: op.numpy(*arrays)), min(repeat, 3),
                                                                   gbps), "GB/s"))
    return rows


def conv(bench: Bench, xs: tuple[int, ...], ws: tuple[int, ...], pad: int) -> list[Row]:
    case = f"conv2d x{list(xs)} w{list(ws)}"
    n, c, h, w = xs
    kk, _, r, s = ws
    oh, ow = h + 2 * pad - r + 1, w + 2 * pad - s + 1
    flop = 2.0 * n * kk * oh * ow * c * r * s
    repeat = bench.repeat(10, 3)

    def tflops(seconds: float) -> float:
        return flop / seconds / 1e12

    rng = np.random.default_rng(7)
    x = rng.standard_normal(xs, dtype=np.float32)
    wt = rng.standard_normal(ws, dtype=np.float32)
    p = bench.plan(k.conv2d(x, wt, 1, pad, store=bench.store))
    got = bench.first_output(p)
    check_close(case, got[:1], conv2d_f64(x[:1], wt, 1, pad), 1e-4)
    take, clock = bench.kernel_seconds(p)
    rows = [bench.hlx_row(SUITE, case, bench.timed(take, repeat, tflops), "TFLOP/s", clock)]
    torch = bench.peer("torch")
    if torch is not None:
        tx, tw = _cuda_inputs(torch, [x, wt])
        conv2d = torch.module.nn.functional.conv2d
        stats = bench.timed(events(torch.module, lambda: conv2d(tx, tw, padding=pad)), repeat, tflops)
        rows.append(bench.peer_row(SUITE, case, torch, stats, "TFLOP/s", impl=f"{torch.impl} (cuDNN)"))
    else:
        bench.note("conv2d: no peer without torch on CUDA (NumPy has no convolution)")
    return rows
