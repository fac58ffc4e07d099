#version 450
#extension GL_GOOGLE_include_directive : require
// sgemm128_vec4b_t8_block128x64: gemm128's body over a 128x64 block, 128 invocations of 8x8, K step 8 (mid-size products).
#define VEC4_B
#define SPLIT_K
#define BM 128
#define BN 64
#define TX 8
#include "../../shaders/gemm128.glsl"
