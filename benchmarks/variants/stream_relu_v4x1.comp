#version 450
#extension GL_GOOGLE_include_directive : require
// stream_relu_v4x1: the library relu (shaders/relu.comp) with one uvec4 group per thread per step instead of
// 4, at the grid of a workgroup per 256 groups: the alternative round 1 measured beside the promoted one.
#define ARITY 1
#define PER 1u
#define PUSH uint n;
#include "../../shaders/stream.glsl"
uvec4 op4(uvec4 x, uvec4 y) { return mix(uvec4(0u), x, greaterThan(uintBitsToFloat(x), vec4(0.0))); }
uint op1(uint x, uint y) { return uintBitsToFloat(x) > 0.0 ? x : 0u; }
