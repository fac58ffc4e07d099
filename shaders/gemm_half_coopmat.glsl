#version 450
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_control_flow_attributes : enable
// gemm_f16_coopmat / gemm_bf16_coopmat: C[M,N] (float32) = A[M,K] @ B[K,N] (16-bit floats, row-major), any
// M, N, K, on cooperative matrices (VK_KHR_cooperative_matrix, subgroup scope, 16x16x16 fragments with
// float32 accumulators). Built by shaders/build_coopmat.py: glslang 13.1.1 compiles this file for float16;
// the bfloat16 module is the same code with its one 16-bit float type declared bfloat16 (SPV_KHR_bfloat16),
// which is exact because no 16-bit value is touched outside the cooperative-matrix loads and multiply.
//
// A workgroup of 8 subgroups of 32 invocations computes a BM x BN = 128 x 256 block of C; subgroup s owns
// the WM x WN = 64 x 64 block at rows (s / 4) * 64, columns (s % 4) * 64: 4 x 4 accumulator fragments. K
// advances by BK = 32. (benchmarks/variants/ builds other tilings from this file by defining BM, BN, BK, WM,
// WN and STAGES; on an H200 this one was the fastest of them, docs/BENCHMARKS.md.) A and B tiles are staged
// in shared memory as uvec4 (8 halves) with one uvec4 of padding per row. With STAGES = 1 (the library's)
// one buffer holds them and the global loads of step s + 1, in registers, are in flight while step s is
// multiplied (two barriers per step); STAGES = 2 double-buffers the tiles (one barrier per step).
// Global loads are whole uvec4 where a row of 8 lies inside the matrix
// and K (N for B) is a multiple of 8; elsewhere 8 halves are gathered one by one, zero outside the matrix.
// A workgroup whose block and every K step lie wholly inside the matrices (K a multiple of BK, N of 8) runs
// a copy of the K loop whose loads are plain uvec4 reads without those tests (1.2x the loop with them on
// an H200 at 2048..8192); the others run the loop with them.
// A full tile with N % 4 == 0 stores its fragments straight to C; an edge tile goes through shared memory,
// one fragment per subgroup at a time, with each element's store bounds-checked.
// Dispatch: [ceil(N/BN), ceil(M/BM), 1]; needs a subgroup size of 32 (the library chooses it only then).
#ifndef BM
#define BM 128u
#define BN 256u
#define BK 32u
#define WM 64u
#define WN 64u
#endif
#ifndef STAGES
#define STAGES 1u  // shared-memory buffers: 2 overlap the stores of step s + 1 with step s; 1 saves memory
#endif
const uint SUBGROUPS = (BM / WM) * (BN / WN);
const uint THREADS = SUBGROUPS * 32u;
layout(local_size_x = THREADS) in;

layout(std430, set = 0, binding = 0) readonly buffer InA { uvec4 a4[]; };
layout(std430, set = 0, binding = 1) readonly buffer InB { uvec4 b4[]; };
layout(std430, set = 0, binding = 2) writeonly buffer OutC { float c[]; };
layout(push_constant) uniform Params { uint M; uint N; uint K; } p;

const uint AS = BK / 8u + 1u;   // uvec4 per row of the A tile (BK halves + padding)
const uint BS = BN / 8u + 1u;   // uvec4 per row of the B tile
const uint FM = WM / 16u;       // a subgroup's fragments
const uint FN = WN / 16u;
const uint QA = BM * BK / 8u / THREADS;  // uvec4 of A and of B each invocation loads per step
const uint QB = BK * BN / 8u / THREADS;

#define MAT_A coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseA>
#define MAT_B coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseB>
#define MAT_C coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator>

shared uvec4 As[STAGES][BM * AS];
shared uvec4 Bs[STAGES][BK * BS];
shared float Cs[SUBGROUPS][256];

uvec4 ra[QA];
uvec4 rb[QB];
MAT_C acc[FM][FN];

// The 16-bit word of element e of a row-major matrix of n elements held in uvec4s (0 past the end).
uint half_a(uint e, uint n) {
    if (e >= n) return 0u;
    uint w = a4[e >> 3u][(e >> 1u) & 3u];
    return (e & 1u) != 0u ? w >> 16u : w & 0xFFFFu;
}

uint half_b(uint e, uint n) {
    if (e >= n) return 0u;
    uint w = b4[e >> 3u][(e >> 1u) & 3u];
    return (e & 1u) != 0u ? w >> 16u : w & 0xFFFFu;
}

// 8 halves of A at row r, columns k..k+7 (zero outside the matrix); `inside`: the caller knows they are in.
uvec4 load_a(uint r, uint k, bool inside) {
    if (inside) return a4[(r * p.K + k) >> 3u];
    if (r >= p.M || k >= p.K) return uvec4(0u);
    uint e = r * p.K + k;
    if ((p.K & 7u) == 0u && k + 8u <= p.K) return a4[e >> 3u];
    uint h[8];
    [[unroll]] for (uint i = 0u; i < 8u; ++i) h[i] = k + i < p.K ? half_a(e + i, p.M * p.K) : 0u;
    return uvec4(h[0] | h[1] << 16u, h[2] | h[3] << 16u, h[4] | h[5] << 16u, h[6] | h[7] << 16u);
}

// 8 halves of B at row k, columns n..n+7.
uvec4 load_b(uint k, uint n, bool inside) {
    if (inside) return b4[(k * p.N + n) >> 3u];
    if (k >= p.K || n >= p.N) return uvec4(0u);
    uint e = k * p.N + n;
    if ((p.N & 7u) == 0u && n + 8u <= p.N) return b4[e >> 3u];
    uint h[8];
    [[unroll]] for (uint i = 0u; i < 8u; ++i) h[i] = n + i < p.N ? half_b(e + i, p.K * p.N) : 0u;
    return uvec4(h[0] | h[1] << 16u, h[2] | h[3] << 16u, h[4] | h[5] << 16u, h[6] | h[7] << 16u);
}

void fetch(uint k0, uint tid, uint row0, uint col0, bool inside) {
    [[unroll]] for (uint q = 0u; q < QA; ++q) {
        uint i = tid + q * THREADS;
        ra[q] = load_a(row0 + i / (BK / 8u), k0 + (i % (BK / 8u)) * 8u, inside);
    }
    [[unroll]] for (uint q = 0u; q < QB; ++q) {
        uint i = tid + q * THREADS;
        rb[q] = load_b(k0 + i / (BN / 8u), col0 + (i % (BN / 8u)) * 8u, inside);
    }
}

void stash(uint buf, uint tid) {
    [[unroll]] for (uint q = 0u; q < QA; ++q) {
        uint i = tid + q * THREADS;
        As[buf][(i / (BK / 8u)) * AS + i % (BK / 8u)] = ra[q];
    }
    [[unroll]] for (uint q = 0u; q < QB; ++q) {
        uint i = tid + q * THREADS;
        Bs[buf][(i / (BN / 8u)) * BS + i % (BN / 8u)] = rb[q];
    }
}

// The K loop; `inside` (workgroup-uniform) skips the edge tests of every global load.
void k_loop(uint tid, uint row0, uint col0, uint wr, uint wc, bool inside) {
    uint steps = (p.K + BK - 1u) / BK;
    fetch(0u, tid, row0, col0, inside);
    stash(0u, tid);
    barrier();
    for (uint s = 0u; s < steps; ++s) {
        uint cur = STAGES == 2u ? s & 1u : 0u;
        bool more = s + 1u < steps;
        if (more) fetch((s + 1u) * BK, tid, row0, col0, inside);
        [[unroll]] for (uint kk = 0u; kk < BK; kk += 16u) {
            MAT_A fa[FM];
            MAT_B fb[FN];
            [[unroll]] for (uint i = 0u; i < FM; ++i)
                coopMatLoad(fa[i], As[cur], (wr + i * 16u) * AS + kk / 8u, AS, gl_CooperativeMatrixLayoutRowMajor);
            [[unroll]] for (uint j = 0u; j < FN; ++j)
                coopMatLoad(fb[j], Bs[cur], kk * BS + (wc + j * 16u) / 8u, BS, gl_CooperativeMatrixLayoutRowMajor);
            [[unroll]] for (uint i = 0u; i < FM; ++i) {
                [[unroll]] for (uint j = 0u; j < FN; ++j) acc[i][j] = coopMatMulAdd(fa[i], fb[j], acc[i][j]);
            }
        }
        if (STAGES == 2u) {
            if (more) stash(cur ^ 1u, tid);
            barrier();
        } else {
            barrier();
            if (more) stash(0u, tid);
            barrier();
        }
    }
}

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint sg = gl_SubgroupID;
    uint row0 = gl_WorkGroupID.y * BM;
    uint col0 = gl_WorkGroupID.x * BN;
    uint wr = (sg / (BN / WN)) * WM;  // this subgroup's block within the tile
    uint wc = (sg % (BN / WN)) * WN;

    [[unroll]] for (uint i = 0u; i < FM; ++i) {
        [[unroll]] for (uint j = 0u; j < FN; ++j) acc[i][j] = MAT_C(0.0);
    }
    bool inside = row0 + BM <= p.M && col0 + BN <= p.N && p.K > 0u && p.K % BK == 0u && (p.N & 7u) == 0u;
    if (inside) {
        k_loop(tid, row0, col0, wr, wc, true);
    } else {
        k_loop(tid, row0, col0, wr, wc, false);
    }
    bool full = row0 + BM <= p.M && col0 + BN <= p.N && (p.N & 3u) == 0u;
    uint lane = gl_SubgroupInvocationID;
    [[unroll]] for (uint i = 0u; i < FM; ++i) {
        [[unroll]] for (uint j = 0u; j < FN; ++j) {
            uint r = row0 + wr + i * 16u;
            uint cc = col0 + wc + j * 16u;
            if (full) {
                coopMatStore(acc[i][j], c, r * p.N + cc, p.N, gl_CooperativeMatrixLayoutRowMajor);
            } else {
                coopMatStore(acc[i][j], Cs[sg], 0u, 16u, gl_CooperativeMatrixLayoutRowMajor);
                subgroupMemoryBarrierShared();
                subgroupBarrier();
                [[unroll]] for (uint e = lane; e < 256u; e += 32u) {
                    uint gr = r + e / 16u;
                    uint gc = cc + e % 16u;
                    if (gr < p.M && gc < p.N) c[gr * p.N + gc] = Cs[sg][e];
                }
                subgroupBarrier();
            }
        }
    }
}
