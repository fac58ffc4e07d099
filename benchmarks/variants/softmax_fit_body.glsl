// The body of the softmax_fit* candidates: softmax over the last axis of a rows x cols float32 matrix,
// y = exp(x - rowmax) / sum(exp(x - rowmax)), with the library softmax's bindings (0 x, 1 y) and push
// constants (rows, cols). Written for one read and one write of each element with many loads in flight.
//
// The team of invocations per row is fitted to the row: TEAM, the smallest power of two from 1 to WG whose
// lanes hold the row's 4-element groups in G vec4 registers each (fit_team: a function of cols only, so
// the builder computes the same WG / TEAM rows per workgroup for the grid, a workgroup per block of rows;
// the grid-stride loop runs only past 65535 blocks). Rows of 1024 columns get a 32-lane team at G = 8,
// rows of 8192 the whole 256-invocation workgroup. Lane l owns groups l + TEAM k (consecutive lanes,
// consecutive groups). Every load of a chunk is unconditional, at an address clamped into the row (a
// repeated element leaves the maximum as it is, and the sum masks it by column), so the G loads sit in one
// basic block and can all be in flight before the first is used; with a branch around each load
// (softmax_body.glsl) the compiler may wait on each before issuing the next. A row of more than WG * G
// groups is streamed in such chunks three times (max, sum, store).
//
// Order, the same on every device and run: each lane folds its groups in k order, vec4 by vec4 as
// (x + y) + (z + w); a team combines its lanes by a xor butterfly (distances min(TEAM, 32) / 2 down to 1:
// subgroupShuffleXor where the partner is in the same subgroup, shared memory otherwise, the same operands
// either way; every lane ends with the same bits as each step adds the same two values), and a team of
// several 32-lane warps folds the warps' values in warp order. Nothing depends on the subgroup size.
// The row's sum is applied as one reciprocal and a multiply per element.
//
// The including file defines WG (workgroup size, a power of two from 32 to 1024) and G (vec4 registers
// per lane), and PREFETCH to load a workgroup's next block of rows before reducing the current one (the
// builder then gives it fewer workgroups than blocks, so each has a next block).
#extension GL_EXT_control_flow_attributes : enable
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require

#define WARPS_MAX (WG / 32u)
const float LOWEST = -3.402823466e+38;

layout(local_size_x = WG) in;

layout(std430, set = 0, binding = 0) readonly buffer InX { vec4 x4[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Out { vec4 y4[]; };
layout(push_constant) uniform Params { uint rows; uint cols; } p;

shared float xch[WG];               // butterfly steps across subgroups (devices with subgroups under 32)
shared float part_max[WARPS_MAX];   // each warp's value, for teams of several warps: one array per
shared float part_sum[WARPS_MAX];   // reduction, so a row needs one barrier for each

uint place;  // this invocation's place: subgroup-major, so distances below the subgroup size stay in it

// The smallest power of two from 1 to WG with TEAM * G >= groups.
uint fit_team(uint groups) {
    uint team = 1u;
    while (team < WG && team * G < groups) {
        team <<= 1u;
    }
    return team;
}

// Groups q0 + team k, k < G, of the row at element base (cols > 0). An element past the row reads the
// row's last element instead: a repeat leaves the maximum as it is, and exps zeroes it.
void load_chunk(uint base, uint q0, uint team, uint groups, out vec4 v[G]) {
    if ((p.cols & 3u) == 0u) {
        uint at = base >> 2u;
        [[unroll]] for (uint k = 0u; k < G; ++k) {
            uint q = q0 + team * k;
            v[k] = x4[at + min(q, groups - 1u)];
        }
    } else {
        [[unroll]] for (uint k = 0u; k < G; ++k) {
            uint q = q0 + team * k;
            [[unroll]] for (uint e = 0u; e < 4u; ++e) {
                uint i = base + min(4u * q + e, p.cols - 1u);
                v[k][e] = x4[i >> 2u][i & 3u];
            }
        }
    }
}

// Groups q0 + team k of y, those inside the row.
void store_chunk(uint base, uint q0, uint team, uint groups, vec4 v[G]) {
    if ((p.cols & 3u) == 0u) {
        uint at = base >> 2u;
        [[unroll]] for (uint k = 0u; k < G; ++k) {
            uint q = q0 + team * k;
            if (q < groups) {
                y4[at + q] = v[k];
            }
        }
    } else {
        [[unroll]] for (uint k = 0u; k < G; ++k) {
            uint q = q0 + team * k;
            [[unroll]] for (uint e = 0u; e < 4u; ++e) {
                uint c = 4u * q + e;
                uint i = base + c;
                if (c < p.cols) {
                    y4[i >> 2u][i & 3u] = v[k][e];
                }
            }
        }
    }
}

// exp(x - rowmax) in place for the chunk's groups q0 + team k, 0 for the elements past the row.
void exps(inout vec4 v[G], float rowmax, uint q0, uint team) {
    [[unroll]] for (uint k = 0u; k < G; ++k) {
        uvec4 c = 4u * (q0 + team * k) + uvec4(0u, 1u, 2u, 3u);
        v[k] = mix(vec4(0.0), exp(v[k] - rowmax), lessThan(c, uvec4(p.cols)));
    }
}

float fold_max(float m, vec4 v[G]) {
    [[unroll]] for (uint k = 0u; k < G; ++k) {
        m = max(m, max(max(v[k].x, v[k].y), max(v[k].z, v[k].w)));
    }
    return m;
}

float fold_sum(float s, vec4 v[G]) {
    [[unroll]] for (uint k = 0u; k < G; ++k) {
        s += (v[k].x + v[k].y) + (v[k].z + v[k].w);
    }
    return s;
}

float op(float a, float b, bool is_max) { return is_max ? max(a, b) : a + b; }

// The team's maximum (is_max) or sum of v; every lane of the team gets the same bits. Called by the whole
// workgroup together, in uniform control flow (the shared-memory steps have barriers).
float combine(float v, uint team, bool is_max) {
    [[unroll]] for (uint d = 16u; d > 0u; d >>= 1u) {
        if (d < team) {
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
    }
    if (team > 32u) {
        uint warps = team >> 5u;
        uint first = (place & ~(team - 1u)) >> 5u;  // the team's first warp
        if ((place & 31u) == 0u) {
            if (is_max) {
                part_max[place / 32u] = v;
            } else {
                part_sum[place / 32u] = v;
            }
        }
        barrier();
        v = is_max ? part_max[first] : part_sum[first];
        [[unroll]] for (uint k = 1u; k < WARPS_MAX; ++k) {
            if (k < warps) {
                v = op(v, is_max ? part_max[first + k] : part_sum[first + k], is_max);
            }
        }
    }
    return v;
}

// The row of block b this invocation's team works on: its first element, and whether it is a row of x
// (a team past the last row works on the last one too, for the barriers, unstored).
uint row_base(uint b, uint shift, uint per_block, out bool live) {
    uint row = b * per_block + (place >> shift);
    live = row < p.rows;
    return min(row, p.rows - 1u) * p.cols;
}

// softmax of a row held in registers (groups <= team * G), stored where live.
void finish(inout vec4 v[G], uint base, bool live, uint l, uint team, uint groups) {
    float rowmax = combine(fold_max(LOWEST, v), team, true);
    exps(v, rowmax, l, team);
    float scale = 1.0 / combine(fold_sum(0.0, v), team, false);
    [[unroll]] for (uint k = 0u; k < G; ++k) {
        v[k] *= scale;
    }
    if (live) {
        store_chunk(base, l, team, groups, v);
    }
}

// softmax of a longer row, streamed in chunks three times (max, sum, store).
void streamed(uint base, bool live, uint l, uint team, uint groups) {
    vec4 v[G];
    float m = LOWEST;
    for (uint q0 = l; q0 < groups; q0 += team * G) {
        load_chunk(base, q0, team, groups, v);
        m = fold_max(m, v);
    }
    float rowmax = combine(m, team, true);
    float s = 0.0;
    for (uint q0 = l; q0 < groups; q0 += team * G) {
        load_chunk(base, q0, team, groups, v);
        exps(v, rowmax, q0, team);
        s = fold_sum(s, v);
    }
    float scale = 1.0 / combine(s, team, false);
    for (uint q0 = l; q0 < groups; q0 += team * G) {
        load_chunk(base, q0, team, groups, v);
        exps(v, rowmax, q0, team);
        [[unroll]] for (uint k = 0u; k < G; ++k) {
            v[k] *= scale;
        }
        if (live) {
            store_chunk(base, q0, team, groups, v);
        }
    }
}

void main() {
    if (p.cols == 0u) {
        return;
    }
    place = gl_SubgroupID * gl_SubgroupSize + gl_SubgroupInvocationID;
    uint groups = p.cols / 4u + uint((p.cols & 3u) != 0u);
    uint team = fit_team(groups);
    uint shift = findLSB(team);  // powers of two: shifts and masks, no integer division
    uint per_block = WG >> shift;  // rows per workgroup
    uint l = place & (team - 1u);
    uint blocks = (p.rows + per_block - 1u) >> findLSB(per_block);
    bool live;
#ifdef PREFETCH
    // Rows in registers: the next block's loads are issued before this block's reductions, so they are in
    // flight through its barriers and shuffles (the last block is loaded again at the end, unused).
    if (groups <= team * G) {
        uint b = gl_WorkGroupID.x;
        if (b >= blocks) {
            return;
        }
        vec4 v[G];
        load_chunk(row_base(b, shift, per_block, live), l, team, groups, v);
        for (; b < blocks; b += gl_NumWorkGroups.x) {
            bool next_live;
            uint next_base = row_base(min(b + gl_NumWorkGroups.x, blocks - 1u), shift, per_block, next_live);
            vec4 next[G];
            load_chunk(next_base, l, team, groups, next);
            finish(v, row_base(b, shift, per_block, live), live, l, team, groups);
            v = next;
        }
        return;
    }
#endif
    for (uint b = gl_WorkGroupID.x; b < blocks; b += gl_NumWorkGroups.x) {
        uint base = row_base(b, shift, per_block, live);
        if (groups <= team * G) {
            vec4 v[G];
            load_chunk(base, l, team, groups, v);
            finish(v, base, live, l, team, groups);
        } else {
            streamed(base, live, l, team, groups);
        }
    }
}
