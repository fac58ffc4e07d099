#version 450
#extension GL_GOOGLE_include_directive : require
// sgemm_128x64_k8_w32x64: 128x64 block (twice the 128x128 grid, for 1024^3), 4 warps of 32x64, lanes 4x8, 8x8 per thread.
#define BM 128
#define BN 64
#define BK 8
#define WM 32
#define WN 64
#define LR 4
#define LC 8
#define TM 8
#define TN 8
#define GROUP 8
#include "sgemm_body.glsl"
