#version 450
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
// The workgroup-scope ceiling (VK_NV_cooperative_matrix2): a register-only loop of BM x BN += (BM x BK) *
// (BK x BN) products on matrices filled once, iters (push constant) times; each workgroup's accumulator
// stored, so the loop is kept. BM, BN, BK and WG come from variants/build_coopmat_variants.py.
// Dispatch: [groups, 1, 1] of WG invocations.
layout(local_size_x = WG) in;
layout(std430, set = 0, binding = 0) readonly buffer In { uint seed[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Out { float o[]; };
layout(push_constant) uniform Params { uint iters; } p;

void main() {
    coopmat<float16_t, gl_ScopeWorkgroup, BM, BK, gl_MatrixUseA> fa =
        coopmat<float16_t, gl_ScopeWorkgroup, BM, BK, gl_MatrixUseA>(float16_t(uintBitsToFloat(seed[0] & 0x3c00u)));
    coopmat<float16_t, gl_ScopeWorkgroup, BK, BN, gl_MatrixUseB> fb =
        coopmat<float16_t, gl_ScopeWorkgroup, BK, BN, gl_MatrixUseB>(float16_t(0.5));
    coopmat<float, gl_ScopeWorkgroup, BM, BN, gl_MatrixUseAccumulator> acc =
        coopmat<float, gl_ScopeWorkgroup, BM, BN, gl_MatrixUseAccumulator>(0.0);
    for (uint i = 0u; i < p.iters; ++i) {
        acc = coopMatMulAdd(fa, fb, acc);
    }
    coopMatStore(acc, o, gl_WorkGroupID.x * BM * BN, BN, gl_CooperativeMatrixLayoutRowMajor);
}
