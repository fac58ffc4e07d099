#version 450
// saxpy: out[i] = alpha * x[i] + y[i] for i < n (float32; the driver may fuse this into one fma).
layout(local_size_x = 256) in;

layout(std430, set = 0, binding = 0) readonly buffer InX { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer InY { float y[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Out { float o[]; };
layout(push_constant) uniform Params { uint n; float alpha; } p;

void main() {
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < p.n; i += stride) {
        o[i] = p.alpha * x[i] + y[i];
    }
}
