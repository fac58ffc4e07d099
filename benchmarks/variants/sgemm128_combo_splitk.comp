#version 450
#extension GL_GOOGLE_include_directive : require
// sgemm128_combo_splitk: not a one-change candidate but the changes that add no registers together
// (warptiles, vec4store, vec4b, splitk), so that one GPU run can show whether they add up; S = 1 is plain.
#define WARP_TILES
#define VEC4_STORE
#define VEC4_B
#define SPLIT_K
#include "../../shaders/gemm128.glsl"
