#version 450
// Uniform buffers (std140 arrays and matrices) next to storage buffers; a descriptor array.
layout(local_size_x = 4, local_size_y = 4, local_size_z = 4) in;
layout(std140, set = 0, binding = 0) uniform Cfg { float weights[4]; mat4 m; vec3 v; } cfg;
layout(std140, set = 0, binding = 1) uniform Other { uvec2 dims; } other;
layout(set = 0, binding = 2) readonly buffer Src { vec4 s[]; } srcs[3];
layout(set = 0, binding = 3) writeonly buffer Dst { vec4 d[]; } dst;
void main() {
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * other.dims.x;
    dst.d[i] = cfg.m * srcs[1].s[i] * cfg.weights[2] + vec4(cfg.v, 0.0) + srcs[2].s[i];
}
