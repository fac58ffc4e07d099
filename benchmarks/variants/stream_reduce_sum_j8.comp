#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : enable
// stream_reduce_sum_j8: the two-level fixed-order reduce_sum pass over chunks of 8192 elements (8 uvec4 per thread).
#define J 8u
#include "stream_reduce_body.glsl"
