#version 450
#extension GL_GOOGLE_include_directive : require
// softmax_team32: a 32-lane team per row, 8 rows per workgroup, rows of up to 1024 columns in registers
// (8 vec4 per lane); no barrier at all where the subgroup has 32 lanes or more.
#define TEAM 32u
#define G 8u
#include "softmax_body.glsl"
