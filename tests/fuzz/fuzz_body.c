/* `make fuzz`: libFuzzer with AddressSanitizer and UBSan on the PutRecords
 * body (csrc/fastjson_body.c). An input is entries: 3 header bytes each
 * (data length, key length, hash key length or 255 for none), then their
 * bytes, taken in turn from what follows (lengths cut to what is left). Each
 * buffer is a copy of exactly its size, so ASan sees any read past its end.
 * Checks: FJ_OK with the room the Python caller gives, the body's exact
 * length (counted here on its own), its first record's data read back from
 * base64, FJ_NEED_ROOM one byte short, FJ_DECLINE for lengths that do not
 * match the buffers; the same body with the scalar code forced (base64 has
 * an AVX2 version, csrc/fastjson_base64_avx2.c). */
#include "../../csrc/fastjson.h"
#include "../../csrc/fastjson_simd.h"

#include <assert.h>
#include <stdlib.h>

#define MAX_ENTRIES 64

static const uint8_t STREAM[] = "\"StreamName\":\"s\"";

static uint8_t *copy(const uint8_t *src, size_t n)
{
    uint8_t *out = malloc(n ? n : 1);
    if (n)
        memcpy(out, src, n);
    return out;
}

static size_t json_string_size(const uint8_t *s, size_t n)
{
    size_t size = 2;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        size += c == '"' || c == '\\' || c == '\b' || c == '\t' || c == '\n' || c == '\f' || c == '\r' ? 2
              : c < 0x20 ? 6 : 1;
    }
    return size;
}

static int b64_value(uint8_t c)
{
    const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *at = memchr(alphabet, c, 64);
    return at ? (int)(at - alphabet) : -1;
}

/* the first record's data, read back from the body */
static void check_first_data(const uint8_t *body, const uint8_t *data, size_t len)
{
    const uint8_t *p = body + 1 + (sizeof(STREAM) - 1) + 12 + 9;
    for (size_t i = 0; i < len; i += 3, p += 4) {
        uint32_t v = 0;
        for (int k = 0; k < 4; k++)
            v = v << 6 | (p[k] == '=' ? 0 : (uint32_t)b64_value(p[k]));
        for (size_t k = 0; k < 3 && i + k < len; k++)
            assert(data[i + k] == (uint8_t)(v >> (16 - 8 * k)));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t n)
{
    uint32_t data_lens[MAX_ENTRIES], key_lens[MAX_ENTRIES], hash_lens[MAX_ENTRIES];
    size_t count = 0, headers = 0, data_size = 0, keys_size = 0, hashes_size = 0, expected = 0;
    int any_hash = 0;
    while (count < MAX_ENTRIES && headers + 3 <= n && 3 * (count + 1) <= n / 2) {
        data_lens[count] = input[headers];
        key_lens[count] = input[headers + 1] % 48;
        hash_lens[count] = input[headers + 2] == 255 ? FJ_NO_HASH_KEY : input[headers + 2] % 40;
        headers += 3;
        count++;
    }
    /* the bytes after the headers, shared out in turn */
    const uint8_t *rest = input + headers;
    size_t left = n - headers;
    for (size_t i = 0; i < count; i++) {
        if (data_lens[i] > left) data_lens[i] = (uint32_t)left;
        left -= data_lens[i];
        if (key_lens[i] > left) key_lens[i] = (uint32_t)left;
        left -= key_lens[i];
        if (hash_lens[i] != FJ_NO_HASH_KEY) {
            if (hash_lens[i] > left) hash_lens[i] = (uint32_t)left;
            left -= hash_lens[i];
            hashes_size += hash_lens[i];
            any_hash = 1;
        }
        data_size += data_lens[i];
        keys_size += key_lens[i];
    }
    /* three exact buffers, cut from the rest in the same order */
    uint8_t *data = malloc(data_size ? data_size : 1), *keys = malloc(keys_size ? keys_size : 1);
    uint8_t *hashes = malloc(hashes_size ? hashes_size : 1);
    size_t at = 0, d = 0, k = 0, h = 0;
    expected = 1 + (sizeof(STREAM) - 1) + 12 + 2 + (count ? count - 1 : 0);
    for (size_t i = 0; i < count; i++) {
        memcpy(data + d, rest + at, data_lens[i]); at += data_lens[i];
        memcpy(keys + k, rest + at, key_lens[i]); at += key_lens[i];
        expected += 9 + 4 * ((data_lens[i] + 2) / 3) + 17 + json_string_size(keys + k, key_lens[i]) + 1;
        if (hash_lens[i] != FJ_NO_HASH_KEY) {
            memcpy(hashes + h, rest + at, hash_lens[i]); at += hash_lens[i];
            h += hash_lens[i];
            expected += 20 + hash_lens[i] + 1;
        }
        d += data_lens[i];
        k += key_lens[i];
    }
    uint8_t *exact_data = copy(data, data_size), *exact_keys = copy(keys, keys_size);
    uint8_t *exact_hashes = copy(hashes, hashes_size);
    const uint32_t *lens = any_hash ? hash_lens : NULL;
    size_t cap = 16 + sizeof(STREAM) + 4 * (data_size / 3) + 4 * count + 6 * keys_size + hashes_size + 64 * count;
    uint8_t *out = malloc(cap);
    size_t used = 0;
    int rc = fj_put_records_body(STREAM, sizeof(STREAM) - 1, exact_data, data_size, data_lens, exact_keys,
                                 keys_size, key_lens, exact_hashes, hashes_size, lens, count, out, cap, &used);
    assert(rc == FJ_OK && used == expected && used <= cap);
    if (count)
        check_first_data(out, exact_data, data_lens[0]);
    uint8_t *scalar_out = malloc(cap);  /* the writer asks for room before it knows an entry's size */
    size_t scalar_used = 0;
    fj_simd_limit(FJ_SIMD_SCALAR);
    assert(fj_put_records_body(STREAM, sizeof(STREAM) - 1, exact_data, data_size, data_lens, exact_keys, keys_size,
                               key_lens, exact_hashes, hashes_size, lens, count, scalar_out, cap,
                               &scalar_used) == FJ_OK);
    fj_simd_limit(0);
    assert(scalar_used == used && memcmp(scalar_out, out, used) == 0);
    free(scalar_out);
    uint8_t *short_out = malloc(used - 1);
    assert(fj_put_records_body(STREAM, sizeof(STREAM) - 1, exact_data, data_size, data_lens, exact_keys,
                               keys_size, key_lens, exact_hashes, hashes_size, lens, count, short_out,
                               used - 1, &used) == FJ_NEED_ROOM);
    if (count) {  /* one data byte more than the buffer holds */
        data_lens[count - 1]++;
        assert(fj_put_records_body(STREAM, sizeof(STREAM) - 1, exact_data, data_size, data_lens, exact_keys,
                                   keys_size, key_lens, exact_hashes, hashes_size, lens, count, out, cap,
                                   &used) == FJ_DECLINE);
    }
    free(short_out);
    free(out);
    free(exact_data); free(exact_keys); free(exact_hashes);
    free(data); free(keys); free(hashes);
    return 0;
}
