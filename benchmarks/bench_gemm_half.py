"""float16 / bfloat16 GEMM on Vulkan against the cooperative-matrix ceiling and cuBLAS, in one process.

(a) The ceiling: variants/coopmat_ceiling_<dtype>_<M>x<N>x<K>.spv, a register-only coopMatMulAdd loop, for
    every tile shape the device lists (float32 accumulators), timed with GPU timestamps; then at one
    workgroup of 8 subgroups per SM (``--sms``, the library's occupancy) the 16x16x16 loop again and the
    library's inner loop alone (variants/coopmat_inner*.spv: fragments from shared memory, no global loads,
    no barriers), which split the library's gap to the ceiling into occupancy, fragment loads, and the rest.
(b) HLX: ``hlx.kernels.gemm`` on 16-bit inputs at each size (float32 output; the library's coopmat variant
    where the device takes it, else the generic shader: the "shader" column says which), GPU timestamps,
    inputs resident; and each ``--variants`` candidate (default variants/hgemm_*.spv, other tilings of the
    same shader; their tile is read from the name hgemm_<BM>x<BN>_...), first checked on random non-square
    sizes against float64 within the stated bound (docs/KERNELS.md), then timed.
(c) cuBLAS: torch.matmul on float16 / bfloat16 CUDA tensors (fp32 accumulate, 16-bit output), CUDA events
    over back-to-back products.
Prints TFLOP/s, the ratio to the 16x16x16 ceiling and to cuBLAS, and the largest error against float64 on
16 sampled rows as a fraction of the bound (HLX) or absolute (cuBLAS, whose output is rounded to 16 bits).
First it prints the registers, spills and shared memory of the library's shader and of each candidate where
the driver reports them (VK_KHR_pipeline_executable_properties).
(d) VK_NV_cooperative_matrix2's workgroup scope: variants/coopmat2_ceiling_<dtype>_<BM>x<BN>x<BK>_wg<WG>.spv,
    the register-only loop on workgroup-scope matrices, and the ``hgemm_*_aligned_*`` candidates (workgroup-
    scope operands loaded straight from the buffers), which take only shapes that are multiples of their
    tile and are checked on such shapes. glslang 13.1.1 compiles them as GL_KHR_cooperative_matrix with
    ``gl_ScopeWorkgroup``; the build adds the extension's declaration.

    python3 bench_gemm_half.py [--sizes 2048 4096 8192] [--variants FILE.spv ...]
    python3 bench_gemm_half.py --quick      # correctness and small sizes (any Vulkan device, lavapipe too)
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import ml_dtypes
import numpy as np
from _common import cuda_event_ms, cuda_torch, verdict
from _variants import VARIANTS, contract, open_session, print_statistics, stage, timed, words

import hlx
from hlx import kernels as K
from hlx_core.errors import HLXError
from hlx_core.kernels import tolerances as tol
from hlx_core.kernels.variants import specialise
from hlx_core.plan import OutputRef
from hlx_core.planner import plan as make_plan

DTYPES = {"f16": np.dtype(np.float16), "bf16": np.dtype(ml_dtypes.bfloat16)}
COMPONENT = {"f16": "float16", "bf16": "bfloat16"}
# (M, K, N); 272 x 128 x 520 has 128 x 256 blocks wholly inside (K a multiple of 64) beside edge blocks.
CHECK_SHAPES = [(157, 93, 211), (130, 264, 136), (1, 1, 1), (67, 9, 5), (272, 128, 520)]
SAMPLED_ROWS = 16


def gflop(m: int, n: int, k: int) -> float:
    return 2.0 * m * n * k / 1e9


def tflops(m: int, n: int, k: int, ms: float) -> float:
    return gflop(m, n, k) / ms if ms > 0 else float("nan")


def bound_ratio(out: np.ndarray, a: np.ndarray, b: np.ndarray, rows: np.ndarray) -> float:
    """max |error| / bound over the sampled rows, against the float64 product of the 16-bit inputs."""
    a64, b64 = a[rows].astype(np.float64), b.astype(np.float64)
    exact = a64 @ b64
    (bound,) = tol.gemm_half([a64, b64], [np.zeros_like(a64), np.zeros_like(b64)], {},
                             [OutputRef(np.dtype(np.float32), exact.shape)])
    return float(np.max(np.abs(out[rows].astype(np.float64) - exact) / bound))


def warm_timed(session, c: dict, repeat: int) -> tuple[np.ndarray, float]:
    """``timed`` after as many runs again as warm-up: the first runs with a new large output are slower
    while the device settles its memory, which would otherwise sit in the median."""
    timed(session, c, repeat)
    return timed(session, c, repeat)


def device_tiles(session) -> list[dict]:
    return list(session.core.phys.cooperative_matrix)


def has_tile(tiles: list[dict], m: int, n: int, k: int, component: str) -> bool:
    return any((t["m"], t["n"], t["k"], t["a"], t["c"], t["scope"]) == (m, n, k, component, "float32", "subgroup")
               for t in tiles)


def loop_rate(session, spv: Path, groups: int, iters: int, fragment: int, flop_per_iter: int) -> float:
    """TFLOP/s of a multiply-add loop shader (coopmat_ceiling / coopmat_inner: 8 subgroups per workgroup,
    one float32 fragment of ``fragment`` elements out per subgroup, push constant iters) whose subgroups
    each do ``flop_per_iter`` per iteration."""
    src = hlx.collapse(np.zeros(256, dtype=np.uint32))
    out = ("float32", (groups * 8 * fragment,))
    _, ms = warm_timed(session, contract([stage(spv, [groups, 1, 1], [src], [out], words(iters))], spv.stem), 5)
    return groups * 8 * iters * flop_per_iter / 1e9 / ms


def ceiling(session, quick: bool, sms: int) -> dict[tuple[str, str], float]:
    """TFLOP/s of each listed tile's register-only loop, keyed by (dtype, "MxNxK"); then, at ``sms``
    workgroups (one per multiprocessor, the library shader's occupancy), the 16x16x16 loop with 16
    accumulators and the library's inner loop with its fragments read from shared memory
    (variants/coopmat_inner*.spv): what the tensor units give 8 subgroups per multiprocessor, and what the
    shared-memory fragment loads leave of it, before any global load or barrier."""
    tiles = device_tiles(session)
    found: dict[tuple[str, str], float] = {}
    groups, iters = (4, 16) if quick else (132 * 16, 8192)
    for spv in sorted(VARIANTS.glob("coopmat_ceiling_*.spv")):
        kind, shape, acc = re.match(r"coopmat_ceiling_(\w+?)_(\d+x\d+x\d+)_a(\d+)", spv.stem).groups()
        m, n, k = (int(v) for v in shape.split("x"))
        if not has_tile(tiles, m, n, k, COMPONENT[kind]):
            continue
        rate = loop_rate(session, spv, groups, iters, m * n, 2 * int(acc) * m * n * k)
        found[(kind, shape)] = max(rate, found.get((kind, shape), 0.0))
        print(f"ceiling {kind:4} {shape:9} {acc:>2} accumulators {rate:8.1f} TFLOP/s")
    if not found:
        print(f"ceiling: {session.core.phys.name} lists no 16-bit cooperative-matrix tile; skipped")
    groups, iters = (4, 16) if quick else (sms, 8192)
    for kind in DTYPES:
        if (kind, "16x16x16") not in found:
            continue
        rate = loop_rate(session, VARIANTS / f"coopmat_ceiling_{kind}_16x16x16_a16.spv", groups, iters, 256,
                         2 * 16 * 16 ** 3)
        print(f"ceiling {kind:4} 16x16x16 16 accumulators, {groups} workgroups (1 per SM) {rate:8.1f} TFLOP/s")
        for stem, what in (("coopmat_inner", "B K x N"), ("coopmat_inner_bt", "B N x K, column-major"),
                           ("coopmat_inner_bar2", "B K x N, 2 barriers per K step")):
            # per iteration: 2 K slices x 16 fragment products of 16x16x16
            rate = loop_rate(session, VARIANTS / f"{stem}_{kind}.spv", groups, iters // 2, 256, 2 * 16 * 2 * 16 ** 3)
            print(f"inner   {kind:4} library inner loop from shared memory ({what}), {groups} workgroups "
                  f"{rate:8.1f} TFLOP/s")
    return found


def tile_of(path: Path) -> tuple[int, int]:
    m = re.match(r"hgemm_(\d+)x(\d+)_", path.stem)
    if not m:
        raise SystemExit(f"{path}: the name must start hgemm_<BM>x<BN>_")
    return int(m.group(1)), int(m.group(2))


def kind_of(path: Path) -> str:
    return "bf16" if path.stem.endswith("_bf16") else "f16"


def variant_contract(spv: Path, a, b, m: int, k: int, n: int) -> dict:
    bm, bn = tile_of(spv)
    grid = [max(1, -(-n // bn)), max(1, -(-m // bm)), 1]
    return contract([stage(spv, grid, [a, b], [("float32", (m, n))], words(m, n, k))], spv.stem)


def check_shapes(spv: Path) -> list[tuple[int, int, int]]:
    """(M, K, N) to check a candidate on: any for the edge-handling ones, multiples of the tile (and of
    K 64) for the aligned ones."""
    if "_aligned" not in spv.stem:
        return CHECK_SHAPES
    bm, bn = tile_of(spv)
    return [(bm, 128, bn), (2 * bm, 256, 3 * bn)]


def coopmat2_ceiling(session, quick: bool) -> None:
    """TFLOP/s of each workgroup-scope register-only loop the device takes (VK_NV_cooperative_matrix2)."""
    groups, iters = (2, 8) if quick else (132 * 4, 4096)
    for spv in sorted(VARIANTS.glob("coopmat2_ceiling_*.spv")):
        kind, bm, bn, bk = re.match(r"coopmat2_ceiling_(\w+?)_(\d+)x(\d+)x(\d+)_wg", spv.stem).groups()
        bm, bn, bk = int(bm), int(bn), int(bk)
        src = hlx.collapse(np.full(256, 0x3C00, dtype=np.uint32))
        c = contract([stage(spv, [groups, 1, 1], [src], [("float32", (groups * bm * bn,))], words(iters))], spv.stem)
        try:
            _, ms = warm_timed(session, c, 5)
        except HLXError as exc:  # refused, or the driver fails to build it (VK_ERROR_UNKNOWN): said, skipped
            print(f"{spv.name}: skipped, {exc}")
            continue
        print(f"ceiling2 {spv.stem:44} {groups * iters * 2 * bm * bn * bk / 1e9 / ms:8.1f} TFLOP/s")


def check_variants(session, paths: list[Path], rng: np.random.Generator) -> list[str]:
    """Each candidate against float64 on the check shapes; a candidate the device refuses (E_UNSUPPORTED:
    a fragment shape it does not list) is said so and taken out of ``paths``."""
    failed = []
    for spv in list(paths):
        kind = kind_of(spv)
        for m, k, n in check_shapes(spv):
            a = rng.standard_normal((m, k)).astype(DTYPES[kind])
            b = rng.standard_normal((k, n)).astype(DTYPES[kind])
            c = variant_contract(spv, hlx.collapse(a), hlx.collapse(b), m, k, n)
            try:
                out, _ = timed(session, c, 1)
            except HLXError as exc:  # refused, or the driver fails to build it: said, and taken out
                print(f"{spv.name}: skipped, {exc}")
                paths.remove(spv)
                break
            ratio = bound_ratio(out, a, b, np.arange(m))
            if not ratio <= 1.0:
                failed.append(f"{spv.name} {m}x{k}x{n}: error {ratio:.3g} x the bound")
    return failed


def statistics_cases(paths: list[Path], rng: np.random.Generator) -> list[tuple[str, dict]]:
    """The library gemm for each 16-bit type (its coopmat variant where the device takes it) and every
    candidate, at 256^3: what the driver's register and spill counts are read from."""
    n = 256
    mats = {kind: [rng.standard_normal((n, n)).astype(dt) for _ in range(2)] for kind, dt in DTYPES.items()}
    cases = [(f"hlx gemm {kind}", K.gemm(*mats[kind])) for kind in DTYPES]
    for spv in paths:
        a, b = (hlx.collapse(x) for x in mats[kind_of(spv)])
        cases.append((spv.stem, variant_contract(spv, a, b, n, n, n)))
    return cases


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096, 8192])
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--variants", type=Path, nargs="*", default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sms", type=int, default=132, help="multiprocessors of the device (an H200 has 132): "
                    "the workgroups of the one-per-SM ceiling and inner-loop rows")
    args = ap.parse_args()
    sizes = [96, 200] if args.quick else args.sizes
    rng = np.random.default_rng(7)
    session = open_session(poison=False)
    checker = open_session(poison=True)
    print(f"device: {session.core.phys.name}, driver {session.core.phys.driver_version_str}")
    tiles = device_tiles(session)
    coopmat = any(has_tile(tiles, 16, 16, 16, c) for c in COMPONENT.values())
    paths = args.variants if args.variants is not None else sorted(VARIANTS.glob("hgemm_*.spv"))
    failed: list[str] = []
    if coopmat:
        failed += check_variants(checker, paths, rng)
    else:
        print("no cooperative matrices: the variants and the ceiling are skipped; the library runs its generic "
              "shader")
        paths = []
    print_statistics(session, statistics_cases(paths, rng))
    roofs = ceiling(session, args.quick, args.sms) if coopmat else {}
    if coopmat:
        coopmat2_ceiling(session, args.quick)
    torch = cuda_torch()
    print(f"{'dtype':5} {'size':>5} {'impl':34} {'TFLOP/s':>8} {'/ceil':>6} {'/cuBLAS':>7} {'err':>10}")
    for kind, dtype in DTYPES.items():
        roof = roofs.get((kind, "16x16x16"))
        for n in sizes:
            a = rng.standard_normal((n, n)).astype(dtype)
            b = rng.standard_normal((n, n)).astype(dtype)
            rows = rng.choice(n, size=min(SAMPLED_ROWS, n), replace=False)
            peer = None
            if torch is not None:
                tdt = {"f16": torch.float16, "bf16": torch.bfloat16}[kind]
                ta = torch.from_numpy(a.view(np.int16)).cuda().view(tdt)
                tb = torch.from_numpy(b.view(np.int16)).cuda().view(tdt)
                peer = tflops(n, n, n, cuda_event_ms(torch, lambda ta=ta, tb=tb: torch.matmul(ta, tb), 20))
                tout = torch.matmul(ta, tb).float().cpu().numpy()
                err = float(np.max(np.abs(tout[rows] - a[rows].astype(np.float64) @ b.astype(np.float64))))
                print(f"{kind:5} {n:5} {'cuBLAS (torch.matmul)':34} {peer:8.1f} "
                      f"{peer / roof if roof else float('nan'):6.2f} {1.0:7.2f} {err:10.3g}")
            c = K.gemm(a, b)
            ran = specialise(make_plan(c), session.core.shaders.support).stages[0].shader.info
            which = "coopmat" if ran.cooperative_matrices else "generic"
            out, ms = warm_timed(session, c, 3 if args.quick else args.repeat)
            got = tflops(n, n, n, ms)
            ratio = bound_ratio(out, a, b, rows)
            if not ratio <= 1.0:
                failed.append(f"hlx {kind} {n}: error {ratio:.3g} x the bound")
            print(f"{kind:5} {n:5} {'hlx gemm (' + which + ')':34} {got:8.1f} "
                  f"{got / roof if roof else float('nan'):6.2f} {got / peer if peer else float('nan'):7.2f} "
                  f"{ratio:9.3f}b")
            ha, hb = hlx.collapse(a), hlx.collapse(b)
            for spv in (p for p in paths if kind_of(p) == kind):
                out, ms = warm_timed(session, variant_contract(spv, ha, hb, n, n, n), args.repeat)
                got = tflops(n, n, n, ms)
                print(f"{kind:5} {n:5} {spv.stem:34} {got:8.1f} {got / roof if roof else float('nan'):6.2f} "
                      f"{got / peer if peer else float('nan'):7.2f} {bound_ratio(out, a, b, rows):9.3f}b")
    if torch is None:
        print("torch with CUDA is not importable: the cuBLAS rows are skipped")
    session.close()
    checker.close()
    return verdict(failed)


if __name__ == "__main__":
    raise SystemExit(main())
