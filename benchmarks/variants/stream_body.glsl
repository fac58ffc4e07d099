// The body of the streaming candidates: out[i] = op(a[i], b[i]) (or op(a[i]) when ARITY is 1), i < n.
// Words are loaded and stored as uvec4 (128-bit accesses): each thread handles PER vec4 groups per step of
// its grid-stride loop, all loads issued before the stores, so more bytes are in flight per thread; the
// last n % 4 elements are done as scalars by the first invocations of the grid.
// The including file defines ARITY, PER, the push block PUSH (its first field is `uint n`), and
// `uvec4 op4(uvec4 x, uvec4 y)` with its scalar twin `uint op1(uint x, uint y)` (y unused for ARITY 1).
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
            if (i < quads) {
                x[j] = a[i];
#if ARITY == 2
                y[j] = b[i];
#else
                y[j] = uvec4(0u);
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
    uint g = gl_GlobalInvocationID.x;
    if (g < (p.n & 3u)) {
        uint i = 4u * quads + g;
#if ARITY == 2
        uint y1 = b[i >> 2u][i & 3u];
#else
        uint y1 = 0u;
#endif
        o[i >> 2u][i & 3u] = op1(a[i >> 2u][i & 3u], y1);
    }
}
