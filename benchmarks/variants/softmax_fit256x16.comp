#version 450
#extension GL_GOOGLE_include_directive : require
// softmax_fit256x16: 256 invocations, 16 vec4 per lane: 16 loads in flight per lane (1024 columns on
// 16-lane teams, 8192 on 128-lane teams, 2 rows per workgroup), rows of up to 16384 in registers.
#define WG 256u
#define G 16u
#include "softmax_fit_body.glsl"
