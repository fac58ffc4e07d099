#version 450
#extension GL_GOOGLE_include_directive : require
// sgemm128_splitk: gemm128 with deterministic split K over gl_NumWorkGroups.z (an [S, M, N] partial that
// sgemm_splitk_reduce sums in a fixed order), for small grids: 1024^3 has 64 blocks of 128x128 on 132 SMs.
#define SPLIT_K
#include "../../shaders/gemm128.glsl"
