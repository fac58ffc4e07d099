#version 450
#extension GL_GOOGLE_include_directive : require
// sgemm128_vec4b_warptiles: gemm128 (which reads B as whole vec4: VEC4_B) with each 32-invocation subgroup
// owning a 32x64 sub-block of C (sgemm128_warptiles): 4 shared wavefronts per k instead of 6, which gave
// nothing alone while B's loads were scalar.
#define VEC4_B
#define WARP_TILES
#include "../../shaders/gemm128.glsl"
