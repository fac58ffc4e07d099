#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : enable
// stream_saxpy_v4x1: alpha * x + y in float32 (the driver may fuse it); the library saxpy's bindings and push constants, 1 uvec4 per thread per step.
#define ARITY 2
#define PER 1u
#define PUSH uint n; float alpha;
#include "stream_body.glsl"
uvec4 op4(uvec4 x, uvec4 y) { return floatBitsToUint(p.alpha * uintBitsToFloat(x) + uintBitsToFloat(y)); }
uint op1(uint x, uint y) { return floatBitsToUint(p.alpha * uintBitsToFloat(x) + uintBitsToFloat(y)); }
