#version 450
#extension GL_EXT_control_flow_attributes : enable
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
// 192 workgroups (enough to fill a large GPU). Workgroups are rastered in bands of 8 block-rows, so those
// running together share tiles of A and B in L2.
layout(local_size_x = 16, local_size_y = 16) in;

layout(std430, set = 0, binding = 0) readonly buffer InA { float a[]; };
layout(std430, set = 0, binding = 1) readonly buffer InB { vec4 b4[]; };  // B[i] is b4[i / 4][i % 4]
layout(std430, set = 0, binding = 2) writeonly buffer OutC { float c[]; };
layout(push_constant) uniform Params { uint M; uint N; uint K; } p;

const uint BM = 128u;
const uint BN = 128u;
const uint BK = 8u;
const uint GROUP = 8u;  // block-rows per band of the grid's raster order

shared vec4 As[2][BK][BM / 4u + 1u];  // As[k][m/4] = A[m..m+3][k]; +1 vec4 keeps the stores conflict-free
shared vec4 Bs[2][BK][BN / 4u];       // Bs[k][n/4] = B[k][n..n+3]

vec4 ra;
vec4 rb;

void fetch(uint k0, uint tid, uint row0, uint col0) {
    uint k = tid % BK;          // A: thread reads rows 4*mg..4*mg+3 at one k
    uint m = row0 + (tid / BK) * 4u;
    uint gk = k0 + k;
    bool kin = gk < p.K;
    [[unroll]] for (uint q = 0u; q < 4u; ++q) {
        ra[q] = (kin && m + q < p.M) ? a[(m + q) * p.K + gk] : 0.0;
    }
    uint kb = k0 + tid / 32u;   // B: thread reads columns 4*c4..4*c4+3 of one row
    uint n = col0 + (tid % 32u) * 4u;
    bool kbin = kb < p.K;
    if ((p.N & 3u) == 0u) {     // rows of B start on whole vec4: n..n+3 are all in or all out
        rb = (kbin && n < p.N) ? b4[(kb * p.N + n) >> 2u] : vec4(0.0);
        return;
    }
    [[unroll]] for (uint q = 0u; q < 4u; ++q) {
        uint i = kb * p.N + n + q;
        rb[q] = (kbin && n + q < p.N) ? b4[i >> 2u][i & 3u] : 0.0;
    }
}

void stash(uint buf, uint tid) {
    As[buf][tid % BK][tid / BK] = ra;
    Bs[buf][tid / 32u][tid % 32u] = rb;
}

void main() {
    uint tx = gl_LocalInvocationID.x;
    uint ty = gl_LocalInvocationID.y;
    uint tid = ty * 16u + tx;
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

    vec4 acc[8][2];
    [[unroll]] for (uint r = 0u; r < 8u; ++r) {
        acc[r][0] = vec4(0.0);
        acc[r][1] = vec4(0.0);
    }

    uint steps = (p.K + BK - 1u) / BK;
    fetch(0u, tid, row0, col0);
    stash(0u, tid);
    barrier();
    for (uint s = 0u; s < steps; ++s) {
        uint cur = s & 1u;
        bool more = s + 1u < steps;
        if (more) {
            fetch((s + 1u) * BK, tid, row0, col0);
        }
        [[unroll]] for (uint k = 0u; k < BK; ++k) {
            vec4 a0 = As[cur][k][ty];
            vec4 a1 = As[cur][k][ty + 16u];
            vec4 b0 = Bs[cur][k][tx];
            vec4 b1 = Bs[cur][k][tx + 16u];
            [[unroll]] for (uint q = 0u; q < 4u; ++q) {
                acc[q][0] = fma(vec4(a0[q]), b0, acc[q][0]);
                acc[q][1] = fma(vec4(a0[q]), b1, acc[q][1]);
                acc[q + 4u][0] = fma(vec4(a1[q]), b0, acc[q + 4u][0]);
                acc[q + 4u][1] = fma(vec4(a1[q]), b1, acc[q + 4u][1]);
            }
        }
        if (more) {
            stash(cur ^ 1u, tid);
        }
        barrier();
    }

    [[unroll]] for (uint r = 0u; r < 8u; ++r) {
        uint row = row0 + ty * 4u + (r / 4u) * 64u + (r % 4u);
        if (row < p.M) {
            [[unroll]] for (uint j = 0u; j < 2u; ++j) {
                uint col = col0 + tx * 4u + 64u * j;
                [[unroll]] for (uint t = 0u; t < 4u; ++t) {
                    if (col + t < p.N) {
                        c[row * p.N + col + t] = acc[r][j][t];
                    }
                }
            }
        }
    }
}
