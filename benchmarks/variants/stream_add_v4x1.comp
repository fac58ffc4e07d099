#version 450
#extension GL_GOOGLE_include_directive : require
// stream_add_v4x1: the library add (shaders/add.comp) with one uvec4 group per thread per step instead of
// 4, at the grid of a workgroup per 256 groups: the alternative round 1 measured beside the promoted one.
#define ARITY 2
#define PER 1u
#define PUSH uint n; uint kind;
#include "../../shaders/stream.glsl"
uvec4 op4(uvec4 x, uvec4 y) { return p.kind == 0u ? floatBitsToUint(uintBitsToFloat(x) + uintBitsToFloat(y)) : x + y; }
uint op1(uint x, uint y) { return p.kind == 0u ? floatBitsToUint(uintBitsToFloat(x) + uintBitsToFloat(y)) : x + y; }
