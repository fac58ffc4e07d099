#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : enable
// stream_mul_v4x1: float32 or integer multiply (push kind 0 / 1), bit exact; the library mul's bindings and push constants, 1 uvec4 per thread per step.
#define ARITY 2
#define PER 1u
#define PUSH uint n; uint kind;
#include "stream_body.glsl"
uvec4 op4(uvec4 x, uvec4 y) { return p.kind == 0u ? floatBitsToUint(uintBitsToFloat(x) * uintBitsToFloat(y)) : x * y; }
uint op1(uint x, uint y) { return p.kind == 0u ? floatBitsToUint(uintBitsToFloat(x) * uintBitsToFloat(y)) : x * y; }
