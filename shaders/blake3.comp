#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
// blake3: the BLAKE3-256 of message = prefix ‖ payload, bit for bit what the reference implementation gives
// for the same bytes. For a tensor the prefix is its LC-B ext marker and tensor header (binding 0, words,
// little-endian) and the payload its raw bytes as the device holds them (binding 1, read as uvec4: whole
// 16-byte loads where the prefix length allows, else words with byte shifts). One pass is one dispatch:
//
// mode 0, chunks: workgroup g takes chunks 128g .. 128g+127 of the message; invocation t hashes chunk
//   128g + t (1024 bytes, 16 blocks of 64: counter = chunk index, CHUNK_START on block 0, CHUNK_END on the
//   chunk's last block, which holds 1..64 bytes, zero-padded), the next block's words loaded while this one
//   is compressed. A block wholly in the payload (all but the prefix's and the message's last) is read
//   straight from binding 1: four uvec4 loads when the prefix is a multiple of 16 bytes (1-d and 3-d
//   tensors: 8 + 8 ndim bytes), 16 word loads when it is whole words; any other block is assembled word by
//   word (prefix, shifted payload, zero padding). The choice is per block, so no workgroup takes a slow
//   path as a whole and none trails the rest.
// mode 1, parents: workgroup g takes chaining values 128g .. 128g+127 of binding 1 (8 words each).
// Both modes then fold the workgroup's 128 values in shared memory into out[8g .. 8g+7]: adjacent values
// paired level by level, an odd last one carried up unchanged. Over aligned power-of-two blocks this is
// BLAKE3's tree (left subtrees complete powers of two), so passes repeat until one value is left. The pass
// that leaves it runs as one workgroup with root = 1: its last compression (the single chunk's last block,
// or the top parent) also gets ROOT, and out[0 .. 7] is the digest.
// Dispatch: [ceil(count / 128), 1, 1], at most 32769 workgroups (a payload below 4 GiB). Byte offsets are
// 32-bit: a chunk's offset into the payload is computed modulo 2^32, exact for every byte of the message.
//
// Why this shape: on an H200 (256 MiB float32) it hashes at 1220 GB/s, 1.52x the earlier shader that
// staged 64 chunks' blocks through shared memory with two chunks per invocation (805 GB/s); two or four
// chunks per invocation (their parents made in registers) gave 1142 and 1168 GB/s, and without the
// prefetch 1115. The chunk pass is bound by the integer pipes (about 11 operations per byte), so what
// counts is no barriers or shared-memory traffic per block and enough invocations in flight (64 registers).
// The code is kept small for the driver's compiler, which builds this pipeline on a cold start of any run
// with a large output: one compression and one block fetch in the chunk loop, the slow path's 16 words in a
// loop, the rounds in a loop (blake3_compress.glsl). The driver built the fully unrolled form in 378 ms, this
// one in 98 ms, at 0.99x its speed (1206 GB/s; H200, empty caches: benchmarks/bench_compile.py).
layout(local_size_x = 128) in;

layout(std430, set = 0, binding = 0) readonly buffer Prefix { uint prefix[]; };
layout(std430, set = 0, binding = 1) readonly buffer Data { uvec4 data[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Out { uint cv[]; };
layout(push_constant) uniform Params {
    uint mode;         // 0: chunks of prefix ‖ payload, 1: parents of the chaining values in data
    uint prefix_len;   // bytes of prefix, below 1024 (mode 0)
    uint payload_len;  // bytes of payload (mode 0)
    uint count;        // chunks of the message (mode 0) or chaining values in data (mode 1), at least 1
    uint root;         // 1 when this pass leaves the root: one workgroup
} p;

#include "blake3_compress.glsl"

const uint WG = 128u;  // invocations per workgroup: one chunk (mode 0) or chaining value (mode 1) each

shared uint sh[WG * 8u];  // chaining values, 8 words each

// Word w of binding 1 (one 32-bit load).
uint word(uint w) {
    return data[w >> 2u][w & 3u];
}

// Payload bytes o .. o+3 as a little-endian word, zero past the payload's end (o < payload_len).
uint payload_word(uint o) {
    uint w = o >> 2u;
    uint s = (o & 3u) << 3u;
    uint v = word(w) >> s;
    uint words = (p.payload_len >> 2u) + uint((p.payload_len & 3u) != 0u);
    if (s != 0u && w + 1u < words) {
        v |= word(w + 1u) << (32u - s);
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

// The 16 payload words from word w on: four uvec4 loads when w is a multiple of 4, else 16.
void fetch(bool vec, uint w, out uvec4 q0, out uvec4 q1, out uvec4 q2, out uvec4 q3) {
    if (vec) {
        uint v = w >> 2u;
        q0 = data[v]; q1 = data[v + 1u]; q2 = data[v + 2u]; q3 = data[v + 3u];
    } else {
        q0 = uvec4(word(w), word(w + 1u), word(w + 2u), word(w + 3u));
        q1 = uvec4(word(w + 4u), word(w + 5u), word(w + 6u), word(w + 7u));
        q2 = uvec4(word(w + 8u), word(w + 9u), word(w + 10u), word(w + 11u));
        q3 = uvec4(word(w + 12u), word(w + 13u), word(w + 14u), word(w + 15u));
    }
}

// The compression on a chaining value (h0, h1) and a block (q0 .. q3), as uvec4 (compress takes scalars).
#define COMPRESS(h0, h1, q0, q1, q2, q3, counter, len, flags) \
    compress(h0.x, h0.y, h0.z, h0.w, h1.x, h1.y, h1.z, h1.w, q0.x, q0.y, q0.z, q0.w, q1.x, q1.y, q1.z, q1.w, \
             q2.x, q2.y, q2.z, q2.w, q3.x, q3.y, q3.z, q3.w, counter, len, flags)

// The parent of chaining values (l0, l1) and (r0, r1), into (l0, l1).
void parent(inout uvec4 l0, inout uvec4 l1, uvec4 r0, uvec4 r1, uint flags) {
    uvec4 h0 = uvec4(IV_0, IV_1, IV_2, IV_3), h1 = uvec4(IV_4, IV_5, IV_6, IV_7);
    COMPRESS(h0, h1, l0, l1, r0, r1, 0u, 64u, PARENT | flags);
    l0 = h0;
    l1 = h1;
}

void put_cv(uint node, uvec4 h0, uvec4 h1) {
    uint at = node * 8u;
    sh[at] = h0.x; sh[at + 1u] = h0.y; sh[at + 2u] = h0.z; sh[at + 3u] = h0.w;
    sh[at + 4u] = h1.x; sh[at + 5u] = h1.y; sh[at + 6u] = h1.z; sh[at + 7u] = h1.w;
}

uvec4 sh4(uint at) {
    return uvec4(sh[at], sh[at + 1u], sh[at + 2u], sh[at + 3u]);
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
            parent(l0, l1, r0, r1, p.root != 0u && n == 2u ? ROOT : 0u);
            put_cv(t, l0, l1);
        } else if (odd && t == pairs) {
            put_cv(t, l0, l1);
        }
        barrier();
        n = pairs + uint(odd);
    }
}

// Blocks of the message (64 bytes each, the last one 1..64 bytes, or 0 for the empty message), from the
// last chunk's length, so that no byte count of the whole message (up to 2^32 + 1022) is formed.
uint message_blocks() {
    return (p.count - 1u) * 16u + max((chunk_len(p.count - 1u) + 63u) >> 6u, 1u);
}

// The 16 words of block B of the message (of nb). A block that lies past the prefix and before the last
// one, with a prefix of whole words, is read straight from the payload (uvec4 loads where the prefix is a
// multiple of 16 bytes); any other (the prefix's, the last, all of a message whose prefix is not whole
// words: those are below 64 KiB) word by word through message_word.
void fetch_block(uint B, uint nb, out uvec4 q0, out uvec4 q1, out uvec4 q2, out uvec4 q3) {
    if ((p.prefix_len & 3u) == 0u && B >= ((p.prefix_len + 63u) >> 6u) && B + 1u < nb) {
        fetch((p.prefix_len & 15u) == 0u, 16u * B - (p.prefix_len >> 2u), q0, q1, q2, q3);
    } else {
        uint c = B >> 4u;
        uint w = (B & 15u) << 4u;
        uint q[16];
        [[dont_unroll]] for (uint j = 0u; j < 16u; ++j) {
            q[j] = message_word(c, w + j);
        }
        q0 = uvec4(q[0], q[1], q[2], q[3]);
        q1 = uvec4(q[4], q[5], q[6], q[7]);
        q2 = uvec4(q[8], q[9], q[10], q[11]);
        q3 = uvec4(q[12], q[13], q[14], q[15]);
    }
}

// The chaining value (h0, h1) of chunk c < count: its blocks in order, the next block's words loaded while
// this one is compressed.
void chunk(uint c, out uvec4 h0, out uvec4 h1) {
    uint nb = message_blocks();
    uint B0 = c * 16u;
    uint B1 = min(B0 + 16u, nb);
    uvec4 q0 = uvec4(0u), q1 = uvec4(0u), q2 = uvec4(0u), q3 = uvec4(0u);
    h0 = uvec4(IV_0, IV_1, IV_2, IV_3);
    h1 = uvec4(IV_4, IV_5, IV_6, IV_7);
    for (uint B = B0; B <= B1; ++B) {  // load block B, compress block B - 1
        uvec4 m0 = q0, m1 = q1, m2 = q2, m3 = q3;
        if (B < B1) {
            fetch_block(B, nb, q0, q1, q2, q3);
        }
        if (B > B0) {
            uint b = (B - 1u) & 15u;
            uint root = p.root != 0u && p.count == 1u ? ROOT : 0u;  // a message of one chunk
            uint flags = (b == 0u ? CHUNK_START : 0u) | (B == B1 ? CHUNK_END | root : 0u);
            COMPRESS(h0, h1, m0, m1, m2, m3, c, B == nb ? chunk_len(c) - (b << 6u) : 64u, flags);
        }
    }
}

void main() {
    uint g = gl_WorkGroupID.x;
    uint t = gl_LocalInvocationID.x;
    uint i = g * WG + t;  // this invocation's chunk or chaining value
    uint n = min(WG, p.count - g * WG);  // chunks or values of this workgroup
    if (t < n) {
        uvec4 h0, h1;
        if (p.mode == 0u) {
            chunk(i, h0, h1);
        } else {
            h0 = data[2u * i];
            h1 = data[2u * i + 1u];
        }
        put_cv(t, h0, h1);
    }
    barrier();
    fold(n, t);
    if (t < 8u) {
        cv[8u * g + t] = sh[t];
    }
}
