#version 450
// y += x, then z = y: a shader that reads one input and writes another, so a plan that passes the same
// tensor as x and y binds one buffer both read-only and read-write in one dispatch.
layout(local_size_x = 64) in;
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) buffer Y { float y[]; };
layout(set = 0, binding = 2) writeonly buffer Z { float z[]; };
void main() {
    uint i = gl_GlobalInvocationID.x;
    if (i < uint(z.length())) {
        y[i] += x[i];
        z[i] = y[i];
    }
}
