#version 450
// Push constants with nested structs, arrays with strides, column- and row-major matrices.
layout(local_size_x = 8, local_size_y = 8) in;

struct Inner { vec3 dir; float w[3]; mat3 rot; };
struct Outer { uint tag; Inner inner[2]; };
layout(push_constant) uniform Push {
    uint n;
    Outer outer;
    layout(row_major) mat2x3 rm;
    ivec2 pair[2];
    float tail;
} pc;

layout(set = 0, binding = 0) writeonly buffer Out { float o[]; };

void main() {
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * 8u;
    o[i] = float(pc.n + pc.outer.tag) + pc.outer.inner[1].w[2] + pc.outer.inner[0].rot[1][2]
         + pc.rm[1][0] + float(pc.pair[1].y) + pc.tail + pc.outer.inner[1].dir.z;
}
