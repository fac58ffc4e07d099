"""fp32 GEMM through the Vulkan backend (hlx.kernels.gemm) against torch.matmul (TF32 off) in the same run.

For each size, the planned contract runs warm in a Vulkan session with resident inputs; TFLOP/s are given
from the GPU timestamps (kernel only) and from the wall time of ``Session.execute`` (which includes reading the
result back to the host); cuBLAS (torch.matmul, TF32 off) is timed with CUDA events over back-to-back
products, the device time of its kernels as the timestamps give HLX's. Results are checked against
NumPy float64 on a sample of rows. Without torch/CUDA the torch columns are skipped.

    .venv/bin/python benchmarks/bench_gemm.py [--sizes 1024 2048 4096 8192] [--repeat 10] [--device 0]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from _common import cuda_event_ms, cuda_torch, host_array

import hlx
from hlx_core.planner import plan as make_plan


def cublas_tflops(n: int, repeat: int) -> float | None:
    """torch.matmul (cuBLAS, TF32 off) of two n x n float32 matrices into a preallocated output, timed with
    CUDA events over ``repeat`` back-to-back products; None without torch/CUDA."""
    torch = cuda_torch()
    if torch is None:
        return None
    a = torch.rand(n, n, device="cuda", dtype=torch.float32)
    b = torch.rand(n, n, device="cuda", dtype=torch.float32)
    c = torch.empty(n, n, device="cuda", dtype=torch.float32)
    ms = cuda_event_ms(torch, lambda: torch.matmul(a, b, out=c), repeat)
    return 2 * n**3 / (ms / 1e3) / 1e12


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096, 8192])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--device", default=None, help="Vulkan device (index, name or UUID)")
    args = parser.parse_args()

    from hlx_vulkan_raw import VulkanBackend
    session = VulkanBackend().open(args.device)
    print(f"device: {session.device.name}")
    print(f"\n{'size':>6s} {'hlx GPU TF/s':>13s} {'hlx wall TF/s':>14s} {'torch TF/s':>11s} {'GPU ratio':>10s} "
          f"{'max rel err':>12s}")
    rng = np.random.default_rng(0)
    try:
        for n in args.sizes:
            a = rng.standard_normal((n, n), dtype=np.float32)
            b = rng.standard_normal((n, n), dtype=np.float32)
            p = make_plan(hlx.kernels.gemm(hlx.collapse(a), hlx.collapse(b)))
            first = session.execute(p)
            rows = rng.choice(n, size=min(n, 16), replace=False)
            want = a[rows].astype(np.float64) @ b.astype(np.float64)
            err = float(np.max(np.abs(host_array(first.arrays[0])[rows] - want)) / np.max(np.abs(want)))
            walls, gpus = [], []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                ex = session.execute(p)
                walls.append(time.perf_counter() - t0)
                gpus.append(ex.timings.get("gpu_ms", float("nan")) / 1e3)
            flop = 2 * n**3
            gpu_tf = flop / statistics.median(gpus) / 1e12
            wall_tf = flop / statistics.median(walls) / 1e12
            peer = cublas_tflops(n, args.repeat)
            ratio = f"{gpu_tf / peer:9.2f}x" if peer else f"{'n/a':>10s}"
            print(f"{n:6d} {gpu_tf:13.4g} {wall_tf:14.4g} {peer if peer else float('nan'):11.4g} {ratio} {err:12.2e}")
    finally:
        session.close()


if __name__ == "__main__":
    main()
