#version 450
#extension GL_GOOGLE_include_directive : require
// conv2d_prev: the library's previous conv2d, 64 channels by 128 pixels, 4x8 outputs per thread, 16 taps
// a step in (c, r, s) order (conv2d_crs_body.glsl).
#define TM 4u
#define TN 8u
#define BK 16u
#include "conv2d_crs_body.glsl"
