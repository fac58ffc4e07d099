#version 450
#extension GL_GOOGLE_include_directive : require
// softmax_pipe512x4: fit512x4 (512 invocations, 4 vec4 per lane: rows of 8192 on the whole workgroup) with
// the next block of rows loaded before the current one is reduced, for a grid of several blocks per
// workgroup.
#define WG 512u
#define G 4u
#define PREFETCH
#include "softmax_fit_body.glsl"
