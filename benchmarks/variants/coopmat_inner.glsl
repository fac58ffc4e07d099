#version 450
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_control_flow_attributes : enable
// The library GEMM's inner loop alone (shaders/gemm_half_coopmat.glsl): 8 subgroups of 64 x 64 read their
// 4 A and 4 B 16 x 16 fragments of each 16-wide K slice from shared tiles laid out as the library's (uvec4,
// one uvec4 of padding per row) and run 16 coopMatMulAdd into float32 accumulators, `iters` times over
// tiles filled once: no global loads, no barriers in the loop. Against the register-only ceiling
// (coopmat_ceiling.glsl) it prices the shared-memory fragment loads at the library's occupancy; against
// the library it prices everything else (global loads, stores to shared memory, barriers). The K slice
// read alternates with the iteration so the loads cannot be hoisted out of the loop.
// TRANSPOSE_B = 1 reads B from an N x K tile (uint words, 16 bytes of padding per row) column-major;
// BARRIERS = 2 adds the library's two workgroup barriers per K step of 32 (with nothing stored between
// them: their synchronisation cost alone). Built for float16 and, by build_coopmat_variants.py, bfloat16. Bindings: 0 the tiles' source (64 uvec4, zeros do), 1 the float32 output (8 * 256 per
// workgroup). Push constant: iters.
#ifndef TRANSPOSE_B
#define TRANSPOSE_B 0
#endif
#ifndef BARRIERS
#define BARRIERS 0u
#endif
layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer Src { uvec4 src[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Out { float o[]; };
layout(push_constant) uniform Params { uint iters; } p;

const uint BM = 128u, BN = 256u, BK = 32u, WM = 64u, WN = 64u;
const uint AS = BK / 8u + 1u;
shared uvec4 As[BM * AS];
#if TRANSPOSE_B
const uint BTS = BK / 2u + 4u;
shared uint Bs[BN * BTS];
#else
const uint BS = BN / 8u + 1u;
shared uvec4 Bs[BK * BS];
#endif

#define MAT_A coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseA>
#define MAT_B coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseB>
#define MAT_C coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator>

void main() {
    uint tid = gl_LocalInvocationID.x;
    for (uint i = tid; i < BM * AS; i += 256u) As[i] = src[i % 64u];
#if TRANSPOSE_B
    for (uint i = tid; i < BN * BTS; i += 256u) Bs[i] = src[(i / 4u) % 64u][i % 4u];
#else
    for (uint i = tid; i < BK * BS; i += 256u) Bs[i] = src[i % 64u];
#endif
    barrier();
    uint sg = gl_SubgroupID;
    uint wr = (sg / (BN / WN)) * WM;
    uint wc = (sg % (BN / WN)) * WN;
    MAT_C acc[4][4];
    [[unroll]] for (uint i = 0u; i < 4u; ++i) {
        [[unroll]] for (uint j = 0u; j < 4u; ++j) acc[i][j] = MAT_C(0.0);
    }
    for (uint it = 0u; it < p.iters; ++it) {
        [[unroll]] for (uint kk = 0u; kk < BK; kk += 16u) {
            uint k = (kk + (it & 1u) * 16u) % BK;
            MAT_A fa[4];
            MAT_B fb[4];
            [[unroll]] for (uint i = 0u; i < 4u; ++i)
                coopMatLoad(fa[i], As, (wr + i * 16u) * AS + k / 8u, AS, gl_CooperativeMatrixLayoutRowMajor);
#if TRANSPOSE_B
            [[unroll]] for (uint j = 0u; j < 4u; ++j)
                coopMatLoad(fb[j], Bs, (wc + j * 16u) * BTS + k / 2u, BTS, gl_CooperativeMatrixLayoutColumnMajor);
#else
            [[unroll]] for (uint j = 0u; j < 4u; ++j)
                coopMatLoad(fb[j], Bs, k * BS + (wc + j * 16u) / 8u, BS, gl_CooperativeMatrixLayoutRowMajor);
#endif
            [[unroll]] for (uint i = 0u; i < 4u; ++i) {
                [[unroll]] for (uint j = 0u; j < 4u; ++j) acc[i][j] = coopMatMulAdd(fa[i], fb[j], acc[i][j]);
            }
        }
        [[unroll]] for (uint b = 0u; b < BARRIERS; ++b) barrier();
    }
    [[unroll]] for (uint i = 0u; i < 4u; ++i) {
        [[unroll]] for (uint j = 0u; j < 4u; ++j) {
            if (i + j > 0u) acc[0][0] += acc[i][j];
        }
    }
    coopMatStore(acc[0][0], o, (gl_WorkGroupID.x * 8u + sg) * 256u, 16u, gl_CooperativeMatrixLayoutRowMajor);
}
