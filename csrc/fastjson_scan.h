/* fastjson_scan.h: how many bytes from s on need nothing done to them: plain
 * ASCII (UTF-8 checks), bytes a JSON string carries as they are (text, keys).
 * Eight bytes a step (issue 18): a word loaded with memcpy, its bytes tested
 * together by arithmetic that never carries from one byte into the next, so
 * every flagged byte is exact and the order of bytes in the word does not
 * matter; at the first flagged word (and for the last < 8 bytes) the byte
 * loop finds the byte. Static inline: each caller's loop gets its own copy. */
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

/* plain ASCII: below 0x80 */
static inline size_t fj_ascii_run(const uint8_t *s, size_t n)
{
    size_t i = 0;
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
    while (n - i >= 8) {
        uint64_t w = fj_load8(s + i);
        if ((w & FJ_HIGHS) | fj_escaped_bytes(w))
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
    while (n - i >= 8 && !fj_escaped_bytes(fj_load8(s + i)))
        i += 8;
    while (i < n && s[i] >= 0x20 && s[i] != '"' && s[i] != '\\')
        i++;
    return i;
}

#endif
