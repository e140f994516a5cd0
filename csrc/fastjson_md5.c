/* fastjson_md5.c: MD5 (RFC 1321), the digest that ends a KPL aggregate
 * (fastjson_kpl.c). Written here from the RFC's description rather than
 * linked from OpenSSL: libcrypto's headers (libssl-dev) are not among the
 * packages the README's setup installs. One call over a whole buffer; many
 * buffers at once in fastjson_md5_many.c. */
#include "fastjson_kpl.h"
#include "fastjson_md5.h"

/* T[i] = floor(2^32 * |sin(i + 1)|), i in radians (RFC 1321, 3.4) */
FJ_INTERNAL const uint32_t fj_md5_t[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee,
    0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be,
    0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa,
    0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
    0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c,
    0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05,
    0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039,
    0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1,
    0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

/* one 64-byte block into the state, its 64 operations written out (a loop
 * over them kept the compiler from folding each one's word and shift) */
static void md5_block(uint32_t state[4], const uint8_t *p)
{
    uint32_t X[16];
#define T fj_md5_t
    for (int j = 0; j < 16; j++, p += 4)  /* words are little-endian */
        X[j] = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    ROUND1(0); ROUND1(4); ROUND1(8); ROUND1(12);    /* X[i] */
    ROUND2(16); ROUND2(20); ROUND2(24); ROUND2(28); /* X[(1 + 5i) mod 16] */
    ROUND3(32); ROUND3(36); ROUND3(40); ROUND3(44); /* X[(5 + 3i) mod 16] */
    ROUND4(48); ROUND4(52); ROUND4(56); ROUND4(60); /* X[7i mod 16] */
    state[0] += a; state[1] += b; state[2] += c; state[3] += d;
#undef T
}

/* the padded end of an n-byte message: its bytes after the last whole block,
 * a 1 bit, zeros to 56 mod 64, the length in bits (little-endian); 1 or 2 blocks */
FJ_INTERNAL size_t fj_md5_tail(const uint8_t *data, size_t n, uint8_t last[128])
{
    size_t whole = n & ~(size_t)63, rest = n - whole, size = rest < 56 ? 64 : 128;
    memset(last, 0, 128);
    if (rest)
        memcpy(last, data + whole, rest);
    last[rest] = 0x80;
    uint64_t bits = (uint64_t)n << 3;
    for (int j = 0; j < 8; j++)
        last[size - 8 + j] = (uint8_t)(bits >> (8 * j));
    return size / 64;
}

/* the blocks of an n-byte message from `block` on (its padding included) into
 * the state, then the digest: fj_md5_many finishes a lane left alone here */
FJ_INTERNAL void fj_md5_from(uint32_t state[4], const uint8_t *data, size_t n, size_t block, uint8_t digest[16])
{
    size_t whole = n / 64;
    for (; block < whole; block++)
        md5_block(state, data + 64 * block);
    uint8_t last[128];
    size_t total = whole + fj_md5_tail(data, n, last);
    for (; block < total; block++)
        md5_block(state, last + 64 * (block - whole));
    for (int j = 0; j < 16; j++)
        digest[j] = (uint8_t)(state[j / 4] >> (8 * (j % 4)));
}

FJ_INTERNAL void fj_md5(const uint8_t *data, size_t n, uint8_t digest[16])
{
    uint32_t state[4] = { FJ_MD5_A, FJ_MD5_B, FJ_MD5_C, FJ_MD5_D };
    fj_md5_from(state, data, n, 0, digest);
}
