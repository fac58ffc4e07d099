#version 450
// gemm128: C[M,N] = A[M,K] @ B[K,N], float32, row-major: the large-matrix variant of gemm.comp.
// Each 16x16 workgroup computes a 128x128 block of C. Per K step of 8 it stages a 128x8 tile of A
// (transposed, As[k][m]) and an 8x128 tile of B in shared memory, double-buffered so the loads of step
// k+1 overlap the arithmetic of step k, zero-filled past the matrix edges so any M, N, K works. Every
// thread accumulates an 8x8 register micro-tile at rows ty + 16*i and columns tx + 16*j: shared-memory
// reads are broadcasts or conflict-free and the stores of a warp are coalesced.
// Dispatch: [ceil(N/128), ceil(M/128), 1]. The gemm helper picks it when that grid has at least 192
// workgroups (enough to fill a large GPU); smaller products keep the 64x64 tile of gemm.comp.
layout(local_size_x = 16, local_size_y = 16) in;

layout(std430, set = 0, binding = 0) readonly buffer InA { float a[]; };
layout(std430, set = 0, binding = 1) readonly buffer InB { float b[]; };
layout(std430, set = 0, binding = 2) writeonly buffer OutC { float c[]; };
layout(push_constant) uniform Params { uint M; uint N; uint K; } p;

const uint BM = 128u;
const uint BN = 128u;
const uint BK = 8u;
const uint TM = 8u;
const uint TN = 8u;
const uint THREADS = 256u;
const uint LOADS = (BM * BK) / THREADS;  // 4 elements of A and 4 of B per thread per K step

shared float As[2][BK][BM];
shared float Bs[2][BK][BN];

float ra[LOADS];
float rb[LOADS];

void fetch(uint k0, uint tid, uint row0, uint col0) {
    for (uint e = 0u; e < LOADS; ++e) {
        uint idx = tid + THREADS * e;
        uint m = idx / BK;             // A: 8 consecutive threads read one row's 8 k values
        uint k = idx % BK;
        uint gr = row0 + m;
        uint gk = k0 + k;
        ra[e] = (gr < p.M && gk < p.K) ? a[gr * p.K + gk] : 0.0;
        uint kb = idx / BN;            // B: a warp reads 32 consecutive columns of one row
        uint n = idx % BN;
        uint gkb = k0 + kb;
        uint gc = col0 + n;
        rb[e] = (gkb < p.K && gc < p.N) ? b[gkb * p.N + gc] : 0.0;
    }
}

void stash(uint buf, uint tid) {
    for (uint e = 0u; e < LOADS; ++e) {
        uint idx = tid + THREADS * e;
        As[buf][idx % BK][idx / BK] = ra[e];
        Bs[buf][idx / BN][idx % BN] = rb[e];
    }
}

void main() {
    uint tx = gl_LocalInvocationID.x;
    uint ty = gl_LocalInvocationID.y;
    uint tid = ty * 16u + tx;
    uint row0 = gl_WorkGroupID.y * BM;
    uint col0 = gl_WorkGroupID.x * BN;

    float acc[TM][TN];
    for (uint i = 0u; i < TM; ++i) {
        for (uint j = 0u; j < TN; ++j) {
            acc[i][j] = 0.0;
        }
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
        for (uint k = 0u; k < BK; ++k) {
            float ar[TM];
            float br[TN];
            for (uint i = 0u; i < TM; ++i) {
                ar[i] = As[cur][k][ty + 16u * i];
            }
            for (uint j = 0u; j < TN; ++j) {
                br[j] = Bs[cur][k][tx + 16u * j];
            }
            for (uint i = 0u; i < TM; ++i) {
                for (uint j = 0u; j < TN; ++j) {
                    acc[i][j] = fma(ar[i], br[j], acc[i][j]);
                }
            }
        }
        if (more) {
            stash(cur ^ 1u, tid);
        }
        barrier();
    }

    for (uint i = 0u; i < TM; ++i) {
        uint r = row0 + ty + 16u * i;
        if (r >= p.M) {
            continue;
        }
        for (uint j = 0u; j < TN; ++j) {
            uint col = col0 + tx + 16u * j;
            if (col < p.N) {
                c[r * p.N + col] = acc[i][j];
            }
        }
    }
}
