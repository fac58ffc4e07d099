#version 450
// sgemm_splitk_reduce: out[i] = ((part[0][i] + part[1][i]) + part[2][i]) + ... + part[S-1][i], i < n,
// for the split-K GEMM candidates: the K slices are added in one fixed order, so the product is the same
// bits on every run and device. vec4 loads and stores when n is a multiple of 4, scalar otherwise;
// grid-stride over vec4 groups.
layout(local_size_x = 256) in;

layout(std430, set = 0, binding = 0) readonly buffer InP { vec4 part[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Out { vec4 o[]; };
layout(push_constant) uniform Params { uint n; uint slices; } p;

void main() {
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    uint groups = (p.n + 3u) / 4u;
    uint quads = p.n / 4u;
    for (uint g = gl_GlobalInvocationID.x; g < groups; g += stride) {
        if ((p.n & 3u) == 0u) {
            vec4 s = part[g];
            for (uint z = 1u; z < p.slices; ++z) {
                s += part[z * quads + g];
            }
            o[g] = s;
        } else {
            for (uint e = 0u; e < 4u; ++e) {
                uint i = 4u * g + e;
                if (i < p.n) {
                    float s = part[i >> 2u][i & 3u];
                    for (uint z = 1u; z < p.slices; ++z) {
                        uint at = z * p.n + i;
                        s += part[at >> 2u][at & 3u];
                    }
                    o[i >> 2u][i & 3u] = s;
                }
            }
        }
    }
}
