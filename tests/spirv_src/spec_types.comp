#version 450
#extension GL_EXT_shader_explicit_arithmetic_types : require
// Specialization constants of every scalar kind, with their defaults.
layout(local_size_x = 16) in;
layout(constant_id = 0) const bool USE_BIAS = true;
layout(constant_id = 1) const bool NEGATE = false;
layout(constant_id = 2) const int OFFSET = -42;
layout(constant_id = 3) const uint COUNT = 4000000000u;
layout(constant_id = 4) const float SCALE = 0.375;
layout(constant_id = 5) const double DSCALE = -2.5e-3;
layout(constant_id = 6) const int64_t BIG = -5000000000l;
layout(constant_id = 7) const uint64_t UBIG = 18000000000000000000ul;
layout(constant_id = 9) const int16_t SMALL = -7s;
layout(constant_id = 10) const uint16_t USMALL = 65000us;
layout(constant_id = 11) const float16_t HALF = 1.5hf;
layout(binding = 0) buffer Data { float d[]; };
void main() {
    uint i = gl_GlobalInvocationID.x;
    float v = d[i] * SCALE + float(DSCALE) + float(OFFSET) + float(COUNT) + float(BIG) + float(UBIG)
            + float(SMALL) + float(USMALL) + float(HALF);
    if (USE_BIAS) v += 1.0;
    if (NEGATE) v = -v;
    d[i] = v;
}
