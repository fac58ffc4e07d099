#version 450
#extension GL_EXT_nonuniform_qualifier : require
// An unsized descriptor array (count 0) beside a sized one.
// targets: vulkan1.1 vulkan1.3
layout(local_size_x = 32) in;
layout(set = 0, binding = 0) readonly buffer Tables { float t[]; } tables[];
layout(set = 0, binding = 1) buffer Out { float o[]; } outs[2];
void main() {
    uint i = gl_GlobalInvocationID.x;
    outs[1].o[i] = tables[nonuniformEXT(i % 4u)].t[i];
}
