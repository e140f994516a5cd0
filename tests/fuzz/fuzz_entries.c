/* `make fuzz`: libFuzzer with AddressSanitizer and UBSan on the EntryTable
 * kernels (csrc/fastjson_entries.c: fj_shard_indices, fj_group, fj_body_at).
 * An input is: a shard byte (its low 4 bits: how many shards; 16: starts
 * close enough to repeat; 32: gaps) and 8 bytes seeding the shard bounds;
 * then entries of 4 header bytes each (data length, key length, explicit
 * hash key: 255 none, from 128 the digits of a random number with leading
 * zeros, else that many raw bytes; an index into the table, 255 one past
 * it), their bytes cut in turn from what follows.
 * Every column and buffer is a copy of exactly its size (ASan sees a read
 * past its end). Checks against an oracle written apart: each entry's shard
 * (hash keys' range by their digits' text, a linear search); the groups (a
 * permutation, each lane in entry order); the body: FJ_DECLINE exactly when
 * an index is outside the table or a key not UTF-8, else the bytes that
 * fj_put_records_body writes for those entries gathered one after another.
 * And csrc/fastjson_indices.c over the table's sizes at random indices (some
 * outside): sums, gathers, the span and bitmap against plain loops. */
#include "../../csrc/fastjson.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_ENTRIES 64
typedef unsigned __int128 u128;

static const size_t SHARDS[] = { 0, 1, 2, 3, 4, 5, 7, 8, 16, 31, 32, 64, 100, 256, 300, 4096 };
static const char TOP[] = "340282366920938463463374607431768211455";  /* 2**128 - 1 */
static const uint8_t STREAM[] = "\"StreamName\":\"s\"";

static uint64_t seed;
static uint64_t next64(void)  /* splitmix64 */
{
    uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static u128 next128(void) { return (u128)next64() << 64 | next64(); }

static void *copy(const void *src, size_t n)
{
    void *out = malloc(n ? n : 1);
    if (n)
        memcpy(out, src, n);
    return out;
}

/* the digits' value when they are a decimal number up to 2**128 - 1 */
static int oracle_hash(const uint8_t *s, size_t n, u128 *v)
{
    size_t i = 0;
    if (n == 0)
        return 0;
    for (size_t k = 0; k < n; k++)
        if (s[k] < '0' || s[k] > '9')
            return 0;
    while (i < n && s[i] == '0')
        i++;
    if (n - i > 39 || (n - i == 39 && memcmp(s + i, TOP, 39) > 0))
        return 0;
    for (*v = 0; i < n; i++)
        *v = *v * 10 + (s[i] - '0');
    return 1;
}

static int oracle_utf8(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint32_t c = s[i], min;
        size_t len;
        if (c < 0x80) { i++; continue; }
        if ((c & 0xe0) == 0xc0) { len = 2; c &= 0x1f; min = 0x80; }
        else if ((c & 0xf0) == 0xe0) { len = 3; c &= 0x0f; min = 0x800; }
        else if ((c & 0xf8) == 0xf0) { len = 4; c &= 0x07; min = 0x10000; }
        else return 0;
        if (len > n - i)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            c = c << 6 | (s[i + k] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

struct table {
    size_t n, data_size, keys_size, hashes_size, n_idx;
    uint8_t data[65536], keys[4096], hashes[4096];
    uint32_t data_at[MAX_ENTRIES], data_len[MAX_ENTRIES], key_at[MAX_ENTRIES], key_len[MAX_ENTRIES];
    uint32_t hash_at[MAX_ENTRIES], hash_len[MAX_ENTRIES], idx[MAX_ENTRIES];
    int any_hash, bad_index;
};

static void read_entries(struct table *t, const uint8_t *in, size_t n)
{
    size_t headers = 0, at;
    memset(t, 0, offsetof(struct table, data));
    t->bad_index = 0;
    t->any_hash = 0;
    while (t->n < MAX_ENTRIES && headers + 4 <= n && 4 * (t->n + 1) <= n / 2)
        headers += 4, t->n++;
    at = headers;
    for (size_t i = 0; i < t->n; i++) {
        const uint8_t *h = in + 4 * i;
        size_t d = h[0] < n - at ? h[0] : n - at;
        t->data_at[i] = (uint32_t)t->data_size;
        t->data_len[i] = (uint32_t)d;
        memcpy(t->data + t->data_size, in + at, d), t->data_size += d, at += d;
        size_t k = (h[1] % 48) < n - at ? (h[1] % 48) : n - at;
        t->key_at[i] = (uint32_t)t->keys_size;
        t->key_len[i] = (uint32_t)k;
        memcpy(t->keys + t->keys_size, in + at, k), t->keys_size += k, at += k;
        t->hash_at[i] = (uint32_t)t->hashes_size;
        t->hash_len[i] = FJ_NO_HASH_KEY;
        if (h[2] >= 128 && h[2] != 255) {  /* a number's digits, leading zeros first */
            char digits[64];
            size_t len = (size_t)(h[2] & 3);
            memset(digits, '0', len);
            u128 v = next128() >> (next64() % 128);
            char rev[40];
            size_t r = 0;
            do { rev[r++] = (char)('0' + (int)(v % 10)); v /= 10; } while (v);
            while (r)
                digits[len++] = rev[--r];
            memcpy(t->hashes + t->hashes_size, digits, len);
            t->hash_len[i] = (uint32_t)len, t->hashes_size += len, t->any_hash = 1;
        } else if (h[2] != 255) {
            size_t len = (h[2] % 41) < n - at ? (h[2] % 41) : n - at;
            memcpy(t->hashes + t->hashes_size, in + at, len), at += len;
            t->hash_len[i] = (uint32_t)len, t->hashes_size += len, t->any_hash = 1;
        }
        t->idx[t->n_idx++] = h[3] == 255 ? (uint32_t)(t->n + h[3]) : h[3] % (uint32_t)t->n;
        t->bad_index |= h[3] == 255;
    }
}

static void check_shards(const struct table *t, const uint8_t *keys, const uint8_t *hashes,
                         const uint32_t *hash_len, const uint64_t *bounds, const u128 *starts,
                         const u128 *ends, size_t n_shards, int32_t *out)
{
    /* a small memo kept across inputs: stale keys, evictions and hits on every run */
    static uint8_t memo[4 * 96];
    int rc = fj_shard_indices(keys, t->keys_size, t->key_at, t->key_len, hashes, t->hashes_size, t->hash_at,
                              hash_len, t->n, bounds, n_shards, out, memo, sizeof memo);
    assert(rc == FJ_OK);
    for (size_t i = 0; i < t->n; i++) {
        u128 h = 0;
        int32_t expected = -1;
        int valid = 1;
        if (hash_len != NULL && hash_len[i] != FJ_NO_HASH_KEY) {
            valid = oracle_hash(t->hashes + t->hash_at[i], hash_len[i], &h);
        } else {
            uint8_t digest[16];
            fj_md5(t->keys + t->key_at[i], t->key_len[i], digest);
            for (int b = 0; b < 16; b++)
                h = h << 8 | digest[b];
        }
        for (size_t j = n_shards; valid && j-- > 0;)  /* the last start at or below h */
            if (starts[j] <= h) {
                expected = h <= ends[j] ? (int32_t)j : -1;
                break;
            }
        assert(out[i] == expected);
    }
}

static void check_group(const int32_t *shards, size_t n, size_t lanes)
{
    uint32_t *order = malloc((n ? n : 1) * sizeof *order), *first = malloc((lanes + 2) * sizeof *first);
    int32_t *exact = copy(shards, n * sizeof *shards);
    assert(fj_group(exact, n, lanes, order, first) == FJ_OK);
    assert(first[0] == 0 && first[lanes + 1] == n);
    for (size_t lane = 0; lane <= lanes; lane++) {
        assert(first[lane] <= first[lane + 1]);
        for (uint32_t k = first[lane]; k < first[lane + 1]; k++) {
            assert(order[k] < n && (shards[order[k]] < 0 ? lanes : (size_t)shards[order[k]]) == lane);
            assert(k == first[lane] || order[k - 1] < order[k]);  /* in entry order: so a permutation */
        }
    }
    if (n) {  /* a shard past the lanes */
        exact[n - 1] = (int32_t)lanes + 1;
        assert(fj_group(exact, n, lanes, order, first) == FJ_DECLINE);
    }
    free(order), free(first), free(exact);
}

/* the body from fj_body_at against fj_put_records_body's of the gathered entries */
static void check_body(const struct table *t, const uint8_t *data, const uint8_t *keys, const uint8_t *hashes,
                       const uint32_t *hash_len)
{
    static uint8_t g_data[MAX_ENTRIES * 256], g_keys[MAX_ENTRIES * 48], g_hashes[MAX_ENTRIES * 64];
    uint32_t d_lens[MAX_ENTRIES], k_lens[MAX_ENTRIES], h_lens[MAX_ENTRIES];
    size_t gd = 0, gk = 0, gh = 0, used = 0, room = 0, expected_used = 0;
    int utf8 = 1;
    uint32_t *idx = copy(t->idx, t->n_idx * sizeof *idx);
    int rc = fj_body_at(STREAM, sizeof STREAM - 1, data, t->data_size, t->data_at, t->data_len, keys,
                        t->keys_size, t->key_at, t->key_len, hashes, t->hashes_size, t->hash_at, hash_len,
                        t->n, idx, t->n_idx, NULL, 0, &room);
    if (t->bad_index) {
        assert(rc == FJ_DECLINE);
        free(idx);
        return;
    }
    assert(rc == FJ_NEED_ROOM);
    for (size_t i = 0; i < t->n_idx; i++) {  /* each entry at most 255 + 47 + 40 bytes */
        uint32_t e = t->idx[i];
        utf8 &= oracle_utf8(t->keys + t->key_at[e], t->key_len[e]);
        memcpy(g_data + gd, t->data + t->data_at[e], t->data_len[e]), gd += d_lens[i] = t->data_len[e];
        memcpy(g_keys + gk, t->keys + t->key_at[e], t->key_len[e]), gk += k_lens[i] = t->key_len[e];
        h_lens[i] = hash_len ? hash_len[e] : FJ_NO_HASH_KEY;
        if (h_lens[i] != FJ_NO_HASH_KEY)
            memcpy(g_hashes + gh, t->hashes + t->hash_at[e], h_lens[i]), gh += h_lens[i];
    }
    uint8_t *out = malloc(room), *expected = malloc(room);
    rc = fj_body_at(STREAM, sizeof STREAM - 1, data, t->data_size, t->data_at, t->data_len, keys, t->keys_size,
                    t->key_at, t->key_len, hashes, t->hashes_size, t->hash_at, hash_len, t->n, idx, t->n_idx,
                    out, room, &used);
    assert(rc == (utf8 ? FJ_OK : FJ_DECLINE));
    assert(fj_put_records_body(STREAM, sizeof STREAM - 1, g_data, gd, d_lens, g_keys, gk, k_lens, g_hashes, gh,
                               hash_len ? h_lens : NULL, t->n_idx, expected, room, &expected_used) == FJ_OK);
    assert(!utf8 || (used == expected_used && memcmp(out, expected, used) == 0));
    free(out), free(expected), free(idx);
}

/* zlib's CRC-32, a bit at a time: the oracle for the kernel's table. */
static uint32_t crc32_bitwise(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xFFFFFFFFu;
}

/* fj_ledger_line in a buffer of exactly the room it asks for: its CRC, key,
 * time and events (one run, or a bitmap with the indices' bits) read back. */
static void check_ledger_line(const uint32_t *idx, size_t k)
{
    uint8_t key[16];
    size_t need = 0, used = 0;
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)next64();
    uint64_t when = next64() % 4 ? next64() % 4000000000u : next64();
    int rc = fj_ledger_line(idx, k, key, 16, when, NULL, 0, &need);
    assert(rc == (k ? FJ_NEED_ROOM : FJ_DECLINE));
    if (!k || need > (1 << 20))
        return;
    char *line = malloc(need), text[64];
    assert(fj_ledger_line(idx, k, key, 16, when, (uint8_t *)line, need, &used) == FJ_OK);
    assert(used <= need && line[used - 1] == '\n' && line[8] == ' ');
    snprintf(text, sizeof text, "%08x", crc32_bitwise((uint8_t *)line + 9, used - 10));
    assert(memcmp(line, text, 8) == 0);
    for (int i = 0; i < 16; i++) {
        snprintf(text, sizeof text, "%02x", key[i]);
        assert(memcmp(line + 9 + 2 * i, text, 2) == 0);
    }
    int at = 9 + 32 + snprintf(text, sizeof text, " %llu ", (unsigned long long)when);
    assert(memcmp(line + 41, text, (size_t)at - 41) == 0);
    uint32_t lo = idx[0], hi = idx[0];
    for (size_t i = 1; i < k; i++)
        lo = idx[i] < lo ? idx[i] : lo, hi = idx[i] > hi ? idx[i] : hi;
    if ((uint64_t)hi - lo + 1 == k) {
        int len = snprintf(text, sizeof text, "%u:%u\n", lo, hi);
        assert(used == (size_t)(at + len) && memcmp(line + at, text, (size_t)len) == 0);
    } else {
        size_t digits = hi / 4 + 1;
        uint8_t *nibbles = calloc(digits, 1);
        for (size_t i = 0; i < k; i++)
            nibbles[digits - 1 - idx[i] / 4] |= (uint8_t)(1 << idx[i] % 4);
        assert(used == (size_t)at + 1 + digits + 1 && line[at] == '*' && line[at + 1] != '0');
        for (size_t d = 0; d < digits; d++)
            assert(line[at + 1 + d] == "0123456789abcdef"[nibbles[d]]);
        free(nibbles);
    }
    free(line);
}

static int by_value(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* fj_sort_indices against qsort; a repeated or outside index declined with
 * nothing changed; its bitmap all 0 after, either way. */
static void check_sort(const uint32_t *idx, size_t k)
{
    size_t bound = next64() % 4 ? 1 + next64() % 5000 : next64() % 70000, words = (bound + 63) / 64 + next64() % 3;
    uint64_t *bits = calloc(words + 1, 8);
    uint32_t *got = copy(idx, k * 4), *want = copy(idx, k * 4), *seen = calloc(bound + 1, 4);
    int distinct = 1;
    for (size_t i = 0; i < k; i++) {
        distinct = distinct && idx[i] < bound && !seen[idx[i]];
        if (idx[i] < bound)
            seen[idx[i]] = 1;
    }
    qsort(want, k, 4, by_value);
    int rc = fj_sort_indices(got, k, bound, bits, words);
    assert(rc == (distinct ? FJ_OK : FJ_DECLINE));
    assert(memcmp(got, distinct ? want : idx, k * 4) == 0);
    for (size_t w = 0; w < words; w++)
        assert(bits[w] == 0);
    free(bits), free(got), free(want), free(seen);
}

static void check_indices(const uint32_t *column, size_t n)
{
    size_t k = next64() % 600;
    uint32_t *idx = malloc(k * 4 + 4), *out = malloc(k * 4 + 4);
    uint64_t sum = 0, expected = 0;
    int inside = 1, far = next64() % 4 == 0;
    for (size_t i = 0; i < k; i++) {  /* n, and far ones: outside */
        idx[i] = far && next64() % 8 == 0 ? (uint32_t)next64() : (uint32_t)(next64() % (n + 1));
        inside = inside && idx[i] < n;
        expected += idx[i] < n ? column[idx[i]] : 0;
    }
    uint32_t *exact = copy(idx, k * 4);
    assert(fj_sum_at(column, n, exact, k, &sum) == (inside ? FJ_OK : FJ_DECLINE) && (!inside || sum == expected));
    assert(fj_gather_at(column, n, exact, k, out) == (inside ? FJ_OK : FJ_DECLINE));
    for (size_t i = 0; inside && i < k; i++)
        assert(out[i] == column[idx[i]]);
    check_ledger_line(exact, k);
    check_sort(idx, k);
    free(idx), free(out), free(exact);
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t n)
{
    static struct table t;
    if (n < 9)
        return 0;
    size_t n_shards = SHARDS[input[0] & 15];
    memcpy(&seed, input + 1, 8);
    u128 *starts = malloc((n_shards + 1) * sizeof *starts), *ends = malloc((n_shards + 1) * sizeof *ends);
    uint64_t *bounds = malloc((4 * n_shards + 1) * sizeof *bounds);
    starts[0] = 0;  /* in order by construction: each a random step past the last (0..2: some repeat) */
    for (size_t j = 1; j < n_shards; j++)
        starts[j] = starts[j - 1] + (input[0] & 16 ? next64() % 3 : next128() % (~(u128)0 / n_shards));
    for (size_t j = 0; j < n_shards; j++) {
        ends[j] = j + 1 < n_shards ? starts[j + 1] - 1 : ~(u128)0;
        u128 width = ends[j] - starts[j];
        if ((input[0] & 32) && ends[j] >= starts[j] && (next64() & 1))  /* a gap after it */
            ends[j] = starts[j] + (width == ~(u128)0 ? next128() : next128() % (width + 1));
        uint64_t row[4] = { (uint64_t)(starts[j] >> 64), (uint64_t)starts[j], (uint64_t)(ends[j] >> 64),
                            (uint64_t)ends[j] };
        memcpy(bounds + 4 * j, row, sizeof row);
    }
    read_entries(&t, input + 9, n - 9);
    uint8_t *data = copy(t.data, t.data_size), *keys = copy(t.keys, t.keys_size);
    uint8_t *hashes = copy(t.hashes, t.hashes_size);
    uint32_t *hash_len = t.any_hash ? copy(t.hash_len, t.n * 4) : NULL;
    uint64_t *exact_bounds = copy(bounds, 32 * n_shards);
    int32_t *shards = malloc(t.n * 4 + 4);
    check_shards(&t, keys, hashes, hash_len, exact_bounds, starts, ends, n_shards, shards);
    check_group(shards, t.n, n_shards);
    check_body(&t, data, keys, hashes, hash_len);
    uint32_t *sizes = copy(t.key_len, t.n * 4);
    check_indices(sizes, t.n);
    free(sizes);
    free(starts), free(ends), free(bounds), free(exact_bounds), free(shards);
    free(data), free(keys), free(hashes), free(hash_len);
    return 0;
}
