#version 450
#extension GL_EXT_control_flow_attributes : enable
// gemm_skinny: C[M,N] = A[M,K] @ B[K,N], float32, row-major, any M, N, K: what gemm() builds for products of
// at most 128 rows, where the 64x64 tiles of gemm.comp leave most of a large GPU idle (N/64 workgroups, each
// walking all of K through a 16-deep pipeline).
// A workgroup of 256 threads computes a 16x16 block of C, one element per thread (row tid/16, column
// tid%16), so a product of one row already has N/16 workgroups; all 256 threads bring in K in chunks of
// 256 (the block's 16 rows of A and 16 columns of B, 32 KiB), the next chunk's global loads in flight in
// registers while the current one is multiplied out of shared memory. Both tiles are kept as vec4 along k,
// B's transposed, so 4 k of an element cost two 128-bit shared reads (A's a broadcast; B's columns
// XOR-swizzled so that 8 adjacent columns hit distinct banks without padding).
// The summation order is gemm.comp's: one accumulator per element of C, k ascending, one fma per k, and
// zero products past K up to the next multiple of 16, as its 16-deep steps add them. So a row of C has the
// same bits here as in a larger product that runs on gemm.comp (docs/DETERMINISM.md, "Batch invariance").
// Loads past the matrix edges read zero; stores past them are skipped.
// Dispatch: [ceil(N/16), ceil(M/16), 1].
layout(local_size_x = 256) in;

layout(std430, set = 0, binding = 0) readonly buffer InA { float a[]; };
layout(std430, set = 0, binding = 1) readonly buffer InB { float b[]; };
layout(std430, set = 0, binding = 2) writeonly buffer OutC { float c[]; };
layout(push_constant) uniform Params { uint M; uint N; uint K; } p;

const uint BM = 16u;    // rows of C per workgroup
const uint BN = 16u;    // columns of C per workgroup
const uint BK = 256u;   // k per chunk
const uint STEP = 16u;  // gemm.comp's K step: the zero products past K reach its multiple
const uint PER = (BM * BK / 4u) / 256u;  // vec4 loads of A (and of B) per thread per chunk

shared vec4 As[BM][BK / 4u];  // As[m][k/4] = A[m][k..k+3]
shared vec4 Bt[BN][BK / 4u];  // Bt[n][swizzle(n, k/4)] = B[k..k+3][n]

uint swizzle(uint n, uint kq) {
    return kq ^ (n & 7u);
}

vec4 ra[PER];
vec4 rb[PER];

void fetch(uint k0, uint tid, uint row0, uint col0) {
    [[unroll]] for (uint i = 0u; i < PER; ++i) {
        uint slot = tid + 256u * i;
        uint m = row0 + slot / (BK / 4u);  // A: 4 adjacent k of one row; a warp reads 512 contiguous bytes
        uint ka = k0 + (slot % (BK / 4u)) * 4u;
        uint kb = k0 + (slot / BN) * 4u;  // B: 4 adjacent k of one column; 16 columns are 64 contiguous bytes
        uint n = col0 + slot % BN;
        [[unroll]] for (uint q = 0u; q < 4u; ++q) {
            ra[i][q] = (m < p.M && ka + q < p.K) ? a[m * p.K + ka + q] : 0.0;
            rb[i][q] = (kb + q < p.K && n < p.N) ? b[(kb + q) * p.N + n] : 0.0;
        }
    }
}

void stash(uint tid) {
    [[unroll]] for (uint i = 0u; i < PER; ++i) {
        uint slot = tid + 256u * i;
        As[slot / (BK / 4u)][slot % (BK / 4u)] = ra[i];
        Bt[slot % BN][swizzle(slot % BN, slot / BN)] = rb[i];
    }
}

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint row0 = gl_WorkGroupID.y * BM;
    uint col0 = gl_WorkGroupID.x * BN;
    uint r = tid / BN;
    uint n = tid % BN;
    bool live = row0 + r < p.M;  // threads past the last row only load

    uint kpad = ((p.K + STEP - 1u) / STEP) * STEP;
    uint chunks = (kpad + BK - 1u) / BK;
    float acc = 0.0;
    fetch(0u, tid, row0, col0);
    stash(tid);
    barrier();
    for (uint s = 0u; s < chunks; ++s) {
        bool more = s + 1u < chunks;
        if (more) {
            fetch((s + 1u) * BK, tid, row0, col0);
        }
        if (live) {
            uint quads = min(BK, kpad - s * BK) / 4u;  // a multiple of STEP / 4
            for (uint kq = 0u; kq < quads; kq += STEP / 4u) {
                [[unroll]] for (uint j = 0u; j < STEP / 4u; ++j) {
                    vec4 av = As[r][kq + j];
                    vec4 bv = Bt[n][swizzle(n, kq + j)];
                    [[unroll]] for (uint q = 0u; q < 4u; ++q) {
                        acc = fma(av[q], bv[q], acc);
                    }
                }
            }
        }
        barrier();
        if (more) {
            stash(tid);
        }
        barrier();
    }
    if (live && col0 + n < p.N) {
        c[(row0 + r) * p.N + col0 + n] = acc;
    }
}
