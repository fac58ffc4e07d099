#version 450
#extension GL_GOOGLE_include_directive : require
// sgemm_256x128_k8_w64x64: 256x128 block, 8 warps of 64x64, lanes 4x8, 16x8 per thread.
#define BM 256
#define BN 128
#define BK 8
#define WM 64
#define WN 64
#define LR 4
#define LC 8
#define TM 16
#define TN 8
#define GROUP 8
#include "sgemm_body.glsl"
