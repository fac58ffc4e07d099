#version 450
#extension GL_GOOGLE_include_directive : require
// relu: out[i] = x[i] > 0 ? x[i] : 0 for i < n, float32 (the body, uvec4 accesses and grid-stride, is
// stream.glsl). The raw word is selected, not a float moved, so the result is exact.
#define ARITY 1
#define PER 4u
#define PUSH uint n;
#include "stream.glsl"
uvec4 op4(uvec4 x, uvec4 y) { return mix(uvec4(0u), x, greaterThan(uintBitsToFloat(x), vec4(0.0))); }
uint op1(uint x, uint y) { return uintBitsToFloat(x) > 0.0 ? x : 0u; }
