#version 450
#extension GL_GOOGLE_include_directive : require
// sgemm128_vec4b_vec4a_splitk: gemm128 (which reads B as whole vec4: VEC4_B) with A read as whole vec4 along k
// (sgemm128_vec4b_vec4a) and split K (sgemm128_vec4b_splitk): the candidate for 1024^3-class grids if both
// win.
#define VEC4_B
#define VEC4_A
#define SPLIT_K
#include "../../shaders/gemm128.glsl"
