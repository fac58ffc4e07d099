#version 450
#extension GL_GOOGLE_include_directive : require
// conv2d_128x128_k8: implicit-GEMM conv2d, gemm128.comp's tiling: a 128x128 block, 8x8 per thread, taps in steps of 8.
#define TM 8u
#define TN 8u
#define BK 8u
#include "conv2d_body.glsl"
