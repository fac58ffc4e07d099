#version 450
#extension GL_GOOGLE_include_directive : require
// mul: out[i] = a[i] * b[i] for i < n (the body, uvec4 accesses and grid-stride, is stream.glsl).
// Raw 32-bit words: kind 0 multiplies float32, kind 1 keeps the low 32 bits of the integer product (the
// same for int32 and uint32).
#define ARITY 2
#define PER 4u
#define PUSH uint n; uint kind;
#include "stream.glsl"
uvec4 op4(uvec4 x, uvec4 y) { return p.kind == 0u ? floatBitsToUint(uintBitsToFloat(x) * uintBitsToFloat(y)) : x * y; }
uint op1(uint x, uint y) { return p.kind == 0u ? floatBitsToUint(uintBitsToFloat(x) * uintBitsToFloat(y)) : x * y; }
