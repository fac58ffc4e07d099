#version 450
#extension GL_GOOGLE_include_directive : require
// sgemm128_vec4b_vec4store: gemm128 (which reads B as whole vec4: VEC4_B) with C written as whole vec4 when N
// is a multiple of 4 (sgemm128_vec4store).
#define VEC4_B
#define VEC4_STORE
#include "../../shaders/gemm128.glsl"
