#version 450
// out = 2 * x through a shared array sized by a spec-constant expression (OpSpecConstantOp): valid SPIR-V
// that naga's front end refuses, so the 900 carries shared_twice.wgsl for wgpu.
layout(local_size_x = 64) in;
layout(constant_id = 2) const uint TILE = 64;
const uint PADDED = TILE + 1u;
shared float tile[PADDED];
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform Params { uint n; } p;
void main() {
    uint i = gl_GlobalInvocationID.x;
    uint l = gl_LocalInvocationID.x;
    tile[l] = i < p.n ? x[i] : 0.0;
    barrier();
    if (i < p.n) y[i] = 2.0 * tile[l];
}
