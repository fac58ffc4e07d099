#version 450
#extension GL_GOOGLE_include_directive : require
// saxpy: out[i] = alpha * x[i] + y[i] for i < n, float32 (the driver may fuse it into one fma); the body,
// uvec4 accesses and grid-stride, is stream.glsl.
#define ARITY 2
#define PER 4u
#define PUSH uint n; float alpha;
#include "stream.glsl"
uvec4 op4(uvec4 x, uvec4 y) { return floatBitsToUint(p.alpha * uintBitsToFloat(x) + uintBitsToFloat(y)); }
uint op1(uint x, uint y) { return floatBitsToUint(p.alpha * uintBitsToFloat(x) + uintBitsToFloat(y)); }
