// The body of the warp-tiled fp32 GEMM candidates: C[M,N] = A[M,K] @ B[K,N], row-major, any M, N, K.
// Interface of the library gemm: bindings 0 A, 1 B, 2 C; push constants M, N, K.
//
// The including file defines the tile shapes:
//   BM, BN   the block of C one workgroup computes      BK      the K step (a multiple of 4)
//   WM, WN   the warp tile: each group of 32 invocations (one NVIDIA warp) owns a WM x WN sub-block
//   LR, LC   the warp's lanes laid out LR x LC (32 in all), so per k a warp reads LR distinct vec4 of A
//            (broadcast) and LC consecutive vec4 of B (conflict-free) from shared memory
//   TM, TN   the thread tile, (TM/4) x (TN/4) sub-tiles of 4x4, spread LR*4 rows and LC*4 columns apart
//   GROUP    block-rows per band of the grid's raster order (workgroups running together share L2 tiles)
//
// Shared tiles are vec4: As[k][m/4] holds A[m..m+3][k] (A transposed), Bs[k][n/4] holds B[k][n..n+3].
// A thread loading A reads a 4x4 block (4 rows, 4 consecutive k) and writes it transposed as 4 whole
// vec4; one loading B reads and writes whole vec4. When K and N are multiples of 4 the global loads and
// the stores of C are vec4 (the aligned path); otherwise they are scalar with bounds checks. K advances
// in steps of BK, double-buffered (the loads of step s+1 are in flight while step s is multiplied; one
// barrier per step). Loads past the edges read zero; stores past them are skipped. The double-buffered
// main loop has the shape of shaders/gemm_half.glsl's on purpose, kept as a copy: the two tile and load
// differently (warp tiles of vec4 float against 16x16 threads of 16-bit loads), so a shared include would
// take more parameters than the loop has lines.
//
// Split K: with gl_NumWorkGroups.z = S > 1, workgroup z sums only its slice of K (whole BK steps, slices
// in order) and writes C's slice z of an [S, M, N] output; sgemm_splitk_reduce adds the slices in the
// fixed order 0, 1, ..., S-1, so the result is the same bits on every run. S = 1 is the plain product.
#extension GL_EXT_control_flow_attributes : enable

#define WARPS_N (BN / WN)
#define NT ((BM / WM) * (BN / WN) * 32)
#define TMV (TM / 4)
#define TNV (TN / 4)
#define KB4 (BK / 4)
#define A_BLOCKS ((BM / 4) * KB4)
#define A_ITERS ((A_BLOCKS + NT - 1) / NT)
#define B_VECS (BK * BN / 4)
#define B_ITERS ((B_VECS + NT - 1) / NT)
#define MBW (32 / KB4)

#if WM != TMV * LR * 4 || WN != TNV * LC * 4 || LR * LC != 32 || BM % WM != 0 || BN % WN != 0
#error "the warp tile must be the lanes' layout times the thread tile"
#endif
#if BK % 4 != 0 || (BM / 4) % MBW != 0
#error "BK must be a multiple of 4 and BM/4 a multiple of the row groups a warp loads"
#endif

layout(local_size_x = NT) in;

layout(std430, set = 0, binding = 0) readonly buffer InA { vec4 a4[]; };
layout(std430, set = 0, binding = 1) readonly buffer InB { vec4 b4[]; };
layout(std430, set = 0, binding = 2) writeonly buffer OutC { vec4 c4[]; };
layout(push_constant) uniform Params { uint M; uint N; uint K; } p;

shared vec4 As[2][BK][BM / 4];
shared vec4 Bs[2][BK][BN / 4];

vec4 ra[A_ITERS][4];
vec4 rb[B_ITERS];

float a_at(uint i) { return a4[i >> 2u][i & 3u]; }
float b_at(uint i) { return b4[i >> 2u][i & 3u]; }

// A's 4x4 block `blk`: lanes of a warp take MBW consecutive row groups at KB4 k groups, so a quarter
// warp stores 8 consecutive vec4 of one As row (conflict-free) and each row's loads cover whole sectors.
void a_block(uint blk, out uint mb, out uint kb) {
    uint w = blk / 32u;
    uint l = blk % 32u;
    kb = l / MBW;
    mb = w * MBW + l % MBW;
}

void fetch(uint k0, uint kend, uint tid, uint row0, uint col0, bool aligned) {
    [[unroll]] for (uint r = 0u; r < A_ITERS; ++r) {
        uint blk = tid + r * NT;
        if (blk < A_BLOCKS) {
            uint mb, kb;
            a_block(blk, mb, kb);
            uint gk = k0 + 4u * kb;
            [[unroll]] for (uint q = 0u; q < 4u; ++q) {
                uint gm = row0 + 4u * mb + q;
                if (aligned) {
                    ra[r][q] = (gm < p.M && gk < kend) ? a4[(gm * p.K + gk) >> 2u] : vec4(0.0);
                } else {
                    [[unroll]] for (uint e = 0u; e < 4u; ++e) {
                        ra[r][q][e] = (gm < p.M && gk + e < kend) ? a_at(gm * p.K + gk + e) : 0.0;
                    }
                }
            }
        }
    }
    [[unroll]] for (uint r = 0u; r < B_ITERS; ++r) {
        uint v = tid + r * NT;
        if (v < B_VECS) {
            uint gk = k0 + v / (BN / 4u);
            uint gn = col0 + 4u * (v % (BN / 4u));
            if (aligned) {
                rb[r] = (gk < kend && gn < p.N) ? b4[(gk * p.N + gn) >> 2u] : vec4(0.0);
            } else {
                [[unroll]] for (uint e = 0u; e < 4u; ++e) {
                    rb[r][e] = (gk < kend && gn + e < p.N) ? b_at(gk * p.N + gn + e) : 0.0;
                }
            }
        }
    }
}

void stash(uint buf, uint tid) {
    [[unroll]] for (uint r = 0u; r < A_ITERS; ++r) {
        uint blk = tid + r * NT;
        if (blk < A_BLOCKS) {
            uint mb, kb;
            a_block(blk, mb, kb);
            [[unroll]] for (uint e = 0u; e < 4u; ++e) {
                As[buf][4u * kb + e][mb] = vec4(ra[r][0][e], ra[r][1][e], ra[r][2][e], ra[r][3][e]);
            }
        }
    }
    [[unroll]] for (uint r = 0u; r < B_ITERS; ++r) {
        uint v = tid + r * NT;
        if (v < B_VECS) {
            Bs[buf][v / (BN / 4u)][v % (BN / 4u)] = rb[r];
        }
    }
}

void main() {
    uint tid = gl_LocalInvocationID.x;
    // Raster the grid in bands of GROUP block-rows.
    uint gx = gl_NumWorkGroups.x;
    uint gy = gl_NumWorkGroups.y;
    uint lin = gl_WorkGroupID.y * gx + gl_WorkGroupID.x;
    uint first = (lin / (GROUP * gx)) * GROUP;
    uint rows = min(gy - first, GROUP);
    uint by = first + (lin % (GROUP * gx)) % rows;
    uint bx = (lin % (GROUP * gx)) / rows;
    uint row0 = by * BM;
    uint col0 = bx * BN;

    // This workgroup's slice of K: whole BK steps, slice z of gl_NumWorkGroups.z.
    uint slices = gl_NumWorkGroups.z;
    uint z = gl_WorkGroupID.z;
    uint total = (p.K + BK - 1u) / BK;
    uint per = (total + slices - 1u) / slices;
    uint s0 = min(z * per, total);
    uint steps = min(s0 + per, total) - s0;
    uint kbeg = s0 * BK;
    uint kend = min(p.K, kbeg + steps * BK);
    bool aligned = (p.K % 4u) == 0u && (p.N % 4u) == 0u;

    uint w = tid / 32u;
    uint l = tid % 32u;
    uint wr = w / WARPS_N;
    uint wc = w % WARPS_N;
    uint lr = l / LC;
    uint lc = l % LC;
    uint abase = wr * (WM / 4u) + lr;
    uint bbase = wc * (WN / 4u) + lc;

    vec4 acc[TM][TNV];
    [[unroll]] for (uint i = 0u; i < TM; ++i) {
        [[unroll]] for (uint j = 0u; j < TNV; ++j) {
            acc[i][j] = vec4(0.0);
        }
    }

    if (steps > 0u) {
        fetch(kbeg, kend, tid, row0, col0, aligned);
        stash(0u, tid);
    }
    barrier();
    for (uint s = 0u; s < steps; ++s) {
        uint cur = s & 1u;
        bool more = s + 1u < steps;
        if (more) {
            fetch(kbeg + (s + 1u) * BK, kend, tid, row0, col0, aligned);
        }
        [[unroll]] for (uint k = 0u; k < BK; ++k) {
            vec4 af[TMV];
            vec4 bf[TNV];
            [[unroll]] for (uint i = 0u; i < TMV; ++i) {
                af[i] = As[cur][k][abase + i * LR];
            }
            [[unroll]] for (uint j = 0u; j < TNV; ++j) {
                bf[j] = Bs[cur][k][bbase + j * LC];
            }
            [[unroll]] for (uint i = 0u; i < TMV; ++i) {
                [[unroll]] for (uint q = 0u; q < 4u; ++q) {
                    [[unroll]] for (uint j = 0u; j < TNV; ++j) {
                        acc[4u * i + q][j] = fma(vec4(af[i][q]), bf[j], acc[4u * i + q][j]);
                    }
                }
            }
        }
        if (more) {
            stash(cur ^ 1u, tid);
        }
        barrier();
    }

    uint zoff = z * p.M * p.N;
    [[unroll]] for (uint i = 0u; i < TMV; ++i) {
        [[unroll]] for (uint q = 0u; q < 4u; ++q) {
            uint row = row0 + wr * WM + lr * 4u + i * (LR * 4u) + q;
            if (row < p.M) {
                [[unroll]] for (uint j = 0u; j < TNV; ++j) {
                    uint col = col0 + wc * WN + lc * 4u + j * (LC * 4u);
                    uint at = zoff + row * p.N + col;
                    if (aligned) {
                        if (col < p.N) {
                            c4[at >> 2u] = acc[4u * i + q][j];
                        }
                    } else {
                        [[unroll]] for (uint e = 0u; e < 4u; ++e) {
                            if (col + e < p.N) {
                                c4[(at + e) >> 2u][(at + e) & 3u] = acc[4u * i + q][j][e];
                            }
                        }
                    }
                }
            }
        }
    }
}
