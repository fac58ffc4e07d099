#version 450
#extension GL_GOOGLE_include_directive : require
// conv2d_rsc8x8_k16: the library conv2d (shaders/conv2d.glsl, 64 channels by 128 pixels on 128 threads,
// 8x8 outputs each) with 16 channels a step: half the barriers, more registers.
#define TM 8u
#define TN 8u
#define BK 16u
#define TY 8u
#include "../../shaders/conv2d.glsl"
