#version 450
// Busy work for the timeout tests: every workgroup runs a xorshift chain of `steps` iterations (no compiler
// can shorten it), so a dispatch keeps the device busy for as long as its workgroup count makes it
// (llvmpipe ends any one loop after 65535 iterations, so the length comes from the workgroups).
layout(local_size_x = 1) in;
layout(push_constant) uniform Push { uint steps; } pc;
layout(std430, binding = 0) writeonly buffer Out { uint value[]; } result;

void main() {
    uint x = 2463534242u + gl_WorkGroupID.x;
    for (uint i = 0u; i < pc.steps; ++i) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
    }
    result.value[gl_WorkGroupID.x] = x;
}
