/* fastjson_base64_avx2.c: standard base64 (fastjson_body.c's put_base64)
 * 24 bytes a step with AVX2, for CPUs that have it (fastjson_simd.h): each
 * 128-bit half takes 12 bytes, four groups of 3; a shuffle puts each group
 * in a 32-bit word, two multiplies move its four 6-bit values into a byte
 * each, and a small table of offsets turns values into characters. The
 * same characters as the scalar code; it does the whole 24-byte steps only. */
#include "fastjson_simd.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

/* the offset from a 6-bit value to its character, by range: A-Z, a-z, 0-9, +, / */
__attribute__((target("avx2"))) static inline __m256i to_chars(__m256i v)
{
    /* 0 for 26..51, 1..12 for 52..63 (saturating), 13 for 0..25 */
    __m256i range = _mm256_subs_epu8(v, _mm256_set1_epi8(51));
    range = _mm256_or_si256(range, _mm256_and_si256(_mm256_cmpgt_epi8(_mm256_set1_epi8(26), v),
                                                    _mm256_set1_epi8(13)));
    const __m256i offsets = _mm256_setr_epi8(
        'a' - 26, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
        '0' - 52, '+' - 62, '/' - 63, 'A', 0, 0,
        'a' - 26, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
        '0' - 52, '+' - 62, '/' - 63, 'A', 0, 0);
    return _mm256_add_epi8(v, _mm256_shuffle_epi8(offsets, range));
}

FJ_INTERNAL __attribute__((target("avx2"))) size_t fj_base64_avx2(const uint8_t *s, size_t n, uint8_t *o)
{
    /* group a b c (bytes 3k..3k+2 of a half) -> the word's bytes b a c b */
    const __m256i spread = _mm256_setr_epi8(1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10,
                                            1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10);
    size_t i = 0;
    for (; n - i >= 28; i += 24, o += 32) {  /* the second half's load reads 16 bytes from i + 12 */
        __m256i in = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(s + i))),
                                             _mm_loadu_si128((const __m128i *)(s + i + 12)), 1);
        __m256i w = _mm256_shuffle_epi8(in, spread);
        /* low half-word b | a << 8: a >> 2 to byte 0 and (a, b) >> 4 to byte 1;
         * high half-word c | b << 8: (b, c) >> 6 to byte 2 and c's low 6 to byte 3 */
        __m256i first = _mm256_mulhi_epu16(_mm256_and_si256(w, _mm256_set1_epi32(0x0fc0fc00)),
                                           _mm256_set1_epi32(0x04000040));
        __m256i second = _mm256_mullo_epi16(_mm256_and_si256(w, _mm256_set1_epi32(0x003f03f0)),
                                            _mm256_set1_epi32(0x01000010));
        _mm256_storeu_si256((__m256i *)o, to_chars(_mm256_or_si256(first, second)));
    }
    return i;
}

#else

FJ_INTERNAL size_t fj_base64_avx2(const uint8_t *s, size_t n, uint8_t *o)
{
    (void)s, (void)n, (void)o;
    return 0;
}

#endif
