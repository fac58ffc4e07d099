#version 450
#extension GL_GOOGLE_include_directive : require
// conv2d_64x128_k16: implicit-GEMM conv2d, 64 channels by 128 pixels (a block as tall as a 64-channel
// layer), 4x8 per thread, taps in steps of 16.
#define TM 4u
#define TN 8u
#define BK 16u
#include "conv2d_body.glsl"
