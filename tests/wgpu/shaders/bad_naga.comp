#version 450
// Valid SPIR-V that naga refuses (8-bit storage), with no WGSL variant: the error path.
#extension GL_EXT_shader_explicit_arithmetic_types_int8 : require
#extension GL_EXT_shader_8bit_storage : require
layout(local_size_x = 64) in;
layout(set = 0, binding = 0) buffer A { uint8_t a[]; };
void main() { a[gl_GlobalInvocationID.x] = a[gl_GlobalInvocationID.x] + uint8_t(1); }
