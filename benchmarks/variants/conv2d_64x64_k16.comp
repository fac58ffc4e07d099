#version 450
#extension GL_GOOGLE_include_directive : require
// conv2d_64x64_k16: implicit-GEMM conv2d, gemm.comp's tiling: a 64x64 block, 4x4 per thread, taps in steps of 16.
#define TM 4u
#define TN 4u
#define BK 16u
#include "conv2d_body.glsl"
