"""Streaming kernels (add, mul, saxpy, relu, reduce_sum, softmax, transpose) and conv2d against torch's same
operation, beside the candidates for each kept in benchmarks/variants/.

Each library kernel runs on the Vulkan backend as its helper builds it, with resident inputs and device
hashing at its default (outputs of 1 MiB or more hashed on the device after the kernel, inside the run),
beside its candidates: stream_<op>_v4x1 (one uvec4 group per thread per step where the library moves 4);
the library's previous softmax and transpose (stream_<op>_prev: softmax a 256-thread workgroup per row);
softmax_fit512x4 and fit256x16 (the library's team fitted to the row, every load of a row in
flight at once, at 512 lanes x 4 vec4 and 256 x 16); and softmax_pipe512x4 and pipe256x8 (fit512x4 and
the library's 256 x 8 with the next block of rows loaded before the current one is reduced, on a quarter of
the workgroups), timed on rows of 1024 and of 8192;
the library's implicit-GEMM conv2d (W[K, C*R*S] @ im2col(x), 64x128 blocks, 8x8 outputs per thread,
taps in (r, s, c) order, 8 channels a step) beside conv2d_rsc4x8_k16 and rsc4x8_k8 (256 threads, 4x8 each,
16 or 8 channels a step), rsc8x8_k16 (16 channels a step) and rsc8x8_k8_256px (64x256 blocks, 256 threads),
on the conv2d of `hlx bench stream` (x [32, 64, 56, 56],
w [64, 64, 3, 3], padding 1). Per kernel it prints the GPU time of its stages (timestamps, first dispatch
to last, every reduce_sum pass included; the hash passes come after the last timestamp), the throughput
that gives, and the wall time of a whole run (the session's execute: submit, wait, outputs hashed and
registered), medians of --repeat runs. torch's same operation runs on CUDA in the same process (conv2d:
torch.nn.functional.conv2d on cuDNN, TF32 off), timed with CUDA events over back-to-back calls.
Throughput is bytes read plus written per second (the minimum traffic: 12n for add/mul/saxpy, 8n for
relu, softmax and transpose, 4n for reduce_sum), TFLOP/s (2 N K OH OW C R S) for conv2d. On a GPU,
3 s of GEMMs run first (as in `hlx bench`), so the first case is not timed on a cold device.

First every kernel and candidate of the chosen ops is checked on awkward sizes, with outputs poisoned:
bit for bit where the kernel is exact (reduce_sum against the CPU reference's tree), within the declared
bound for saxpy, softmax and conv2d (odd sizes, stride 2, padding 0/1/2, channels and taps off the
tiles, N = 1, a grid smaller than the work), and the softmax and conv2d candidates the same bytes on a
second run.

    python3 bench_stream.py [--n 67108864] [--repeat 10] [--ops add reduce_sum ...] [--statistics]
    python3 bench_stream.py --ops conv2d softmax   # the conv2d and softmax candidates
    python3 bench_stream.py --quick        # n = 2**20 + 3, small conv2d: correctness and a smoke run
"""
from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from _common import cuda_event_ms, cuda_torch, verdict
from _variants import VARIANTS, contract, output, print_statistics, sessions, stage, warm, words

import hlx
from hlx_core.bench.harness import GPU_WARM_S, warm_up
from hlx_core.bench.suites.stream import CONV
from hlx_core.kernels import references as ref
from hlx_core.kernels import tolerances as tol
from hlx_core.kernels.build import MAX_GROUPS, groups
from hlx_core.plan import OutputRef

CHECK_SIZES = [1, 3, 5, 1021, 8193, 70001, 300007]
MATRIX_CHECKS = [(1, 1), (3, 5), (33, 65), (7, 300), (2, 8192), (2, 8193)]  # softmax and transpose
SOFTMAX_CHECKS = [(9, 1024), (5, 1023), (3, 8192), (17, 4097), (3, 20000),  # softmax too: rows in and out of
                  (300, 1), (100, 3), (257, 5), (300, 31), (33, 32), (65, 33), (7, 1000),  # registers, teams
                  (2, 1025), (3, 4096), (1, 8193)]  # of every size, blocks of rows cut by the last row
# conv2d: x shape, w shape, stride, padding; odd sizes, stride 2, padding 0/1/2, C*R*S off every tap step,
# K off every channel block (70, 130), N = 1
CONV_CHECKS = [((1, 3, 7, 5), (5, 3, 3, 3), 1, 1), ((2, 5, 9, 11), (7, 5, 3, 3), 2, 0),
               ((1, 4, 6, 6), (3, 4, 2, 2), 1, 2), ((3, 17, 13, 9), (70, 17, 3, 3), 1, 1),
               ((2, 9, 15, 17), (130, 9, 5, 3), 2, 2), ((1, 1, 1, 1), (1, 1, 1, 1), 1, 0),
               ((2, 12, 10, 7), (9, 12, 3, 3), 1, 1)]  # C*R*S = 108: whole vec4 of w, the last step partial
OPS = ("add", "mul", "saxpy", "relu")
ALL_OPS = (*OPS, "reduce_sum", "softmax", "transpose", "conv2d")
ALPHA = 1.5
BYTES = {"copy": 8, "add": 12, "mul": 12, "saxpy": 12, "relu": 8, "reduce_sum": 4, "softmax": 8, "transpose": 8}
SOFTMAX_COLS = (1024, 8192)  # the row lengths softmax is timed on
# candidate: invocations, vec4 per lane (the library: 256, 8)
SOFTMAX_FITS = {"fit512x4": (512, 4), "fit256x16": (256, 16), "pipe512x4": (512, 4), "pipe256x8": (256, 8)}
PIPE_BLOCKS = 4  # blocks of rows per workgroup of a softmax_pipe* candidate: each has a next block to load
CONV_TILES = {"rsc4x8_k16": (64, 128), "rsc4x8_k8": (64, 128), "rsc8x8_k16": (64, 128),  # channels, pixels
              "rsc8x8_k8_256px": (64, 256)}


class Case(NamedTuple):
    """One timed kernel: the op's label (the torch peer's key), the kernel's name, its contract, and the
    work it does (bytes moved, or floating-point operations for conv2d)."""

    label: str
    name: str
    contract: dict
    work: float


def library_contract(op: str, handles: list) -> dict:
    fn = getattr(hlx.kernels, op)
    return fn(ALPHA, *handles) if op == "saxpy" else fn(*handles)


def v4x1_contract(op: str, handles: list, n: int, dtype: str) -> dict:
    """The v4x1 candidate of an element-wise op: the library's bindings and push constants, a workgroup
    per 256 whole uvec4 groups."""
    push = words(n, ALPHA) if op == "saxpy" else words(n) if op == "relu" else words(n, int(dtype != "float32"))
    grid = [min(groups(n // 4, 256), MAX_GROUPS), 1, 1]
    return contract([stage(VARIANTS / f"stream_{op}_v4x1.spv", grid, handles, [(dtype, (n,))], push)], op)


def prev_contract(op: str, handle: Any, rows: int, cols: int, dtype: str) -> dict:
    """The library's previous softmax or transpose, at its old builder's dispatch."""
    if op == "softmax":
        grid, shape = [min(max(rows, 1), MAX_GROUPS), 1, 1], (rows, cols)
    else:
        grid, shape = [min(groups(cols, 16), MAX_GROUPS), min(groups(rows, 16), MAX_GROUPS), 1], (cols, rows)
    return contract([stage(VARIANTS / f"stream_{op}_prev.spv", grid, [handle], [(dtype, shape)], words(rows, cols))],
                    op)


def fit_rows(cols: int, invocations: int, registers: int) -> int:
    """Rows per workgroup of a softmax_fit* candidate: its invocations over the team of a row, the smallest
    power of two up to them whose lanes hold the row's vec4 in ``registers`` each (the shader's fit_team)."""
    team = 1
    while team < invocations and team * registers < groups(cols, 4):
        team *= 2
    return invocations // team


def team_contract(name: str, handle: Any, rows: int, cols: int, grid_x: int | None = None) -> dict:
    """A softmax_fit* or softmax_pipe* candidate: a workgroup per block of rows, per
    PIPE_BLOCKS blocks for pipe* (``grid_x`` workgroups, which then loop, where given)."""
    per_group = fit_rows(cols, *SOFTMAX_FITS[name])
    blocks = groups(rows, per_group)
    grid = [grid_x or min(groups(blocks, PIPE_BLOCKS) if name.startswith("pipe") else blocks, MAX_GROUPS), 1, 1]
    return contract([stage(VARIANTS / f"softmax_{name}.spv", grid, [handle], [("float32", (rows, cols))],
                           words(rows, cols))], "softmax")


def softmax_contracts(handle: Any, rows: int, cols: int, grid_x: int | None = None) -> list[tuple[str, dict]]:
    """(name, contract) of the library softmax, its previous shader and the fit and pipe candidates."""
    return [("library", hlx.kernels.softmax(handle)), ("prev", prev_contract("softmax", handle, rows, cols, "float32")),
            *((name, team_contract(name, handle, rows, cols, grid_x)) for name in SOFTMAX_FITS)]


def conv_out(xs: Sequence[int], ws: Sequence[int], stride: int, padding: int) -> tuple[int, int, int, int]:
    """conv2d's output shape [N, K, OH, OW]."""
    (n, _, h, w), (k, _, r, s) = xs, ws
    return n, k, (h + 2 * padding - r) // stride + 1, (w + 2 * padding - s) // stride + 1


def conv_contracts(hx: Any, hw: Any, xs: Sequence[int], ws: Sequence[int], stride: int, padding: int,
                   grid_x: int | None = None) -> list[tuple[str, dict]]:
    """(name, contract) of the library conv2d and the implicit-GEMM candidates: the library's bindings and
    push constants, a workgroup per block of channels and pixels (``grid_x`` fewer pixel blocks, which
    then loop)."""
    out = conv_out(xs, ws, stride, padding)
    n, k, oh, ow = out
    push = words(*xs, k, *ws[2:], oh, ow, stride, padding)
    found = [("library", hlx.kernels.conv2d(hx, hw, stride, padding))]
    for name, (bm, bn) in CONV_TILES.items():
        grid = [grid_x or min(groups(n * oh * ow, bn), MAX_GROUPS), groups(k, bm), 1]
        found.append((name, contract([stage(VARIANTS / f"conv2d_{name}.spv", grid, [hx, hw], [("float32", out)],
                                            push)], "conv2d")))
    return found


def want_of(op: str, arrays: list[np.ndarray]) -> np.ndarray:
    """NumPy's result: exact in the dtype for add, mul, relu; float64 for saxpy."""
    if op == "add":
        return np.add(*arrays)
    if op == "mul":
        return np.multiply(*arrays)
    if op == "relu":
        return np.where(arrays[0] > 0, arrays[0], np.float32(0))
    x, y = (a.astype(np.float64) for a in arrays)
    return np.float32(ALPHA) * x + y


def inputs(op: str, n: int, dtype: str, rng: np.random.Generator) -> list[np.ndarray]:
    count = 1 if op in ("relu", "reduce_sum") else 2
    if dtype == "int32":
        return [rng.integers(-2**31, 2**31, n, dtype=np.int32) for _ in range(count)]
    return [rng.standard_normal(n, dtype=np.float32) for _ in range(count)]


def softmax_ok(x: np.ndarray, got: np.ndarray) -> bool:
    x64 = x.astype(np.float64)
    e = np.exp(x64 - x64.max(axis=1, keepdims=True))
    (bound,) = tol.softmax([x64], [np.zeros_like(x64)], {}, [OutputRef(np.dtype("float32"), x.shape)])
    return bool(np.all(np.abs(got - e / e.sum(axis=1, keepdims=True)) <= bound))


def conv_ok(x: np.ndarray, w: np.ndarray, stride: int, padding: int, got: np.ndarray) -> bool:
    """Within conv2d's declared bound of the float64 convolution."""
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    params = {"stride": stride, "padding": padding}
    (bound,) = tol.conv2d([x64, w64], [np.zeros_like(x64), np.zeros_like(w64)], params,
                          [OutputRef(np.dtype("float32"), got.shape)])
    return bool(np.all(np.abs(got - ref.conv2d_f64(x, w, stride, padding)) <= bound))


def check_stream(poisoned: Any, rng: np.random.Generator, ops: Sequence[str]) -> list[str]:
    """The element-wise kernels and reduce_sum on CHECK_SIZES: exact ops bit for bit, saxpy within
    3u(|αx| + |y|), reduce_sum equal to the reference's tree (float32 and int32)."""
    failed = []
    for n in CHECK_SIZES:
        for op in (op for op in OPS if op in ops):
            for dtype in ("float32", "int32") if op in ("add", "mul") else ("float32",):
                arrays = inputs(op, n, dtype, rng)
                handles = [hlx.collapse(a) for a in arrays]
                want = want_of(op, arrays)
                for name, c in (("library", library_contract(op, handles)),
                                ("v4x1", v4x1_contract(op, handles, n, dtype))):
                    got = output(poisoned, c)
                    if op == "saxpy":
                        x, y = (np.abs(a.astype(np.float64)) for a in arrays)
                        ok = np.all(np.abs(got - want) <= 3 * 2.0**-24 * (ALPHA * x + y) + 2.0**-126)
                    else:
                        ok = got.tobytes() == want.astype(dtype).tobytes()
                    if not ok:
                        failed.append(f"{op} {name} {dtype} n={n}")
        for dtype in ("float32", "int32") if "reduce_sum" in ops else ():
            (x,) = inputs("reduce_sum", n, dtype, rng)
            if output(poisoned, hlx.kernels.reduce_sum(hlx.collapse(x))).tobytes() != ref.tree_sum(x).tobytes():
                failed.append(f"reduce_sum {dtype} n={n}")
    return failed


def check_softmax(poisoned: Any, rng: np.random.Generator) -> list[str]:
    """The library softmax and its candidates within the declared bound; the candidates the same bytes on a
    second run, and with a grid of 2 workgroups looping over the row blocks."""
    failed = []
    for rows, cols in MATRIX_CHECKS + SOFTMAX_CHECKS:
        x = (rng.standard_normal((rows, cols)) * 4).astype(np.float32)
        h = hlx.collapse(x)
        looped = [(f"{name} on 2 workgroups", team_contract(name, h, rows, cols, 2))
                  for name in SOFTMAX_FITS]
        for name, c in softmax_contracts(h, rows, cols) + looped:
            got = output(poisoned, c)
            if not softmax_ok(x, got):
                failed.append(f"softmax {name} {rows}x{cols}")
            elif name not in ("library", "prev") and output(poisoned, c).tobytes() != got.tobytes():
                failed.append(f"softmax {name} {rows}x{cols}: not the same bytes twice")
    return failed


def check_transpose(poisoned: Any, rng: np.random.Generator) -> list[str]:
    """The library transpose and its previous shader, bit for bit."""
    failed = []
    for rows, cols in MATRIX_CHECKS:
        t = rng.integers(-2**31, 2**31, (rows, cols), dtype=np.int32)
        h = hlx.collapse(t)
        for name, c in (("library", hlx.kernels.transpose(h)),
                        ("prev", prev_contract("transpose", h, rows, cols, "int32"))):
            if output(poisoned, c).tobytes() != np.ascontiguousarray(t.T).tobytes():
                failed.append(f"transpose {name} {rows}x{cols}")
    return failed


def check_conv(poisoned: Any, rng: np.random.Generator) -> list[str]:
    """The library conv2d and its candidates on CONV_CHECKS within the declared bound of float64; the
    candidates the same bytes on a second run, and with a grid of 2 pixel blocks looping over the rest."""
    failed = []
    for xs, ws, stride, padding in CONV_CHECKS:
        x, w = rng.standard_normal(xs, dtype=np.float32), rng.standard_normal(ws, dtype=np.float32)
        hx, hw = hlx.collapse(x), hlx.collapse(w)
        looped = [(f"{name} on 2 pixel blocks", c)
                  for name, c in conv_contracts(hx, hw, xs, ws, stride, padding, 2)[1:]]
        for name, c in conv_contracts(hx, hw, xs, ws, stride, padding) + looped:
            got = output(poisoned, c)
            where = f"conv2d {name} x{list(xs)} w{list(ws)} stride {stride} padding {padding}"
            if not conv_ok(x, w, stride, padding, got):
                failed.append(where)
            elif name != "library" and output(poisoned, c).tobytes() != got.tobytes():
                failed.append(f"{where}: not the same bytes twice")
    return failed


def check(poisoned: Any, rng: np.random.Generator, ops: Sequence[str]) -> list[str]:
    """Every library kernel and candidate of ``ops`` on awkward sizes (see each check)."""
    failed = check_stream(poisoned, rng, ops)
    if "softmax" in ops:
        failed += check_softmax(poisoned, rng)
    if "transpose" in ops:
        failed += check_transpose(poisoned, rng)
    if "conv2d" in ops:
        failed += check_conv(poisoned, rng)
    return failed


def measure(session: Any, c: dict, repeat: int) -> tuple[float, float]:
    """Medians over ``repeat`` warm runs, in ms: the kernel's stages on the GPU, the run's wall time."""
    p, _ = warm(session, c)
    kernel, wall = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        timings = session.execute(p).timings
        wall.append((time.perf_counter() - t0) * 1e3)
        kernel.append(timings["gpu_ms"])
    return statistics.median(kernel), statistics.median(wall)


def softmax_shape(n: int, cols: int) -> tuple[int, int]:
    """The rows x cols matrix of about n elements that softmax is timed on."""
    return max(n // cols, 1), cols


def conv_flop(xs: Sequence[int], ws: Sequence[int], stride: int, padding: int) -> float:
    n, k, oh, ow = conv_out(xs, ws, stride, padding)
    return 2.0 * n * k * oh * ow * math.prod(ws[1:])


def torch_peers(n: int, side: int, conv: tuple, repeat: int) -> dict[str, float]:
    """ms per call of torch's same operations on CUDA (CUDA events), and a plain copy, keyed by the cases'
    labels; {} without CUDA."""
    torch = cuda_torch()
    if torch is None:
        return {}
    a, b = (torch.randn(n, device="cuda") for _ in range(2))
    c = torch.empty(n, device="cuda")
    m = torch.randn(side, side, device="cuda")
    mt = torch.empty(side, side, device="cuda")
    rows = {cols: torch.randn(*softmax_shape(n, cols), device="cuda") for cols in SOFTMAX_COLS}
    xs, ws, stride, padding = conv
    tx, tw = torch.randn(*xs, device="cuda"), torch.randn(*ws, device="cuda")
    conv2d = torch.nn.functional.conv2d
    calls = {
        "copy": lambda: c.copy_(a),
        "add": lambda: torch.add(a, b, out=c),
        "mul": lambda: torch.mul(a, b, out=c),
        "saxpy": lambda: torch.add(b, a, alpha=ALPHA, out=c),
        "relu": lambda: torch.clamp_min(a, 0.0, out=c),
        "reduce_sum": lambda: torch.sum(a),
        **{f"softmax {cols}": (lambda x=x: torch.softmax(x, dim=-1)) for cols, x in rows.items()},
        "transpose": lambda: mt.copy_(m.t()),
        "conv2d": lambda: conv2d(tx, tw, stride=stride, padding=padding),
    }
    return {name: cuda_event_ms(torch, fn, repeat) for name, fn in calls.items()}


def cases(op: str, n: int, side: int, conv: tuple, rng: np.random.Generator) -> list[Case]:
    """The library kernel and its candidates for one op at the benchmark's size."""
    if op == "softmax":
        found = []
        for cols in SOFTMAX_COLS:
            rows, cols = softmax_shape(n, cols)
            h = hlx.collapse(rng.standard_normal((rows, cols), dtype=np.float32))
            found += [Case(f"softmax {cols}", name, c, 8.0 * rows * cols)
                      for name, c in softmax_contracts(h, rows, cols)]
        return found
    if op == "transpose":
        h = hlx.collapse(rng.standard_normal((side, side), dtype=np.float32))
        return [Case(op, name, c, 8.0 * side * side)
                for name, c in (("library", hlx.kernels.transpose(h)),
                                ("prev", prev_contract(op, h, side, side, "float32")))]
    if op == "conv2d":
        xs, ws, stride, padding = conv
        hx, hw = (hlx.collapse(rng.standard_normal(s, dtype=np.float32)) for s in (xs, ws))
        flop = conv_flop(xs, ws, stride, padding)
        return [Case(op, name, c, flop) for name, c in conv_contracts(hx, hw, xs, ws, stride, padding)]
    handles = [hlx.collapse(a) for a in inputs(op, n, "float32", rng)]
    found = [Case(op, "library", library_contract(op, handles), float(BYTES[op] * n))]
    if op != "reduce_sum":
        found.append(Case(op, "v4x1", v4x1_contract(op, handles, n, "float32"), float(BYTES[op] * n)))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64 * 2**20,
                        help="elements (softmax: n / cols rows; transpose: sqrt(n) squared)")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--ops", nargs="+", default=list(ALL_OPS), choices=ALL_OPS, help="operations to time")
    parser.add_argument("--quick", action="store_true", help="n = 2**20 + 3, the small conv2d, 3 repeats")
    parser.add_argument("--no-check", action="store_true", help="skip the correctness pass")
    parser.add_argument("--statistics", action="store_true",
                        help="print the driver's register and memory statistics of each timed kernel")
    args = parser.parse_args()
    if args.quick:
        args.n, args.repeat = 2**20 + 3, 3
    n, side = args.n, int(np.sqrt(args.n))
    xs, ws, padding = CONV[args.quick]
    conv = (xs, ws, 1, padding)

    rng = np.random.default_rng()
    rows: list[tuple[Case, float, float]] = []
    with sessions() as (session, poisoned):
        print(f"device: {session.device.name}; n = {n}; softmax rows of {SOFTMAX_COLS}; transpose {side}x{side}; "
              f"conv2d x{list(xs)} w{list(ws)} padding {padding}")
        failed = [] if args.no_check else check(poisoned, rng, args.ops)
        print(f"correctness of {' '.join(args.ops)}:", "skipped" if args.no_check else
              "; ".join(failed) or "all kernels and candidates OK")
        timed = [case for op in ALL_OPS if op in args.ops for case in cases(op, n, side, conv, rng)]
        if args.statistics:
            print_statistics(session, [(f"{case.label} {case.name}", case.contract) for case in timed])
        if session.device.is_gpu and not args.quick:
            warm_up(session)
            print(f"warm-up: {GPU_WARM_S} s of 2048^3 GEMMs")
        for case in timed:
            rows.append((case, *measure(session, case.contract, args.repeat)))
    peers = torch_peers(n, side, conv, args.repeat) if rows else {}
    print(f"\n{'op':>12} {'HLX kernel':>18} {'kernel GPU ms':>13} {'rate':>7} {'unit':>7} {'torch':>7} {'ratio':>6}"
          f" {'run wall ms':>11}")
    if "copy" in peers:
        print(f"{'copy':>12} {'(torch)':>18} {'':>13} {'':>7} {'TB/s':>7} {8 * n / peers['copy'] / 1e9:7.3f}")
    for case, kernel_ms, wall_ms in rows:
        unit = "TFLOP/s" if case.label == "conv2d" else "TB/s"
        rate = case.work / kernel_ms / 1e9
        peer = case.work / peers[case.label] / 1e9 if case.label in peers else None
        ratio = f"{rate / peer:6.3f}" if peer else f"{'n/a':>6}"
        print(f"{case.label:>12} {case.name:>18} {kernel_ms:13.4f} {rate:7.3f} {unit:>7} "
              f"{peer or float('nan'):7.3f} {ratio} {wall_ms:11.3f}")
    return verdict(failed)


if __name__ == "__main__":
    raise SystemExit(main())
