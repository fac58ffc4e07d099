#version 450
#extension GL_EXT_control_flow_attributes : enable
// blake3: the BLAKE3-256 of message = prefix ‖ payload, bit for bit what the reference implementation gives
// for the same bytes. For a tensor the prefix is its LC-B ext marker and tensor header (binding 0, words,
// little-endian) and the payload its raw bytes as the device holds them (binding 1, read as 32-bit words
// with byte shifts: the prefix length need not be a multiple of 4). One pass is one dispatch:
//
// mode 0, chunks: workgroup g takes chunks 64g .. 64g+63 of the message, one chunk (1024 bytes, 16 blocks of
//   64) per invocation. Block by block the workgroup first stages the 64 chunks' 16-word blocks into shared
//   memory with coalesced loads (row k = chunk k, 17 words per row so that reading a row per invocation hits
//   distinct banks; the next block's loads are issued before this one is compressed), then each invocation
//   compresses its own block (counter = chunk index, CHUNK_START on
//   block 0, CHUNK_END on the chunk's last block, which holds 1..64 bytes, zero-padded). The workgroup
//   then folds its 64 chaining values into one (below) and writes it to out[8g .. 8g+7].
// mode 1, parents: workgroup g takes chaining values 128g .. 128g+127 of binding 1 (8 words each), makes
//   their parents (PARENT) and folds those as in mode 0 into out[8g .. 8g+7].
// Folding pairs adjacent chaining values level by level, an odd last one carried up unchanged: over aligned
// power-of-two blocks this is BLAKE3's tree (left subtrees complete powers of two), so passes repeat until
// one value is left. The pass that leaves it runs as one workgroup with root = 1: its last compression (the
// single chunk's last block, or the top parent) also gets ROOT, and out[0 .. 7] is the digest.
// Workgroup index = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x (more than 65535 fit one
// dispatch); padding workgroups return at once. Byte offsets are 32-bit: a chunk's offset into the payload is
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

const uint WG = 64u;      // invocations per workgroup: chunks per workgroup in mode 0
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

// The compression function: chaining value (h0, h1) in and out, message words m0..m3 (4 each), 7 rounds,
// the message permuted between them. Counters stay below 2^32 (their high word is 0).
void compress(inout uvec4 h0, inout uvec4 h1, uvec4 m0, uvec4 m1, uvec4 m2, uvec4 m3,
              uint counter, uint len, uint flags) {
    uvec4 a = h0;
    uvec4 b = h1;
    uvec4 c = IV0;
    uvec4 d = uvec4(counter, 0u, len, flags);
    [[unroll]] for (uint r = 0u; r < 7u; ++r) {
        g4(a, b, c, d, uvec4(m0.x, m0.z, m1.x, m1.z), uvec4(m0.y, m0.w, m1.y, m1.w));
        b = b.yzwx; c = c.zwxy; d = d.wxyz;
        g4(a, b, c, d, uvec4(m2.x, m2.z, m3.x, m3.z), uvec4(m2.y, m2.w, m3.y, m3.w));
        b = b.wxyz; c = c.zwxy; d = d.yzwx;
        // m[i] = m[PERM[i]], PERM = 2 6 3 10 7 0 4 13 1 11 12 5 9 14 15 8
        uvec4 n0 = uvec4(m0.z, m1.z, m0.w, m2.z);
        uvec4 n1 = uvec4(m1.w, m0.x, m1.x, m3.y);
        uvec4 n2 = uvec4(m0.y, m2.w, m3.x, m1.y);
        uvec4 n3 = uvec4(m2.y, m3.z, m3.w, m2.x);
        m0 = n0; m1 = n1; m2 = n2; m3 = n3;
    }
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

// Word (t & 15) of block b of the workgroup's chunk 4r + (t >> 4): what invocation t stages in step r, so
// that a half-warp reads one chunk's 64 contiguous bytes. ``fast``: the whole workgroup lies past the prefix
// and before the last chunk, and the prefix is whole words (every large tensor: its prefix is 8 + 8 ndim
// bytes); then the word is one load from ``base``, the payload word of step 0's chunk.
uint staged(uint first, uint n, uint b, uint r, uint t, bool fast, uint base) {
    if (fast) {
        return data[base + r * 1024u + (b << 4u)];
    }
    uint k = 4u * r + (t >> 4u);
    return k < n ? message_word(first + k, (b << 4u) + (t & 15u)) : 0u;
}

void fetch(uint first, uint n, uint b, uint t, bool fast, uint base,
           out uvec4 q0, out uvec4 q1, out uvec4 q2, out uvec4 q3) {
    q0 = uvec4(staged(first, n, b, 0u, t, fast, base), staged(first, n, b, 1u, t, fast, base),
               staged(first, n, b, 2u, t, fast, base), staged(first, n, b, 3u, t, fast, base));
    q1 = uvec4(staged(first, n, b, 4u, t, fast, base), staged(first, n, b, 5u, t, fast, base),
               staged(first, n, b, 6u, t, fast, base), staged(first, n, b, 7u, t, fast, base));
    q2 = uvec4(staged(first, n, b, 8u, t, fast, base), staged(first, n, b, 9u, t, fast, base),
               staged(first, n, b, 10u, t, fast, base), staged(first, n, b, 11u, t, fast, base));
    q3 = uvec4(staged(first, n, b, 12u, t, fast, base), staged(first, n, b, 13u, t, fast, base),
               staged(first, n, b, 14u, t, fast, base), staged(first, n, b, 15u, t, fast, base));
}

// Step r's word goes to row 4r + (t >> 4), column t & 15 of the staging buffer: at + 4r * ROW.
void stash(uint at, uvec4 q0, uvec4 q1, uvec4 q2, uvec4 q3) {
    const uint S = 4u * ROW;
    sh[at] = q0.x; sh[at + S] = q0.y; sh[at + 2u * S] = q0.z; sh[at + 3u * S] = q0.w;
    sh[at + 4u * S] = q1.x; sh[at + 5u * S] = q1.y; sh[at + 6u * S] = q1.z; sh[at + 7u * S] = q1.w;
    sh[at + 8u * S] = q2.x; sh[at + 9u * S] = q2.y; sh[at + 10u * S] = q2.z; sh[at + 11u * S] = q2.w;
    sh[at + 12u * S] = q3.x; sh[at + 13u * S] = q3.y; sh[at + 14u * S] = q3.z; sh[at + 15u * S] = q3.w;
}

void chunks(uint g, uint t) {
    uint first = g * WG;
    uint n = min(WG, p.count - first);  // chunks in this workgroup
    uint c = first + t;
    uint len = c < p.count ? chunk_len(c) : 0u;
    uint blocks = c < p.count ? max((len + 63u) >> 6u, 1u) : 0u;
    uint steps = n > 1u ? 16u : max((chunk_len(first) + 63u) >> 6u, 1u);  // the first chunk has the most blocks
    bool fast = (p.prefix_len & 3u) == 0u && first != 0u && first + WG < p.count;
    uint base = (first + (t >> 4u)) * 256u - (p.prefix_len >> 2u) + (t & 15u);
    uint at = (t >> 4u) * ROW + (t & 15u);
    uvec4 q0, q1, q2, q3;  // the next block's words: loaded while this block is compressed
    fetch(first, n, 0u, t, fast, base, q0, q1, q2, q3);
    uvec4 h0 = IV0;
    uvec4 h1 = IV1;
    for (uint b = 0u; b < steps; ++b) {
        stash(at, q0, q1, q2, q3);
        barrier();
        uint row = t * ROW;
        uvec4 m0 = sh4(row), m1 = sh4(row + 4u), m2 = sh4(row + 8u), m3 = sh4(row + 12u);
        barrier();
        if (b + 1u < steps) {
            fetch(first, n, b + 1u, t, fast, base, q0, q1, q2, q3);
        }
        if (b < blocks) {
            uint last = b + 1u == blocks ? CHUNK_END | (p.root != 0u && p.count == 1u ? ROOT : 0u) : 0u;
            compress(h0, h1, m0, m1, m2, m3, c, last != 0u ? len - (b << 6u) : 64u,
                     (b == 0u ? CHUNK_START : 0u) | last);
        }
    }
    if (t < n) {
        put_cv(t, h0, h1);
    }
    barrier();
    fold(n, t);
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
    uint g = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    uint t = gl_LocalInvocationID.x;
    uint per = p.mode == 0u ? WG : 2u * WG;
    if (g >= (p.count + per - 1u) / per) {
        return;  // uniform for the whole workgroup: the grid's padding
    }
    if (p.mode == 0u) {
        chunks(g, t);
    } else {
        parents(g, t);
    }
    if (t < 8u) {
        cv[8u * g + t] = sh[t];
    }
}
