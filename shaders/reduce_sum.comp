#version 450
#extension GL_EXT_control_flow_attributes : enable
// reduce_sum, one pass: partial[g] = the sum of x[8192*g .. 8192*g + 8191] (missing elements count as 0),
// added in one fixed two-level order that every device, and the NumPy reference (references.reduce_pass),
// performs, so float32 results are bit-equal everywhere:
//   v[j] = x4[2048*g + 256*j + t]                 uvec4 group j of thread t (j < 8, t < 256)
//   s = v[0]; s = s + v[j] for j = 1 .. 7          per component, in that order
//   r[t] = (s.x + s.y) + (s.z + s.w)
//   r[t] = r[t] + r[t + h]                         h = 128, 64, ..., 1 and t < h (shared memory)
// Loads are 128-bit and coalesced, 8 per thread before the tree, so the tree's 8 levels and barriers are
// paid once per 8192 elements. Raw 32-bit words: kind 0 adds float32, kind 1 wrapping int32. The
// workgroup index is gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x so more than 65535 chunks
// fit one dispatch.
layout(local_size_x = 256) in;

layout(std430, set = 0, binding = 0) readonly buffer In { uvec4 x4[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Out { uint partial[]; };
layout(push_constant) uniform Params { uint n; uint kind; } p;

const uint J = 8u;  // uvec4 groups per thread: a chunk is 1024 * J elements

shared uint r[256];

uint plus(uint u, uint v) {
    return p.kind == 0u ? floatBitsToUint(uintBitsToFloat(u) + uintBitsToFloat(v)) : u + v;
}

uvec4 plus4(uvec4 u, uvec4 v) {
    return p.kind == 0u ? floatBitsToUint(uintBitsToFloat(u) + uintBitsToFloat(v)) : u + v;
}

// Group q of x: whole when its 4 words are inside x, else the words inside and zeros (0u is +0.0 and 0).
uvec4 group(uint q) {
    if (q < p.n / 4u) {
        return x4[q];
    }
    uvec4 v = uvec4(0u);
    [[unroll]] for (uint e = 0u; e < 4u; ++e) {
        if (4u * q + e < p.n) {
            v[e] = x4[q][e];
        }
    }
    return v;
}

void main() {
    uint g = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    uint chunks = p.n / (1024u * J) + uint(p.n % (1024u * J) != 0u);
    if (g >= max(chunks, 1u)) {
        return;  // uniform for the whole workgroup: the grid's padding
    }
    uint t = gl_LocalInvocationID.x;
    uint q0 = g * (256u * J) + t;
    uvec4 v[J];
    [[unroll]] for (uint j = 0u; j < J; ++j) {
        v[j] = group(q0 + 256u * j);
    }
    uvec4 s = v[0];
    [[unroll]] for (uint j = 1u; j < J; ++j) {
        s = plus4(s, v[j]);
    }
    r[t] = plus(plus(s.x, s.y), plus(s.z, s.w));
    barrier();
    [[unroll]] for (uint h = 128u; h > 0u; h >>= 1u) {
        if (t < h) {
            r[t] = plus(r[t], r[t + h]);
        }
        barrier();
    }
    if (t == 0u) {
        partial[g] = r[0];
    }
}
