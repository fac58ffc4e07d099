#version 450
#extension GL_GOOGLE_include_directive : require
// sgemm_128x128_k8_w32x64: the CUTLASS SIMT default: 128x128x8 block, 8 warps of 32x64, lanes 4x8, 8x8 per thread.
#define BM 128
#define BN 128
#define BK 8
#define WM 32
#define WN 64
#define LR 4
#define LC 8
#define TM 8
#define TN 8
#define GROUP 8
#include "sgemm_body.glsl"
