#version 450
#extension GL_GOOGLE_include_directive : require
// softmax_team256: a row per workgroup, as the library, rows of up to 8192 columns in registers (8 vec4
// per lane), each combine a butterfly in every warp and one barrier to add the 8 warps' values.
#define TEAM 256u
#define G 8u
#include "softmax_body.glsl"
