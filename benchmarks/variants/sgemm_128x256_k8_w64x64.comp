#version 450
#extension GL_GOOGLE_include_directive : require
// sgemm_128x256_k8_w64x64: 128x256 block, 8 warps of 64x64, lanes 8x4, 8x16 per thread.
#define BM 128
#define BN 256
#define BK 8
#define WM 64
#define WN 64
#define LR 8
#define LC 4
#define TM 8
#define TN 16
#define GROUP 8
#include "sgemm_body.glsl"
