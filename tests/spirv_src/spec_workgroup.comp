#version 450
// A workgroup size built from specialization constants (local_size_*_id), one axis fixed.
layout(local_size_x_id = 12, local_size_y_id = 13, local_size_z = 2) in;
layout(local_size_x = 32, local_size_y = 4) in;
layout(constant_id = 14) const uint TILE = 8u;
layout(set = 0, binding = 0) buffer Buf { uint v[]; };
shared uint tile[TILE];
void main() {
    uint l = gl_LocalInvocationIndex;
    tile[l % TILE] = l;
    barrier();
    v[gl_GlobalInvocationID.x] = tile[(l + 1u) % TILE] + gl_WorkGroupSize.x;
}
