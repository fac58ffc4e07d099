#version 450
#extension GL_GOOGLE_include_directive : require
// sgemm128_bk16: gemm128 with a K step of 16: half the barriers and stash rounds per FMA, twice the
// loads in flight (2 vec4 of A and 2 of B per invocation), 33 KiB of shared memory per workgroup.
#define BK 16
#include "../../shaders/gemm128.glsl"
