#version 450
// o = x * k with k read from a uniform buffer (binding 1).
layout(local_size_x = 32) in;
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std140, set = 0, binding = 1) uniform K { float k; uint n; } u;
layout(set = 0, binding = 2) writeonly buffer Out { float o[]; };
void main() {
    uint i = gl_GlobalInvocationID.x;
    if (i < u.n) o[i] = x[i] * u.k;
}
