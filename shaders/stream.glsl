// The body of the element-wise library kernels (add, mul, saxpy, relu): out[i] = op(a[i], b[i]) for i < n
// (op(a[i]) when ARITY is 1). Words move as uvec4, 128-bit loads and stores: each thread takes PER groups
// of 4 words per step of its grid-stride loop (groups 256 apart, so a workgroup's accesses coalesce) and
// issues all its loads before its stores, which keeps more bytes in flight per thread. The last n % 4
// words, past the whole groups, are done one by one by the grid's first invocation. Each output word
// depends on its own input words only, so the result is the scalar kernel's, bit for bit.
// The including file defines ARITY, PER, the push block PUSH (its first field is `uint n`), and
// `uvec4 op4(uvec4 x, uvec4 y)` with its scalar twin `uint op1(uint x, uint y)` (y unused for ARITY 1).
// The builder dispatches min(max(ceil((n / 4) / (256 * PER)), 1), 65535) workgroups.
#extension GL_EXT_control_flow_attributes : enable
layout(local_size_x = 256) in;

layout(std430, set = 0, binding = 0) readonly buffer InA { uvec4 a[]; };
#if ARITY == 2
layout(std430, set = 0, binding = 1) readonly buffer InB { uvec4 b[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Out { uvec4 o[]; };
#else
layout(std430, set = 0, binding = 1) writeonly buffer Out { uvec4 o[]; };
#endif
layout(push_constant) uniform Params { PUSH } p;

uvec4 op4(uvec4 x, uvec4 y);
uint op1(uint x, uint y);

void main() {
    uint quads = p.n / 4u;
    uint t = gl_LocalInvocationID.x;
    uint stride = gl_NumWorkGroups.x * 256u * PER;
    for (uint base = gl_WorkGroupID.x * 256u * PER + t; base < quads; base += stride) {
        uvec4 x[PER];
        uvec4 y[PER];
        [[unroll]] for (uint j = 0u; j < PER; ++j) {
            uint i = base + 256u * j;
            x[j] = uvec4(0u);
            y[j] = uvec4(0u);
            if (i < quads) {
                x[j] = a[i];
#if ARITY == 2
                y[j] = b[i];
#endif
            }
        }
        [[unroll]] for (uint j = 0u; j < PER; ++j) {
            uint i = base + 256u * j;
            if (i < quads) {
                o[i] = op4(x[j], y[j]);
            }
        }
    }
    if (gl_GlobalInvocationID.x == 0u) {
        for (uint e = 0u; e < (p.n & 3u); ++e) {
#if ARITY == 2
            uint y1 = b[quads][e];
#else
            uint y1 = 0u;
#endif
            o[quads][e] = op1(a[quads][e], y1);
        }
    }
}
