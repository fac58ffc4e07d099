#version 450
#extension GL_GOOGLE_include_directive : require
// gemm_f16: float32 C = A @ B for float16 A and B on any device (the body is gemm_half.glsl).
#define HALF_BF16 0
#include "gemm_half.glsl"
