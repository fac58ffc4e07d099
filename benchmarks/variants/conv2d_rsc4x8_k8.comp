#version 450
#extension GL_GOOGLE_include_directive : require
// conv2d_rsc4x8_k8: the library conv2d's block (64 channels by 128 pixels, shaders/conv2d.glsl) on 256
// threads, 4x8 outputs each, 8 channels a step: half the registers per thread, twice the warps to hide
// the gathers.
#define TM 4u
#define TN 8u
#define BK 8u
#define TY 16u
#include "../../shaders/conv2d.glsl"
