#version 450
#extension GL_GOOGLE_include_directive : require
// sgemm128_vec4b: gemm128 with each row of B's tile read as whole vec4 (1 load per invocation and step,
// not 4 scalar ones 16 bytes apart) when N is a multiple of 4; A's loads and everything else unchanged.
#define VEC4_B
#include "../../shaders/gemm128.glsl"
