#version 450
#extension GL_GOOGLE_include_directive : require
// gemm_bf16: float32 C = A @ B for bfloat16 A and B on any device (the body is gemm_half.glsl).
#define HALF_BF16 1
#include "gemm_half.glsl"
