#version 450
// blake3: the BLAKE3-256 of message = prefix ‖ payload, bit for bit what the reference implementation gives
// for the same bytes. For a tensor the prefix is its LC-B ext marker and tensor header (binding 0, words,
// little-endian) and the payload its raw bytes as the device holds them (binding 1, read as 32-bit words
// with byte shifts: the prefix length need not be a multiple of 4). One pass is one dispatch:
//
// mode 0, chunks: workgroup g takes chunks 128g .. 128g+127 of the message; invocation t hashes chunks 2t
//   and 2t+1 (1024 bytes, 16 blocks of 64, each) one after the other and makes their parent. Block by block
//   the workgroup first stages 64 chunks' 16-word blocks into shared memory with coalesced loads (17 words
//   per row, so that reading one row per invocation hits distinct banks; the next block's loads are issued
//   before this one is compressed), then each invocation compresses its own block (counter = chunk index,
//   CHUNK_START on block 0, CHUNK_END on the chunk's last block, which holds 1..64 bytes, zero-padded).
//   The workgroup then folds its 64 values into one (below) and writes it to out[8g .. 8g+7].
// mode 1, parents: workgroup g takes chaining values 128g .. 128g+127 of binding 1 (8 words each), makes
//   their parents (PARENT) and folds those as in mode 0 into out[8g .. 8g+7].
// Folding pairs adjacent chaining values level by level, an odd last one carried up unchanged: over aligned
// power-of-two blocks this is BLAKE3's tree (left subtrees complete powers of two), so passes repeat until
// one value is left. The pass that leaves it runs as one workgroup with root = 1: its last compression (the
// single chunk's last block, or the top parent) also gets ROOT, and out[0 .. 7] is the digest.
// Dispatch: [ceil(count / 128), 1, 1], at most 32769 workgroups (a payload below 4 GiB). Byte offsets are 32-bit: a chunk's offset into the payload is
// computed modulo 2^32, exact for every byte of the message (the payload is below 4 GiB).
layout(local_size_x = 64) in;

layout(std430, set = 0, binding = 0) readonly buffer Prefix { uint prefix[]; };
layout(std430, set = 0, binding = 1) readonly buffer Data { uint data[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Out { uint cv[]; };
layout(push_constant) uniform Params {
    uint mode;         // 0: chunks of prefix ‖ payload, 1: parents of the chaining values in data
    uint prefix_len;   // bytes of prefix, below 1024 (mode 0)
    uint payload_len;  // bytes of payload (mode 0)
    uint count;        // chunks of the message (mode 0) or chaining values in data (mode 1), at least 1
    uint root;         // 1 when this pass leaves the root: one workgroup
} p;

const uint WG = 64u;      // invocations per workgroup: 128 chunks (mode 0) or chaining values (mode 1)
const uint ROW = 17u;     // words per staged chunk row: 16, and one against bank conflicts
const uint CHUNK_START = 1u;
const uint CHUNK_END = 2u;
const uint PARENT = 4u;
const uint ROOT = 8u;
const uvec4 IV0 = uvec4(0x6A09E667u, 0xBB67AE85u, 0x3C6EF372u, 0xA54FF53Au);
const uvec4 IV1 = uvec4(0x510E527Fu, 0x9B05688Cu, 0x1F83D9ABu, 0x5BE0CD19u);

shared uint sh[WG * ROW];  // staged blocks, then chaining values (8 words each)

uvec4 rotr(uvec4 x, uint n) {
    return (x >> n) | (x << (32u - n));
}

// G on the four columns (or, rotated, diagonals) of the state rows a, b, c, d at once.
void g4(inout uvec4 a, inout uvec4 b, inout uvec4 c, inout uvec4 d, uvec4 x, uvec4 y) {
    a = a + b + x; d = rotr(d ^ a, 16u); c = c + d; b = rotr(b ^ c, 12u);
    a = a + b + y; d = rotr(d ^ a, 8u);  c = c + d; b = rotr(b ^ c, 7u);
}

// One round: G on the columns, then on the diagonals (rows b, c, d rotated into column position and back).
void round7(inout uvec4 a, inout uvec4 b, inout uvec4 c, inout uvec4 d, uvec4 m0, uvec4 m1, uvec4 m2, uvec4 m3) {
    g4(a, b, c, d, uvec4(m0.x, m0.z, m1.x, m1.z), uvec4(m0.y, m0.w, m1.y, m1.w));
    b = b.yzwx; c = c.zwxy; d = d.wxyz;
    g4(a, b, c, d, uvec4(m2.x, m2.z, m3.x, m3.z), uvec4(m2.y, m2.w, m3.y, m3.w));
    b = b.wxyz; c = c.zwxy; d = d.yzwx;
}

// The message schedule between rounds: m[i] = m[PERM[i]], PERM = 2 6 3 10 7 0 4 13 1 11 12 5 9 14 15 8.
void permute(inout uvec4 m0, inout uvec4 m1, inout uvec4 m2, inout uvec4 m3) {
    uvec4 n0 = uvec4(m0.z, m1.z, m0.w, m2.z);
    uvec4 n1 = uvec4(m1.w, m0.x, m1.x, m3.y);
    uvec4 n2 = uvec4(m0.y, m2.w, m3.x, m1.y);
    uvec4 n3 = uvec4(m2.y, m3.z, m3.w, m2.x);
    m0 = n0; m1 = n1; m2 = n2; m3 = n3;
}

// The compression function: chaining value (h0, h1) in and out, message words m0..m3 (4 each). The seven
// rounds are written out rather than looped, so no compiler needs to unroll them to turn the permutations
// into renamed registers. Counters stay below 2^32 (their high word is 0).
void compress(inout uvec4 h0, inout uvec4 h1, uvec4 m0, uvec4 m1, uvec4 m2, uvec4 m3,
              uint counter, uint len, uint flags) {
    uvec4 a = h0;
    uvec4 b = h1;
    uvec4 c = IV0;
    uvec4 d = uvec4(counter, 0u, len, flags);
    round7(a, b, c, d, m0, m1, m2, m3); permute(m0, m1, m2, m3);
    round7(a, b, c, d, m0, m1, m2, m3); permute(m0, m1, m2, m3);
    round7(a, b, c, d, m0, m1, m2, m3); permute(m0, m1, m2, m3);
    round7(a, b, c, d, m0, m1, m2, m3); permute(m0, m1, m2, m3);
    round7(a, b, c, d, m0, m1, m2, m3); permute(m0, m1, m2, m3);
    round7(a, b, c, d, m0, m1, m2, m3); permute(m0, m1, m2, m3);
    round7(a, b, c, d, m0, m1, m2, m3);
    h0 = a ^ c;
    h1 = b ^ d;
}

uvec4 sh4(uint at) {
    return uvec4(sh[at], sh[at + 1u], sh[at + 2u], sh[at + 3u]);
}

void put_cv(uint node, uvec4 h0, uvec4 h1) {
    uint at = node * 8u;
    sh[at] = h0.x; sh[at + 1u] = h0.y; sh[at + 2u] = h0.z; sh[at + 3u] = h0.w;
    sh[at + 4u] = h1.x; sh[at + 5u] = h1.y; sh[at + 6u] = h1.z; sh[at + 7u] = h1.w;
}

uvec4 data4(uint at) {
    return uvec4(data[at], data[at + 1u], data[at + 2u], data[at + 3u]);
}

// Payload bytes o .. o+3 as a little-endian word, zero past the payload's end (o < payload_len).
uint payload_word(uint o) {
    uint w = o >> 2u;
    uint s = (o & 3u) << 3u;
    uint v = data[w] >> s;
    uint words = (p.payload_len >> 2u) + uint((p.payload_len & 3u) != 0u);
    if (s != 0u && w + 1u < words) {
        v |= data[w + 1u] << (32u - s);
    }
    uint left = p.payload_len - o;
    return left >= 4u ? v : v & ((1u << (left << 3u)) - 1u);
}

// Bytes of the message in chunk c < count: 1024 but in the last chunk.
uint chunk_len(uint c) {
    if (c == 0u) {
        return p.payload_len >= 1024u - p.prefix_len ? 1024u : p.prefix_len + p.payload_len;
    }
    return min(p.payload_len - (c * 1024u - p.prefix_len), 1024u);
}

// Word wi (0..255) of chunk c < count: prefix, payload or the zero padding after the message.
uint message_word(uint c, uint wi) {
    uint at = wi << 2u;
    if (at >= chunk_len(c)) {
        return 0u;
    }
    if (c == 0u && at < p.prefix_len) {
        uint k = p.prefix_len - at;  // prefix bytes in this word
        if (k >= 4u) {
            return prefix[wi];
        }
        uint v = prefix[wi] & ((1u << (k << 3u)) - 1u);
        return p.payload_len == 0u ? v : v | (payload_word(0u) << (k << 3u));
    }
    return payload_word(c * 1024u + at - p.prefix_len);
}

// Fold the n chaining values in sh (node i at sh[8i .. 8i+7]) into node 0. Every invocation calls it with
// the same n (barriers inside).
void fold(uint n, uint t) {
    while (n > 1u) {
        uint pairs = n >> 1u;
        bool odd = (n & 1u) != 0u;
        uvec4 l0 = uvec4(0u), l1 = uvec4(0u), r0 = uvec4(0u), r1 = uvec4(0u);
        if (t < pairs) {
            l0 = sh4(16u * t); l1 = sh4(16u * t + 4u); r0 = sh4(16u * t + 8u); r1 = sh4(16u * t + 12u);
        } else if (odd && t == pairs) {
            l0 = sh4(16u * t); l1 = sh4(16u * t + 4u);
        }
        barrier();
        if (t < pairs) {
            uvec4 h0 = IV0;
            uvec4 h1 = IV1;
            compress(h0, h1, l0, l1, r0, r1, 0u, 64u, PARENT | (p.root != 0u && n == 2u ? ROOT : 0u));
            put_cv(t, h0, h1);
        } else if (odd && t == pairs) {
            put_cv(t, l0, l1);
        }
        barrier();
        n = pairs + uint(odd);
    }
}

// Staging, sub-step s: in step r (0..15) invocation t moves word t & 15 of block b of the workgroup's chunk
// 2(4r + (t >> 4)) + s, so that a half-warp reads one chunk's 64 contiguous bytes, into row 4r + (t >> 4),
// column t & 15; row j then holds block b of invocation j's chunk 2j + s. ``fast``: the whole workgroup lies
// past the prefix and before the last chunk, and the prefix is whole words (every large tensor: its prefix is
// 8 + 8 ndim bytes); then each word is one load, from ``base`` (the payload word of step 0 of sub-step 0,
// block 0) on, issued a block ahead into registers. Otherwise words come from message_word.
void fetch(uint s, uint b, uint base, out uvec4 q0, out uvec4 q1, out uvec4 q2, out uvec4 q3) {
    uint at = base + (s << 8u) + (b << 4u);
    q0 = uvec4(data[at], data[at + 2048u], data[at + 4096u], data[at + 6144u]);
    q1 = uvec4(data[at + 8192u], data[at + 10240u], data[at + 12288u], data[at + 14336u]);
    q2 = uvec4(data[at + 16384u], data[at + 18432u], data[at + 20480u], data[at + 22528u]);
    q3 = uvec4(data[at + 24576u], data[at + 26624u], data[at + 28672u], data[at + 30720u]);
}

void stash(uint at, uvec4 q0, uvec4 q1, uvec4 q2, uvec4 q3) {
    const uint S = 4u * ROW;  // from one step's row to the next
    sh[at] = q0.x; sh[at + S] = q0.y; sh[at + 2u * S] = q0.z; sh[at + 3u * S] = q0.w;
    sh[at + 4u * S] = q1.x; sh[at + 5u * S] = q1.y; sh[at + 6u * S] = q1.z; sh[at + 7u * S] = q1.w;
    sh[at + 8u * S] = q2.x; sh[at + 9u * S] = q2.y; sh[at + 10u * S] = q2.z; sh[at + 11u * S] = q2.w;
    sh[at + 12u * S] = q3.x; sh[at + 13u * S] = q3.y; sh[at + 14u * S] = q3.z; sh[at + 15u * S] = q3.w;
}

void stage_slow(uint first, uint n, uint s, uint b, uint t, uint at) {
    for (uint r = 0u; r < 16u; ++r) {
        uint k = 2u * (4u * r + (t >> 4u)) + s;
        sh[at + r * 4u * ROW] = k < n ? message_word(first + k, (b << 4u) + (t & 15u)) : 0u;
    }
}

// Blocks the workgroup steps through in sub-step s: 16, but where chunk first + s is the last chunk.
uint steps_of(uint first, uint s) {
    uint c = first + s;
    return c >= p.count ? 0u : c + 1u < p.count ? 16u : max((chunk_len(c) + 63u) >> 6u, 1u);
}

// Invocation t hashes chunks 2t and 2t+1 of the workgroup's 128 (sub-steps 0 and 1) and makes their parent,
// so the first level of the tree costs no idle invocations; the workgroup then folds its 64 values.
void chunks(uint g, uint t) {
    uint first = g * 2u * WG;
    uint n = min(2u * WG, p.count - first);  // chunks in this workgroup
    bool fast = (p.prefix_len & 3u) == 0u && first != 0u && first + 2u * WG < p.count;
    uint base = (first + 2u * (t >> 4u)) * 256u - (p.prefix_len >> 2u) + (t & 15u);
    uint at = (t >> 4u) * ROW + (t & 15u);
    uint row = t * ROW;
    uvec4 q0 = uvec4(0u), q1 = uvec4(0u), q2 = uvec4(0u), q3 = uvec4(0u);  // the next block's words (fast)
    if (fast) {
        fetch(0u, 0u, base, q0, q1, q2, q3);
    }
    uvec4 l0 = uvec4(0u), l1 = uvec4(0u);  // chunk 2t's chaining value
    uvec4 h0 = IV0, h1 = IV1;
    for (uint s = 0u; s < 2u; ++s) {
        uint c = first + 2u * t + s;
        uint len = c < p.count ? chunk_len(c) : 0u;
        uint blocks = c < p.count ? max((len + 63u) >> 6u, 1u) : 0u;
        uint steps = steps_of(first, s);
        h0 = IV0;
        h1 = IV1;
        for (uint b = 0u; b < steps; ++b) {
            if (fast) {
                stash(at, q0, q1, q2, q3);
            } else {
                stage_slow(first, n, s, b, t, at);
            }
            barrier();
            uvec4 m0 = sh4(row), m1 = sh4(row + 4u), m2 = sh4(row + 8u), m3 = sh4(row + 12u);
            barrier();
            if (fast && s * 16u + b < 31u) {
                fetch(b == 15u ? 1u : s, (b + 1u) & 15u, base, q0, q1, q2, q3);
            }
            if (b < blocks) {
                uint last = b + 1u == blocks ? CHUNK_END | (p.root != 0u && p.count == 1u ? ROOT : 0u) : 0u;
                compress(h0, h1, m0, m1, m2, m3, c, last != 0u ? len - (b << 6u) : 64u,
                         (b == 0u ? CHUNK_START : 0u) | last);
            }
        }
        if (s == 0u) {
            l0 = h0;
            l1 = h1;
        }
    }
    if (2u * t + 1u < n) {
        uvec4 r0 = h0, r1 = h1;
        h0 = IV0;
        h1 = IV1;
        compress(h0, h1, l0, l1, r0, r1, 0u, 64u, PARENT | (p.root != 0u && p.count == 2u ? ROOT : 0u));
        put_cv(t, h0, h1);
    } else if (2u * t < n) {
        put_cv(t, l0, l1);
    }
    barrier();
    fold((n + 1u) >> 1u, t);
}

void parents(uint g, uint t) {
    uint first = g * 2u * WG;
    uint have = min(2u * WG, p.count - first);  // chaining values for this workgroup
    uint i = first + 2u * t;
    if (2u * t + 1u < have) {
        uvec4 h0 = IV0;
        uvec4 h1 = IV1;
        compress(h0, h1, data4(8u * i), data4(8u * i + 4u), data4(8u * i + 8u), data4(8u * i + 12u), 0u, 64u,
                 PARENT | (p.root != 0u && p.count == 2u ? ROOT : 0u));
        put_cv(t, h0, h1);
    } else if (2u * t < have) {
        put_cv(t, data4(8u * i), data4(8u * i + 4u));
    }
    barrier();
    fold((have + 1u) >> 1u, t);
}

void main() {
    uint g = gl_WorkGroupID.x;
    uint t = gl_LocalInvocationID.x;
    if (p.mode == 0u) {
        chunks(g, t);
    } else {
        parents(g, t);
    }
    if (t < 8u) {
        cv[8u * g + t] = sh[t];
    }
}
