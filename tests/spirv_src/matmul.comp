#version 450
// C = A x B with a fixed 16x16 workgroup: two read-only inputs, one write-only output, sizes as push
// constants, the tile size as a specialization constant.
layout(local_size_x = 16, local_size_y = 16, local_size_z = 1) in;
layout(constant_id = 0) const uint UNROLL = 4u;
layout(constant_id = 1) const bool TRANSPOSE_B = false;
layout(constant_id = 2) const float ALPHA = 1.0;
layout(set = 0, binding = 0) readonly buffer A { float a[]; };
layout(set = 0, binding = 1) readonly buffer B { float b[]; };
layout(set = 0, binding = 2) writeonly buffer C { float c[]; };
layout(push_constant) uniform Dims { uint M; uint N; uint K; } dims;
void main() {
    uint row = gl_GlobalInvocationID.y, col = gl_GlobalInvocationID.x;
    if (row >= dims.M || col >= dims.N) return;
    float acc = 0.0;
    for (uint k = 0u; k < dims.K; k += 1u) {
        float bv = TRANSPOSE_B ? b[col * dims.K + k] : b[k * dims.N + col];
        acc += a[row * dims.K + k] * bv;
    }
    c[row * dims.N + col] = ALPHA * acc + float(UNROLL) * 0.0;
}
