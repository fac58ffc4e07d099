// The body of conv2d_prev and conv2d_prev_w4: the library's previous implicit-GEMM conv2d (taps in the
// order q = (c*R + r)*S + s, BK of them a step), the product Y[K, N*OH*OW] = W[K, C*R*S] @ im2col(x) tiled
// as shaders/gemm.comp tiles C = A @ B: a 16x16 workgroup computes BM = 16 TM output channels by BN = 16 TN
// output pixels, each thread TM x TN in 4x4 sub-tiles. Filling Bs, each thread gathers 4 consecutive
// pixels' input at tap q (0 outside the image, past C*R*S and past the last pixel); As[q][k/4] holds
// W[k..k+3][q] (transposed, one vec4 of padding per row). Double-buffered, one barrier per step; each
// output one fma chain over q ascending. Dispatch: [ceil(N*OH*OW / BN) (at most 65535, the workgroups
// loop), ceil(K / BM), 1].
//
// With W4 defined, each thread loads the filter as whole vec4, W[k][q..q+3] (w is contiguous over q for
// each k), where C*R*S is a multiple of 4 (so every such vec4 is aligned), and writes them transposed
// into As; otherwise, and in the last partial vec4, as scalars.
//
// The including file defines TM, TN (multiples of 4: BM = 16 TM, BN = 16 TN) and BK (a multiple of 4).
#extension GL_EXT_control_flow_attributes : enable

#define BM (16u * TM)
#define BN (16u * TN)
#define TMV (TM / 4u)
#define TNV (TN / 4u)
#define NT 256u
#define A_VECS (BK * BM / 4u)
#define A_ITERS ((A_VECS + NT - 1u) / NT)
#define B_VECS (BK * BN / 4u)
#define B_ITERS ((B_VECS + NT - 1u) / NT)
#define OUTSIDE (-(1 << 30))  // a row offset that puts every tap of a pixel past the last one outside the image

layout(local_size_x = 16, local_size_y = 16) in;

layout(std430, set = 0, binding = 0) readonly buffer InX { float x[]; };
#ifdef W4
// w as vec4 (a binding holds one variable): a scalar read addresses a component
layout(std430, set = 0, binding = 1) readonly buffer InW { vec4 w4[]; };
#define W_AT(i) w4[(i) / 4u][(i) % 4u]
#else
layout(std430, set = 0, binding = 1) readonly buffer InW { float w[]; };
#define W_AT(i) w[i]
#endif
layout(std430, set = 0, binding = 2) writeonly buffer Out { float y[]; };
layout(push_constant) uniform Params {
    uint N; uint C; uint H; uint W;
    uint K; uint R; uint S;
    uint OH; uint OW;
    uint stride; uint padding;
} p;

shared vec4 As[2][BK][BM / 4u + 1u];
shared vec4 Bs[2][BK][BN / 4u];

vec4 ra[A_ITERS];
vec4 rb[B_ITERS];
// The 4 pixels this thread gathers (the same columns at every step, since NT is a multiple of BN / 4):
// x's offset of image n, and the top-left corner of the pixel's window (OUTSIDE past the last pixel).
uint img[4];
int ih0[4];
int iw0[4];

void pixels(uint col0, uint tid, uint npq, uint ohw) {
    [[unroll]] for (uint t = 0u; t < 4u; ++t) {
        uint j = col0 + 4u * (tid % (BN / 4u)) + t;
        uint n = j / ohw;
        uint pix = j - n * ohw;
        uint oh = pix / p.OW;
        img[t] = j < npq ? n * p.C * p.H * p.W : 0u;
        ih0[t] = j < npq ? int(oh * p.stride) - int(p.padding) : OUTSIDE;
        iw0[t] = int((pix - oh * p.OW) * p.stride) - int(p.padding);
    }
}

void fetch(uint q0, uint tid, uint row0, uint crs) {
    [[unroll]] for (uint it = 0u; it < A_ITERS; ++it) {
        uint e = tid + NT * it;
        if (e < A_VECS) {
#ifdef W4
            // W[k][q..q+3]: 4 taps of one output channel
            uint q = q0 + 4u * (e % (BK / 4u));
            uint k = row0 + e / (BK / 4u);
            if (crs % 4u == 0u && q < crs && k < p.K) {
                ra[it] = w4[(k * crs + q) / 4u];
            } else {
                [[unroll]] for (uint i = 0u; i < 4u; ++i) {
                    ra[it][i] = (q + i < crs && k < p.K) ? W_AT(k * crs + q + i) : 0.0;
                }
            }
#else
            uint q = q0 + e % BK;
            uint k = row0 + (e / BK) * 4u;
            [[unroll]] for (uint i = 0u; i < 4u; ++i) {
                ra[it][i] = (q < crs && k + i < p.K) ? W_AT((k + i) * crs + q) : 0.0;
            }
#endif
        }
    }
    uint rs = p.R * p.S;
    [[unroll]] for (uint it = 0u; it < B_ITERS; ++it) {
        uint e = tid + NT * it;
        if (e < B_VECS) {
            uint q = q0 + e / (BN / 4u);
            uint c = q / rs;
            uint r = (q - c * rs) / p.S;
            uint s = q - c * rs - r * p.S;
            uint plane = c * p.H * p.W;
            [[unroll]] for (uint t = 0u; t < 4u; ++t) {
                int ih = ih0[t] + int(r);
                int iw = iw0[t] + int(s);
                bool inside = q < crs && ih >= 0 && ih < int(p.H) && iw >= 0 && iw < int(p.W);
                rb[it][t] = inside ? x[img[t] + plane + uint(ih) * p.W + uint(iw)] : 0.0;
            }
        }
    }
}

void stash(uint buf, uint tid) {
    [[unroll]] for (uint it = 0u; it < A_ITERS; ++it) {
        uint e = tid + NT * it;
        if (e < A_VECS) {
#ifdef W4
            uint q = 4u * (e % (BK / 4u));
            uint k = e / (BK / 4u);
            [[unroll]] for (uint i = 0u; i < 4u; ++i) {
                As[buf][q + i][k / 4u][k % 4u] = ra[it][i];
            }
#else
            As[buf][e % BK][e / BK] = ra[it];
#endif
        }
    }
    [[unroll]] for (uint it = 0u; it < B_ITERS; ++it) {
        uint e = tid + NT * it;
        if (e < B_VECS) {
            Bs[buf][e / (BN / 4u)][e % (BN / 4u)] = rb[it];
        }
    }
}

void main() {
    uint tx = gl_LocalInvocationID.x;
    uint ty = gl_LocalInvocationID.y;
    uint tid = ty * 16u + tx;
    uint ohw = p.OH * p.OW;
    uint npq = p.N * ohw;
    uint crs = p.C * p.R * p.S;
    uint steps = (crs + BK - 1u) / BK;
    uint row0 = gl_WorkGroupID.y * BM;
    uint blocks = (npq + BN - 1u) / BN;

    for (uint bx = gl_WorkGroupID.x; bx < blocks; bx += gl_NumWorkGroups.x) {
        uint col0 = bx * BN;
        pixels(col0, tid, npq, ohw);
        vec4 acc[TM][TNV];
        [[unroll]] for (uint i = 0u; i < TM; ++i) {
            [[unroll]] for (uint j = 0u; j < TNV; ++j) {
                acc[i][j] = vec4(0.0);
            }
        }
        fetch(0u, tid, row0, crs);
        stash(0u, tid);
        barrier();
        for (uint s = 0u; s < steps; ++s) {
            uint cur = s & 1u;
            bool more = s + 1u < steps;
            if (more) {
                fetch((s + 1u) * BK, tid, row0, crs);
            }
            [[unroll]] for (uint q = 0u; q < BK; ++q) {
                vec4 a[TMV];
                vec4 b[TNV];
                [[unroll]] for (uint i = 0u; i < TMV; ++i) {
                    a[i] = As[cur][q][ty + 16u * i];
                }
                [[unroll]] for (uint j = 0u; j < TNV; ++j) {
                    b[j] = Bs[cur][q][tx + 16u * j];
                }
                [[unroll]] for (uint i = 0u; i < TMV; ++i) {
                    [[unroll]] for (uint e = 0u; e < 4u; ++e) {
                        [[unroll]] for (uint j = 0u; j < TNV; ++j) {
                            acc[4u * i + e][j] = fma(vec4(a[i][e]), b[j], acc[4u * i + e][j]);
                        }
                    }
                }
            }
            if (more) {
                stash(cur ^ 1u, tid);
            }
            barrier();
        }

        // y's offset of each output column of this thread (n K OH OW + pixel), or npq's sentinel past the end.
        uint out0[TNV][4];
        [[unroll]] for (uint j = 0u; j < TNV; ++j) {
            [[unroll]] for (uint t = 0u; t < 4u; ++t) {
                uint col = col0 + tx * 4u + 64u * j + t;
                uint n = col / ohw;
                out0[j][t] = col < npq ? n * p.K * ohw + (col - n * ohw) : 0xffffffffu;
            }
        }
        [[unroll]] for (uint i = 0u; i < TMV; ++i) {
            [[unroll]] for (uint e = 0u; e < 4u; ++e) {
                uint k = row0 + ty * 4u + 64u * i + e;
                if (k < p.K) {
                    [[unroll]] for (uint j = 0u; j < TNV; ++j) {
                        [[unroll]] for (uint t = 0u; t < 4u; ++t) {
                            if (out0[j][t] != 0xffffffffu) {
                                y[out0[j][t] + k * ohw] = acc[4u * i + e][j][t];
                            }
                        }
                    }
                }
            }
        }
    }
}
