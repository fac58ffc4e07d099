// The implicit-GEMM conv2d of shaders/conv2d.comp (and of its other tilings in benchmarks/variants/):
// y[n,k,oh,ow] = sum over c, r, s of x[n, c, oh*stride + r - padding, ow*stride + s - padding] * w[k, c, r, s]
// (x read as 0 outside the image), float32, NCHW, bindings 0 x, 1 w, 2 y.
//
// The convolution is the product Y[K, N*OH*OW] = W[K, C*R*S] @ B[C*R*S, N*OH*OW], B = im2col(x), never
// built. The taps are taken in the order (r, s) outer, c inner, so that gathering B costs no division per
// element:
//
// - a step is one filter tap (r, s) and BK channels c0 .. c0+BK-1 (channels past C read as 0); each
//   output is one fma chain over (r, s) = (0, 0), (0, 1), ... and within each over c ascending, the same
//   order on every run, for every N and grid, so a device gives the same bits on every run;
// - each thread gathers PT = BN / 32 pixels, lane + 32 t of the block, whose window corners it computes
//   once per block; per step it checks each pixel against the image once (for the tap (r, s)) and then
//   reads channel c at a fixed stride H*W: the 32 lanes of a warp read 32 consecutive pixels of a row, so
//   for stride 1 a load is one coalesced 128-byte line; any stride and padding works;
// - Bs[q][j/4] holds B's row q as vec4 (written as scalars, conflict-free), As[q][k/4] the filter's
//   W[k..k+3] at tap q (one vec4 of padding per row against bank conflicts), both read as 128-bit;
// - double-buffered shared tiles, the next step's loads in flight in registers while this step is
//   multiplied, one barrier per step.
//
// A workgroup of TX x TY threads computes BM = TY*TM output channels by BN = TX*TN output pixels, each
// thread TM x TN in 4x4 sub-tiles (channels ty*4 + 4*TY*i + 0..3, pixels tx*4 + 4*TX*j + 0..3). Dispatch:
// [ceil(N*OH*OW / BN) (at most 65535: the workgroups loop over the pixel blocks the grid misses),
// ceil(K / BM), 1].
//
// The including file defines TM, TN (multiples of 4), BK, TY and optionally TX (16 unless defined;
// TX * TY threads: a multiple of 32 that divides 32 * BK).
#extension GL_EXT_control_flow_attributes : enable

#ifndef TX
#define TX 16u
#endif
#define BM (TY * TM)
#define BN (TX * TN)
#define TMV (TM / 4u)
#define TNV (TN / 4u)
#define NT (TX * TY)
#define A_VECS (BK * BM / 4u)
#define A_ITERS ((A_VECS + NT - 1u) / NT)
#define PT (BN / 32u)
#define B_ROWS (NT / 32u)
#define B_ITERS (BK / B_ROWS)
#define OUTSIDE (-(1 << 30))  // a row offset that puts every tap of a pixel past the last one outside the image

layout(local_size_x = TX, local_size_y = TY) in;

layout(std430, set = 0, binding = 0) readonly buffer InX { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer InW { float w[]; };
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
float rb[B_ITERS][PT];
// The PT pixels this thread gathers: x's offset of image n and the top-left corner of the pixel's window
// (OUTSIDE past the last pixel).
uint img[PT];
int ih0[PT];
int iw0[PT];

void pixels(uint col0, uint lane, uint npq, uint ohw) {
    [[unroll]] for (uint t = 0u; t < PT; ++t) {
        uint j = col0 + lane + 32u * t;
        uint n = j / ohw;
        uint pix = j - n * ohw;
        uint oh = pix / p.OW;
        img[t] = j < npq ? n * p.C * p.H * p.W : 0u;
        ih0[t] = j < npq ? int(oh * p.stride) - int(p.padding) : OUTSIDE;
        iw0[t] = int((pix - oh * p.OW) * p.stride) - int(p.padding);
    }
}

// Step st's tiles into registers: tap rs = st / cb, channels c0 = (st % cb) * BK on.
void fetch(uint st, uint cb, uint tid, uint row0) {
    uint rs = st / cb;
    uint c0 = (st - rs * cb) * BK;
    uint taps = p.R * p.S;
    uint crs = p.C * taps;
    [[unroll]] for (uint it = 0u; it < A_ITERS; ++it) {
        uint e = tid + NT * it;
        if (e < A_VECS) {
            uint c = c0 + e % BK;
            uint k = row0 + (e / BK) * 4u;
            [[unroll]] for (uint i = 0u; i < 4u; ++i) {
                ra[it][i] = (c < p.C && k + i < p.K) ? w[(k + i) * crs + c * taps + rs] : 0.0;
            }
        }
    }
    uint r = rs / p.S;
    uint s = rs - r * p.S;
    uint plane = p.H * p.W;
    uint at[PT];
    bool inside[PT];
    [[unroll]] for (uint t = 0u; t < PT; ++t) {
        int ih = ih0[t] + int(r);
        int iw = iw0[t] + int(s);
        inside[t] = ih >= 0 && ih < int(p.H) && iw >= 0 && iw < int(p.W);
        at[t] = inside[t] ? img[t] + uint(ih) * p.W + uint(iw) : 0u;
    }
    [[unroll]] for (uint it = 0u; it < B_ITERS; ++it) {
        uint c = c0 + tid / 32u + B_ROWS * it;
        [[unroll]] for (uint t = 0u; t < PT; ++t) {
            rb[it][t] = (inside[t] && c < p.C) ? x[at[t] + c * plane] : 0.0;
        }
    }
}

void stash(uint buf, uint tid) {
    [[unroll]] for (uint it = 0u; it < A_ITERS; ++it) {
        uint e = tid + NT * it;
        if (e < A_VECS) {
            As[buf][e % BK][e / BK] = ra[it];
        }
    }
    uint lane = tid % 32u;
    [[unroll]] for (uint it = 0u; it < B_ITERS; ++it) {
        uint q = tid / 32u + B_ROWS * it;
        [[unroll]] for (uint t = 0u; t < PT; ++t) {
            Bs[buf][q][(lane >> 2u) + 8u * t][lane & 3u] = rb[it][t];
        }
    }
}

void main() {
    uint tx = gl_LocalInvocationID.x;
    uint ty = gl_LocalInvocationID.y;
    uint tid = ty * TX + tx;
    uint ohw = p.OH * p.OW;
    uint npq = p.N * ohw;
    uint cb = (p.C + BK - 1u) / BK;
    uint steps = p.R * p.S * cb;
    uint row0 = gl_WorkGroupID.y * BM;
    uint blocks = (npq + BN - 1u) / BN;

    for (uint bx = gl_WorkGroupID.x; bx < blocks; bx += gl_NumWorkGroups.x) {
        uint col0 = bx * BN;
        pixels(col0, tid % 32u, npq, ohw);
        vec4 acc[TM][TNV];
        [[unroll]] for (uint i = 0u; i < TM; ++i) {
            [[unroll]] for (uint j = 0u; j < TNV; ++j) {
                acc[i][j] = vec4(0.0);
            }
        }
        fetch(0u, cb, tid, row0);
        stash(0u, tid);
        barrier();
        for (uint st = 0u; st < steps; ++st) {
            uint cur = st & 1u;
            bool more = st + 1u < steps;
            if (more) {
                fetch(st + 1u, cb, tid, row0);
            }
            [[unroll]] for (uint q = 0u; q < BK; ++q) {
                vec4 a[TMV];
                vec4 b[TNV];
                [[unroll]] for (uint i = 0u; i < TMV; ++i) {
                    a[i] = As[cur][q][ty + TY * i];
                }
                [[unroll]] for (uint j = 0u; j < TNV; ++j) {
                    b[j] = Bs[cur][q][tx + TX * j];
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

        // y's offset of each output column of this thread (n K OH OW + pixel), or a sentinel past the end.
        uint out0[TNV][4];
        [[unroll]] for (uint j = 0u; j < TNV; ++j) {
            [[unroll]] for (uint t = 0u; t < 4u; ++t) {
                uint col = col0 + tx * 4u + 4u * TX * j + t;
                uint n = col / ohw;
                out0[j][t] = col < npq ? n * p.K * ohw + (col - n * ohw) : 0xffffffffu;
            }
        }
        [[unroll]] for (uint i = 0u; i < TMV; ++i) {
            [[unroll]] for (uint e = 0u; e < 4u; ++e) {
                uint k = row0 + ty * 4u + 4u * TY * i + e;
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
