#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : enable
// stream_reduce_sum_j4: the two-level fixed-order reduce_sum pass over chunks of 4096 elements (4 uvec4 per thread).
#define J 4u
#include "stream_reduce_body.glsl"
