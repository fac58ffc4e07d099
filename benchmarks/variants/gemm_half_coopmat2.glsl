#version 450
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_control_flow_attributes : enable
// Candidate: C[M,N] (float32) = A[M,K] @ B[K,N] (16-bit floats, row-major) on workgroup-scope cooperative
// matrices (VK_NV_cooperative_matrix2: the driver spreads a BM x BN accumulator over the workgroup and
// stages the operands itself). Interior only: M % BM == 0, N % BN == 0, K % BK == 0 (the benchmark checks
// and times aligned shapes). Operands are read straight from the storage buffers with coopMatLoad.
// On the H200 this lost to the library's subgroup-scope shader by 4x or more in every tiling tried
// (prefetching the next step's operands, 128 or 256 invocations, tiles 128..256 wide, K 32 or 64:
// docs/BENCHMARKS.md); the one kept is the best of them.
// BM, BN, BK and WG come from variants/build_coopmat_variants.py. Dispatch: [N / BN, M / BM, 1], WG
// invocations (the driver's flexible-dimension entry for that size).
layout(local_size_x = WG) in;

layout(std430, set = 0, binding = 0) readonly buffer InA { float16_t a[]; };
layout(std430, set = 0, binding = 1) readonly buffer InB { float16_t b[]; };
layout(std430, set = 0, binding = 2) writeonly buffer OutC { float c[]; };
layout(push_constant) uniform Params { uint M; uint N; uint K; } p;

#define MAT_A coopmat<float16_t, gl_ScopeWorkgroup, BM, BK, gl_MatrixUseA>
#define MAT_B coopmat<float16_t, gl_ScopeWorkgroup, BK, BN, gl_MatrixUseB>
#define MAT_C coopmat<float, gl_ScopeWorkgroup, BM, BN, gl_MatrixUseAccumulator>

void main() {
    uint row0 = gl_WorkGroupID.y * BM;
    uint col0 = gl_WorkGroupID.x * BN;
    MAT_C acc = MAT_C(0.0);
    uint steps = p.K / BK;
    for (uint s = 0u; s < steps; ++s) {
        MAT_A fa;
        MAT_B fb;
        coopMatLoad(fa, a, row0 * p.K + s * BK, p.K, gl_CooperativeMatrixLayoutRowMajor);
        coopMatLoad(fb, b, s * BK * p.N + col0, p.N, gl_CooperativeMatrixLayoutRowMajor);
        acc = coopMatMulAdd(fa, fb, acc);
    }
    coopMatStore(acc, c, row0 * p.N + col0, p.N, gl_CooperativeMatrixLayoutRowMajor);
}
