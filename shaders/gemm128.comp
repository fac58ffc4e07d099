#version 450
#extension GL_GOOGLE_include_directive : require
// gemm128: C[M,N] = A[M,K] @ B[K,N], float32, row-major, any M, N, K: the large-matrix variant of gemm.
// A 16x16 workgroup computes a 128x128 block of C; each thread an 8x8 register tile made of 2x2 sub-tiles
// of 4x4 (rows ty*4 + 64*i + 0..3, columns tx*4 + 64*j + 0..3). The shared tiles are typed vec4, so per k
// the inner loop reads 4 x 128-bit values for 64 FMAs, and each thread fills them with whole vec4 stores:
// 4 rows of A at one k (stored transposed, As[k][m/4]; one vec4 of padding per row keeps those stores
// free of bank conflicts) and 4 adjacent columns of B, read from global memory as one vec4 when N is a
// multiple of 4 (one 128-bit load, not 4 scalar ones: ~1.2x on the H200; scalar and edge-checked
// otherwise). K advances in steps of 8, double-buffered: the global loads of step s+1 are in flight while
// step s is multiplied, one barrier per step. Loads past the matrix edges read zero; stores past them are
// skipped. Dispatch: [ceil(N/128), ceil(M/128), 1]; the gemm helper picks it when that grid has at least
// 96 workgroups (below that gemm's 64x64 tiles win on the H200). Workgroups are rastered in bands of 8
// block-rows, so those running together share tiles of A and B in L2.
//
// The code is gemm128.glsl built with VEC4_B and SPLIT_K, the same SPIR-V as the candidate
// benchmarks/variants/sgemm128_vec4b_splitk. The library dispatches one slice of K (z = 1), where the slice
// is the whole K range from k = 0 and C is written in place, so each element is summed over k in the same
// order as without SPLIT_K; the split-K build is used only because it timed faster at one slice on the H200
// (2-3% over the same body without SPLIT_K at 2048-8192^3, equal registers: a codegen difference).
#define VEC4_B
#define SPLIT_K
#include "gemm128.glsl"
