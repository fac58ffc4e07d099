#version 450
#extension GL_GOOGLE_include_directive : require
// sgemm128_vec4b_t8_block32x32: gemm128's body over a 32x32 block, 32 invocations of 8x4, K step 8 (products of few rows).
#define VEC4_B
#define SPLIT_K
#define BM 32
#define BN 32
#define TX 8
#include "../../shaders/gemm128.glsl"
