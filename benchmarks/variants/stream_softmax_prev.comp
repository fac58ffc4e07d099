#version 450
// stream_softmax_prev: the library's previous softmax (three reads of each row, exp twice), kept to time the promoted
// shaders/softmax.comp against it in one run (bench_stream.py gives it the old builder's dispatch).
// softmax over the last axis of a rows x cols float32 matrix, one workgroup per row (grid-stride over
// rows): y = exp(x - rowmax) / sum(exp(x - rowmax)). Subtracting the row maximum keeps exp finite.
// Each thread folds a strided slice of the row, then shared memory reduces the 256 partial values.
layout(local_size_x = 256) in;

layout(std430, set = 0, binding = 0) readonly buffer InX { float x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Out { float y[]; };
layout(push_constant) uniform Params { uint rows; uint cols; } p;

shared float red[256];

void main() {
    uint t = gl_LocalInvocationID.x;
    for (uint row = gl_WorkGroupID.x; row < p.rows; row += gl_NumWorkGroups.x) {
        uint base = row * p.cols;

        float m = -3.402823466e+38;
        for (uint c = t; c < p.cols; c += 256u) {
            m = max(m, x[base + c]);
        }
        red[t] = m;
        barrier();
        for (uint h = 128u; h > 0u; h >>= 1u) {
            if (t < h) {
                red[t] = max(red[t], red[t + h]);
            }
            barrier();
        }
        float rowmax = red[0];
        barrier();

        float sum = 0.0;
        for (uint c = t; c < p.cols; c += 256u) {
            sum += exp(x[base + c] - rowmax);
        }
        red[t] = sum;
        barrier();
        for (uint h = 128u; h > 0u; h >>= 1u) {
            if (t < h) {
                red[t] = red[t] + red[t + h];
            }
            barrier();
        }
        float total = red[0];
        barrier();

        for (uint c = t; c < p.cols; c += 256u) {
            y[base + c] = exp(x[base + c] - rowmax) / total;
        }
    }
}
