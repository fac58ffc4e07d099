// The body of the implicit-GEMM conv2d candidates: y[n,k,oh,ow] = sum over c, r, s of
// x[n, c, oh*stride + r - padding, ow*stride + s - padding] * w[k, c, r, s] (x read as 0 outside the image),
// float32, NCHW, with the bindings (0 x, 1 w, 2 y) and push constants of the library conv2d.
//
// The convolution is the product Y[K, N*OH*OW] = W[K, C*R*S] @ B[C*R*S, N*OH*OW], B = im2col(x), tiled as
// shaders/gemm.comp and gemm128.comp tile C = A @ B: a 16x16 workgroup computes a BM x BN block of Y
// (BM output channels by BN output pixels); each thread a TM x TN register tile of 4x4 sub-tiles (rows
// ty*4 + 64*i + 0..3, columns tx*4 + 64*j + 0..3). Shared tiles are vec4: As[q][k/4] holds W[k..k+3][q]
// (transposed, one vec4 of padding per row against bank conflicts), Bs[q][j/4] holds B[q][j..j+3]. B is
// never built: filling Bs, each thread gathers its 4 pixels' input at tap q = (c, r, s), with 0 outside
// the image, past C*R*S and past the last pixel, so any stride and padding works. The taps advance in
// steps of BK, double-buffered (the loads of step s+1 are in flight while step s is multiplied, one
// barrier per step). Every output is one fma chain over q = 0, 1, ..., C*R*S - 1 in that order, so a
// device gives the same bits on every run. Dispatch: [ceil(N*OH*OW / BN) (at most 65535: the workgroups
// loop over the pixel blocks the grid misses), ceil(K / BM), 1].
//
// The including file defines TM, TN (multiples of 4: BM = 16 TM, BN = 16 TN) and BK.
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
            uint q = q0 + e % BK;
            uint k = row0 + (e / BK) * 4u;
            [[unroll]] for (uint i = 0u; i < 4u; ++i) {
                ra[it][i] = (q < crs && k + i < p.K) ? w[(k + i) * crs + q] : 0.0;
            }
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
            As[buf][e % BK][e / BK] = ra[it];
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
