#version 450
// Several sets and bindings: read-only / write-only / read-write storage buffers, a uniform block,
// an anonymous block and a named instance.
layout(local_size_x = 64, local_size_y = 1, local_size_z = 1) in;

layout(set = 0, binding = 0) readonly buffer InA { float a[]; } in_a;
layout(set = 0, binding = 1) writeonly buffer OutB { float b[]; } out_b;
layout(set = 0, binding = 2) buffer Accum { uint count; float acc[]; };
layout(set = 1, binding = 0) uniform Params { vec4 scale; uint n; } params;
layout(set = 1, binding = 5) readonly buffer Lut { vec2 lut[]; };
layout(set = 3, binding = 7) buffer Flags { readonly uint f0; readonly uint f1[]; } flags;

void main() {
    uint i = gl_GlobalInvocationID.x;
    if (i >= params.n) return;
    float v = in_a.a[i] * params.scale.x + lut[i].y + float(flags.f1[i] + flags.f0);
    out_b.b[i] = v;
    acc[i] += v;
    atomicAdd(count, 1u);
}
