#version 450
#extension GL_GOOGLE_include_directive : require
// sgemm128_bk16_staged: sgemm128_bk16 with the next step's loads cut in two halves, the second issued
// halfway through the k loop once the first is stashed: half the barriers of gemm128, its registers in flight.
#define BK 16
#define STAGED
#include "../../shaders/gemm128.glsl"
