#version 450
#extension GL_GOOGLE_include_directive : require
// sgemm128_vec4b_vec4a: gemm128 (which reads B as whole vec4: VEC4_B) with A read as whole vec4 along k too
// when K is a multiple of 4 (4 consecutive k of one row, stored into As a word at a time): every global load
// of a step is one 128-bit load.
#define VEC4_B
#define VEC4_A
#include "../../shaders/gemm128.glsl"
