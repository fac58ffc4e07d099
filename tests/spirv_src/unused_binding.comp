#version 450
// A buffer the entry point never touches: from SPIR-V 1.4 the entry point's interface tells it apart.
layout(local_size_x = 8) in;
layout(set = 0, binding = 0) buffer Used { float a[]; };
layout(set = 0, binding = 1) buffer Unused { float u[]; };
void main() { a[gl_GlobalInvocationID.x] = 1.0; }
