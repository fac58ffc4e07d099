#version 450
#extension GL_GOOGLE_include_directive : require
// conv2d_rsc4x8_k16: the library's taps order and gathers (shaders/conv2d.glsl) on the previous library's
// tiling: 64 channels by 128 pixels, 256 threads, 4x8 outputs each, 16 channels a step.
#define TM 4u
#define TN 8u
#define BK 16u
#define TY 16u
#include "../../shaders/conv2d.glsl"
