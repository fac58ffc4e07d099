#version 450
// relu: out[i] = x[i] > 0 ? x[i] : 0 for i < n (float32). A selection, so the result is exact.
layout(local_size_x = 256) in;

layout(std430, set = 0, binding = 0) readonly buffer InX { float x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Out { float o[]; };
layout(push_constant) uniform Params { uint n; } p;

void main() {
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < p.n; i += stride) {
        float v = x[i];
        o[i] = v > 0.0 ? v : 0.0;
    }
}
