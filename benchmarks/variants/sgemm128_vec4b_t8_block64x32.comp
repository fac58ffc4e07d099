#version 450
#extension GL_GOOGLE_include_directive : require
// sgemm128_vec4b_t8_block64x32: gemm128's body over a 64x32 block, 64 invocations of 8x4, K step 8 (mid-size products).
#define VEC4_B
#define SPLIT_K
#define BM 64
#define BN 32
#define TX 8
#include "../../shaders/gemm128.glsl"
