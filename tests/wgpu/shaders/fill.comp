#version 450
// Writes `pattern` into the first n words: poisons pooled buffers before the run under test.
layout(local_size_x = 64) in;
layout(set = 0, binding = 0) writeonly buffer C { uint c[]; };
layout(push_constant) uniform Params { uint n; uint pattern; } p;
void main() {
    uint i = gl_GlobalInvocationID.x;
    if (i < p.n) c[i] = p.pattern;
}
