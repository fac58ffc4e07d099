#version 450
#extension GL_EXT_buffer_reference : require
// A push-constant block holding a buffer_reference pointer (a 64-bit device address) before two scalars.
layout(local_size_x = 32) in;
layout(buffer_reference, std430) buffer Vec { float v[]; };
layout(push_constant) uniform Push { Vec data; uint n; float scale; } pc;
void main() {
    uint i = gl_GlobalInvocationID.x;
    if (i < pc.n) pc.data.v[i] *= pc.scale;
}
