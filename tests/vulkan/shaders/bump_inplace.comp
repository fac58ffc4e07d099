#version 450
// Writes its input binding (x += 1) and copies the result out: the backend must not reuse x's copy.
layout(local_size_x = 64) in;
layout(set = 0, binding = 0) buffer X { uint x[]; };
layout(set = 0, binding = 1) writeonly buffer Out { uint o[]; };
layout(push_constant) uniform P { uint n; } pc;
void main() {
    uint i = gl_GlobalInvocationID.x;
    if (i < pc.n) { x[i] += 1u; o[i] = x[i]; }
}
