#version 450
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_control_flow_attributes : enable
// Candidates for the next gemm_f16_coopmat / gemm_bf16_coopmat (shaders/gemm_half_coopmat.glsl): the same
// interface, product and edge handling, built by variants/build_coopmat_variants.py with BM, BN, BK, WM, WN
// and STAGES defined (no defaults: every candidate names its tiling). What differs from the library shader:
//
// * One flat shared array holds STAGES copies of the A and B tiles, and the edge path's C staging reuses
//   its start after the last K step (the library keeps 8 KiB apart for it), so 2 stages of larger tiles fit
//   48 KiB and a smaller footprint leaves room for a second workgroup per multiprocessor.
// * The A tile is written conflict-free: 8 consecutive invocations store the same uvec4 column of 8
//   consecutive rows (row stride BK / 8 + 1 uvec4, odd), where the library's mapping puts two rows' worth in
//   one group of 8 and two of its 16-byte stores in one bank group. A warp still reads whole 16-byte chunks
//   of 8 consecutive rows from global memory. Rows keep one uvec4 (8 halves) of padding, so the 8 row
//   addresses of each 8x8 piece a coopMatLoad reads fall in 8 different bank groups (A and B).
// * STAGES = 2: the uvec4 global loads of K-tile t + 1 go to registers before the coopMatMulAdd loop over
//   tile t and to the other shared buffer after it: one barrier per K-tile. STAGES = 1: one buffer, the same
//   register prefetch, two barriers per K-tile (the library's scheme).
const uint SUBGROUPS = (BM / WM) * (BN / WN);
const uint THREADS = SUBGROUPS * 32u;
layout(local_size_x = THREADS) in;

layout(std430, set = 0, binding = 0) readonly buffer InA { uvec4 a4[]; };
layout(std430, set = 0, binding = 1) readonly buffer InB { uvec4 b4[]; };
layout(std430, set = 0, binding = 2) writeonly buffer OutC { float c[]; };
layout(push_constant) uniform Params { uint M; uint N; uint K; } p;

const uint CA = BK / 8u;        // uvec4 of data per row of the A tile
const uint CB = BN / 8u;        // and of the B tile
const uint AS = CA + 1u;        // row strides with one uvec4 of padding
const uint BS = CB + 1u;
const uint A_TILE = BM * AS;    // uvec4 per stage
const uint B_TILE = BK * BS;
const uint STAGE = A_TILE + B_TILE;
const uint C_TILE = 64u;        // one 16x16 float fragment, in uvec4
const uint SMEM = STAGES * STAGE > SUBGROUPS * C_TILE ? STAGES * STAGE : SUBGROUPS * C_TILE;
const uint FM = WM / 16u;       // a subgroup's fragments
const uint FN = WN / 16u;
const uint QA = BM * CA / THREADS;  // uvec4 of A and of B each invocation loads per K-tile
const uint QB = BK * CB / THREADS;

#define MAT_A coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseA>
#define MAT_B coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseB>
#define MAT_C coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator>

shared uvec4 smem[SMEM];

uvec4 ra[QA];
uvec4 rb[QB];

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

// 8 halves of A at row r, columns k..k+7 (zero outside the matrix).
uvec4 load_a(uint r, uint k) {
    if (r >= p.M || k >= p.K) return uvec4(0u);
    uint e = r * p.K + k;
    if ((p.K & 7u) == 0u && k + 8u <= p.K) return a4[e >> 3u];
    uint h[8];
    [[unroll]] for (uint i = 0u; i < 8u; ++i) h[i] = k + i < p.K ? half_a(e + i, p.M * p.K) : 0u;
    return uvec4(h[0] | h[1] << 16u, h[2] | h[3] << 16u, h[4] | h[5] << 16u, h[6] | h[7] << 16u);
}

// 8 halves of B at row k, columns n..n+7.
uvec4 load_b(uint k, uint n) {
    if (k >= p.K || n >= p.N) return uvec4(0u);
    uint e = k * p.N + n;
    if ((p.N & 7u) == 0u && n + 8u <= p.N) return b4[e >> 3u];
    uint h[8];
    [[unroll]] for (uint i = 0u; i < 8u; ++i) h[i] = n + i < p.N ? half_b(e + i, p.K * p.N) : 0u;
    return uvec4(h[0] | h[1] << 16u, h[2] | h[3] << 16u, h[4] | h[5] << 16u, h[6] | h[7] << 16u);
}

// Row and uvec4 column of A-tile element i: groups of 8 rows, 8 consecutive i down one column.
uint a_row(uint i) { return (i / (8u * CA)) * 8u + i % 8u; }
uint a_col(uint i) { return (i / 8u) % CA; }

void fetch(uint k0, uint tid, uint row0, uint col0) {
    [[unroll]] for (uint q = 0u; q < QA; ++q) {
        uint i = tid + q * THREADS;
        ra[q] = load_a(row0 + a_row(i), k0 + a_col(i) * 8u);
    }
    [[unroll]] for (uint q = 0u; q < QB; ++q) {
        uint i = tid + q * THREADS;
        rb[q] = load_b(k0 + i / CB, col0 + (i % CB) * 8u);
    }
}

void stash(uint buf, uint tid) {
    uint base = buf * STAGE;
    [[unroll]] for (uint q = 0u; q < QA; ++q) {
        uint i = tid + q * THREADS;
        smem[base + a_row(i) * AS + a_col(i)] = ra[q];
    }
    [[unroll]] for (uint q = 0u; q < QB; ++q) {
        uint i = tid + q * THREADS;
        smem[base + A_TILE + (i / CB) * BS + i % CB] = rb[q];
    }
}

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint sg = gl_SubgroupID;
    uint row0 = gl_WorkGroupID.y * BM;
    uint col0 = gl_WorkGroupID.x * BN;
    uint wr = (sg / (BN / WN)) * WM;  // this subgroup's block within the tile
    uint wc = (sg % (BN / WN)) * WN;

    MAT_C acc[FM][FN];
    [[unroll]] for (uint i = 0u; i < FM; ++i) {
        [[unroll]] for (uint j = 0u; j < FN; ++j) acc[i][j] = MAT_C(0.0);
    }
    uint steps = (p.K + BK - 1u) / BK;
    fetch(0u, tid, row0, col0);
    stash(0u, tid);
    barrier();
    for (uint s = 0u; s < steps; ++s) {
        uint cur = STAGES == 2u ? s & 1u : 0u;
        uint abase = cur * STAGE;
        uint bbase = abase + A_TILE;
        bool more = s + 1u < steps;
        if (more) fetch((s + 1u) * BK, tid, row0, col0);
        [[unroll]] for (uint kk = 0u; kk < BK; kk += 16u) {
            MAT_A fa[FM];
            MAT_B fb[FN];
            [[unroll]] for (uint i = 0u; i < FM; ++i)
                coopMatLoad(fa[i], smem, abase + (wr + i * 16u) * AS + kk / 8u, AS, gl_CooperativeMatrixLayoutRowMajor);
            [[unroll]] for (uint j = 0u; j < FN; ++j)
                coopMatLoad(fb[j], smem, bbase + kk * BS + (wc + j * 16u) / 8u, BS, gl_CooperativeMatrixLayoutRowMajor);
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
    // Every invocation has passed the last step's barrier: the tiles are dead, the C staging may reuse them.
    bool full = row0 + BM <= p.M && col0 + BN <= p.N && (p.N & 3u) == 0u;
    uint lane = gl_SubgroupInvocationID;
    uint cbase = sg * C_TILE;
    [[unroll]] for (uint i = 0u; i < FM; ++i) {
        [[unroll]] for (uint j = 0u; j < FN; ++j) {
            uint r = row0 + wr + i * 16u;
            uint cc = col0 + wc + j * 16u;
            if (full) {
                coopMatStore(acc[i][j], c, r * p.N + cc, p.N, gl_CooperativeMatrixLayoutRowMajor);
            } else {
                coopMatStore(acc[i][j], smem, cbase, 4u, gl_CooperativeMatrixLayoutRowMajor);
                subgroupMemoryBarrierShared();
                subgroupBarrier();
                [[unroll]] for (uint e = lane; e < 256u; e += 32u) {
                    uint gr = r + e / 16u;
                    uint gc = cc + e % 16u;
                    if (gr < p.M && gc < p.N) c[gr * p.N + gc] = uintBitsToFloat(smem[cbase + e / 4u][e % 4u]);
                }
                subgroupBarrier();
            }
        }
    }
}
