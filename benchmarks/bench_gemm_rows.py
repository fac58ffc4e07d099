"""GEMMs with few rows: the library's gemm shader (64x64 tiles) against gemm_skinny (16x16 blocks) and cuBLAS.

The products of the MLP in bench_batch.py (x [M, 1024] @ [1024, 1024] and h [M, 1024] @ [1024, 256]) at
M = 1, 2, 4 ... 128: each shader with its own grid, timed with GPU timestamps (median of --repeat runs,
inputs resident, the output clear left out as for a library kernel), and torch.matmul (cuBLAS, TF32 off)
into a preallocated output, timed with CUDA events over back-to-back products, in the same process. Both
shaders sum in the same order, so their outputs must be the same bits (checked, with gemm's bound of
float64, on every product). Prints microseconds, gemm_skinny's ratio to gemm and to cuBLAS, and which shader
the library builds at that M (SKINNY_MAX_ROWS in hlx_core/kernels/library.py): where gemm_skinny stops
winning is the bound to pick. Without torch/CUDA the cuBLAS column is skipped. ``--variants`` adds candidate
shaders with gemm's interface (FILE.spv:BMxBN, the block of C a workgroup covers), each timed and checked
the same way (the same bits as gemm: every candidate built from shaders/gemm128.glsl sums in its order).

    python3 bench_gemm_rows.py [--rows 1 2 4 ... 128] [--k 1024] [--n 1024 256] [--repeat 50] [--variants ...]
    python3 bench_gemm_rows.py --quick        # small sizes, any Vulkan device (lavapipe)
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _common import cuda_event_ms, cuda_torch, verdict
from _variants import SHADERS, contract, output, sessions, stage, timed, words

import hlx
from hlx.kernels import gemm
from hlx_core.kernels.library import SKINNY_BLOCK

# shader -> the block of C (rows, columns) a workgroup of it covers
TILES = {SHADERS / "gemm.spv": (64, 64), SHADERS / "gemm_skinny.spv": (SKINNY_BLOCK, SKINNY_BLOCK)}


def shader_contract(spv: Path, tile: tuple[int, int], a, b, m: int, k: int, n: int) -> dict:
    """The product of the stored a [M, K] and b [K, N] on one shader with its builder's grid."""
    grid = [max(1, -(-n // tile[1])), max(1, -(-m // tile[0])), 1]
    return contract([stage(spv, grid, [a, b], [("float32", (m, n))], words(m, n, k))], spv.stem)


def cublas_us(torch, m: int, k: int, n: int, repeat: int) -> float | None:
    if torch is None:
        return None
    a = torch.rand(m, k, device="cuda", dtype=torch.float32)
    b = torch.rand(k, n, device="cuda", dtype=torch.float32)
    c = torch.empty(m, n, device="cuda", dtype=torch.float32)
    return cuda_event_ms(torch, lambda: torch.matmul(a, b, out=c), repeat) * 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64, 128])
    parser.add_argument("--k", type=int, default=1024)
    parser.add_argument("--n", type=int, nargs="+", default=[1024, 256])
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="K 256, N 256 and 64, rows 1 8 64 65, 3 repeats")
    parser.add_argument("--variants", nargs="*", default=[], help="FILE.spv:BMxBN candidates with gemm's interface")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.k, args.n, args.repeat = [1, 8, 64, 65], 256, [256, 64], 3
    shaders = dict(TILES)
    for given in args.variants:
        path, _, tile = given.partition(":")
        bm, _, bn = tile.partition("x")
        shaders[Path(path)] = (int(bm), int(bn or bm))
    names = [spv.stem for spv in shaders]
    torch = cuda_torch()
    rng = np.random.default_rng()
    failed: list[str] = []
    with sessions() as (session, poisoned):
        print(f"device: {session.device.name}")
        print(f"\n{'M':>5s} {'K':>5s} {'N':>5s} " + " ".join(f"{name[-14:]:>14s}" for name in names)
              + f" {'cuBLAS us':>10s} {'skinny/gemm':>12s} {'best/cuBLAS':>12s}  library / best")
        for n in args.n:
            for m in args.rows:
                a = rng.standard_normal((m, args.k), dtype=np.float32)
                b = rng.standard_normal((args.k, n), dtype=np.float32)
                ha, hb = hlx.collapse(a), hlx.collapse(b)
                a64, b64 = a.astype(np.float64), b.astype(np.float64)
                bound = (args.k + 2) * 2.0**-24 * (np.abs(a64) @ np.abs(b64)) + 2.0**-126
                us, outs = {}, {}
                for spv, tile in shaders.items():
                    c = shader_contract(spv, tile, ha, hb, m, args.k, n)
                    outs[spv.stem] = output(poisoned, c)
                    _, ms = timed(session, c, args.repeat)
                    us[spv.stem] = ms * 1e3
                    if not np.all(np.abs(outs[spv.stem] - a64 @ b64) <= bound):
                        failed.append(f"{spv.stem} {m}x{args.k}x{n}: beyond gemm's bound")
                    if outs[spv.stem].tobytes() != outs["gemm"].tobytes():
                        failed.append(f"{spv.stem} {m}x{args.k}x{n}: not the same bits as gemm")
                peer = cublas_us(torch, m, args.k, n, args.repeat)
                picked = gemm(a, b)["901"]["kernel_name"]
                best = min(us, key=us.get)
                vs_peer = f"{us[best] / peer:12.2f}" if peer else f"{'-':>12s}"
                print(f"{m:5d} {args.k:5d} {n:5d} " + " ".join(f"{us[name]:14.1f}" for name in names)
                      + f" {peer or float('nan'):10.1f} {us['gemm_skinny'] / us['gemm']:12.2f} {vs_peer}  "
                      f"{picked} / {best}")
    return verdict(failed)


if __name__ == "__main__":
    raise SystemExit(main())
