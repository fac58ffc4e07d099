#version 450
// stream_softmax_prev: the library's previous softmax (one 256-thread workgroup per row, a shared-memory tree),
// kept to time the promoted shaders/softmax.comp against it in one run (bench_stream.py gives it the old
// builder's dispatch).
#extension GL_EXT_control_flow_attributes : enable
// softmax over the last axis of a rows x cols float32 matrix, one 256-thread workgroup per row (grid-stride
// over rows): y = exp(x - rowmax) / sum(exp(x - rowmax)). Subtracting the row maximum keeps exp finite.
// Thread t owns the row's 4-element groups q = t + 256 k (consecutive threads, consecutive groups), read
// as one vec4 when cols is a multiple of 4, element by element otherwise. A row of at most 256 * G groups
// (8192 columns) is read once into registers, which then hold its exps until they are divided and
// stored; a longer row is streamed three times (max, sum, store) in the same order. The row's maximum and
// sum combine the 256 threads' values through one fixed shared-memory tree, and each thread adds its own
// terms in a fixed order too, so a device gives the same result on every run.
layout(local_size_x = 256) in;

layout(std430, set = 0, binding = 0) readonly buffer InX { vec4 x4[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Out { vec4 y4[]; };
layout(push_constant) uniform Params { uint rows; uint cols; } p;

const uint T = 256u;
const uint G = 8u;  // groups a thread keeps in registers
const float LOWEST = -3.402823466e+38;

shared float red[T];

// Group q of the row starting at element base; elements past the row read as LOWEST.
vec4 load(uint base, uint q) {
    if ((p.cols & 3u) == 0u && 4u * q + 3u < p.cols) {
        return x4[(base >> 2u) + q];
    }
    vec4 v = vec4(LOWEST);
    [[unroll]] for (uint e = 0u; e < 4u; ++e) {
        uint i = base + 4u * q + e;
        if (4u * q + e < p.cols) {
            v[e] = x4[i >> 2u][i & 3u];
        }
    }
    return v;
}

void store(uint base, uint q, vec4 v) {
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

// The workgroup's maximum (is_max) or sum of v, combined in one fixed tree; every thread gets it.
float combine(float v, bool is_max) {
    uint t = gl_LocalInvocationID.x;
    red[t] = v;
    barrier();
    [[unroll]] for (uint h = T / 2u; h > 0u; h >>= 1u) {
        if (t < h) {
            red[t] = is_max ? max(red[t], red[t + h]) : red[t] + red[t + h];
        }
        barrier();
    }
    float r = red[0];
    barrier();
    return r;
}

void main() {
    uint t = gl_LocalInvocationID.x;
    uint groups = p.cols / 4u + uint((p.cols & 3u) != 0u);
    for (uint row = gl_WorkGroupID.x; row < p.rows; row += gl_NumWorkGroups.x) {
        uint base = row * p.cols;
        if (groups <= G * T) {
            vec4 v[G];
            float m = LOWEST;
            [[unroll]] for (uint k = 0u; k < G; ++k) {
                uint q = t + T * k;
                if (q < groups) {
                    v[k] = load(base, q);
                    m = max(m, vmax(v[k]));
                }
            }
            float rowmax = combine(m, true);
            float s = 0.0;
            [[unroll]] for (uint k = 0u; k < G; ++k) {
                uint q = t + T * k;
                if (q < groups) {
                    v[k] = exps(v[k], q, rowmax);
                    s += vsum(v[k]);
                }
            }
            float total = combine(s, false);
            [[unroll]] for (uint k = 0u; k < G; ++k) {
                uint q = t + T * k;
                if (q < groups) {
                    store(base, q, v[k] / total);
                }
            }
        } else {
            float m = LOWEST;
            for (uint q = t; q < groups; q += T) {
                m = max(m, vmax(load(base, q)));
            }
            float rowmax = combine(m, true);
            float s = 0.0;
            for (uint q = t; q < groups; q += T) {
                s += vsum(exps(load(base, q), q, rowmax));
            }
            float total = combine(s, false);
            for (uint q = t; q < groups; q += T) {
                store(base, q, exps(load(base, q), q, rowmax) / total);
            }
        }
    }
}
