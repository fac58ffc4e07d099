#version 450
#extension GL_GOOGLE_include_directive : require
// sgemm128_midfetch: gemm128 with the next step's global loads issued halfway through the k loop instead
// of before it: less latency hidden, but the loaded registers are live over half the FMAs only.
#define MID_FETCH
#include "../../shaders/gemm128.glsl"
