/* fastjson_scan.h: how many bytes from s on need nothing done to them: plain
 * ASCII (UTF-8 checks), bytes a JSON string carries as they are (text, keys);
 * whether a whole string is so; short copies inline. Eight bytes a step
 * (issue 18): a word loaded with memcpy, its bytes tested together by
 * arithmetic that never carries from one byte into the next, so every flagged
 * byte is exact and the order of bytes in the word does not matter (portable
 * C, no SIMD). A run's end: the byte loop from the first flagged word (and
 * for the last < 8 bytes); a whole string: words that overlap at the end.
 * Static inline: each caller's loop gets its own copy. */
#ifndef FASTJSON_SCAN_H
#define FASTJSON_SCAN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FJ_ONES 0x0101010101010101ULL
#define FJ_HIGHS (0x80 * FJ_ONES)

static inline uint64_t fj_load8(const uint8_t *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

static inline uint64_t fj_load4(const uint8_t *p)
{
    uint32_t w;
    memcpy(&w, p, 4);
    return w;
}

/* 0x80 in each byte of w that is 0 (the low 7 bits plus 0x7f reach 0x80
 * unless all 0; a byte's own high bit says the rest) */
static inline uint64_t fj_zero_bytes(uint64_t w)
{
    return ~(((w & ~FJ_HIGHS) + ~FJ_HIGHS) | w) & FJ_HIGHS;
}

/* 0x80 in each byte of w that JSON escapes: below 0x20, '"' or '\\' (the low
 * 7 bits plus 0x60 reach 0x80 from 0x20 on; bytes from 0x80 are not) */
static inline uint64_t fj_escaped_bytes(uint64_t w)
{
    uint64_t below_space = ~((w & ~FJ_HIGHS) + 0x60 * FJ_ONES) & ~w;
    return (below_space | fj_zero_bytes(w ^ ('"' * FJ_ONES)) | fj_zero_bytes(w ^ ('\\' * FJ_ONES))) & FJ_HIGHS;
}

/* 0x80 in each byte of w that a JSON string cannot carry as it is, or is not ASCII */
static inline uint64_t fj_json_odd_bytes(uint64_t w)
{
    return (w & FJ_HIGHS) | fj_escaped_bytes(w);
}

/* Sixteen bytes a step where the CPU has 16-byte vectors (SSE2 on every
 * x86_64, NEON on aarch64), through the compilers' vector extensions: the
 * same bytes are flagged as by the words above, so the runs found are the
 * same; a flagged block is looked at again by words, then bytes. */
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__SSE2__) || defined(__ARM_NEON))
#define FJ_VECTORS 1
typedef uint8_t fj_v16 __attribute__((vector_size(16)));
typedef int8_t fj_sv16 __attribute__((vector_size(16)));

static inline fj_v16 fj_load16(const uint8_t *p)
{
    fj_v16 v;
    memcpy(&v, p, 16);
    return v;
}

static inline int fj_any16(fj_v16 m)
{
    uint64_t a, b;
    memcpy(&a, &m, 8);
    memcpy(&b, (const uint8_t *)&m + 8, 8);
    return (a | b) != 0;
}

/* escaped bytes: below 0x20, '"', '\\' */
static inline fj_v16 fj_escaped16(fj_v16 v)
{
    return (fj_v16)((v < 0x20) | (v == '"') | (v == '\\'));
}

/* fj_json_odd_bytes' bytes: as signed, below 0x20 is also every byte from 0x80 */
static inline fj_v16 fj_json_odd16(fj_v16 v)
{
    return (fj_v16)(((fj_sv16)v < 0x20) | (v == '"') | (v == '\\'));
}
#endif

/* The last word of s[0..n), read without a byte loop: the last 8 bytes
 * (overlapping the word before when n is not a multiple of 8), two 4-byte
 * halves that overlap (n >= 4), or the first, middle and last byte, which
 * are all there are, in a word of 'a's (plain in every sense here). */
static inline uint64_t fj_last_word(const uint8_t *s, size_t n)
{
    if (n >= 8)
        return fj_load8(s + n - 8);
    if (n >= 4)
        return fj_load4(s) | fj_load4(s + n - 4) << 32;
    if (n == 0)
        return 'a' * FJ_ONES;
    return ('a' * FJ_ONES) << 24 | (uint64_t)s[0] | (uint64_t)s[n >> 1] << 8 | (uint64_t)s[n - 1] << 16;
}

/* Whether all n bytes are fj_json_plain_run's: the words before the last,
 * then the last (always inline: gcc outlined it, the call ~4% of fj_convert) */
__attribute__((always_inline)) static inline int fj_json_all_plain(const uint8_t *s, size_t n)
{
    size_t i = 0;
#ifdef FJ_VECTORS
    for (; n > 16 && i < n - 16; i += 16)
        if (fj_any16(fj_json_odd16(fj_load16(s + i))))
            return 0;
#endif
    for (; n > 8 && i < n - 8; i += 8)
        if (fj_json_odd_bytes(fj_load8(s + i)))
            return 0;
    return !fj_json_odd_bytes(fj_last_word(s, n));
}

/* Whether all n bytes are ASCII */
__attribute__((always_inline)) static inline int fj_all_ascii(const uint8_t *s, size_t n)
{
    uint64_t any = fj_last_word(s, n);
    size_t i = 0;
#ifdef FJ_VECTORS
    if (n > 16) {
        fj_v16 all = fj_load16(s);
        for (i = 16; i < n - 16; i += 16)
            all |= fj_load16(s + i);
        any |= fj_any16(all & 0x80) ? FJ_HIGHS : 0;
    }
#endif
    for (; n > 8 && i < n - 8; i += 8)
        any |= fj_load8(s + i);
    return !(any & FJ_HIGHS);
}

/* memcpy of a short run inline (most keys and values), the same overlapping
 * pieces; longer runs go to the library's */
static inline void fj_copy(uint8_t *o, const uint8_t *s, size_t n)
{
    if (n > 16) {
        memcpy(o, s, n);
    } else if (n >= 8) {
        uint64_t a = fj_load8(s), b = fj_load8(s + n - 8);
        memcpy(o, &a, 8);
        memcpy(o + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        memcpy(o, &a, 4);
        memcpy(o + n - 4, &b, 4);
    } else if (n) {
        o[0] = s[0];
        o[n >> 1] = s[n >> 1];
        o[n - 1] = s[n - 1];
    }
}

/* plain ASCII: below 0x80 */
static inline size_t fj_ascii_run(const uint8_t *s, size_t n)
{
    size_t i = 0;
#ifdef FJ_VECTORS
    while (n - i >= 16 && !fj_any16(fj_load16(s + i) & 0x80))
        i += 16;
#endif
    while (n - i >= 8 && !(fj_load8(s + i) & FJ_HIGHS))
        i += 8;
    while (i < n && s[i] < 0x80)
        i++;
    return i;
}

/* what a JSON string carries as it is, and is ASCII: 0x20..0x7f but '"', '\\' */
static inline size_t fj_json_plain_run(const uint8_t *s, size_t n)
{
    size_t i = 0;
#ifdef FJ_VECTORS
    while (n - i >= 16 && !fj_any16(fj_json_odd16(fj_load16(s + i))))
        i += 16;
#endif
    while (n - i >= 8) {
        if (fj_json_odd_bytes(fj_load8(s + i)))
            break;
        i += 8;
    }
    while (i < n && s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' && s[i] != '\\')
        i++;
    return i;
}

/* what a JSON string carries as it is, UTF-8 allowed: all but below 0x20, '"', '\\' */
static inline size_t fj_json_unescaped_run(const uint8_t *s, size_t n)
{
    size_t i = 0;
#ifdef FJ_VECTORS
    while (n - i >= 16 && !fj_any16(fj_escaped16(fj_load16(s + i))))
        i += 16;
#endif
    while (n - i >= 8 && !fj_escaped_bytes(fj_load8(s + i)))
        i += 8;
    while (i < n && s[i] >= 0x20 && s[i] != '"' && s[i] != '\\')
        i++;
    return i;
}

#endif
