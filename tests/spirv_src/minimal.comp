#version 450
// No descriptors, no push constants: the smallest compute shader.
layout(local_size_x = 1) in;
void main() {}
