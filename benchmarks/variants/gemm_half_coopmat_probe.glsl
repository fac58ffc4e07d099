#version 450
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_control_flow_attributes : enable
// Probes of what limits gemm_f16_coopmat / gemm_bf16_coopmat (shaders/gemm_half_coopmat.glsl) on an H200:
// the library shader's interface, product, tiling (128 x 256 block, 8 subgroups of 64 x 64, K step 32) and
// edge handling, rewritten so that each switch below changes ONE thing. Built by
// variants/build_coopmat_variants.py (PROBES: one candidate per switch, and a control with none set, which
// must time like the library shader or the rewrite itself is what changed).
//
// * TRANSPOSE_B = 1: the B tile is staged N x K (K contiguous, 16 bytes of padding per row) and loaded with
//   gl_CooperativeMatrixLayoutColumnMajor, so A and B fragments are both read as K-contiguous 16-byte rows.
//   Each invocation loads rows k and k + 1 of the same 8 columns and stores 8 words of 2 halves.
// * RING = 1: three tile buffers and one barrier per K step, in the order stash(t + 1) -> fetch(t + 2) ->
//   barrier -> multiply(t): a buffer is rewritten two steps after it was read, with a barrier between. (Two
//   buffers in this order would let one subgroup overwrite a tile another is still reading.) Three buffers
//   of the library block fit 48 KiB at K step 16 only, with the edge path's C staging in the A tiles.
// * SWIZZLE = G: workgroups walk groups of G block-rows column by column (consecutive workgroups share a B
//   panel and G A panels in L2) instead of the dispatch order (one block-row after another).
// * FRAG_N = 8: B and accumulator fragments of 16 x 8 (16 x 8 x 16 multiply-adds) instead of 16 x 16.
// * INTERIOR = 1: a workgroup whose block and K steps lie wholly inside the matrices (and K, N multiples of
//   8) runs a copy of the K loop whose global loads are plain uvec4 reads, without the edge tests and the
//   gather path; the others run the library's loop.
// Round 2 (candidates on top of INTERIOR, names hgemm_*_r2_*):
// * BUFFERS = 2: two tile buffers and one barrier per K step: the global loads of step s + 1 go to
//   registers, step s is multiplied, the registers are stored to the other buffer, then the barrier.
//   DIRECT = 1 stores each load to the other buffer at once instead, before the multiply.
// * PAD_A = 0, PAD_B = 0: no uvec4 of padding per row of the A (B) tile. The library block's two buffers at
//   K step 32, or one at K step 64, are then exactly 48 KiB.
// * C_IN_TILES = 1: the edge path stages its C fragments in the (dead) A tiles, where Cs does not fit.
// Dispatch: [ceil(N/BN), ceil(M/BM), 1]; needs a subgroup size of 32.
#ifndef BM
#define BM 128u
#define BN 256u
#define BK 32u
#define WM 64u
#define WN 64u
#endif
#ifndef TRANSPOSE_B
#define TRANSPOSE_B 0
#endif
#ifndef RING
#define RING 0
#endif
#ifndef SWIZZLE
#define SWIZZLE 0  // a plain integer: the preprocessor tests it
#endif
#ifndef FRAG_N
#define FRAG_N 16u
#endif
#ifndef INTERIOR
#define INTERIOR 0
#endif
#ifndef BUFFERS
#define BUFFERS 0  // tile buffers, a plain integer; 0: 3 with RING, else 1
#endif
#ifndef DIRECT
#define DIRECT 0
#endif
#ifndef PAD_A
#define PAD_A 1u
#endif
#ifndef PAD_B
#define PAD_B 1u
#endif
#ifndef C_IN_TILES
#define C_IN_TILES RING
#endif
const uint STAGES = BUFFERS != 0 ? uint(BUFFERS) : (RING != 0 ? 3u : 1u);
const uint SUBGROUPS = (BM / WM) * (BN / WN);
const uint THREADS = SUBGROUPS * 32u;
layout(local_size_x = THREADS) in;

layout(std430, set = 0, binding = 0) readonly buffer InA { uvec4 a4[]; };
layout(std430, set = 0, binding = 1) readonly buffer InB { uvec4 b4[]; };
layout(std430, set = 0, binding = 2) writeonly buffer OutC { float c[]; };
layout(push_constant) uniform Params { uint M; uint N; uint K; } p;

const uint AS = BK / 8u + PAD_A;  // uvec4 per row of the A tile (BK halves + padding)
const uint A_TILE = BM * AS;
const uint FM = WM / 16u;       // a subgroup's fragments
const uint FN = WN / FRAG_N;
const uint QA = BM * BK / 8u / THREADS;  // uvec4 of A and of B each invocation loads per step
const uint QB = BK * BN / 8u / THREADS;
const uint C_FRAG = 16u * FRAG_N;         // floats of one accumulator fragment

#define MAT_A coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseA>
#define MAT_B coopmat<float16_t, gl_ScopeSubgroup, 16, FRAG_N, gl_MatrixUseB>
#define MAT_C coopmat<float, gl_ScopeSubgroup, 16, FRAG_N, gl_MatrixUseAccumulator>

shared uvec4 As[STAGES * A_TILE];
#if TRANSPOSE_B
const uint BTS = BK / 2u + 4u;  // uint (2 halves) per row of the N x K tile: BK halves + 16 bytes
const uint B_TILE = BN * BTS;
shared uint Bs[STAGES * B_TILE];
#else
const uint BS = BN / 8u + PAD_B;  // uvec4 per row of the K x N tile
const uint B_TILE = BK * BS;
shared uvec4 Bs[STAGES * B_TILE];
#endif
#if C_IN_TILES
// The edge path stages one fragment per subgroup in the (dead) A tiles after the last step.
#define C_STORE(m) coopMatStore(m, As, sg * (C_FRAG / 4u), FRAG_N / 4u, gl_CooperativeMatrixLayoutRowMajor)
#define C_AT(e) uintBitsToFloat(As[sg * (C_FRAG / 4u) + (e) / 4u][(e) % 4u])
#else
shared float Cs[SUBGROUPS][C_FRAG];
#define C_STORE(m) coopMatStore(m, Cs[sg], 0u, FRAG_N, gl_CooperativeMatrixLayoutRowMajor)
#define C_AT(e) Cs[sg][e]
#endif

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

#if TRANSPOSE_B
// B pair i: rows k0 + 2 * (i % (BK / 2)) and the next, columns col0 + (i / (BK / 2)) * 8 .. + 7. Lanes of a
// subgroup take consecutive row pairs, so the shared stores of 16 lanes are 16 consecutive words.
const uint KP = BK / 2u;
const uint QP = QB / 2u;
#endif

void fetch(uint k0, uint tid, uint row0, uint col0, bool inside) {
    [[unroll]] for (uint q = 0u; q < QA; ++q) {
        uint i = tid + q * THREADS;
        ra[q] = load_a(row0 + i / (BK / 8u), k0 + (i % (BK / 8u)) * 8u, inside);
    }
#if TRANSPOSE_B
    [[unroll]] for (uint q = 0u; q < QP; ++q) {
        uint i = tid + q * THREADS;
        uint k = k0 + 2u * (i % KP);
        uint n = col0 + (i / KP) * 8u;
        rb[2u * q] = load_b(k, n, inside);
        rb[2u * q + 1u] = load_b(k + 1u, n, inside);
    }
#else
    [[unroll]] for (uint q = 0u; q < QB; ++q) {
        uint i = tid + q * THREADS;
        rb[q] = load_b(k0 + i / (BN / 8u), col0 + (i % (BN / 8u)) * 8u, inside);
    }
#endif
}

void stash(uint buf, uint tid) {
    [[unroll]] for (uint q = 0u; q < QA; ++q) {
        uint i = tid + q * THREADS;
        As[buf * A_TILE + (i / (BK / 8u)) * AS + i % (BK / 8u)] = ra[q];
    }
#if TRANSPOSE_B
    [[unroll]] for (uint q = 0u; q < QP; ++q) {
        uint i = tid + q * THREADS;
        uint nc = i / KP;
        uint base = buf * B_TILE + nc * 8u * BTS + i % KP;
        // Odd column groups write their 8 rows starting at the fifth: 4 rows of BTS words apart is half the
        // banks, so the two groups of 16 lanes of a subgroup store to disjoint banks (K step 32).
        bool odd = (nc & 1u) != 0u;
        [[unroll]] for (uint t = 0u; t < 8u; ++t) {
            // the words holding column t (t ^ 4 if odd), both indices constant once the loop is unrolled
            uint lo = odd ? rb[2u * q][(t >> 1u) ^ 2u] : rb[2u * q][t >> 1u];
            uint hi = odd ? rb[2u * q + 1u][(t >> 1u) ^ 2u] : rb[2u * q + 1u][t >> 1u];
            uint w = (t & 1u) == 0u ? (lo & 0xFFFFu) | (hi << 16u) : (lo >> 16u) | (hi & 0xFFFF0000u);
            Bs[base + (odd ? t ^ 4u : t) * BTS] = w;
        }
    }
#else
    [[unroll]] for (uint q = 0u; q < QB; ++q) {
        uint i = tid + q * THREADS;
        Bs[buf * B_TILE + (i / (BN / 8u)) * BS + i % (BN / 8u)] = rb[q];
    }
#endif
}

// One K step's multiply-adds on the tiles in buffer `buf`.
void multiply(uint buf, uint wr, uint wc) {
    [[unroll]] for (uint kk = 0u; kk < BK; kk += 16u) {
        MAT_A fa[FM];
        MAT_B fb[FN];
        [[unroll]] for (uint i = 0u; i < FM; ++i)
            coopMatLoad(fa[i], As, buf * A_TILE + (wr + i * 16u) * AS + kk / 8u, AS,
                        gl_CooperativeMatrixLayoutRowMajor);
#if TRANSPOSE_B
        [[unroll]] for (uint j = 0u; j < FN; ++j)
            coopMatLoad(fb[j], Bs, buf * B_TILE + (wc + j * FRAG_N) * BTS + kk / 2u, BTS,
                        gl_CooperativeMatrixLayoutColumnMajor);
#else
        [[unroll]] for (uint j = 0u; j < FN; ++j)
            coopMatLoad(fb[j], Bs, buf * B_TILE + kk * BS + (wc + j * FRAG_N) / 8u, BS,
                        gl_CooperativeMatrixLayoutRowMajor);
#endif
        [[unroll]] for (uint i = 0u; i < FM; ++i) {
            [[unroll]] for (uint j = 0u; j < FN; ++j) acc[i][j] = coopMatMulAdd(fa[i], fb[j], acc[i][j]);
        }
    }
}

// The K loop; `inside` (workgroup-uniform) skips the edge tests of every global load.
void k_loop(uint tid, uint row0, uint col0, uint wr, uint wc, bool inside) {
    uint steps = (p.K + BK - 1u) / BK;
    fetch(0u, tid, row0, col0, inside);
    stash(0u, tid);
#if RING
    if (steps > 1u) fetch(BK, tid, row0, col0, inside);
    for (uint s = 0u; s < steps; ++s) {
        if (s + 1u < steps) stash((s + 1u) % 3u, tid);
        if (s + 2u < steps) fetch((s + 2u) * BK, tid, row0, col0, inside);
        barrier();
        multiply(s % 3u, wr, wc);
    }
    barrier();  // every subgroup is done with the tiles before the C staging reuses them
#else
    barrier();
#if BUFFERS == 2
    // buffer s & 1 is read in step s and rewritten in step s + 1, after the barrier that ends step s
    for (uint s = 0u; s < steps; ++s) {
        bool more = s + 1u < steps;
        if (more) fetch((s + 1u) * BK, tid, row0, col0, inside);
#if DIRECT
        if (more) stash((s + 1u) & 1u, tid);
#endif
        multiply(s & 1u, wr, wc);
#if !DIRECT
        if (more) stash((s + 1u) & 1u, tid);
#endif
        barrier();
    }
#else
    for (uint s = 0u; s < steps; ++s) {
        bool more = s + 1u < steps;
        if (more) fetch((s + 1u) * BK, tid, row0, col0, inside);
        multiply(0u, wr, wc);
        barrier();
        if (more) stash(0u, tid);
        barrier();
    }
#endif
#endif
}

// (column, row) of this workgroup's block of C.
uvec2 block_index() {
#if SWIZZLE > 0
    uint nbx = gl_NumWorkGroups.x;
    uint id = gl_WorkGroupID.y * nbx + gl_WorkGroupID.x;
    const uint G = uint(SWIZZLE);
    uint first = (id / (G * nbx)) * G;
    uint rows = min(gl_NumWorkGroups.y - first, G);
    uint local = id % (G * nbx);
    return uvec2(local / rows, first + local % rows);
#else
    return gl_WorkGroupID.xy;
#endif
}

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint sg = gl_SubgroupID;
    uvec2 blk = block_index();
    uint row0 = blk.y * BM;
    uint col0 = blk.x * BN;
    uint wr = (sg / (BN / WN)) * WM;  // this subgroup's block within the tile
    uint wc = (sg % (BN / WN)) * WN;

    [[unroll]] for (uint i = 0u; i < FM; ++i) {
        [[unroll]] for (uint j = 0u; j < FN; ++j) acc[i][j] = MAT_C(0.0);
    }
#if INTERIOR
    bool inside = row0 + BM <= p.M && col0 + BN <= p.N && p.K > 0u && p.K % BK == 0u && (p.N & 7u) == 0u;
    if (inside) {
        k_loop(tid, row0, col0, wr, wc, true);
    } else {
        k_loop(tid, row0, col0, wr, wc, false);
    }
#else
    k_loop(tid, row0, col0, wr, wc, false);
#endif
    bool full = row0 + BM <= p.M && col0 + BN <= p.N && (p.N & 3u) == 0u;
    uint lane = gl_SubgroupInvocationID;
    [[unroll]] for (uint i = 0u; i < FM; ++i) {
        [[unroll]] for (uint j = 0u; j < FN; ++j) {
            uint r = row0 + wr + i * 16u;
            uint cc = col0 + wc + j * FRAG_N;
            if (full) {
                coopMatStore(acc[i][j], c, r * p.N + cc, p.N, gl_CooperativeMatrixLayoutRowMajor);
            } else {
                C_STORE(acc[i][j]);
                subgroupMemoryBarrierShared();
                subgroupBarrier();
                [[unroll]] for (uint e = lane; e < C_FRAG; e += 32u) {
                    uint gr = r + e / FRAG_N;
                    uint gc = cc + e % FRAG_N;
                    if (gr < p.M && gc < p.N) c[gr * p.N + gc] = C_AT(e);
                }
                subgroupBarrier();
            }
        }
    }
}
