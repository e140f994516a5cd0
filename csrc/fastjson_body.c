/* fastjson_body.c: a PutRecords request body in one pass (issue 18), the
 * bytes delivery/client.py's put_records_body writes in Python:
 *
 *   {<stream field>,"Records":[{"Data":"<base64>","PartitionKey":"<key>"},
 *                              {..., "ExplicitHashKey":"<hash key>"}, ...]}
 *
 * Data is standard base64 with padding (binascii.b2a_base64, no newline);
 * the key is a JSON string as orjson writes it (", \ and control characters
 * escaped, \b \t \n \f \r short, the rest \u00XX; other bytes as they are);
 * the hash key is copied as it is, as Python does. Python passes the entries
 * as three concatenated buffers and their lengths (no Python object per
 * entry crosses), and declines before calling on anything unusual (a key
 * that is not ASCII). Every length is checked against its buffer and the
 * output's room before a byte is read or written. The head and the entry
 * writer serve fastjson_entries.c's fj_body_at as well (UTF-8 keys, checked
 * there). */
#include "fastjson.h"
#include "fastjson_scan.h"
#include "fastjson_simd.h"

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char HEX[] = "0123456789abcdef";

static const char DATA_OPEN[] = "{\"Data\":\"";
static const char KEY_OPEN[] = "\",\"PartitionKey\":";
static const char HASH_OPEN[] = ",\"ExplicitHashKey\":\"";
static const char RECORDS_OPEN[] = ",\"Records\":[";

#define LIT(s) (sizeof(s) - 1)

/* A bounded writer over the output buffer (struct fj_body_out: fastjson.h). */
int fj_body_put(struct fj_body_out *w, const void *src, size_t n)
{
    if ((size_t)(w->end - w->o) < n)
        return FJ_NEED_ROOM;
    if (n) {  /* src may be NULL when n is 0 */
        memcpy(w->o, src, n);
        w->o += n;
    }
    return FJ_OK;
}

/* Two base64 characters for each 12-bit value, made once: a group of 3
 * bytes is then two table reads instead of four shifts and lookups. */
static uint16_t B64_PAIRS[4096];

/* when the module is loaded, before any thread can build a body */
__attribute__((constructor)) static void make_b64_pairs(void)
{
    for (int v = 0; v < 4096; v++) {
        uint8_t pair[2] = { (uint8_t)B64[v >> 6], (uint8_t)B64[v & 63] };
        memcpy(&B64_PAIRS[v], pair, 2);
    }
}

/* 8 bytes as a big-endian number (the first byte on top) */
static inline uint64_t load_be64(const uint8_t *s)
{
    uint64_t v;
    memcpy(&v, s, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* the top 48 bits of v (6 bytes) as 8 base64 characters at o (four 2-byte
 * stores: measured faster than the pairs put together for one) */
static inline void put_six(uint8_t *o, uint64_t v)
{
    memcpy(o, &B64_PAIRS[v >> 52], 2);
    memcpy(o + 2, &B64_PAIRS[(v >> 40) & 4095], 2);
    memcpy(o + 4, &B64_PAIRS[(v >> 28) & 4095], 2);
    memcpy(o + 6, &B64_PAIRS[(v >> 16) & 4095], 2);
}

/* n bytes as base64, padded; room for all of it is checked first. Twelve
 * bytes a step (two 8-byte loads, 6 bytes used of each: fewer, longer steps
 * measured slower), then a group of 3 at a time, then the padded rest; with
 * AVX2, 24 bytes a step first (fastjson_base64_avx2.c). */
static int put_base64(struct fj_body_out *w, const uint8_t *s, size_t n)
{
    size_t rest = n % 3, need = 4 * (n / 3 + (rest != 0));
    if ((size_t)(w->end - w->o) < need)
        return FJ_NEED_ROOM;
    uint8_t *o = w->o;
    size_t i = 0, whole = n - rest;  /* indices: s may be NULL when n is 0 */
    if (n >= 28 && fj_simd_level() >= FJ_SIMD_AVX2) {
        i = fj_base64_avx2(s, n, o);
        o += i / 3 * 4;
    }
    for (; whole - i >= 14; i += 12, o += 16) {  /* the second load reads 8 from i + 6 */
        put_six(o, load_be64(s + i));
        put_six(o + 8, load_be64(s + i + 6));
    }
    for (; i < whole; i += 3, o += 4) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        memcpy(o, &B64_PAIRS[v >> 12], 2);
        memcpy(o + 2, &B64_PAIRS[v & 4095], 2);
    }
    if (rest) {
        uint32_t v = (uint32_t)s[i] << 16 | (rest == 2 ? (uint32_t)s[i + 1] << 8 : 0);
        o[0] = (uint8_t)B64[v >> 18];
        o[1] = (uint8_t)B64[(v >> 12) & 63];
        o[2] = rest == 2 ? (uint8_t)B64[(v >> 6) & 63] : '=';
        o[3] = '=';
        o += 4;
    }
    w->o = o;
    return FJ_OK;
}

/* A JSON string as orjson writes one: at most 6 output bytes per input byte. */
static int put_json_string(struct fj_body_out *w, const uint8_t *s, size_t n)
{
    if ((size_t)(w->end - w->o) < 6 * n + 2)
        return FJ_NEED_ROOM;
    uint8_t *o = w->o;
    size_t i = 0;
    *o++ = '"';
    while (i < n) {  /* s may be NULL when n is 0 */
        size_t run = fj_json_unescaped_run(s + i, n - i);
        fj_copy(o, s + i, run);
        o += run;
        i += run;
        if (i >= n)
            break;
        uint8_t c = s[i++];
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\t': *o++ = 't'; break;
        case '\n': *o++ = 'n'; break;
        case '\f': *o++ = 'f'; break;
        case '\r': *o++ = 'r'; break;
        default:
            *o++ = 'u'; *o++ = '0'; *o++ = '0';
            *o++ = (uint8_t)HEX[c >> 4];
            *o++ = (uint8_t)HEX[c & 15];
        }
    }
    *o++ = '"';
    w->o = o;
    return FJ_OK;
}

/* The body's head: {<stream field>,"Records":[ */
int fj_body_head(struct fj_body_out *w, const uint8_t *stream_field, size_t stream_field_len)
{
    TRY(fj_body_put(w, "{", 1));
    TRY(fj_body_put(w, stream_field, stream_field_len));
    return fj_body_put(w, RECORDS_OPEN, LIT(RECORDS_OPEN));
}

/* One entry: {"Data":..,"PartitionKey":..[,"ExplicitHashKey":..]}; the key
 * is valid UTF-8 (its bytes from 0x80 go out as they are, as orjson's) */
int fj_body_entry(struct fj_body_out *w, const uint8_t *data, size_t data_len,
                  const uint8_t *key, size_t key_len, const uint8_t *hash, int64_t hash_len)
{
    TRY(fj_body_put(w, DATA_OPEN, LIT(DATA_OPEN)));
    TRY(put_base64(w, data, data_len));
    TRY(fj_body_put(w, KEY_OPEN, LIT(KEY_OPEN)));
    TRY(put_json_string(w, key, key_len));
    if (hash_len >= 0) {
        TRY(fj_body_put(w, HASH_OPEN, LIT(HASH_OPEN)));
        TRY(fj_body_put(w, hash, (size_t)hash_len));
        TRY(fj_body_put(w, "\"", 1));
    }
    return fj_body_put(w, "}", 1);
}

int fj_put_records_body(const uint8_t *stream_field, size_t stream_field_len,
                        const uint8_t *data, size_t data_size, const uint32_t *data_lens,
                        const uint8_t *keys, size_t keys_size, const uint32_t *key_lens,
                        const uint8_t *hashes, size_t hashes_size, const uint32_t *hash_lens,
                        size_t n, uint8_t *out, size_t out_cap, size_t *out_used)
{
    struct fj_body_out w = { out, out + out_cap };
    size_t data_at = 0, key_at = 0, hash_at = 0;
    TRY(fj_body_head(&w, stream_field, stream_field_len));
    for (size_t i = 0; i < n; i++) {
        size_t data_len = data_lens[i], key_len = key_lens[i];
        int64_t hash_len = -1;  /* no ExplicitHashKey */
        if (data_len > data_size - data_at || key_len > keys_size - key_at)
            return FJ_DECLINE;
        if (hash_lens != NULL && hash_lens[i] != FJ_NO_HASH_KEY) {
            if (hash_lens[i] > hashes_size - hash_at)
                return FJ_DECLINE;
            hash_len = hash_lens[i];
        }
        if (i)
            TRY(fj_body_put(&w, ",", 1));
        /* no arithmetic on a NULL buffer (an empty one may be) */
        TRY(fj_body_entry(&w, data_len ? data + data_at : NULL, data_len, key_len ? keys + key_at : NULL,
                           key_len, hash_len > 0 ? hashes + hash_at : NULL, hash_len));
        data_at += data_len;
        key_at += key_len;
        if (hash_len > 0)
            hash_at += (size_t)hash_len;
    }
    /* every byte given belongs to an entry: else the lengths were not these buffers' */
    if (data_at != data_size || key_at != keys_size || hash_at != hashes_size)
        return FJ_DECLINE;
    TRY(fj_body_put(&w, "]}", 2));
    *out_used = (size_t)(w.o - out);
    return FJ_OK;
}
