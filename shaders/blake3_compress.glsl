// BLAKE3's compression function for shaders/blake3.comp: the state is 16 named uints and G a macro on
// them, so no vector swizzle or run-time-indexed array stands between the source and one instruction per
// operation; the message schedule is renaming, written out per round (round r takes m[PERM^r(i)]).
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

// One round: G on the columns, then on the diagonals; its 16 arguments are the message words in this
// round's order.
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
    ROUND(m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15);  // round 1
    ROUND(m2, m6, m3, m10, m7, m0, m4, m13, m1, m11, m12, m5, m9, m14, m15, m8);  // round 2
    ROUND(m3, m4, m10, m12, m13, m2, m7, m14, m6, m5, m9, m0, m11, m15, m8, m1);  // round 3
    ROUND(m10, m7, m12, m9, m14, m3, m13, m15, m4, m0, m11, m2, m5, m8, m1, m6);  // round 4
    ROUND(m12, m13, m9, m11, m15, m10, m14, m8, m7, m2, m5, m3, m0, m1, m6, m4);  // round 5
    ROUND(m9, m14, m11, m5, m8, m12, m15, m1, m13, m3, m0, m10, m2, m6, m4, m7);  // round 6
    ROUND(m11, m15, m5, m0, m1, m9, m8, m6, m14, m10, m2, m12, m3, m4, m7, m13);  // round 7
    h0 = s0 ^ s8; h1 = s1 ^ s9; h2 = s2 ^ s10; h3 = s3 ^ s11;
    h4 = s4 ^ s12; h5 = s5 ^ s13; h6 = s6 ^ s14; h7 = s7 ^ s15;
}
