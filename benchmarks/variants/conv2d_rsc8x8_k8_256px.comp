#version 450
#extension GL_GOOGLE_include_directive : require
// conv2d_rsc8x8_k8_256px: the library conv2d (shaders/conv2d.glsl, 8x8 outputs per thread, 8 channels a
// step) on a block of 64 channels by 256 pixels, 32x8 = 256 threads: each filter tile in shared memory
// serves twice the pixels.
#define TM 8u
#define TN 8u
#define BK 8u
#define TX 32u
#define TY 8u
#include "../../shaders/conv2d.glsl"
