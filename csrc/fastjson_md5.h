/* fastjson_md5.h: MD5's rounds (RFC 1321, 3.4), written once for the scalar
 * code (fastjson_md5.c, uint32_t words) and the many-lane code
 * (fastjson_md5_lanes.h, vectors of words: the same operators apply), and what
 * the two share. The step macros read X[16] (this block's words) and T. */
#ifndef FASTJSON_MD5_H
#define FASTJSON_MD5_H

#include "fastjson.h"

#define FJ_MD5_A 0x67452301u
#define FJ_MD5_B 0xefcdab89u
#define FJ_MD5_C 0x98badcfeu
#define FJ_MD5_D 0x10325476u

FJ_INTERNAL extern const uint32_t fj_md5_t[64];

#define ROTL(x, s) (((x) << (s)) | ((x) >> (32 - (s))))
/* F and G as the RFC's (x & y) | (~x & z) and (x & z) | (y & ~z), in fewer operations */
#define F(x, y, z) ((((y) ^ (z)) & (x)) ^ (z))
#define G(x, y, z) ((((x) ^ (y)) & (z)) ^ (y))
#define H(x, y, z) ((x) ^ (y) ^ (z))
#define I(x, y, z) ((y) ^ ((x) | ~(z)))
/* one operation: a = b + ((a + f(b, c, d) + X[k] + T[i]) <<< s), the sum
 * that does not wait for b first */
#define STEP(f, a, b, c, d, k, s, i) \
    do { (a) += X[(k)] + T[(i)]; (a) += f((b), (c), (d)); (a) = ROTL((a), (s)) + (b); } while (0)

/* four operations of each round, with its function, words and shifts (3.4) */
#define ROUND1(i) do { STEP(F, a, b, c, d, (i), 7, (i)); STEP(F, d, a, b, c, (i) + 1, 12, (i) + 1); \
                       STEP(F, c, d, a, b, (i) + 2, 17, (i) + 2); STEP(F, b, c, d, a, (i) + 3, 22, (i) + 3); } while (0)
#define ROUND2(i) do { STEP(G, a, b, c, d, (5 * (i) + 1) & 15, 5, (i)); STEP(G, d, a, b, c, (5 * (i) + 6) & 15, 9, (i) + 1); \
                       STEP(G, c, d, a, b, (5 * (i) + 11) & 15, 14, (i) + 2); \
                       STEP(G, b, c, d, a, (5 * (i) + 16) & 15, 20, (i) + 3); } while (0)
#define ROUND3(i) do { STEP(H, a, b, c, d, (3 * (i) + 5) & 15, 4, (i)); STEP(H, d, a, b, c, (3 * (i) + 8) & 15, 11, (i) + 1); \
                       STEP(H, c, d, a, b, (3 * (i) + 11) & 15, 16, (i) + 2); \
                       STEP(H, b, c, d, a, (3 * (i) + 14) & 15, 23, (i) + 3); } while (0)
#define ROUND4(i) do { STEP(I, a, b, c, d, (7 * (i)) & 15, 6, (i)); STEP(I, d, a, b, c, (7 * (i) + 7) & 15, 10, (i) + 1); \
                       STEP(I, c, d, a, b, (7 * (i) + 14) & 15, 15, (i) + 2); \
                       STEP(I, b, c, d, a, (7 * (i) + 21) & 15, 21, (i) + 3); } while (0)

/* fastjson_md5.c: a message's padded end (returns its blocks, 1 or 2), and a
 * message hashed on from one of its blocks, its padding included */
FJ_INTERNAL size_t fj_md5_tail(const uint8_t *data, size_t n, uint8_t last[128]);
FJ_INTERNAL void fj_md5_from(uint32_t state[4], const uint8_t *data, size_t n, size_t block, uint8_t digest[16]);

#endif
