#version 450
// conv2d (direct), NCHW: y[n,k,oh,ow] = sum over c, r, s of x[n, c, oh*stride + r - padding,
// ow*stride + s - padding] * w[k, c, r, s], with x read as 0 outside the image. float32.
// One thread per output element, grid-stride over the N*K*OH*OW outputs.
layout(local_size_x = 256) in;

layout(std430, set = 0, binding = 0) readonly buffer InX { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer InW { float w[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Out { float y[]; };
layout(push_constant) uniform Params {
    uint N; uint C; uint H; uint W;
    uint K; uint R; uint S;
    uint OH; uint OW;
    uint stride; uint padding;
} p;

void main() {
    uint total = p.N * p.K * p.OH * p.OW;
    uint step = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < total; i += step) {
        uint ow = i % p.OW;
        uint t = i / p.OW;
        uint oh = t % p.OH;
        t /= p.OH;
        uint k = t % p.K;
        uint n = t / p.K;
        float acc = 0.0;
        for (uint c = 0u; c < p.C; ++c) {
            for (uint r = 0u; r < p.R; ++r) {
                int ih = int(oh * p.stride + r) - int(p.padding);
                if (ih < 0 || ih >= int(p.H)) {
                    continue;
                }
                for (uint s = 0u; s < p.S; ++s) {
                    int iw = int(ow * p.stride + s) - int(p.padding);
                    if (iw < 0 || iw >= int(p.W)) {
                        continue;
                    }
                    acc += x[((n * p.C + c) * p.H + uint(ih)) * p.W + uint(iw)]
                         * w[((k * p.C + c) * p.R + r) * p.S + s];
                }
            }
        }
        y[i] = acc;
    }
}
