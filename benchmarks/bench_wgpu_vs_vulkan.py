"""wgpu backend against the raw Vulkan backend on the same plans, measured in the same run.

Both backends execute the same planned library contracts (the same SPIR-V) through their sessions: GEMM
(float32, square) and a streaming add, once with inputs already on the device (the same contract again:
resident inputs, so host time is dispatch plus readback) and once with new inputs every run (upload,
dispatch, readback). Per case and backend it prints the median GPU time (timestamp queries) and host time
(the session's execute), throughput, and the ratio wgpu/vulkan of throughput (1.0 = as fast; the goal for
GEMM is >= 0.7 on GPU time).

    .venv/bin/python benchmarks/bench_wgpu_vs_vulkan.py            # GEMM 1024/2048/4096, add over 64M floats
    .venv/bin/python benchmarks/bench_wgpu_vs_vulkan.py --small    # quick sizes (CPU-only machines)
    .venv/bin/python benchmarks/bench_wgpu_vs_vulkan.py --tiles 64 128   # every GEMM size with both tiles

``--tiles`` runs each GEMM size with the library's 64x64 shader (gemm.spv) and its 128x128 one
(gemm128.spv) instead of the one the library picks for the size, which tells a size effect from a shader
effect. ``HLX_VULKAN_ROBUST=1`` gives the Vulkan backend bounds-checked buffer access as wgpu has it.
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import blake3
import numpy as np
from bench_gemm_variants import gemm_contract

import hlx
from hlx import kernels as K
from hlx_core import registry
from hlx_core.codec.handle import Handle
from hlx_core.plan import InputRef, Plan
from hlx_core.planner import plan as make_plan

BACKENDS = ("wgpu", "vulkan")
SHADERS = Path(__file__).resolve().parents[1] / "shaders"
GEMM_TILES = {64: "gemm.spv", 128: "gemm128.spv"}

Case = tuple[str, Callable[[int], Plan], float, float]  # label, plan for run i, flops, bytes moved


def cases(small: bool, tiles: list[int] | None, rng: np.random.Generator) -> Iterator[Case]:
    for n in ((128, 256) if small else (1024, 2048, 4096)):
        a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
        for tile in tiles or [None]:
            contract = K.gemm(a, b) if tile is None else \
                gemm_contract(SHADERS / GEMM_TILES[tile], (tile, tile), hlx.collapse(a), hlx.collapse(b), (n, n, n), 1)
            p = make_plan(contract)
            label = f"gemm {n}^3" + (f" t{tile}" if tile else "")
            yield label, lambda i, p=p: p, 2.0 * n ** 3, 3.0 * 4 * n * n
    n = (4 << 20) if small else (64 << 20)
    x, y = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
    resident = make_plan(K.add(x, y))
    yield f"add {n >> 20}M f32", lambda i: resident, float(n), 3.0 * 4 * n

    xs, ys = x.copy(), y.copy()

    def fresh(i: int) -> Plan:
        """The add plan with new input content (and so new handles, not in any store): both are uploaded.
        It gets its own key too, since backends keep what they derive from a plan under its key."""
        xs[0] = ys[0] = float(i)
        stage = resident.stages[0]
        bindings = (_input(xs), _input(ys)) + stage.bindings[2:]
        key = Handle.from_digest("contract", blake3.blake3(f"{bindings[0].handle} {bindings[1].handle}".encode())
                                 .digest())
        return dataclasses.replace(resident, key=key, stages=(dataclasses.replace(stage, bindings=bindings),))
    yield f"add {n >> 20}M new in", fresh, float(n), 3.0 * 4 * n


def _input(array: np.ndarray) -> InputRef:
    return InputRef(Handle.from_digest("tensor", blake3.blake3(array.view(np.uint8)).digest()), array)


def measure(session: Any, make: Callable[[int], Plan], repeat: int, offset: int) -> tuple[float, float | None]:
    """Median host ms and median GPU ms (None without timestamps) over ``repeat`` warm runs; the plans are
    made outside the timed call (``offset`` keeps the two backends' fresh inputs apart)."""
    session.execute(make(offset))  # compile, allocate, warm caches
    host, gpu = [], []
    for i in range(1, repeat + 1):
        p = make(offset + i)
        timings = session.execute(p).timings
        host.append(timings["host_ms"])
        if "gpu_ms" in timings:
            gpu.append(timings["gpu_ms"])
    return statistics.median(host), (statistics.median(gpu) if gpu else None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="small sizes that finish quickly on lavapipe")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per case (median kept)")
    parser.add_argument("--tiles", type=int, nargs="+", choices=sorted(GEMM_TILES),
                        help="run every GEMM size with these library tiles instead of the library's choice")
    args = parser.parse_args()

    entries = registry.backend_entries()
    sessions = {}
    for name in BACKENDS:
        entry = entries.get(name)
        if entry is None or not entry.availability().available:
            reason = entry.availability().reason if entry else "not registered"
            print(f"backend {name!r} unavailable: {reason}", file=sys.stderr)
            return 1
        sessions[name] = entry.backend.open()
    for name, s in sessions.items():
        print(f"{name}: {s.device.name}")

    rng = np.random.default_rng(0)
    header = f"{'case':<20} {'backend':<7} {'gpu ms':>10} {'host ms':>10} {'GFLOP/s':>10} {'GB/s':>8} " \
             f"{'ratio gpu':>10} {'ratio host':>10}"
    print(header)
    print("-" * len(header))
    try:
        for label, make, flops, nbytes in cases(args.small, args.tiles, rng):
            results = {name: measure(s, make, args.repeat, 1000 * k) for k, (name, s) in enumerate(sessions.items())}
            v_host, v_gpu = results["vulkan"]
            for name in BACKENDS:
                host, gpu = results[name]
                t = gpu if gpu is not None else host
                ratio_gpu = (v_gpu / gpu) if gpu and v_gpu else float("nan")
                print(f"{label:<20} {name:<7} {gpu if gpu is not None else float('nan'):>10.3f} {host:>10.3f} "
                      f"{flops / t / 1e6:>10.1f} {nbytes / t / 1e6:>8.2f} {ratio_gpu:>10.2f} {v_host / host:>10.2f}")
    finally:
        for s in sessions.values():
            s.close()
    print("ratios are wgpu throughput / vulkan throughput (vulkan rows read 1.00)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
