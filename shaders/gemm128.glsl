// The body of gemm128 (shaders/gemm128.comp, whose header says how it works: read it first) and of the
// sgemm128_* candidates in benchmarks/variants/, each change under test behind a switch. With no switch it is
// gemm128 as it was before VEC4_B was promoted (sgemm128_base, round 1's control; round 1's
// sgemm128_<change> differ from it in one thing each); round 2 (sgemm128_vec4b_<change>) adds one change to
// VEC4_B (sgemm128_vec4b, round 2's control). The library builds VEC4_B + SPLIT_K, dispatched with one slice:
// the same SPIR-V as sgemm128_vec4b_splitk.
// Interface of gemm128: bindings 0 A, 1 B, 2 C; push constants M, N, K; 16x16 invocations; the same grid.
//
// The including file may define (the default is gemm128's):
//   BK 8          the K step (a multiple of 8: each invocation loads BK/8 vec4 of A and BN*BK/1024 of B)
//   BN 128        the block's width; 256 gives a 128x256 block with an 8x16 tile per invocation
//   BM 128        the block's height, a multiple of 32: the workgroup has BM/8 rows of invocations
//   TX 16         invocations along the block's width; each owns BN/TX columns (TX 8 with BN 64: 8x8 per
//                 invocation in a 64-wide block)
//   WARP_TILES    lanes of each 32-invocation subgroup laid out 4x8 over a 32x64 sub-block of C (the
//                 subgroups 4x2 over the block) instead of gemm128's rows of 16; per k a subgroup then reads
//                 4 distinct vec4 of A and 8 consecutive of B from shared memory (4 wavefronts, not 6)
//   VEC4_STORE    C written as whole vec4 when N is a multiple of 4 (scalar with bounds checks otherwise)
//   VEC4_B        B read as whole vec4 (one load, not 4) when N is a multiple of 4 (scalar otherwise)
//   VEC4_A        A read as whole vec4 along k (4 consecutive k of one row, one load, not 4 rows' scalars)
//                 when K is a multiple of 4, stored into As a word at a time (conflict-free: the 32 lanes
//                 of a subgroup cover 16 rows at 2 k-quads, 32 distinct banks); scalar otherwise
//   MID_FETCH     the next step's global loads issued halfway through the current step's k loop
//   STAGED        (with BK 16) the next step's loads in two halves, the second issued halfway through the k
//                 loop once the first is stashed, so that BK 16 holds as many registers in flight as BK 8
//   SPLIT_K       gl_NumWorkGroups.z = S slices of K (whole BK steps, in order), slice z written to C's
//                 part z of an [S, M, N] output, summed in a fixed order by the sgemm_splitk_reduce candidate
//                 (as the sgemm_* ones); S = 1 is the plain product: slice 0 is every step, k from 0 to K,
//                 and C's part 0 is C, so the sum per element is the whole-K loop's, in its order
#extension GL_EXT_control_flow_attributes : enable

#ifndef BK
#define BK 8
#endif
#ifndef BN
#define BN 128
#endif
#ifndef BM
#define BM 128
#endif
#ifndef TX
#define TX 16
#endif
#define TY (BM / 8)                  // invocations along the block's height: 8 rows each
#define NT (TX * TY)
#define TNV (BN / 4 / TX)            // vec4 columns per invocation: 2 (128 wide, TX 16) or 4 (256 wide)
#ifdef STAGED
#define PARTS 2
#else
#define PARTS 1
#endif
#define A_LOADS (BM * BK / 4 / NT / PARTS)  // vec4 of A (4 rows at one k) an invocation loads per fetch
#define B_LOADS (BK * BN / 4 / NT / PARTS)  // vec4 of B (4 columns of one row) an invocation loads per fetch

#if BK % 8 != 0 || BN % (4 * TX) != 0 || BM % 32 != 0
#error "BK must be a multiple of 8, BN a multiple of 4 TX and BM of 32"
#endif
#if defined(WARP_TILES) && (BN != 128 || BM != 128 || TX != 16)
#error "WARP_TILES lays out the 128x128 block"
#endif
#if A_LOADS == 0 || B_LOADS == 0 || (defined(STAGED) && defined(MID_FETCH))
#error "STAGED needs BK 16 and excludes MID_FETCH"
#endif

layout(local_size_x = TX, local_size_y = TY) in;

#ifdef VEC4_A
layout(std430, set = 0, binding = 0) readonly buffer InA { vec4 a4[]; };
#define A_AT(i) a4[(i) >> 2u][(i) & 3u]
#else
layout(std430, set = 0, binding = 0) readonly buffer InA { float a[]; };
#define A_AT(i) a[i]
#endif
#ifdef VEC4_B
layout(std430, set = 0, binding = 1) readonly buffer InB { vec4 b4[]; };
#define B_AT(i) b4[(i) >> 2u][(i) & 3u]
#else
layout(std430, set = 0, binding = 1) readonly buffer InB { float b[]; };
#define B_AT(i) b[i]
#endif
#ifdef VEC4_STORE
layout(std430, set = 0, binding = 2) writeonly buffer OutC { vec4 c4[]; };
#else
layout(std430, set = 0, binding = 2) writeonly buffer OutC { float c[]; };
#endif
layout(push_constant) uniform Params { uint M; uint N; uint K; } p;

const uint GROUP = 8u;  // block-rows per band of the grid's raster order

shared vec4 As[2][BK][BM / 4 + 1];  // As[k][m/4] = A[m..m+3][k]; +1 vec4 keeps the stores conflict-free
shared vec4 Bs[2][BK][BN / 4];      // Bs[k][n/4] = B[k][n..n+3]

vec4 ra[A_LOADS];
vec4 rb[B_LOADS];

// Part `part` of the PARTS into which a step's loads are cut, into ra and rb.
void fetch(uint part, uint k0, uint kend, uint tid, uint row0, uint col0) {
    [[unroll]] for (uint r = 0u; r < A_LOADS; ++r) {
        uint e = tid + (part * A_LOADS + r) * NT;
#ifdef VEC4_A
        if ((p.K & 3u) == 0u) {  // A: invocation reads k 4*(e%(BK/4))..+3 of row e/(BK/4), all in or all out
            uint m = row0 + e / (BK / 4);
            uint gk = k0 + (e % (BK / 4)) * 4u;
            ra[r] = (gk < kend && m < p.M) ? a4[(m * p.K + gk) >> 2u] : vec4(0.0);
            continue;
        }
#endif
        uint m = row0 + (e / BK) * 4u;  // A: invocation reads rows 4*(e/BK)..+3 at k e%BK
        uint gk = k0 + e % BK;
        bool kin = gk < kend;
        [[unroll]] for (uint q = 0u; q < 4u; ++q) {
            ra[r][q] = (kin && m + q < p.M) ? A_AT((m + q) * p.K + gk) : 0.0;
        }
    }
    [[unroll]] for (uint r = 0u; r < B_LOADS; ++r) {
        uint e = tid + (part * B_LOADS + r) * NT;  // B: invocation reads columns 4*(e%(BN/4))..+3 of one row
        uint kb = k0 + e / (BN / 4);
        uint n = col0 + (e % (BN / 4)) * 4u;
        bool kbin = kb < kend;
#ifdef VEC4_B
        if ((p.N & 3u) == 0u) {
            rb[r] = (kbin && n < p.N) ? b4[(kb * p.N + n) >> 2u] : vec4(0.0);
            continue;
        }
#endif
        [[unroll]] for (uint q = 0u; q < 4u; ++q) {
            rb[r][q] = (kbin && n + q < p.N) ? B_AT(kb * p.N + n + q) : 0.0;
        }
    }
}

void stash(uint part, uint buf, uint tid) {
    [[unroll]] for (uint r = 0u; r < A_LOADS; ++r) {
        uint e = tid + (part * A_LOADS + r) * NT;
#ifdef VEC4_A
        if ((p.K & 3u) == 0u) {
            uint m = e / (BK / 4);
            uint k = (e % (BK / 4)) * 4u;
            [[unroll]] for (uint q = 0u; q < 4u; ++q) {
                As[buf][k + q][m / 4u][m % 4u] = ra[r][q];
            }
            continue;
        }
#endif
        As[buf][e % BK][e / BK] = ra[r];
    }
    [[unroll]] for (uint r = 0u; r < B_LOADS; ++r) {
        uint e = tid + (part * B_LOADS + r) * NT;
        Bs[buf][e / (BN / 4)][e % (BN / 4)] = rb[r];
    }
}

void put(uint at, float v) {
#ifdef VEC4_STORE
    c4[at >> 2u][at & 3u] = v;
#else
    c[at] = v;
#endif
}

void main() {
    uint tx = gl_LocalInvocationID.x;
    uint ty = gl_LocalInvocationID.y;
    uint tid = ty * uint(TX) + tx;
    // Raster the grid in bands of GROUP block-rows so consecutive workgroups share tiles of A and B in L2.
    uint gx = gl_NumWorkGroups.x;
    uint gy = gl_NumWorkGroups.y;
    uint lin = gl_WorkGroupID.y * gx + gl_WorkGroupID.x;
    uint band = lin / (GROUP * gx);
    uint first = band * GROUP;
    uint rows = min(gy - first, GROUP);
    uint by = first + (lin % (GROUP * gx)) % rows;
    uint bx = (lin % (GROUP * gx)) / rows;
    uint row0 = by * BM;
    uint col0 = bx * BN;

    // The invocation's 2 x TNV sub-tiles of 4x4: vec4 rows am + i*ASTEP of As, vec4 columns bn + j*BSTEP of Bs.
#ifdef WARP_TILES
    uint w = tid / 32u;
    uint l = tid % 32u;
    uint am = (w / 2u) * 8u + l / 8u;
    uint bn = (w % 2u) * 16u + l % 8u;
    const uint ASTEP = 4u;
    const uint BSTEP = 8u;
#else
    uint am = ty;
    uint bn = tx;
    const uint ASTEP = uint(TY);
    const uint BSTEP = uint(TX);
#endif

#ifdef SPLIT_K
    uint z = gl_WorkGroupID.z;
    uint total = (p.K + BK - 1u) / BK;
    uint per = (total + gl_NumWorkGroups.z - 1u) / gl_NumWorkGroups.z;
    uint s0 = min(z * per, total);
    uint steps = min(s0 + per, total) - s0;
    uint kbeg = s0 * BK;
    uint kend = min(p.K, kbeg + steps * BK);
    uint zoff = z * p.M * p.N;
#else
    uint steps = (p.K + BK - 1u) / BK;
    const uint kbeg = 0u;
    uint kend = p.K;
    const uint zoff = 0u;
#endif

    vec4 acc[8][TNV];
    [[unroll]] for (uint r = 0u; r < 8u; ++r) {
        [[unroll]] for (uint j = 0u; j < TNV; ++j) {
            acc[r][j] = vec4(0.0);
        }
    }

    [[unroll]] for (uint h = 0u; h < PARTS; ++h) {
        fetch(h, kbeg, kend, tid, row0, col0);
        stash(h, 0u, tid);
    }
    barrier();
    for (uint s = 0u; s < steps; ++s) {
        uint cur = s & 1u;
        bool more = s + 1u < steps;
        uint knext = kbeg + (s + 1u) * BK;
#ifndef MID_FETCH
        if (more) {
            fetch(0u, knext, kend, tid, row0, col0);
        }
#endif
        [[unroll]] for (uint k = 0u; k < BK; ++k) {
#ifdef MID_FETCH
            if (k == BK / 2u && more) {
                fetch(0u, knext, kend, tid, row0, col0);
            }
#endif
#ifdef STAGED
            if (k == BK / 2u && more) {
                stash(0u, cur ^ 1u, tid);
                fetch(1u, knext, kend, tid, row0, col0);
            }
#endif
            vec4 a0 = As[cur][k][am];
            vec4 a1 = As[cur][k][am + ASTEP];
            vec4 bf[TNV];
            [[unroll]] for (uint j = 0u; j < TNV; ++j) {
                bf[j] = Bs[cur][k][bn + j * BSTEP];
            }
            [[unroll]] for (uint q = 0u; q < 4u; ++q) {
                [[unroll]] for (uint j = 0u; j < TNV; ++j) {
                    acc[q][j] = fma(vec4(a0[q]), bf[j], acc[q][j]);
                }
                [[unroll]] for (uint j = 0u; j < TNV; ++j) {
                    acc[q + 4u][j] = fma(vec4(a1[q]), bf[j], acc[q + 4u][j]);
                }
            }
        }
        if (more) {
            stash(PARTS - 1u, cur ^ 1u, tid);
        }
        barrier();
    }

#ifdef VEC4_STORE
    bool whole = (p.N & 3u) == 0u;
#endif
    [[unroll]] for (uint r = 0u; r < 8u; ++r) {
        uint row = row0 + 4u * (am + (r / 4u) * ASTEP) + (r % 4u);
        if (row < p.M) {
            [[unroll]] for (uint j = 0u; j < TNV; ++j) {
                uint col = col0 + 4u * (bn + j * BSTEP);
                uint at = zoff + row * p.N + col;
#ifdef VEC4_STORE
                if (whole) {
                    if (col < p.N) {
                        c4[at >> 2u] = acc[r][j];
                    }
                    continue;
                }
#endif
                [[unroll]] for (uint t = 0u; t < 4u; ++t) {
                    if (col + t < p.N) {
                        put(at + t, acc[r][j][t]);
                    }
                }
            }
        }
    }
}
