#version 450
// Copies x to y, then adds 1 to x in place: a shader that writes one of its inputs.
layout(local_size_x = 64) in;
layout(set = 0, binding = 0) buffer X { int x[]; };
layout(set = 0, binding = 1) writeonly buffer Y { int y[]; };
void main() {
    uint i = gl_GlobalInvocationID.x;
    if (i < uint(y.length())) {
        y[i] = x[i];
        x[i] += 1;
    }
}
