#version 450
#extension GL_EXT_control_flow_attributes : enable
// gemm: C[M,N] = A[M,K] @ B[K,N], float32, row-major, any M, N, K.
// A 16x16 workgroup computes a 64x64 block of C; each thread a 4x4 register tile (rows ty*4 + 0..3,
// columns tx*4 + 0..3). The shared tiles are typed vec4: per k the inner loop reads two 128-bit values for
// 16 FMAs, and each thread fills them with whole vec4 stores (4 rows of A at one k, stored transposed as
// As[k][m/4] with one vec4 of padding per row against bank conflicts; 4 adjacent columns of B, read from
// global memory as one vec4 when N is a multiple of 4, as in gemm128). K advances in steps of 16,
// double-buffered: the global loads of step s+1 are in flight while step s is multiplied, one barrier per
// step. Loads past the matrix edges read zero; stores past them are skipped.
// Dispatch: [ceil(N/64), ceil(M/64), 1]. Large products use gemm128.comp instead.
layout(local_size_x = 16, local_size_y = 16) in;

layout(std430, set = 0, binding = 0) readonly buffer InA { float a[]; };
layout(std430, set = 0, binding = 1) readonly buffer InB { vec4 b4[]; };  // B[i] is b4[i / 4][i % 4]
layout(std430, set = 0, binding = 2) writeonly buffer OutC { float c[]; };
layout(push_constant) uniform Params { uint M; uint N; uint K; } p;

const uint BM = 64u;
const uint BN = 64u;
const uint BK = 16u;

shared vec4 As[2][BK][BM / 4u + 1u];
shared vec4 Bs[2][BK][BN / 4u];

vec4 ra;
vec4 rb;

void fetch(uint k0, uint tid, uint row0, uint col0) {
    uint gk = k0 + tid % BK;
    uint m = row0 + (tid / BK) * 4u;
    bool kin = gk < p.K;
    [[unroll]] for (uint q = 0u; q < 4u; ++q) {
        ra[q] = (kin && m + q < p.M) ? a[(m + q) * p.K + gk] : 0.0;
    }
    uint kb = k0 + tid / 16u;
    uint n = col0 + (tid % 16u) * 4u;
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
    Bs[buf][tid / 16u][tid % 16u] = rb;
}

void main() {
    uint tx = gl_LocalInvocationID.x;
    uint ty = gl_LocalInvocationID.y;
    uint tid = ty * 16u + tx;
    uint row0 = gl_WorkGroupID.y * BM;
    uint col0 = gl_WorkGroupID.x * BN;

    vec4 acc[4];
    [[unroll]] for (uint r = 0u; r < 4u; ++r) {
        acc[r] = vec4(0.0);
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
            vec4 av = As[cur][k][ty];
            vec4 bv = Bs[cur][k][tx];
            [[unroll]] for (uint q = 0u; q < 4u; ++q) {
                acc[q] = fma(vec4(av[q]), bv, acc[q]);
            }
        }
        if (more) {
            stash(cur ^ 1u, tid);
        }
        barrier();
    }
    [[unroll]] for (uint r = 0u; r < 4u; ++r) {
        uint row = row0 + ty * 4u + r;
        if (row < p.M) {
            uint col = col0 + tx * 4u;
            [[unroll]] for (uint t = 0u; t < 4u; ++t) {
                if (col + t < p.N) {
                    c[row * p.N + col + t] = acc[r][t];
                }
            }
        }
    }
}
