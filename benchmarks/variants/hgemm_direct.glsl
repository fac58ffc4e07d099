#version 450
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_control_flow_attributes : enable
// A probe, not a library candidate: cooperative-matrix fragments loaded straight from the storage buffers
// (no shared memory, no barriers; the L1 cache serves the subgroups that share rows or columns). It handles
// only full tiles with K and N multiples of 16 ("_full" in its name: bench_gemm_half.py checks it on such
// sizes only), to measure whether the shared-memory staging of gemm_half_coopmat.glsl is what limits it.
#ifndef BM
#define BM 128u
#define BN 128u
#define WM 64u
#define WN 32u
#endif
const uint SUBGROUPS = (BM / WM) * (BN / WN);
layout(local_size_x = SUBGROUPS * 32u) in;
layout(std430, set = 0, binding = 0) readonly buffer InA { uvec4 a4[]; };
layout(std430, set = 0, binding = 1) readonly buffer InB { uvec4 b4[]; };
layout(std430, set = 0, binding = 2) writeonly buffer OutC { float c[]; };
layout(push_constant) uniform Params { uint M; uint N; uint K; } p;
const uint FM = WM / 16u;
const uint FN = WN / 16u;

void main() {
    uint sg = gl_SubgroupID;
    uint r0 = gl_WorkGroupID.y * BM + (sg / (BN / WN)) * WM;
    uint c0 = gl_WorkGroupID.x * BN + (sg % (BN / WN)) * WN;
    coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator> acc[FM][FN];
    [[unroll]] for (uint i = 0u; i < FM; ++i)
        [[unroll]] for (uint j = 0u; j < FN; ++j)
            acc[i][j] = coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator>(0.0);
    uint sa = p.K / 8u;
    uint sb = p.N / 8u;
    for (uint k = 0u; k < p.K; k += 16u) {
        coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseA> fa[FM];
        coopmat<float16_t, gl_ScopeSubgroup, 16, 16, gl_MatrixUseB> fb[FN];
        [[unroll]] for (uint i = 0u; i < FM; ++i)
            coopMatLoad(fa[i], a4, (r0 + i * 16u) * sa + k / 8u, sa, gl_CooperativeMatrixLayoutRowMajor);
        [[unroll]] for (uint j = 0u; j < FN; ++j)
            coopMatLoad(fb[j], b4, k * sb + (c0 + j * 16u) / 8u, sb, gl_CooperativeMatrixLayoutRowMajor);
        [[unroll]] for (uint i = 0u; i < FM; ++i)
            [[unroll]] for (uint j = 0u; j < FN; ++j) acc[i][j] = coopMatMulAdd(fa[i], fb[j], acc[i][j]);
    }
    [[unroll]] for (uint i = 0u; i < FM; ++i)
        [[unroll]] for (uint j = 0u; j < FN; ++j)
            coopMatStore(acc[i][j], c, (r0 + i * 16u) * p.N + c0 + j * 16u, p.N, gl_CooperativeMatrixLayoutRowMajor);
}
