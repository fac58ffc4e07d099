#version 450
#extension GL_GOOGLE_include_directive : require
// sgemm128_vec4b_splitk_interior: gemm128 (VEC4_B + SPLIT_K, dispatched with one slice) with a copy of the
// K loop whose global loads are untested for workgroups wholly inside the matrices (INTERIOR).
#define VEC4_B
#define SPLIT_K
#define INTERIOR
#include "../../shaders/gemm128.glsl"
