#version 450
// stream_transpose_prev: the library's previous transpose (16x16 tiles, one element per thread), kept to time the promoted
// shaders/transpose.comp against it in one run (bench_stream.py gives it the old builder's dispatch).
// transpose: out[c][r] = x[r][c] for a rows x cols matrix of 32-bit words (any 4-byte dtype, bit exact).
// 16x16 tiles staged through shared memory (one padding column avoids bank conflicts) so both the
// reads and the writes are coalesced; grid-stride over tiles in both directions.
layout(local_size_x = 16, local_size_y = 16) in;

layout(std430, set = 0, binding = 0) readonly buffer In { uint x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Out { uint o[]; };
layout(push_constant) uniform Params { uint rows; uint cols; } p;

shared uint tile[16][17];

void main() {
    uint tx = gl_LocalInvocationID.x;
    uint ty = gl_LocalInvocationID.y;
    uint tiles_x = (p.cols + 15u) / 16u;
    uint tiles_y = (p.rows + 15u) / 16u;
    for (uint by = gl_WorkGroupID.y; by < tiles_y; by += gl_NumWorkGroups.y) {
        for (uint bx = gl_WorkGroupID.x; bx < tiles_x; bx += gl_NumWorkGroups.x) {
            uint r = by * 16u + ty;
            uint c = bx * 16u + tx;
            if (r < p.rows && c < p.cols) {
                tile[ty][tx] = x[r * p.cols + c];
            }
            barrier();
            uint orow = bx * 16u + ty;
            uint ocol = by * 16u + tx;
            if (orow < p.cols && ocol < p.rows) {
                o[orow * p.rows + ocol] = tile[tx][ty];
            }
            barrier();
        }
    }
}
