"""fp32 GEMM candidates (variants/sgemm128_*.spv, the library's gemm/gemm128) against cuBLAS.

Every candidate has the library gemm's interface (bindings A, B, C; push constants M, N, K) and covers a BM x BN
block of C per workgroup (128x128 for sgemm128_*, gemm128 with one or two changes each, ../shaders/gemm128.glsl,
unless named ..._block<BM>x<BN>; any other file takes FILE.spv:BMxBN). First each one, plain and split-K (the
*_splitk ones), is checked against NumPy float64 on random non-square sizes that are
multiples of no tile (the declared gemm bound), and split-K runs twice for equal bits. Then each is timed at every
size with GPU timestamps (median of --repeat runs, inputs resident); split-K (S slices of K, an [S, M, N] partial
and the fixed-order sgemm_splitk_reduce pass, both stages timed) where the plain grid has fewer than --fill
workgroups. cuBLAS (torch.matmul, TF32 off) is timed in the same process with CUDA events over back-to-back
products. Prints TFLOP/s, the ratio to cuBLAS and the best candidate per size, and first each candidate's
registers, spills and shared memory where the driver reports them.

    python3 bench_gemm_variants.py [--sizes 1024 2048 4096 8192] [--splitk 2 4] [FILE.spv[:BMxBN] ...]
    python3 bench_gemm_variants.py --quick        # correctness and small sizes (any Vulkan device)
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
from _common import verdict
from _variants import SHADERS, VARIANTS, contract, output, print_statistics, sessions, stage, timed, words
from bench_gemm import cublas_tflops

import hlx
from hlx_core.kernels.as_built import library_kernel

REDUCE = VARIANTS / "sgemm_splitk_reduce.spv"
LIBRARY_TILES = {"gemm": (64, 64), "gemm128": (128, 128)}
# (M, K, N): no dimension a multiple of 4 in the first, all but M in the second (the vec4 path), then the
# degenerate ones, then one a row and a column past whole 128-blocks with many K steps and an odd tail, then
# blocks wholly inside beside an edge block with whole K steps; split K is checked with 2 and 3 slices and
# with more slices than K steps.
CHECK_SHAPES = [(157, 93, 211), (130, 260, 68), (1, 1, 1), (67, 9, 5), (33, 0, 20), (129, 257, 1031),
                (256, 136, 260)]
CHECK_SPLITS = [1, 2, 3, 5]


def tile_of(path: Path, given: str) -> tuple[int, int]:
    """The block (BM, BN) a candidate covers: given as BMxBN, or read from its name."""
    if given:
        bm, _, bn = given.partition("x")
        return int(bm), int(bn or bm)
    if path.stem in LIBRARY_TILES:
        return LIBRARY_TILES[path.stem]
    if path.stem.startswith("sgemm128_"):
        m = re.search(r"_block(\d+)x(\d+)", path.stem)
        return (int(m.group(1)), int(m.group(2))) if m else (128, 128)
    raise SystemExit(f"{path}: give the tile as {path}:BMxBN")


def splits_k(path: Path) -> bool:
    """Whether the candidate sums slices of K over gl_NumWorkGroups.z (the others ignore it). One whose
    SPIR-V is a library shader's (sgemm128_vec4b_splitk is gemm128's) runs as that shader, one slice only."""
    if library_kernel(path.read_bytes()) is not None:
        return False
    return path.stem.endswith("_splitk")


def gemm_contract(spv: Path, tile: tuple[int, int], a, b, shape: tuple[int, int, int], slices: int) -> dict:
    """The candidate's product of the stored tensors a [M, K] and b [K, N], over ``slices`` K slices."""
    m, k, n = shape
    grid = [max(1, -(-n // tile[1])), max(1, -(-m // tile[0])), slices]
    if slices == 1:
        return contract([stage(spv, grid, [a, b], [("float32", (m, n))], words(m, n, k))], "sgemm")
    quads = -(-m * n // 4)
    parts = stage(spv, grid, [a, b], [("float32", (slices, m, n))], words(m, n, k))
    reduce = stage(REDUCE, [min(max(1, -(-quads // 256)), 65535), 1, 1], [{"stage": 0, "output": 0}],
                   [("float32", (m, n))], words(m * n, slices))
    return contract([parts, reduce], "sgemm_splitk")


def bound(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The library gemm's declared tolerance: (K + 2) u |A||B| plus the smallest normal."""
    return (a.shape[1] + 2) * 2.0**-24 * (np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))) + 2.0**-126


def check(poisoned, variants: list[tuple[Path, tuple[int, int]]], rng: np.random.Generator) -> list[str]:
    """Every candidate, plain and split, within the bound of float64 on awkward shapes; splits deterministic."""
    failed = []
    for m, k, n in CHECK_SHAPES:
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        ha, hb = hlx.collapse(a), hlx.collapse(b)
        want = a.astype(np.float64) @ b.astype(np.float64)
        tol = bound(a, b)
        for spv, tile in variants:
            for s in CHECK_SPLITS if splits_k(spv) else [1]:
                c = gemm_contract(spv, tile, ha, hb, (m, k, n), s)
                got, again = output(poisoned, c), output(poisoned, c)
                label = f"{spv.stem} S={s} {m}x{k}x{n}"
                if got.shape != (m, n) or not np.all(np.abs(got - want) <= tol):
                    failed.append(f"{label}: off by {np.max(np.abs(got - want) - tol, initial=0):.3g} beyond the bound")
                elif got.tobytes() != again.tobytes():
                    failed.append(f"{label}: two runs differ")
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", help="FILE.spv or FILE.spv:BMxBN (default: the library and all "
                                                    "sgemm128_* candidates)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096, 8192])
    parser.add_argument("--splitk", type=int, nargs="*", default=[2, 4], help="K slices tried on small grids")
    parser.add_argument("--fill", type=int, default=264, help="split K below this many workgroups (2 x 132 SMs)")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="sizes 256 and 384, 3 repeats")
    parser.add_argument("--no-check", action="store_true", help="skip the correctness pass")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.repeat, args.fill = [256, 384], 3, 16
    if args.variants:
        variants = [(Path(p), tile_of(Path(p), t)) for p, _, t in (v.partition(":") for v in args.variants)]
    else:
        found = sorted(VARIANTS.glob("sgemm128_*.spv"))
        variants = [(p, tile_of(p, "")) for p in [SHADERS / "gemm.spv", SHADERS / "gemm128.spv", *found]]

    rng = np.random.default_rng()
    with sessions() as (session, poisoned):
        print(f"device: {session.device.name}")
        failed = [] if args.no_check else check(poisoned, variants, rng)
        print("correctness on", ", ".join(f"{m}x{k}x{n}" for m, k, n in CHECK_SHAPES), ":",
              "skipped" if args.no_check else "; ".join(failed) or f"all {len(variants)} candidates OK")
        small = [hlx.collapse(rng.standard_normal((64, 64), dtype=np.float32)) for _ in range(2)]
        print_statistics(session, [(spv.stem, gemm_contract(spv, tile, *small, (64, 64, 64), 1))
                                   for spv, tile in variants])
        rows = []
        for n in args.sizes:
            a = rng.standard_normal((n, n), dtype=np.float32)
            b = rng.standard_normal((n, n), dtype=np.float32)
            ha, hb = hlx.collapse(a), hlx.collapse(b)
            sample = rng.choice(n, size=min(n, 16), replace=False)
            want = a[sample].astype(np.float64) @ b.astype(np.float64)
            peer = cublas_tflops(n, args.repeat)
            for spv, tile in variants:
                grid = -(-n // tile[0]) * -(-n // tile[1])
                splits = [1] + [s for s in args.splitk if splits_k(spv) and grid < args.fill]
                for s in splits:
                    got, ms = timed(session, gemm_contract(spv, tile, ha, hb, (n, n, n), s), args.repeat)
                    err = float(np.max(np.abs(got[sample] - want)) / np.max(np.abs(want)))
                    tf = 2 * n**3 / (ms / 1e3) / 1e12
                    rows.append((n, spv.stem, s, grid * s, tf, peer, err))
    print(f"\n{'size':>6} {'variant':>28} {'S':>2} {'groups':>7} {'hlx TF/s':>9} {'cuBLAS TF/s':>11} {'ratio':>6} "
          f"{'rel err':>8}")
    for n, name, s, wg, tf, peer, err in rows:
        ratio = f"{tf / peer:6.3f}" if peer else f"{'n/a':>6}"
        print(f"{n:6d} {name:>28} {s:2d} {wg:7d} {tf:9.2f} {peer or float('nan'):11.2f} {ratio} {err:8.1e}")
    print()
    for n in args.sizes:
        n_, name, s, _, tf, peer, _ = max((r for r in rows if r[0] == n), key=lambda r: r[4])
        ratio = f"{tf / peer:.3f}x cuBLAS" if peer else "no cuBLAS peer"
        print(f"best at {n}: {name} S={s} {tf:.2f} TFLOP/s, {ratio}")
    return verdict(failed)


if __name__ == "__main__":
    raise SystemExit(main())
