#version 450
#extension GL_GOOGLE_include_directive : require
// sgemm128_vec4b_splitk: gemm128 (which reads B as whole vec4: VEC4_B) with deterministic split K over
// gl_NumWorkGroups.z (sgemm128_splitk: an [S, M, N] partial that sgemm_splitk_reduce sums in a fixed order),
// for grids short of 2x the SM count (1024^3, 2048^3). At S = 1 it timed best of all from 2048^3 up, so it is
// the library's gemm128 (shaders/gemm128.comp builds the same SPIR-V).
#define VEC4_B
#define SPLIT_K
#include "../../shaders/gemm128.glsl"
