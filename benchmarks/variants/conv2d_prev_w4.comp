#version 450
#extension GL_GOOGLE_include_directive : require
// conv2d_prev_w4: conv2d_prev with the filter loaded from global memory as whole vec4 (4 taps of one
// output channel, where C*R*S is a multiple of 4), staged transposed (conv2d_crs_body.glsl).
#define TM 4u
#define TN 8u
#define BK 16u
#define W4
#include "conv2d_crs_body.glsl"
