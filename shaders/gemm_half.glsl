// The body of gemm_f16.comp and gemm_bf16.comp (which define HALF_BF16 as 0 or 1 and include this file):
// C[M,N] (float32) = A[M,K] @ B[K,N] for 16-bit float inputs, row-major, any M, N, K, on any device.
// The inputs are read as packed 32-bit words and each half is widened to float32 in registers
// (unpackHalf2x16 for float16, a 16-bit shift for bfloat16), so no 16-bit storage or arithmetic feature is
// needed; products of two 16-bit floats are exact in float32 and accumulate in float32.
// The tiling is gemm.comp's: a 16x16 workgroup computes a 64x64 block of C, each thread a 4x4 register
// tile, K in steps of 16, double-buffered float32 tiles in shared memory; loads past the matrix edges read
// zero, stores past them are skipped. Dispatch: [ceil(N/64), ceil(M/64), 1]. Devices with cooperative
// matrices run gemm_half_coopmat.glsl instead (the library picks it per device).
#extension GL_EXT_control_flow_attributes : enable
layout(local_size_x = 16, local_size_y = 16) in;

layout(std430, set = 0, binding = 0) readonly buffer InA { uint a[]; };
layout(std430, set = 0, binding = 1) readonly buffer InB { uint b[]; };
layout(std430, set = 0, binding = 2) writeonly buffer OutC { float c[]; };
layout(push_constant) uniform Params { uint M; uint N; uint K; } p;

const uint BM = 64u;
const uint BN = 64u;
const uint BK = 16u;

shared vec4 As[2][BK][BM / 4u + 1u];
shared vec4 Bs[2][BK][BN / 4u];

vec4 ra;
vec4 rb;

// Element e of a matrix of 16-bit floats held two to a word, as float32.
float widen(uint word, uint e) {
    uint h = (e & 1u) != 0u ? word >> 16u : word & 0xFFFFu;
#if HALF_BF16
    return uintBitsToFloat(h << 16u);
#else
    return unpackHalf2x16(h).x;
#endif
}

float at_a(uint e) { return widen(a[e >> 1u], e); }
float at_b(uint e) { return widen(b[e >> 1u], e); }

void fetch(uint k0, uint tid, uint row0, uint col0) {
    uint gk = k0 + tid % BK;
    uint m = row0 + (tid / BK) * 4u;
    bool kin = gk < p.K;
    [[unroll]] for (uint q = 0u; q < 4u; ++q) {
        ra[q] = (kin && m + q < p.M) ? at_a((m + q) * p.K + gk) : 0.0;
    }
    uint kb = k0 + tid / 16u;
    uint n = col0 + (tid % 16u) * 4u;
    bool kbin = kb < p.K;
    [[unroll]] for (uint q = 0u; q < 4u; ++q) {
        rb[q] = (kbin && n + q < p.N) ? at_b(kb * p.N + n + q) : 0.0;
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
