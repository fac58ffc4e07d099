#version 450
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_control_flow_attributes : enable
// The cooperative-matrix ceiling: each of 8 subgroups per workgroup loads one TM x TK A and one TK x TN B
// fragment once, then runs `iters` rounds of NACC independent coopMatMulAdd into float32 accumulators held
// in registers (enough of them to hide the multiply-add latency), and stores their sum (so nothing is dead,
// and the output is too small to matter). No memory traffic in the loop: the GPU time is the
// multiply-add rate of the tile. Built for float16 and, by build_coopmat_variants.py, bfloat16.
// Bindings: 0 the fragments' source (uint words, zeros do), 1 the float32 output (8 * TM * TN per
// workgroup). Push constant: iters.
#ifndef NACC
#define NACC 8u
#endif
layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer Src { uvec4 src[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Out { float o[]; };
layout(push_constant) uniform Params { uint iters; } p;

void main() {
    coopmat<float16_t, gl_ScopeSubgroup, TM, TK, gl_MatrixUseA> a;
    coopmat<float16_t, gl_ScopeSubgroup, TK, TN, gl_MatrixUseB> b;
    coopMatLoad(a, src, 0u, TK / 8u, gl_CooperativeMatrixLayoutRowMajor);
    coopMatLoad(b, src, 0u, TN / 8u, gl_CooperativeMatrixLayoutRowMajor);
    coopmat<float, gl_ScopeSubgroup, TM, TN, gl_MatrixUseAccumulator> acc[NACC];
    [[unroll]] for (uint i = 0u; i < NACC; ++i) acc[i] = coopmat<float, gl_ScopeSubgroup, TM, TN, gl_MatrixUseAccumulator>(0.0);
    for (uint it = 0u; it < p.iters; ++it) {
        [[unroll]] for (uint i = 0u; i < NACC; ++i) acc[i] = coopMatMulAdd(a, b, acc[i]);
    }
    [[unroll]] for (uint i = 1u; i < NACC; ++i) acc[0] += acc[i];
    coopMatStore(acc[0], o, (gl_WorkGroupID.x * 8u + gl_LocalInvocationID.x / 32u) * TM * TN, TN,
                 gl_CooperativeMatrixLayoutRowMajor);
}
