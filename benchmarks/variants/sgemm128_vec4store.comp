#version 450
#extension GL_GOOGLE_include_directive : require
// sgemm128_vec4store: gemm128 with C stored as whole vec4 (16 stores per invocation, not 64) when N is a
// multiple of 4; gemm128 already issues the next step's global loads before the FMA loop (see midfetch).
#define VEC4_STORE
#include "../../shaders/gemm128.glsl"
