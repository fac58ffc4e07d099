#version 450
#extension GL_GOOGLE_include_directive : require
// sgemm128_base: gemm128 from sgemm128_body.glsl with no change, the control: its registers and times
// should match shaders/gemm128's, or the other sgemm128_* differ from gemm128 in more than their one change.
#include "sgemm128_body.glsl"
