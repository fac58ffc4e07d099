#version 450
#extension GL_GOOGLE_include_directive : require
// sgemm128_block128x256: gemm128 widened to a 128x256 block, 8x16 per invocation (2x4 sub-tiles of 4x4):
// 6 shared vec4 reads per 128 FMAs instead of 4 per 64; about 200 registers, so one workgroup per SM.
#define BN 256
#include "../../shaders/gemm128.glsl"
