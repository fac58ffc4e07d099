#version 450
#extension GL_GOOGLE_include_directive : require
// sgemm128_vec4b_t16_block32x64: gemm128's body over a 32x64 block, 64 invocations of 8x4, K step 8 (mid-size products).
#define VEC4_B
#define SPLIT_K
#define BM 32
#define BN 64
#define TX 16
#include "../../shaders/gemm128.glsl"
