#version 450
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
// Capabilities and extensions beyond Shader: subgroup arithmetic, 16-bit storage, float16.
// targets: vulkan1.1 vulkan1.3
layout(local_size_x = 128) in;
layout(set = 0, binding = 0) readonly buffer H { float16_t h[]; };
layout(set = 0, binding = 1) writeonly buffer S { float s[]; };
void main() {
    uint i = gl_GlobalInvocationID.x;
    s[i] = subgroupAdd(float(h[i]));
}
