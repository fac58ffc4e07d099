#version 450
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
// y = x * x computed in float16 (capability Float16): needs the wgpu feature "shader-f16".
layout(local_size_x = 64) in;
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) writeonly buffer Y { float y[]; };
void main() {
    uint i = gl_GlobalInvocationID.x;
    if (i < uint(y.length())) {
        float16_t h = float16_t(x[i]);
        y[i] = float(h * h);
    }
}
