"""Compare GEMM shader variants on the Vulkan backend (for tuning the library's gemm shader).

Each variant is a SPIR-V file with the library gemm's interface (bindings A, B, C; push constants M, N, K)
and the square block tile it covers per workgroup. Every variant is checked against NumPy float64 on
sampled rows and timed with GPU timestamps; torch.matmul (TF32 off) is measured in the same run when CUDA
is there.

    python benchmarks/bench_gemm_variants.py [FILE.spv:TILE ...] [--sizes 2048 4096]

Without variants it compares the library's two tiles, shaders/gemm.spv:64 and shaders/gemm128.spv:128.
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
from bench_gemm import torch_tflops

import hlx
from hlx_core.planner import plan as make_plan


def variant_contract(spv: bytes, tile: str, a, b) -> dict:
    """The library gemm contract with the shader and dispatch swapped for the variant's (``tile`` is the
    block's size, "128", or its columns x rows, "256x128")."""
    c = hlx.kernels.gemm(a, b)
    body = dict(c["901"])
    m, k = a.shape
    n = b.shape[1]
    body["shader_handle"] = hlx.collapse(hlx.shader_contract(spv))
    tn, _, tm = tile.partition("x")
    body["dispatch"] = [-(-n // int(tn)), -(-m // int(tm or tn)), 1]
    return {"901": body}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shaders = Path(__file__).resolve().parents[1] / "shaders"
    parser.add_argument("variants", nargs="*", help="FILE.spv:TILE or FILE.spv:COLSxROWS",
                        default=[f"{shaders / 'gemm.spv'}:64", f"{shaders / 'gemm128.spv'}:128"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()

    from hlx_vulkan_raw import VulkanBackend
    session = VulkanBackend().open(None)
    print(f"device: {session.device.name}")
    rng = np.random.default_rng()
    rows_out = []
    try:
        for n in args.sizes:
            a = rng.standard_normal((n, n), dtype=np.float32)
            b = rng.standard_normal((n, n), dtype=np.float32)
            rows = rng.choice(n, size=min(n, 16), replace=False)
            want = a[rows].astype(np.float64) @ b.astype(np.float64)
            peer = torch_tflops(n, args.repeat)
            for spec in args.variants:
                path, tile = spec.rsplit(":", 1)
                p = make_plan(variant_contract(Path(path).read_bytes(), tile, a, b))
                got = session.execute(p).arrays[0]
                err = float(np.max(np.abs(got[rows] - want)) / np.max(np.abs(want)))
                gpu = statistics.median(session.execute(p).timings["gpu_ms"] for _ in range(args.repeat))
                tf = 2 * n**3 / (gpu / 1e3) / 1e12
                ratio = f"{tf / peer:.3f}" if peer else "n/a"
                rows_out.append((n, Path(path).name, tile, tf, peer or float("nan"), ratio, err))
    finally:
        session.close()
    print(f"\n{'size':>6} {'variant':>20} {'tile':>7} {'hlx TF/s':>9} {'torch TF/s':>10} {'ratio':>6} {'rel err':>9}")
    for n, name, tile, tf, peer, ratio, err in rows_out:
        print(f"{n:6d} {name:>20} {tile:>7} {tf:9.3f} {peer:10.3f} {ratio:>6} {err:9.1e}")


if __name__ == "__main__":
    main()
