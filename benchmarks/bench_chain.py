"""Results that stay on the GPU: a chain of dependent ``hlx.run`` calls, and a GEMM left on the device,
against torch eager on CUDA measured in the same run.

1. A chain of 10 element-wise adds on 64M-element float32 tensors (``--quick``: 1M), each run taking the
   previous output's handle (``add(h, y)`` with ``y`` fixed), started from an output of an untimed run:
   the wall time of the 10 ``hlx.run`` calls (contract building included), the sum of their GPU
   timestamps, and the same chain with the last result downloaded (``Result.arrays()``). The peer: the same
   10 adds on torch tensors on the GPU (CUDA events over back-to-back chains), and that chain with
   ``.cpu()`` of the result. Goal (issue 10): HLX's chain within 1.3x torch's.
2. ``hlx.run`` of a 4096^3 float32 GEMM (``--quick``: 256^3) whose result stays on the device, against
   cuBLAS's time for the same product (torch.mm, CUDA events) plus HLX's tiny-run overhead (the wall time
   of an ``hlx.run`` of an add of 16 float32, measured here). Goal: within 1.2x.

Every chain starts from fresh values, so each run is a new contract with a new output (nothing is a memo
hit or an output already on the device), and its outputs are discarded afterwards, so no later eviction
spills them. A MemoryStore holds the inputs (a DiskStore would re-hash the fixed input on every read).
Without torch on CUDA the peer columns are skipped (this machine: ``--quick``, which also leaves outputs
from 64 KiB on the device, so the quick GEMM's result stays there too).

    cd benchmarks && python bench_chain.py [--quick] [--backend vulkan] [--device 0] [--repeat 5]
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time

import numpy as np
from _common import cuda_event_ms, cuda_torch, per_call_us

import hlx
from hlx import kernels as K

STEPS = 10
SPLIT = ("total_ms", "host_ms", "gpu_ms")  # where a run's time goes: hlx.run, the backend's execute, the GPU


def hlx_chain(backend: str, device, store, hy: str, start: np.ndarray, download: bool,
              split: dict[str, list[float]] | None = None) -> tuple[float, float, str, list[str]]:
    """(wall ms of the ``STEPS`` timed runs, their summed GPU ms, the last handle, every handle made); with
    ``download`` the wall time includes reading the last result to the host. ``split`` collects each run's
    ``total_ms`` (all of ``hlx.run``), ``host_ms`` (the backend's execute) and ``gpu_ms``."""
    h = hlx.run(K.add(start, hy, store=store), backend=backend, device=device, store=store, memo=False).outputs[0]
    handles = [h]
    gpu = 0.0
    t0 = time.perf_counter()
    for _ in range(STEPS):
        result = hlx.run(K.add(h, hy, store=store), backend=backend, device=device, store=store, memo=False)
        h = result.outputs[0]
        handles.append(h)
        gpu += result.timings.get("gpu_ms", float("nan"))
        if split is not None:
            for key in SPLIT:
                split[key].append(result.timings.get(key, float("nan")))
    if download:
        result.arrays()
    wall = (time.perf_counter() - t0) * 1e3
    return wall, gpu, h, handles


def chain(args: argparse.Namespace, rng: np.random.Generator) -> dict[str, float]:
    n = (1 << 20) if args.quick else (64 << 20)
    store = hlx.MemoryStore()
    x = rng.standard_normal(n, dtype=np.float32)
    y = rng.standard_normal(n, dtype=np.float32)
    hy = hlx.collapse(y, store)
    figures: dict[str, list[float]] = {"wall": [], "gpu": [], "wall_download": []}
    split: dict[str, list[float]] = {key: [] for key in SPLIT}
    profiler = cProfile.Profile() if args.profile else None
    for r in range(args.repeat + 1):  # the first chain warms pipelines and uploads y
        for download in (False, True):
            start = x + np.float32(r + download)
            timed = bool(r) and not download
            if profiler is not None and timed:
                profiler.enable()
            wall, gpu, last, handles = hlx_chain(args.backend, args.device, store, hy, start, download,
                                                 split if timed else None)
            if profiler is not None and timed:
                profiler.disable()
            if r == args.repeat and download:  # check the last chain against float64
                want = (x.astype(np.float64) + (r + 1)) + (STEPS + 1) * y.astype(np.float64)
                err = float(np.max(np.abs(hlx.resolve(last, store) - want)))
                assert err < 1e-3 * max(1.0, float(np.max(np.abs(want)))), f"chain result off by {err}"
            for h in handles:
                store.discard(h)  # nothing of this chain is spilled when it is evicted later
            if r:
                figures["wall_download" if download else "wall"].append(wall)
                if not download:
                    figures["gpu"].append(gpu)
    out = {k: statistics.median(v) for k, v in figures.items()}
    print(f"chain of {STEPS} adds, {n >> 20}M float32 ({4 * n >> 20} MiB each), {args.backend}:")
    print(f"  hlx.run chain      {out['wall']:9.3f} ms wall, {out['gpu']:8.3f} ms GPU (timestamps), "
          f"{out['wall'] / STEPS:.3f} ms per run")
    print(f"  + download at end  {out['wall_download']:9.3f} ms wall")
    medians = {key: statistics.median(v) for key, v in split.items()}
    print(f"  one run (medians)  hlx.run {medians['total_ms']:.3f} ms = execute {medians['host_ms']:.3f} ms "
          f"(GPU {medians['gpu_ms']:.3f} ms) + {medians['total_ms'] - medians['host_ms']:.3f} ms around it")
    if profiler is not None:
        print(f"  where the chains' time goes (cProfile, {args.repeat} chains of {STEPS + 1} runs, by own time):")
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(args.profile)
    torch = cuda_torch()
    if torch is None:
        print("  torch on CUDA: not available here, peer skipped")
        return out
    tx = torch.from_numpy(x).cuda()
    ty = torch.from_numpy(y).cuda()

    def torch_steps():  # the STEPS dependent adds the HLX chain times (its first add is untimed too)
        t = tx
        for _ in range(STEPS):
            t = t + ty
        return t

    peer = cuda_event_ms(torch, torch_steps, repeat=5)
    walls = []
    for _ in range(args.repeat):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        torch_steps().cpu()
        walls.append((time.perf_counter() - t0) * 1e3)
    peer_download = statistics.median(walls)
    out.update(torch=peer, torch_download=peer_download)
    print(f"  torch eager chain  {peer:9.3f} ms (CUDA events)   ratio hlx/torch {out['wall'] / peer:.2f}x "
          f"(goal <= 1.3x; GPU-only {out['gpu'] / peer:.2f}x)")
    print(f"  torch + .cpu()     {peer_download:9.3f} ms wall        ratio {out['wall_download'] / peer_download:.2f}x")
    return out


def gemm(args: argparse.Namespace, rng: np.random.Generator) -> dict[str, float]:
    n = 256 if args.quick else 4096
    store = hlx.MemoryStore()
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    ha, hb = hlx.collapse(a, store), hlx.collapse(b, store)
    contract = K.gemm(ha, hb, store=store)
    hlx.run(contract, backend=args.backend, device=args.device, store=store, memo=False)  # warm-up
    walls, gpus, executes = [], [], []
    for _ in range(args.repeat * 2):
        t0 = time.perf_counter()
        result = hlx.run(contract, backend=args.backend, device=args.device, store=store, memo=False)
        walls.append((time.perf_counter() - t0) * 1e3)
        gpus.append(result.timings.get("gpu_ms", float("nan")))
        executes.append(result.timings.get("host_ms", float("nan")))
    wall, gpu, execute = statistics.median(walls), statistics.median(gpus), statistics.median(executes)
    on_device = store.resident_spec(result.outputs[0]) is not None
    rows = rng.choice(n, 4, replace=False)
    want = a[rows].astype(np.float64) @ b.astype(np.float64)
    got = result.arrays()[0][rows]
    assert float(np.max(np.abs(got - want)) / np.max(np.abs(want))) < 1e-4, "gemm result off"
    tiny_x = rng.standard_normal(16).astype(np.float32)
    tiny = K.add(tiny_x, tiny_x, store=store)
    tiny_ms = per_call_us(lambda: hlx.run(tiny, backend=args.backend, device=args.device, store=store, memo=False),
                          200) / 1e3
    out = {"wall": wall, "gpu": gpu, "tiny": tiny_ms}
    print(f"gemm {n}^3 float32, {args.backend}, result {'left on the device' if on_device else 'on the host'}:")
    print(f"  hlx.run            {wall:9.3f} ms wall (execute {execute:.3f} ms), {gpu:8.3f} ms GPU; "
          f"tiny run {tiny_ms * 1e3:.1f} us")
    torch = cuda_torch()
    if torch is None:
        print("  cuBLAS (torch on CUDA): not available here, peer skipped")
        return out
    ta, tb = torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()
    cublas = cuda_event_ms(torch, lambda: torch.mm(ta, tb), repeat=10)
    bound = cublas + tiny_ms
    out.update(cublas=cublas, bound=bound)
    print(f"  cuBLAS             {cublas:9.3f} ms (CUDA events); + tiny run = {bound:.3f} ms   "
          f"ratio {wall / bound:.2f}x (goal <= 1.2x)")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1M-element chain and a 256^3 GEMM")
    parser.add_argument("--backend", default="vulkan")
    parser.add_argument("--device", default=None)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="print the N functions the timed chains spend most time in (cProfile)")
    args = parser.parse_args()
    if args.quick:  # the quick GEMM's 256 KiB result is under the default 1 MiB: leave it on the device too
        for name in ("HLX_VULKAN_DEVICE_HASH_BYTES", "HLX_WGPU_DEVICE_HASH_BYTES"):
            os.environ.setdefault(name, "64K")
    rng = np.random.default_rng(0)
    chain(args, rng)
    gemm(args, rng)


if __name__ == "__main__":
    main()
