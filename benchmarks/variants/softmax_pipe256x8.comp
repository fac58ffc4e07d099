#version 450
#extension GL_GOOGLE_include_directive : require
// softmax_pipe256x8: the library's shape (256 invocations, 8 vec4 per lane) with the next block of rows
// loaded before the current one is reduced, for a grid of several blocks per workgroup.
#define WG 256u
#define G 8u
#define PREFETCH
#include "softmax_fit_body.glsl"
