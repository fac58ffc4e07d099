"""wgpu backend against the raw Vulkan backend on the same plans, measured in the same run.

Both backends execute the same planned library contracts (the same SPIR-V) through their sessions: GEMM
(float32, square) and a streaming add. Per case and backend it prints the median GPU time (timestamp
queries) and host time (the session's execute: upload, dispatch, readback), throughput, and the ratio
wgpu/vulkan of throughput (1.0 = as fast; the goal for GEMM is >= 0.7 on GPU time).

    .venv/bin/python benchmarks/bench_wgpu_vs_vulkan.py            # GEMM 1024/2048/4096, add over 64M floats
    .venv/bin/python benchmarks/bench_wgpu_vs_vulkan.py --small    # quick sizes (CPU-only machines)
"""
from __future__ import annotations

import argparse
import statistics
import sys
from typing import Any

import numpy as np

from hlx import kernels as K
from hlx_core import plugin_manager
from hlx_core.plan import Plan
from hlx_core.planner import plan as make_plan

BACKENDS = ("wgpu", "vulkan")


def cases(small: bool, rng: np.random.Generator) -> list[tuple[str, dict, float, float]]:
    """(label, contract, flops, bytes moved) per case."""
    out = []
    for n in ((128, 256) if small else (1024, 2048, 4096)):
        a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
        out.append((f"gemm {n}^3", K.gemm(a, b), 2.0 * n ** 3, 3.0 * 4 * n * n))
    n = (1 << 20) if small else (64 << 20)
    x, y = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
    out.append((f"add {n >> 20}M f32", K.add(x, y), float(n), 3.0 * 4 * n))
    return out


def measure(session: Any, plan: Plan, repeat: int) -> tuple[float, float | None]:
    """Median host ms and median GPU ms (None without timestamps) over ``repeat`` warm runs."""
    session.execute(plan)  # compile, allocate, warm caches
    host, gpu = [], []
    for _ in range(repeat):
        timings = session.execute(plan).timings
        host.append(timings["host_ms"])
        if "gpu_ms" in timings:
            gpu.append(timings["gpu_ms"])
    return statistics.median(host), (statistics.median(gpu) if gpu else None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="small sizes that finish quickly on lavapipe")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per case (median kept)")
    args = parser.parse_args()

    entries = plugin_manager.backend_entries()
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
    header = f"{'case':<18} {'backend':<7} {'gpu ms':>10} {'host ms':>10} {'GFLOP/s':>10} {'GB/s':>8} " \
             f"{'ratio gpu':>10} {'ratio host':>10}"
    print(header)
    print("-" * len(header))
    try:
        for label, contract, flops, nbytes in cases(args.small, rng):
            plan = make_plan(contract)
            results = {name: measure(s, plan, args.repeat) for name, s in sessions.items()}
            for name in BACKENDS:
                host, gpu = results[name]
                t = gpu if gpu is not None else host
                v_host, v_gpu = results["vulkan"]
                ratio_gpu = (v_gpu / gpu) if gpu and v_gpu else float("nan")
                ratio_host = v_host / host
                print(f"{label:<18} {name:<7} {gpu if gpu is not None else float('nan'):>10.3f} {host:>10.3f} "
                      f"{flops / t / 1e6:>10.1f} {nbytes / t / 1e6:>8.2f} {ratio_gpu:>10.2f} {ratio_host:>10.2f}")
    finally:
        for s in sessions.values():
            s.close()
    print("ratios are wgpu throughput / vulkan throughput (vulkan rows read 1.00)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
