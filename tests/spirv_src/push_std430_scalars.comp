#version 450
// A small push block whose size is the end of its last member, a vector.
layout(local_size_x = 32) in;
layout(push_constant) uniform P { uint n; float alpha; int beta; vec3 shift; } p;
layout(binding = 0) buffer X { float x[]; };
void main() { uint i = gl_GlobalInvocationID.x; if (i < p.n) x[i] = x[i] * p.alpha + float(p.beta) + p.shift.z; }
