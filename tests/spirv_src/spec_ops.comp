#version 450
// Sizes computed from specialization constants (OpSpecConstantOp): descriptor-array counts, the trailing
// array of the push-constant block, and a shared array sized by gl_WorkGroupSize.x (a CompositeExtract).
layout(local_size_x_id = 0, local_size_y = 2) in;
layout(constant_id = 1) const uint N = 3u;
layout(constant_id = 2) const int K = -5;
layout(constant_id = 3) const bool WIDE = true;
layout(constant_id = 4) const uint SHIFT = 2u;
layout(set = 0, binding = 0) buffer B0 { float d[]; } b0[N * 2u + 1u];
layout(set = 0, binding = 1) buffer B1 { float d[]; } b1[WIDE ? 2u : 5u];
layout(set = 0, binding = 2) buffer B2 { float d[]; } b2[uint(K) & 7u];
layout(set = 0, binding = 3) buffer B3 { float d[]; } b3[(N ^ 6u) | 1u];
layout(set = 0, binding = 4) buffer B4 { float d[]; } b4[uint(-K) / 2u];
layout(set = 0, binding = 5) buffer B5 { float d[]; } b5[uint(K * K) % 7u];
layout(set = 0, binding = 6) buffer B6 { float d[]; } b6[(N > 2u && K < 0) ? 3u : 1u];
layout(set = 0, binding = 7) buffer B7 { float d[]; } b7[(uint(K) >> 29u) + uint(int(N) - K)];
layout(set = 1, binding = 0) readonly buffer Tbl { uint t[(N << SHIFT) - 1u]; } tbl;
// glslang lays out a spec-sized array in a block as if it had one element, so only the last member is one.
layout(push_constant) uniform Push { uint n; float scale; float w[N + 1u]; } pc;
shared float tile[gl_WorkGroupSize.x * 2u];
void main() {
    uint l = gl_LocalInvocationIndex;
    tile[l % (gl_WorkGroupSize.x * 2u)] = pc.w[l % (N + 1u)] * pc.scale + float(tbl.t[l % pc.n]);
    barrier();
    float v = tile[0];
    b0[l % 7u].d[l] = v; b1[0].d[l] = v; b2[0].d[l] = v; b3[0].d[l] = v;
    b4[0].d[l] = v; b5[0].d[l] = v; b6[0].d[l] = v; b7[0].d[l] = v;
}
