#version 450
#extension GL_GOOGLE_include_directive : require
// sgemm128_vec4b_block64x128: gemm128's body over a 64x128 block, 128 invocations of 8x8, K step 8 (mid-size products).
#define VEC4_B
#define SPLIT_K
#define BM 64
#define BN 128
#define TX 16
#include "../../shaders/gemm128.glsl"
