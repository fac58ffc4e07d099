#version 450
#extension GL_GOOGLE_include_directive : require
// conv2d, NCHW, float32, as an implicit GEMM (shaders/conv2d.glsl says how): 64 output channels by 128
// output pixels per workgroup of 16x8 threads, 8x8 outputs per thread (4 vec4 reads from shared memory per
// 64 fma), taps in (r, s, c) order, 8 channels a step. Dispatch: [min(ceil(N*OH*OW / 128), 65535),
// ceil(K / 64), 1].
#define TM 8u
#define TN 8u
#define BK 8u
#define TY 8u
#include "conv2d.glsl"
