"""The variable-batch case: a 3-stage MLP 902 (gemm, relu, gemm) run at batch 1, 2, 4 ... 128, against torch.

For each batch size a new input ``x`` makes a new contract (new input handle, new output shapes, the same
shaders): the first ``hlx.run`` of it, and the median of later runs of the same contract (inputs resident,
the output on the host). Also shown: building the contract (``hlx.kernels`` helpers; ``x`` collapsed into
the store, the weights given as handles) and the backend's share of each run (``Session.execute``).
The peer is torch eager on CUDA in the same process (TF32 off): its first call at each new size (``x``
from the host, output ``.cpu()``), and warm calls timed with CUDA events over repeated calls, each ending
in ``.cpu()`` of the output as ``hlx.run`` returns it on the host. Goals: warm and first runs at most 1.0x
torch's. Without torch/CUDA the peer columns are skipped. ``--small`` shrinks the layers for lavapipe.

    .venv/bin/python benchmarks/bench_batch.py [--backend vulkan|wgpu] [--small] [--repeat 200]
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
from _common import cuda_torch

import hlx
from hlx_core.bench.suites.batch import BATCHES, LAYERS, WARMUP_BATCHES, check, mlp, weights


def hlx_rows(args: argparse.Namespace, xs: dict[int, np.ndarray], w1: np.ndarray, w2: np.ndarray
             ) -> dict[int, dict[str, float]]:
    h1, h2 = hlx.collapse(w1), hlx.collapse(w2)
    for batch in WARMUP_BATCHES:  # the session and both GEMM shaders' pipelines
        warm = hlx.run(mlp(xs[batch], h1, h2), backend=args.backend, device=args.device, memo=False)
    print(f"device: {warm.device} ({warm.backend})")
    rows = {}
    for batch in args.batches:
        x = xs[batch]
        t0 = time.perf_counter()
        contract = mlp(x, h1, h2)
        t1 = time.perf_counter()
        first = hlx.run(contract, backend=args.backend, device=args.device, memo=False)
        t2 = time.perf_counter()
        check(first.arrays()[0], x, w1, w2)
        row = {"build": (t1 - t0) * 1e3, "first": (t2 - t1) * 1e3, "first_exec": first.timings["host_ms"],
               "first_host": (t2 - t1) * 1e3 - first.timings.get("gpu_ms", float("nan"))}
        walls, execs, gpus = [], [], []
        for _ in range(args.repeat):
            start = time.perf_counter()
            timings = hlx.run(contract, backend=args.backend, device=args.device, memo=False).timings
            walls.append((time.perf_counter() - start) * 1e3)
            execs.append(timings["host_ms"])
            gpus.append(timings.get("gpu_ms", float("nan")))
        rows[batch] = {**row, "warm": statistics.median(walls), "warm_exec": statistics.median(execs),
                       "warm_gpu": statistics.median(gpus)}
    return rows


def torch_rows(args: argparse.Namespace, xs: dict[int, np.ndarray], w1: np.ndarray, w2: np.ndarray
               ) -> dict[int, dict[str, float]] | None:
    torch = cuda_torch()
    if torch is None:
        return None
    t1, t2 = torch.from_numpy(w1).cuda(), torch.from_numpy(w2).cuda()

    def layers(x: Any) -> Any:
        return torch.relu(x @ t1) @ t2

    def first_call(x: np.ndarray) -> float:
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        layers(torch.from_numpy(x).cuda()).cpu()
        return (time.perf_counter() - t0) * 1e3

    for batch in WARMUP_BATCHES:
        first_call(xs[batch])
    rows = {}
    for batch in args.batches:
        first = first_call(xs[batch])
        xd = torch.from_numpy(xs[batch]).cuda()
        for _ in range(10):
            layers(xd).cpu()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(args.repeat):
            layers(xd).cpu()
        end.record()
        end.synchronize()
        rows[batch] = {"first": first, "warm": start.elapsed_time(end) / args.repeat}
    return rows


def ratio(ours: float, peer: float | None) -> str:
    return f"{ours / peer:6.2f}x" if peer else "    n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="vulkan", help="HLX backend (vulkan, wgpu, ...)")
    parser.add_argument("--device", default=None, help="device of that backend (index, name or UUID)")
    parser.add_argument("--small", action="store_true", help="256 -> 256 -> 64 layers (for lavapipe)")
    parser.add_argument("--repeat", type=int, default=None, help="warm runs per size (default 200, 20 small)")
    parser.add_argument("--batches", type=int, nargs="+", default=list(BATCHES))
    args = parser.parse_args()
    d_in, hidden, d_out = LAYERS[args.small]
    args.repeat = args.repeat or (20 if args.small else 200)

    w1, w2 = weights((d_in, hidden, d_out))
    rng = np.random.default_rng(1)
    xs = {b: rng.standard_normal((b, d_in), dtype=np.float32) for b in (*WARMUP_BATCHES, *args.batches)}
    print(f"MLP {d_in} -> {hidden} -> {d_out} (gemm, relu, gemm), warm runs: median of {args.repeat}")
    ours = hlx_rows(args, xs, w1, w2)
    peer = torch_rows(args, xs, w1, w2)

    print(f"\n{'batch':>5s} | {'build':>6s} {'first':>6s} {'(exec)':>6s} {'(host)':>6s} {'torch':>6s} {'ratio':>7s} | "
          f"{'warm':>6s} {'(exec)':>6s} {'(gpu)':>6s} {'torch':>6s} {'ratio':>7s}   (ms)")
    nan = float("nan")
    for batch in args.batches:
        r = ours[batch]
        p = peer[batch] if peer else {}
        print(f"{batch:5d} | {r['build']:6.3f} {r['first']:6.3f} {r['first_exec']:6.3f} {r['first_host']:6.3f} "
              f"{p.get('first', nan):6.3f} "
              f"{ratio(r['first'], p.get('first'))} | {r['warm']:6.3f} {r['warm_exec']:6.3f} {r['warm_gpu']:6.3f} "
              f"{p.get('warm', nan):6.3f} {ratio(r['warm'], p.get('warm'))}")
    print("first: the first hlx.run of the new contract (build: making it with the helpers, not included); "
          "(exec): of which Session.execute; (host): first less its GPU timestamps, the host's share; (gpu): of "
          "which the GPU's timestamps, first stage to last; goals: both ratios at most 1.0x")
    if peer is None:
        print("torch with CUDA not available: peer columns skipped")


if __name__ == "__main__":
    main()
