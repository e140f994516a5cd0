/* `make fuzz`: libFuzzer with AddressSanitizer and UBSan on KPL aggregation
 * (csrc/fastjson_kpl*.c, fastjson_md5.c). An input is: 5 header bytes
 * (shards, limit, skip, turn, keyless mode), a key count, each key's 3 bytes
 * (length, shard or a gap, hash key length), then records of 2 bytes (key
 * id, length), their bytes cut in turn from what follows (repeated when it
 * runs out). Every buffer is a copy of exactly its size, so ASan sees a read
 * past its end. Checks: FJ_NEED_ROOM with the exact size, FJ_OK in exactly
 * that room and FJ_NEED_ROOM one byte short; every record in exactly one
 * entry; each shard's records in input order; each aggregate within the
 * limit, its protobuf read back (keys, hash key, every record's data as
 * given); FJ_DECLINE for lengths that do not add up; MD5 on RFC 1321's
 * test suite; the same case over a table (fuzz_kpl_table.h). The header's last
 * byte also picks the SIMD level the pack's MD5 runs at (fastjson_md5_many.c,
 * checked above against the scalar code), and the records' data, as messages,
 * hashed many at once at every level. */
#include "../../csrc/fastjson_kpl.h"
#include "../../csrc/fastjson_kpl_table.h"
#include "../../csrc/fastjson_simd.h"

#include <assert.h>
#include <stdlib.h>

#define MAX_KEYS 40
#define MAX_RECORDS 512

static const uint64_t LIMITS[] = { 0, 30, 64, 200, 1024, 5000, 128000, 1 << 20 };
static const uint64_t SKIPS[] = { 0, 1, 50, 300, 20480, 1 << 20, UINT64_MAX, 128 };

static void md5_suite(void)
{
    static const char *inputs[] = { "", "abc", "message digest",
        "12345678901234567890123456789012345678901234567890123456789012345678901234567890" };
    static const uint8_t first[] = { 0xd4, 0x90, 0xf9, 0x57 }, last[] = { 0x7e, 0x72, 0xd0, 0x7a };
    for (int i = 0; i < 4; i++) {
        uint8_t d[16];
        fj_md5((const uint8_t *)inputs[i], strlen(inputs[i]), d);
        assert(d[0] == first[i] && d[15] == last[i]);
    }
}

static uint64_t read_varint(const uint8_t **p)
{
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
}

/* an aggregate read back: its key table, hash key, and records' data in order */
static void check_aggregate(const struct fj_kpl_input *in, const size_t *rec_at, const uint8_t *blob, size_t len,
                            const uint32_t *recs, uint32_t count, uint32_t first_key)
{
    assert(len + 1 <= in->limit && len >= 4 + 16 && memcmp(blob, "\xf3\x89\x9a\xc2", 4) == 0);
    uint8_t digest[16];
    fj_md5(blob + 4, len - 20, digest);
    assert(memcmp(digest, blob + len - 16, 16) == 0);
    const uint8_t *p = blob + 4, *end = blob + len - 16;
    uint32_t n_keys = 0, seen = 0;
    while (*p == 0x0a) {
        p++;
        p += read_varint(&p);
        n_keys++;
    }
    assert(*p++ == 0x12 && read_varint(&p) == in->hash_lens[first_key]);
    p += in->hash_lens[first_key];
    while (p < end) {
        assert(*p++ == 0x1a);
        const uint8_t *record_end = p;
        record_end += read_varint(&p) + (size_t)(p - record_end);
        assert(*p++ == 0x08 && read_varint(&p) < n_keys && *p++ == 0x10 && *p++ == 0x00 && *p++ == 0x1a);
        uint64_t n = read_varint(&p);
        assert(seen < count && n == in->data_lens[recs[seen]] && p + n == record_end);
        assert(n == 0 || memcmp(p, in->data + rec_at[recs[seen]], n) == 0);
        p += n;
        seen++;
    }
    assert(p == end && seen == count && count >= 2);
}

/* every record once, each shard's in input order, each aggregate sound */
static void check_answer(const struct fj_kpl_input *in, const uint8_t *out, size_t used, const uint32_t *rows,
                         size_t n_rows, const uint32_t *positions)
{
    size_t rec_at[MAX_RECORDS], at = 0, covered = 0;
    uint8_t seen[MAX_RECORDS] = { 0 };
    int64_t last[257];
    for (size_t i = 0; i < in->n; at += in->data_lens[i++])
        rec_at[i] = at;
    for (size_t s = 0; s < 257; s++)
        last[s] = -1;
    for (size_t r = 0; r < n_rows; r++) {
        const uint32_t *row = rows + r * FJ_KPL_ENTRY;
        const uint32_t *recs = row[0] ? positions + row[1] : &row[1];
        int32_t shard = in->key_shards[row[3]];
        assert(row[3] < in->n_keys && row[4] + (uint64_t)row[5] <= used && (row[0] ? row[2] >= 2 : row[2] == 1));
        for (uint32_t i = 0; i < row[2]; i++) {
            assert(recs[i] < in->n && !seen[recs[i]]);
            seen[recs[i]] = 1;
            covered++;
            if (shard >= 0) {
                assert((int64_t)recs[i] > last[shard]);
                last[shard] = recs[i];
            }
        }
        if (row[0])
            check_aggregate(in, rec_at, out + row[4], row[5], recs, row[2], row[3]);
    }
    assert(covered == in->n);
}

#include "fuzz_kpl_table.h"

static uint8_t *copy(const uint8_t *src, size_t n)
{
    uint8_t *out = malloc(n ? n : 1);
    if (n)
        memcpy(out, src, n);
    return out;
}

struct case_ {
    struct fj_kpl_input in;
    uint32_t data_lens[MAX_RECORDS], rec_keys[MAX_RECORDS], key_lens[MAX_KEYS + 256], hash_lens[MAX_KEYS + 256];
    int32_t key_shards[MAX_KEYS + 256];
    uint8_t keyless[MAX_RECORDS];
    uint8_t *data, *keys, *hashes;
};

/* take n bytes from what follows the headers, going round when it runs out */
static void take(const uint8_t *rest, size_t left, size_t *at, uint8_t *to, size_t n)
{
    if (!left) {
        memset(to, 'x', n);
        return;
    }
    while (n) {
        size_t from = *at % left, piece = left - from < n ? left - from : n;
        memcpy(to, rest + from, piece);
        to += piece, n -= piece, *at += piece;
    }
}

/* the input's keys: then one keyless key per shard */
static size_t read_keys(struct case_ *c, const uint8_t *input, size_t n, size_t at, size_t shards)
{
    size_t count = at < n ? input[at++] % MAX_KEYS : 0;
    for (size_t k = 0; k < count; k++, at += 3) {
        uint8_t b0 = at < n ? input[at] : 0, b1 = at + 1 < n ? input[at + 1] : 0, b2 = at + 2 < n ? input[at + 2] : 1;
        c->key_lens[k] = b0 == 255 && k < 2 ? 20000 : b0 == 254 && k < 4 ? 16384 : b0;
        c->key_shards[k] = (int32_t)(b1 % (shards + 1)) - 1;
        c->hash_lens[k] = b2 % 40;
    }
    c->in.keyless_base = count;
    for (size_t s = 0; s < shards; s++) {
        c->key_lens[count + s] = 16;
        c->key_shards[count + s] = (int32_t)s;
        c->hash_lens[count + s] = 1 + s % 39;
    }
    c->in.n_keys = count + shards;
    c->in.n_keyless = shards;
    return at < n ? at : n;
}

static void read_case(struct case_ *c, const uint8_t *input, size_t n)
{
    memset(c, 0, sizeof *c);
    uint8_t h[5] = { 0 };
    memcpy(h, input, n < 5 ? n : 5);
    size_t shards = h[0] == 255 ? 256 : 1 + h[0] % 8, at = read_keys(c, input, n, 5, shards);
    c->in.n_shards = shards;
    c->in.limit = LIMITS[h[1] % 8] + (h[1] >> 3);
    c->in.skip = SKIPS[h[2] % 8];
    c->in.turn = h[3] % shards;
    size_t records = 0;
    for (; records < MAX_RECORDS && at + 2 <= n && 2 * records < n / 2; records++, at += 2) {
        c->rec_keys[records] = c->in.keyless_base ? input[at] % c->in.keyless_base : 0;
        c->keyless[records] = (h[4] & 3) == 1 || c->in.keyless_base == 0 || ((h[4] & 3) == 2 && (input[at] & 128));
        uint8_t len = input[at + 1];
        c->data_lens[records] = len == 255 && records % 8 == 0 ? 2000 : len == 254 && records % 64 == 0 ? 16384 : len;
    }
    c->in.n = records;
    size_t sizes[3] = { 0, 0, 0 };
    for (size_t i = 0; i < records; i++) sizes[0] += c->data_lens[i];
    for (size_t k = 0; k < c->in.n_keys; k++) { sizes[1] += c->key_lens[k]; sizes[2] += c->hash_lens[k]; }
    uint8_t *bufs[3];
    size_t from = 0;
    for (int b = 0; b < 3; b++) {
        bufs[b] = malloc(sizes[b] ? sizes[b] : 1);
        take(input + at, n - at, &from, bufs[b], sizes[b]);
    }
    c->data = copy(bufs[0], sizes[0]); c->keys = copy(bufs[1], sizes[1]); c->hashes = copy(bufs[2], sizes[2]);
    for (int b = 0; b < 3; b++) free(bufs[b]);
    c->in.data = c->data; c->in.data_size = sizes[0]; c->in.data_lens = c->data_lens;
    c->in.rec_keys = (h[4] & 3) == 1 ? NULL : c->rec_keys;
    c->in.keyless = (h[4] & 3) == 1 ? NULL : c->keyless;
    c->in.key_bytes = c->keys; c->in.key_bytes_size = sizes[1]; c->in.key_lens = c->key_lens;
    c->in.key_shards = c->key_shards;
    c->in.hash_bytes = c->hashes; c->in.hash_bytes_size = sizes[2]; c->in.hash_lens = c->hash_lens;
}

/* the records' data as messages: fj_md5_many at every level, as fj_md5 one by one */
static void check_md5_many(const struct case_ *c)
{
    const uint8_t *msgs[MAX_RECORDS];
    size_t lens[MAX_RECORDS], at = 0;
    static uint8_t got[MAX_RECORDS][16], want[16];
    for (size_t i = 0; i < c->in.n; at += c->data_lens[i++]) {
        msgs[i] = c->data + at;
        lens[i] = c->data_lens[i];
    }
    for (int level = FJ_SIMD_SCALAR; level <= fj_simd_best(); level++) {
        fj_simd_limit(level);
        fj_md5_many(msgs, lens, c->in.n, got);
        for (size_t i = 0; i < c->in.n; i++) {
            fj_md5(msgs[i], lens[i], want);
            assert(memcmp(got[i], want, 16) == 0);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t n)
{
    static int suite_done;
    if (!suite_done++)
        md5_suite();
    struct case_ *c = malloc(sizeof *c);
    read_case(c, input, n);
    check_md5_many(c);
    fj_simd_limit(n >= 5 ? 1 + (input[4] >> 2) % 3 : 0);
    size_t count = c->in.n ? c->in.n : 1, used = 0, n_rows = 0;
    uint32_t *rows = malloc(count * FJ_KPL_ENTRY * sizeof(uint32_t)), *positions = malloc(count * sizeof(uint32_t));
    uint8_t none[1];
    int rc = fj_kpl_pack(&c->in, none, 0, &used, rows, &n_rows, positions);
    assert(rc == (used ? FJ_NEED_ROOM : FJ_OK));
    size_t need = used;
    uint8_t *out = malloc(need ? need : 1);
    assert(fj_kpl_pack(&c->in, out, need, &used, rows, &n_rows, positions) == FJ_OK && used == need);
    check_answer(&c->in, out, used, rows, n_rows, positions);
    check_table(&c->in, out, rows, n_rows, positions);
    if (need)
        assert(fj_kpl_pack(&c->in, out, need - 1, &used, rows, &n_rows, positions) == FJ_NEED_ROOM);
    if (c->in.n) {  /* one data byte more than the buffer holds */
        c->data_lens[c->in.n - 1]++;
        assert(fj_kpl_pack(&c->in, out, need, &used, rows, &n_rows, positions) == FJ_DECLINE);
    }
    free(out); free(rows); free(positions);
    free(c->data); free(c->keys); free(c->hashes);
    free(c);
    return 0;
}
