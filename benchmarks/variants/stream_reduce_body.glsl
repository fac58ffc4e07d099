// The body of the reduce_sum candidates, one pass: partial[g] = the sum of x[C*g .. C*g + C - 1] for the
// chunk size C = 1024 * J (missing elements count as 0), in one fixed order every device and the NumPy
// replica (bench_stream.reduce_pass_v4) perform:
//   v[j] = x4[(C/4)*g + 256*j + t]                  the uvec4 group j of thread t (j < J, t < 256)
//   s = v[0]; s = s + v[j] for j = 1 .. J-1          per component, in order
//   r[t] = (s.x + s.y) + (s.z + s.w)
//   r[t] = r[t] + r[t + h]                           h = 128, 64, ..., 1 and t < h (shared memory)
// Loads are 128-bit and coalesced (consecutive threads, consecutive groups); J loads per thread before the
// tree, so the 8-level tree and its barriers are paid once per C elements. Raw 32-bit words: kind 0 adds
// float32, kind 1 wrapping int32. Workgroup index gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x.
// The including file defines J.
layout(local_size_x = 256) in;

layout(std430, set = 0, binding = 0) readonly buffer In { uvec4 x4[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Out { uint partial[]; };
layout(push_constant) uniform Params { uint n; uint kind; } p;

shared uint r[256];

uint plus(uint u, uint v) {
    return p.kind == 0u ? floatBitsToUint(uintBitsToFloat(u) + uintBitsToFloat(v)) : u + v;
}

uvec4 plus4(uvec4 u, uvec4 v) {
    return p.kind == 0u ? floatBitsToUint(uintBitsToFloat(u) + uintBitsToFloat(v)) : u + v;
}

uvec4 group(uint q) {
    if (4u * q + 3u < p.n) {
        return x4[q];
    }
    uvec4 v = uvec4(0u);  // 0u is +0.0 and integer 0
    [[unroll]] for (uint e = 0u; e < 4u; ++e) {
        if (4u * q + e < p.n) {
            v[e] = x4[q][e];
        }
    }
    return v;
}

void main() {
    uint g = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    uint chunks = (p.n + (1024u * J - 1u)) / (1024u * J);
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
