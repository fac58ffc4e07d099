#version 450
// gemm: C[M,N] = A[M,K] @ B[K,N], float32, row-major.
// Each 16x16 workgroup computes a 64x64 block of C: per K step of 16 it stages a 64x16 tile of A and a
// 16x64 tile of B in shared memory (zero-filled past the matrix edges, so any M, N, K works), then every
// thread accumulates a 4x4 register micro-tile: rows ty + 16*i, columns tx + 16*j, which keeps the
// shared-memory reads conflict-free and the stores coalesced. Dispatch: [ceil(N/64), ceil(M/64), 1].
layout(local_size_x = 16, local_size_y = 16) in;

layout(std430, set = 0, binding = 0) readonly buffer InA { float a[]; };
layout(std430, set = 0, binding = 1) readonly buffer InB { float b[]; };
layout(std430, set = 0, binding = 2) writeonly buffer OutC { float c[]; };
layout(push_constant) uniform Params { uint M; uint N; uint K; } p;

const uint BM = 64u;
const uint BN = 64u;
const uint BK = 16u;
const uint TM = 4u;
const uint TN = 4u;
const uint THREADS = 256u;

shared float As[BK][BM + 1u];  // As[k][m]: A's tile transposed; the padding column spreads the stores
shared float Bs[BK][BN];       // Bs[k][n]

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

    for (uint k0 = 0u; k0 < p.K; k0 += BK) {
        for (uint e = 0u; e < (BM * BK) / THREADS; ++e) {
            uint idx = tid + THREADS * e;
            uint m = idx / BK;
            uint k = idx % BK;
            uint gr = row0 + m;
            uint gk = k0 + k;
            float va = 0.0;
            if (gr < p.M && gk < p.K) {
                va = a[gr * p.K + gk];
            }
            As[k][m] = va;

            uint kb = idx / BN;
            uint n = idx % BN;
            uint gkb = k0 + kb;
            uint gc = col0 + n;
            float vb = 0.0;
            if (gkb < p.K && gc < p.N) {
                vb = b[gkb * p.N + gc];
            }
            Bs[kb][n] = vb;
        }
        barrier();

        for (uint k = 0u; k < BK; ++k) {
            float ar[TM];
            float br[TN];
            for (uint i = 0u; i < TM; ++i) {
                ar[i] = As[k][ty + 16u * i];
            }
            for (uint j = 0u; j < TN; ++j) {
                br[j] = Bs[k][tx + 16u * j];
            }
            for (uint i = 0u; i < TM; ++i) {
                for (uint j = 0u; j < TN; ++j) {
                    acc[i][j] = fma(ar[i], br[j], acc[i][j]);
                }
            }
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
