#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : enable
// stream_relu_v4x1: x > 0 ? x : 0 in float32, a selection (bit exact); the library relu's bindings and push constants, 1 uvec4 per thread per step.
#define ARITY 1
#define PER 1u
#define PUSH uint n;
#include "stream_body.glsl"
uvec4 op4(uvec4 x, uvec4 y) { vec4 f = uintBitsToFloat(x); return floatBitsToUint(mix(vec4(0.0), f, greaterThan(f, vec4(0.0)))); }
uint op1(uint x, uint y) { float f = uintBitsToFloat(x); return floatBitsToUint(f > 0.0 ? f : 0.0); }
