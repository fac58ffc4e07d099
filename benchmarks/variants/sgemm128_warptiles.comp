#version 450
#extension GL_GOOGLE_include_directive : require
// sgemm128_warptiles: gemm128 with each 32-invocation subgroup owning a 32x64 sub-block of C (lanes 4x8,
// 8x8 each): per k a subgroup reads 4 distinct vec4 of A (broadcast) and 8 consecutive of B, 4 shared
// wavefronts instead of 6; registers, loads and shared tiles unchanged.
#define WARP_TILES
#include "../../shaders/gemm128.glsl"
