#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : enable
// stream_reduce_sum_j16: the two-level fixed-order reduce_sum pass over chunks of 16384 elements (16 uvec4 per thread).
#define J 16u
#include "stream_reduce_body.glsl"
