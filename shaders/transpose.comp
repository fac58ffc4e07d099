#version 450
#extension GL_EXT_control_flow_attributes : enable
// transpose: out[c][r] = x[r][c] for a rows x cols matrix of 32-bit words (any 4-byte dtype, bit exact).
// A 32x8 workgroup moves a 32x32 tile through shared memory, each thread 4 elements 8 rows apart, so both
// the reads (along x's rows) and the writes (along out's rows) are coalesced; one padding column keeps
// the column reads of the tile on distinct banks. Grid-stride over tiles in both directions.
layout(local_size_x = 32, local_size_y = 8) in;

layout(std430, set = 0, binding = 0) readonly buffer In { uint x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Out { uint o[]; };
layout(push_constant) uniform Params { uint rows; uint cols; } p;

const uint TILE = 32u;
const uint STEP = 8u;  // the workgroup's rows: each thread moves TILE / STEP elements of a tile

shared uint tile[TILE][TILE + 1u];

void main() {
    uint tx = gl_LocalInvocationID.x;
    uint ty = gl_LocalInvocationID.y;
    uint tiles_x = p.cols / TILE + uint(p.cols % TILE != 0u);
    uint tiles_y = p.rows / TILE + uint(p.rows % TILE != 0u);
    for (uint by = gl_WorkGroupID.y; by < tiles_y; by += gl_NumWorkGroups.y) {
        for (uint bx = gl_WorkGroupID.x; bx < tiles_x; bx += gl_NumWorkGroups.x) {
            uint c = bx * TILE + tx;
            [[unroll]] for (uint j = 0u; j < TILE; j += STEP) {
                uint r = by * TILE + ty + j;
                if (r < p.rows && c < p.cols) {
                    tile[ty + j][tx] = x[r * p.cols + c];
                }
            }
            barrier();
            uint ocol = by * TILE + tx;
            [[unroll]] for (uint j = 0u; j < TILE; j += STEP) {
                uint orow = bx * TILE + ty + j;
                if (orow < p.cols && ocol < p.rows) {
                    o[orow * p.rows + ocol] = tile[tx][ty + j];
                }
            }
            barrier();
        }
    }
}
