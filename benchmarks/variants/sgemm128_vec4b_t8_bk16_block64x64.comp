#version 450
#extension GL_GOOGLE_include_directive : require
// sgemm128_vec4b_t8_bk16_block64x64: gemm128's body over a 64x64 block, 64 invocations of 8x8, K step 16 (mid-size products).
#define VEC4_B
#define SPLIT_K
#define BM 64
#define BN 64
#define TX 8
#define BK 16
#include "../../shaders/gemm128.glsl"
