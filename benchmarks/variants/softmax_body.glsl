// The body of the softmax candidates: softmax over the last axis of a rows x cols float32 matrix,
// y = exp(x - rowmax) / sum(exp(x - rowmax)), with the library softmax's bindings (0 x, 1 y) and push
// constants (rows, cols). A 256-invocation workgroup is split into teams of TEAM invocations, one row per
// team (256 / TEAM rows per workgroup, grid-stride over row blocks), so a short row does not leave most
// of a workgroup idle the way one workgroup per row does.
//
// Lane l of a team owns the row's 4-element groups l + TEAM g (consecutive lanes, consecutive groups),
// read as one vec4 when cols is a multiple of 4. A row of at most TEAM * G groups is read once into
// registers, which hold its exps until they are divided and stored (one read and one write per element);
// a longer row is streamed three times (max, sum, store). Each lane folds its own terms in a fixed order;
// the team then combines its lanes' values in 32-lane warps by a xor butterfly (distances 16, 8, 4, 2, 1:
// subgroupShuffleXor where the partner is in the same subgroup, shared memory otherwise, the same
// operands either way), and a team of several warps adds the warps' values in warp order. Every lane of a
// team ends with the same bits (each butterfly step adds the same two values in either order), the order
// does not depend on the subgroup size, and a device gives the same result on every run.
//
// The including file defines TEAM (32 or a multiple of 32 dividing 256) and G (vec4 per lane kept).
#extension GL_EXT_control_flow_attributes : enable
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require

#define T 256u
#define WARPS (TEAM / 32u)        // 32-lane warps per team
#define ROWS (T / TEAM)           // rows per workgroup
const float LOWEST = -3.402823466e+38;

layout(local_size_x = 256) in;

layout(std430, set = 0, binding = 0) readonly buffer InX { vec4 x4[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Out { vec4 y4[]; };
layout(push_constant) uniform Params { uint rows; uint cols; } p;

shared float xch[T];         // butterfly steps across subgroups
shared float part[T / 32u];  // each warp's value, for teams of several warps

uint place;  // this invocation's place: subgroup-major, so distances below the subgroup size stay in it

// Group q of the row starting at element base; elements past the row (or of no row) read as LOWEST.
vec4 load(bool live, uint base, uint q) {
    if (live && (p.cols & 3u) == 0u && 4u * q + 3u < p.cols) {
        return x4[(base >> 2u) + q];
    }
    vec4 v = vec4(LOWEST);
    [[unroll]] for (uint e = 0u; e < 4u; ++e) {
        uint i = base + 4u * q + e;
        if (live && 4u * q + e < p.cols) {
            v[e] = x4[i >> 2u][i & 3u];
        }
    }
    return v;
}

void store(bool live, uint base, uint q, vec4 v) {
    if (!live) {
        return;
    }
    if ((p.cols & 3u) == 0u && 4u * q + 3u < p.cols) {
        y4[(base >> 2u) + q] = v;
        return;
    }
    [[unroll]] for (uint e = 0u; e < 4u; ++e) {
        uint i = base + 4u * q + e;
        if (4u * q + e < p.cols) {
            y4[i >> 2u][i & 3u] = v[e];
        }
    }
}

// exp(x - rowmax) for the elements of group q inside the row, 0 for the others.
vec4 exps(vec4 v, uint q, float rowmax) {
    vec4 e = exp(v - rowmax);
    [[unroll]] for (uint k = 0u; k < 4u; ++k) {
        if (4u * q + k >= p.cols) {
            e[k] = 0.0;
        }
    }
    return e;
}

float vmax(vec4 v) { return max(max(v.x, v.y), max(v.z, v.w)); }
float vsum(vec4 v) { return (v.x + v.y) + (v.z + v.w); }
float op(float a, float b, bool is_max) { return is_max ? max(a, b) : a + b; }

// The team's maximum (is_max) or sum of v; every lane of the team gets the same bits. Called by the whole
// workgroup together (the shared-memory steps have barriers).
float combine(float v, bool is_max) {
    [[unroll]] for (uint d = 16u; d > 0u; d >>= 1u) {
        float other;
        if (d < gl_SubgroupSize) {
            other = subgroupShuffleXor(v, d);
        } else {
            xch[place] = v;
            barrier();
            other = xch[place ^ d];
            barrier();
        }
        v = op(v, other, is_max);
    }
    if (WARPS > 1u) {
        if ((place & 31u) == 0u) {
            part[place / 32u] = v;
        }
        barrier();
        uint first = (place / TEAM) * WARPS;
        v = part[first];
        [[unroll]] for (uint k = 1u; k < WARPS; ++k) {
            v = op(v, part[first + k], is_max);
        }
        barrier();
    }
    return v;
}

void main() {
    place = gl_SubgroupID * gl_SubgroupSize + gl_SubgroupInvocationID;
    uint team = place / TEAM;
    uint l = place % TEAM;
    uint groups = p.cols / 4u + uint((p.cols & 3u) != 0u);
    uint blocks = (p.rows + ROWS - 1u) / ROWS;
    for (uint b = gl_WorkGroupID.x; b < blocks; b += gl_NumWorkGroups.x) {
        uint row = b * ROWS + team;
        bool live = row < p.rows;
        uint base = live ? row * p.cols : 0u;
        if (groups <= G * TEAM) {
            vec4 v[G];
            float m = LOWEST;
            [[unroll]] for (uint k = 0u; k < G; ++k) {
                uint q = l + TEAM * k;
                if (q < groups) {
                    v[k] = load(live, base, q);
                    m = max(m, vmax(v[k]));
                }
            }
            float rowmax = combine(m, true);
            float s = 0.0;
            [[unroll]] for (uint k = 0u; k < G; ++k) {
                uint q = l + TEAM * k;
                if (q < groups) {
                    v[k] = exps(v[k], q, rowmax);
                    s += vsum(v[k]);
                }
            }
            float total = combine(s, false);
            [[unroll]] for (uint k = 0u; k < G; ++k) {
                uint q = l + TEAM * k;
                if (q < groups) {
                    store(live, base, q, v[k] / total);
                }
            }
        } else {
            float m = LOWEST;
            for (uint q = l; q < groups; q += TEAM) {
                m = max(m, vmax(load(live, base, q)));
            }
            float rowmax = combine(m, true);
            float s = 0.0;
            for (uint q = l; q < groups; q += TEAM) {
                s += vsum(exps(load(live, base, q), q, rowmax));
            }
            float total = combine(s, false);
            for (uint q = l; q < groups; q += TEAM) {
                store(live, base, q, exps(load(live, base, q), q, rowmax) / total);
            }
        }
    }
}
