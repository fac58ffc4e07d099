"""Streaming kernels (add, mul, saxpy, relu, reduce_sum, softmax, transpose) against torch's same operation.

Each library kernel runs on the Vulkan backend as its helper builds it, with resident inputs and device
hashing at its default (outputs of 1 MiB or more hashed on the device after the kernel, inside the run),
beside the candidates still kept in benchmarks/variants/: stream_<op>_v4x1 (one uvec4 group per thread per
step where the library moves 4) and the library's previous softmax and transpose (stream_<op>_prev). Per
kernel it prints the GPU time of its stages (timestamps, first dispatch to last, every reduce_sum pass
included; the hash passes come after the last timestamp), the throughput that gives, and the wall time of a
whole run (the session's execute: submit, wait, outputs hashed and registered), medians of --repeat runs.
torch's same operation runs on CUDA in the same process, timed with CUDA events over
back-to-back calls. Throughput is bytes read plus written per second (the minimum traffic: 12n for
add/mul/saxpy, 8n for relu, softmax and transpose, 4n for reduce_sum). First every kernel and candidate is
checked on awkward sizes, with outputs poisoned: bit for bit where the kernel is exact (reduce_sum against
the CPU reference's tree), within the declared bound for saxpy and softmax.

    python3 bench_stream.py [--n 67108864] [--repeat 10] [--ops add reduce_sum ...]
    python3 bench_stream.py --quick        # n = 2**20 + 3: correctness and a smoke run (any Vulkan device)
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
from _common import cuda_event_ms, cuda_torch
from _variants import VARIANTS, contract, open_session, output, stage, warm, words

import hlx
from hlx_core.kernels import references as ref
from hlx_core.kernels import tolerances as tol
from hlx_core.kernels.build import MAX_GROUPS, groups
from hlx_core.plan import OutputRef

CHECK_SIZES = [1, 3, 5, 1021, 8193, 70001, 300007]
MATRIX_CHECKS = [(1, 1), (3, 5), (33, 65), (7, 300), (2, 8192), (2, 8193)]  # softmax and transpose
OPS = ("add", "mul", "saxpy", "relu")
ALPHA = 1.5
BYTES = {"copy": 8, "add": 12, "mul": 12, "saxpy": 12, "relu": 8, "reduce_sum": 4, "softmax": 8, "transpose": 8}


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


def check(poisoned: Any, rng: np.random.Generator) -> list[str]:
    """Every library kernel and candidate on awkward sizes: exact ops bit for bit, saxpy within
    3u(|αx| + |y|), reduce_sum equal to the reference's tree (float32 and int32), softmax within its
    declared bound, transpose bit for bit."""
    failed = []
    for n in CHECK_SIZES:
        for op in OPS:
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
        for dtype in ("float32", "int32"):
            (x,) = inputs("reduce_sum", n, dtype, rng)
            if output(poisoned, hlx.kernels.reduce_sum(hlx.collapse(x))).tobytes() != ref.tree_sum(x).tobytes():
                failed.append(f"reduce_sum {dtype} n={n}")
    for rows, cols in MATRIX_CHECKS:
        x = (rng.standard_normal((rows, cols)) * 4).astype(np.float32)
        h = hlx.collapse(x)
        for name, c in (("library", hlx.kernels.softmax(h)),
                        ("prev", prev_contract("softmax", h, rows, cols, "float32"))):
            if not softmax_ok(x, output(poisoned, c)):
                failed.append(f"softmax {name} {rows}x{cols}")
        t = rng.integers(-2**31, 2**31, (rows, cols), dtype=np.int32)
        h = hlx.collapse(t)
        for name, c in (("library", hlx.kernels.transpose(h)),
                        ("prev", prev_contract("transpose", h, rows, cols, "int32"))):
            if output(poisoned, c).tobytes() != np.ascontiguousarray(t.T).tobytes():
                failed.append(f"transpose {name} {rows}x{cols}")
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


def torch_peers(n: int, side: int, repeat: int) -> dict[str, float]:
    """ms per call of torch's same operations on CUDA (CUDA events), and a plain copy; {} without CUDA."""
    torch = cuda_torch()
    if torch is None:
        return {}
    a, b = (torch.randn(n, device="cuda") for _ in range(2))
    c = torch.empty(n, device="cuda")
    m = torch.randn(side, side, device="cuda")
    mt = torch.empty(side, side, device="cuda")
    calls = {
        "copy": lambda: c.copy_(a),
        "add": lambda: torch.add(a, b, out=c),
        "mul": lambda: torch.mul(a, b, out=c),
        "saxpy": lambda: torch.add(b, a, alpha=ALPHA, out=c),
        "relu": lambda: torch.clamp_min(a, 0.0, out=c),
        "reduce_sum": lambda: torch.sum(a),
        "softmax": lambda: torch.softmax(m, dim=-1),
        "transpose": lambda: mt.copy_(m.t()),
    }
    return {name: cuda_event_ms(torch, fn, repeat) for name, fn in calls.items()}


def cases(op: str, n: int, side: int, rng: np.random.Generator) -> list[tuple[str, dict]]:
    """(name, contract) of the library kernel and its candidates for one op at the benchmark's size."""
    if op in ("softmax", "transpose"):
        h = hlx.collapse(rng.standard_normal((side, side), dtype=np.float32))
        return [("library", getattr(hlx.kernels, op)(h)), ("prev", prev_contract(op, h, side, side, "float32"))]
    handles = [hlx.collapse(a) for a in inputs(op, n, "float32", rng)]
    found = [("library", library_contract(op, handles))]
    if op != "reduce_sum":
        found.append(("v4x1", v4x1_contract(op, handles, n, "float32")))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64 * 2**20, help="elements (softmax, transpose: sqrt(n) squared)")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--ops", nargs="+", default=[*OPS, "reduce_sum", "softmax", "transpose"],
                        help="operations to time")
    parser.add_argument("--quick", action="store_true", help="n = 2**20 + 3, 3 repeats")
    parser.add_argument("--no-check", action="store_true", help="skip the correctness pass")
    args = parser.parse_args()
    if args.quick:
        args.n, args.repeat = 2**20 + 3, 3
    n, side = args.n, int(np.sqrt(args.n))

    session, poisoned = open_session(False, host_hash=False), open_session(True, host_hash=False)
    print(f"device: {session.device.name}; n = {n}; softmax and transpose {side}x{side}")
    rng = np.random.default_rng()
    rows: list[tuple[str, str, float, float]] = []
    try:
        failed = [] if args.no_check else check(poisoned, rng)
        print(f"correctness on n = {CHECK_SIZES} and {MATRIX_CHECKS}:", "skipped" if args.no_check else
              "; ".join(failed) or "all kernels and candidates OK")
        for op in [op for op in (*OPS, "reduce_sum", "softmax", "transpose") if op in args.ops]:
            for name, c in cases(op, n, side, rng):
                rows.append((op, name, *measure(session, c, args.repeat)))
    finally:
        session.close()
        poisoned.close()
    peers = torch_peers(n, side, args.repeat) if rows else {}
    print(f"\n{'op':>10} {'HLX kernel':>10} {'kernel GPU ms':>13} {'TB/s':>6} {'torch TB/s':>10} {'ratio':>6}"
          f" {'run wall ms':>11}")
    if "copy" in peers:
        print(f"{'copy':>10} {'(torch)':>10} {'':>13} {'':>6} {8 * n / peers['copy'] / 1e9:10.3f}")
    for op, name, kernel_ms, wall_ms in rows:
        count = side * side if op in ("softmax", "transpose") else n
        tbs = BYTES[op] * count / kernel_ms / 1e9
        peer = BYTES[op] * count / peers[op] / 1e9 if op in peers else None
        ratio = f"{tbs / peer:6.3f}" if peer else f"{'n/a':>6}"
        print(f"{op:>10} {name:>10} {kernel_ms:13.4f} {tbs:6.3f} {peer or float('nan'):10.3f} {ratio} {wall_ms:11.3f}")
    if failed:
        print("FAIL: " + "; ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
