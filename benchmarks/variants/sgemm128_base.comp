#version 450
#extension GL_GOOGLE_include_directive : require
// sgemm128_base: shaders/gemm128.glsl with no switch, round 1's control: gemm128 as it was before VEC4_B was
// promoted into it (sgemm128_vec4b is round 2's control).
#include "../../shaders/gemm128.glsl"
