#version 450
#extension GL_GOOGLE_include_directive : require
// sgemm128_vec4b_midfetch: gemm128 (which reads B as whole vec4: VEC4_B) with the next step's global loads
// issued halfway through the k loop (sgemm128_midfetch), now that they are 1 vec4 of B, not 4 scalars.
#define VEC4_B
#define MID_FETCH
#include "../../shaders/gemm128.glsl"
