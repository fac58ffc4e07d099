"""Streaming kernels (add, mul, saxpy, relu, reduce_sum, softmax, transpose) against torch's same operation.

For each operation the library kernel and its candidates in benchmarks/variants/ (stream_<op>_v4x<PER>:
uvec4 accesses, PER groups per thread per grid-stride step, at the full grid or a capped one;
stream_reduce_sum_j<J>: two-level fixed-order passes over chunks of 1024*J elements) run on the Vulkan
backend with resident inputs, timed by GPU timestamps (median of --repeat runs, every pass included), and
torch's same operation on CUDA with CUDA events over back-to-back calls. Throughput is bytes read plus
written per second (the minimum traffic: 12n for add/mul/saxpy, 8n for relu, softmax and transpose, 4n
for reduce_sum). First every candidate is checked on awkward sizes: bit for bit where the kernel is exact
(reduce_sum against its NumPy replica of the candidate's tree), within the declared bound for saxpy.

    python3 bench_stream.py [--n 67108864] [--grids 1056 2112 4224] [--repeat 10]
    python3 bench_stream.py --quick        # small n: correctness and a smoke run (any Vulkan device)
"""
from __future__ import annotations

import argparse

import numpy as np
from _common import cuda_event_ms, cuda_torch
from _variants import VARIANTS, contract, open_session, output, stage, timed, words

import hlx
from hlx_core.kernels.build import MAX_GROUPS

CHECK_SIZES = [1, 3, 5, 1021, 70001, 300007]
OPS = ("add", "mul", "saxpy", "relu")
PERS = (1, 4)
REDUCE_J = (4, 8, 16)
ALPHA = 1.5


def reduce_pass_v4(x: np.ndarray, j: int) -> np.ndarray:
    """The candidate's pass, replayed: per chunk of 1024*j elements (zero-padded), thread t's uvec4
    groups v[0..j-1] summed in order per component, then (s.x + s.y) + (s.z + s.w), then the halving tree
    over the 256 threads."""
    flat = np.ascontiguousarray(x).reshape(-1)
    size = 1024 * j
    chunks = max(1, -(-flat.size // size))
    v = np.zeros(chunks * size, dtype=flat.dtype)
    v[:flat.size] = flat
    v = v.reshape(chunks, j, 256, 4)
    s = v[:, 0]
    for i in range(1, j):
        s = np.add(s, v[:, i], dtype=v.dtype)
    r = np.add(np.add(s[..., 0], s[..., 1]), np.add(s[..., 2], s[..., 3]))
    while r.shape[1] > 1:
        half = r.shape[1] // 2
        r = np.add(r[:, :half], r[:, half:], dtype=r.dtype)
    return r[:, 0]


def tree_sum_v4(x: np.ndarray, j: int) -> np.ndarray:
    v = reduce_pass_v4(x, j)
    while v.size > 1:
        v = reduce_pass_v4(v, j)
    return v.reshape(())


def stream_contract(op: str, per: int, grid: int | None, handles: list, n: int, dtype: str) -> dict:
    """A candidate's 901: the library op's bindings and push constants; ``grid`` None is the full grid."""
    quads = n // 4
    full = min(max(1, -(-quads // (256 * per))), MAX_GROUPS)
    push = words(n, ALPHA) if op == "saxpy" else words(n) if op == "relu" else words(n, int(dtype != "float32"))
    spv = VARIANTS / f"stream_{op}_v4x{per}.spv"
    return contract([stage(spv, [min(grid or full, full), 1, 1], handles, [(dtype, (n,))], push)], op)


def reduce_contract(j: int, handle, n: int, dtype: str) -> dict:
    """The candidate's passes as one 902 (a 901 when one pass covers n)."""
    spv = VARIANTS / f"stream_reduce_sum_j{j}.spv"
    stages, source, kind = [], handle, int(dtype != "float32")
    while True:
        chunks = max(1, -(-n // (1024 * j)))
        grid = [chunks, 1, 1] if chunks <= MAX_GROUPS else [MAX_GROUPS, -(-chunks // MAX_GROUPS), 1]
        stages.append(stage(spv, grid, [source], [(dtype, () if chunks == 1 else (chunks,))], words(n, kind)))
        if chunks == 1:
            return contract(stages, "reduce_sum")
        source, n = {"stage": len(stages) - 1, "output": 0}, chunks


def library_contract(op: str, handles: list) -> dict:
    fn = getattr(hlx.kernels, op)
    return fn(ALPHA, *handles) if op == "saxpy" else fn(*handles)


def want_of(op: str, arrays: list[np.ndarray]) -> np.ndarray:
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


def check(poisoned, rng: np.random.Generator) -> list[str]:
    """Every candidate on awkward sizes: exact ops bit for bit, saxpy within 3u(|αx| + |y|), reduce_sum
    equal to its replica (float32 and int32)."""
    failed = []
    for n in CHECK_SIZES:
        for op in OPS:
            for dtype in ("float32", "int32") if op in ("add", "mul") else ("float32",):
                arrays = inputs(op, n, dtype, rng)
                handles = [hlx.collapse(a) for a in arrays]
                want = want_of(op, arrays)
                for per in PERS:
                    for grid in (None, 1):
                        got = output(poisoned, stream_contract(op, per, grid, handles, n, dtype))
                        if op == "saxpy":
                            x, y = (np.abs(a.astype(np.float64)) for a in arrays)
                            ok = np.all(np.abs(got - want) <= 3 * 2.0**-24 * (ALPHA * x + y) + 2.0**-126)
                        else:
                            ok = got.tobytes() == want.astype(dtype).tobytes()
                        if not ok:
                            failed.append(f"stream_{op}_v4x{per} grid={grid or 'full'} {dtype} n={n}")
        for dtype in ("float32", "int32"):
            (x,) = inputs("reduce_sum", n, dtype, rng)
            h = hlx.collapse(x)
            for j in REDUCE_J:
                got = output(poisoned, reduce_contract(j, h, n, dtype))
                if got.tobytes() != tree_sum_v4(x, j).tobytes():
                    failed.append(f"stream_reduce_sum_j{j} {dtype} n={n}")
    return failed


def torch_peers(n: int, repeat: int) -> dict[str, float]:
    """ms per call of torch's same operations on CUDA (CUDA events), and a plain copy; {} without CUDA."""
    torch = cuda_torch()
    if torch is None:
        return {}
    a, b = (torch.randn(n, device="cuda") for _ in range(2))
    c = torch.empty(n, device="cuda")
    side = int(np.sqrt(n))
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


BYTES = {"copy": 8, "add": 12, "mul": 12, "saxpy": 12, "relu": 8, "reduce_sum": 4, "softmax": 8, "transpose": 8}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64 * 2**20, help="elements (softmax, transpose: sqrt(n) squared)")
    parser.add_argument("--grids", type=int, nargs="*", default=[1056, 2112, 4224],
                        help="capped grids (workgroups) tried besides the full one")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--ops", nargs="+", default=[*OPS, "reduce_sum", "softmax", "transpose"],
                        help="operations to time")
    parser.add_argument("--quick", action="store_true", help="n = 2**20 + 3, 3 repeats")
    parser.add_argument("--no-check", action="store_true", help="skip the correctness pass")
    args = parser.parse_args()
    if args.quick:
        args.n, args.repeat, args.grids = 2**20 + 3, 3, [64]
    n = args.n
    side = int(np.sqrt(n))

    session, poisoned = open_session(False), open_session(True)
    print(f"device: {session.device.name}; n = {n}")
    rng = np.random.default_rng()
    rows: list[tuple[str, str, float]] = []
    try:
        failed = [] if args.no_check else check(poisoned, rng)
        print(f"correctness on n = {CHECK_SIZES}:", "skipped" if args.no_check else
              "; ".join(failed) or "all candidates OK")
        for op in [op for op in (*OPS, "reduce_sum") if op in args.ops]:
            arrays = inputs(op, n, "float32", rng)
            handles = [hlx.collapse(a) for a in arrays]
            cases = [("library", library_contract(op, handles))]
            if op == "reduce_sum":
                cases += [(f"j{j}", reduce_contract(j, handles[0], n, "float32")) for j in REDUCE_J]
            else:
                cases += [(f"v4x{per} grid {g or 'full'}", stream_contract(op, per, g, handles, n, "float32"))
                          for per in PERS for g in (None, *args.grids)]
            for name, c in cases:
                _, ms = timed(session, c, args.repeat)
                rows.append((op, name, ms))
        m = hlx.collapse(rng.standard_normal((side, side), dtype=np.float32))
        for op in [op for op in ("softmax", "transpose") if op in args.ops]:
            _, ms = timed(session, getattr(hlx.kernels, op)(m), args.repeat)
            rows.append((op, "library", ms))
    finally:
        session.close()
        poisoned.close()
    peers = torch_peers(n, args.repeat) if rows else {}
    print(f"\n{'op':>10} {'HLX kernel':>20} {'GPU ms':>8} {'TB/s':>6} {'torch TB/s':>10} {'ratio':>6}")
    if "copy" in peers:
        print(f"{'copy':>10} {'(torch only)':>20} {'':>8} {'':>6} {8 * n / peers['copy'] / 1e9:10.3f}")
    for op, name, ms in rows:
        count = side * side if op in ("softmax", "transpose") else n
        tbs = BYTES[op] * count / ms / 1e9
        peer = BYTES[op] * count / peers[op] / 1e9 if op in peers else None
        ratio = f"{tbs / peer:6.3f}" if peer else f"{'n/a':>6}"
        print(f"{op:>10} {name:>20} {ms:8.4f} {tbs:6.3f} {peer or float('nan'):10.3f} {ratio}")
    if failed:
        print("FAIL: " + "; ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
