#version 450
#extension GL_GOOGLE_include_directive : require
// sgemm_128x128_k16_w64x32: 128x128 block, K step 16, 8 warps of 64x32, lanes 8x4, 8x8 per thread.
#define BM 128
#define BN 128
#define BK 16
#define WM 64
#define WN 32
#define LR 8
#define LC 4
#define TM 8
#define TN 8
#define GROUP 8
#include "sgemm_body.glsl"
