#version 450
#extension GL_GOOGLE_include_directive : require
// softmax_fit512x4: 512 invocations, 4 vec4 per lane: fewer registers, more lanes per row (1024 columns on
// 64-lane teams, 8192 on the whole workgroup).
#define WG 512u
#define G 4u
#include "softmax_fit_body.glsl"
