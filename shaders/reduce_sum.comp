#version 450
// reduce_sum, one pass: partial[g] = the sum of x[512*g .. 512*g + 511] (missing elements count as 0),
// added as a fixed binary tree so every device, and the NumPy reference, performs the same additions:
//   s[t] = x[t] + x[t + 256]              for t < 256
//   s[t] = s[t] + s[t + h]                for h = 128, 64, ..., 1 and t < h
// Words are raw 32 bits: kind 0 adds float32, kind 1 wrapping int32. The workgroup index is
// gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x so more than 65535 chunks fit one dispatch.
layout(local_size_x = 256) in;

layout(std430, set = 0, binding = 0) readonly buffer In { uint x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Out { uint partial[]; };
layout(push_constant) uniform Params { uint n; uint kind; } p;

shared uint s[256];

uint plus(uint u, uint v) {
    if (p.kind == 0u) {
        return floatBitsToUint(uintBitsToFloat(u) + uintBitsToFloat(v));
    }
    return u + v;
}

void main() {
    uint g = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    uint chunks = (p.n + 511u) / 512u;
    if (g >= max(chunks, 1u)) {
        return;  // uniform for the whole workgroup: the grid's padding
    }
    uint t = gl_LocalInvocationID.x;
    uint i0 = g * 512u + t;
    uint i1 = i0 + 256u;
    uint v0 = 0u;  // 0u is +0.0 and integer 0
    uint v1 = 0u;
    if (i0 < p.n) { v0 = x[i0]; }
    if (i1 < p.n) { v1 = x[i1]; }
    s[t] = plus(v0, v1);
    barrier();
    for (uint h = 128u; h > 0u; h >>= 1u) {
        if (t < h) {
            s[t] = plus(s[t], s[t + h]);
        }
        barrier();
    }
    if (t == 0u) {
        partial[g] = s[0];
    }
}
