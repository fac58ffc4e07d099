#version 450
#extension GL_GOOGLE_include_directive : require
// softmax_fit256x8: 256 invocations, 8 vec4 per lane: rows of 1024 columns on 32-lane teams (8 rows per
// workgroup, no barrier where subgroups have 32 lanes), rows of 8192 on the whole workgroup.
#define WG 256u
#define G 8u
#include "softmax_fit_body.glsl"
