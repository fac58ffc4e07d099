#version 450
// add: out[i] = a[i] + b[i] for i < n.
// Buffers hold raw 32-bit words so one shader serves every element type: kind 0 adds them as float32,
// kind 1 as two's-complement integers (wrapping addition is the same for int32 and uint32).
// Grid-stride loop: any n runs within the 65535-workgroup dispatch limit.
layout(local_size_x = 256) in;

layout(std430, set = 0, binding = 0) readonly buffer InA { uint a[]; };
layout(std430, set = 0, binding = 1) readonly buffer InB { uint b[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Out { uint o[]; };
layout(push_constant) uniform Params { uint n; uint kind; } p;

void main() {
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < p.n; i += stride) {
        if (p.kind == 0u) {
            o[i] = floatBitsToUint(uintBitsToFloat(a[i]) + uintBitsToFloat(b[i]));
        } else {
            o[i] = a[i] + b[i];
        }
    }
}
