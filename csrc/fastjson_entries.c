/* fastjson_entries.c: the per-entry kernels over an EntryTable's columns
 * (pipeline/entry_table.py), the native versions of pipeline/entry_kernels.py
 * (the reference; issue 18): each entry's shard, the entries grouped by
 * lane, a PutRecords body from a list of entry indices.
 *
 * Python passes the table's buffers and offset/length arrays as they are (no
 * Python object per entry crosses). Every offset, length and index is
 * checked against what was given before a byte is read; anything outside
 * declines (FJ_DECLINE: Python runs the reference). */
#include "fastjson.h"

/* Kinesis hash keys are 128-bit: the compiler's type where it has one */
#if !defined(__SIZEOF_INT128__)
#error "fastjson_entries.c needs unsigned __int128 (a 64-bit gcc or clang)"
#endif
typedef unsigned __int128 u128;

/* entry i's bytes in a buffer of `size` (*p NULL when empty: an empty
 * buffer may be NULL); 0 when they are not all in it */
static int span(const uint8_t *buf, size_t size, const uint32_t *at, const uint32_t *len, size_t i,
                const uint8_t **p)
{
    if (at[i] > size || len[i] > size - at[i])
        return 0;
    *p = len[i] ? buf + at[i] : NULL;
    return 1;
}

/* MD5 of the key as a big-endian number (Kinesis's partition key hash) */
static u128 key_hash(const uint8_t *key, size_t n)
{
    uint8_t digest[16];
    u128 v = 0;
    fj_md5(key, n, digest);
    for (int i = 0; i < 16; i++)
        v = v << 8 | digest[i];
    return v;
}

/* A memo of key -> hash, owned by the caller (one per thread) and kept
 * between calls: the same keys come back chunk after chunk (a pod's name, the
 * made-up key pool), and a lookup costs a tenth of an MD5. Sets of two slots;
 * a slot: key length (0: empty), up to MEMO_KEY key bytes, the hash. A key
 * found is compared byte for byte, so a memo changes no answer. */
#define MEMO_KEY 31
#define MEMO_SLOT 48

static uint8_t *memo_set(uint8_t *memo, size_t sets, const uint8_t *key, size_t n)
{
    uint64_t head = 0, tail = 0;
    size_t part = n < 8 ? n : 8;
    memcpy(&head, key, part);
    memcpy(&tail, key + n - part, part);
    uint64_t mix = (head ^ (tail * 0x9e3779b97f4a7c15u) ^ n) * 0xff51afd7ed558ccdu;
    return memo + ((mix >> 32) & (sets - 1)) * 2 * MEMO_SLOT;
}

static u128 memo_hash(uint8_t *memo, size_t sets, const uint8_t *key, size_t n)
{
    if (sets == 0 || n == 0 || n > MEMO_KEY)
        return key_hash(key, n);
    uint8_t *set = memo_set(memo, sets, key, n);
    u128 h;
    for (int way = 0; way < 2; way++) {
        uint8_t *slot = set + way * MEMO_SLOT;
        if (slot[0] == n && memcmp(slot + 1, key, n) == 0) {
            memcpy(&h, slot + 1 + MEMO_KEY, sizeof h);
            return h;
        }
    }
    h = key_hash(key, n);
    memcpy(set + MEMO_SLOT, set, MEMO_SLOT);  /* the newer way first: the older one goes */
    set[0] = (uint8_t)n;
    memcpy(set + 1, key, n);
    memcpy(set + 1 + MEMO_KEY, &h, sizeof h);
    return h;
}

/* An explicit hash key's decimal digits (leading zeros allowed, as int()):
 * 0 when it is empty, holds another byte or exceeds 2**128 - 1. */
static int parse_hash(const uint8_t *s, size_t n, u128 *out)
{
    const u128 max = ~(u128)0;
    u128 v = 0;
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)s[i] - '0';
        if (d > 9 || v > (max - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}

static u128 bound(const uint64_t *bounds, size_t row, int end)
{
    const uint64_t *b = bounds + 4 * row + 2 * end;
    return (u128)b[0] << 64 | b[1];
}

/* The shard h falls in, as the reference's bisect_right over the starts
 * (the same steps, so the same answer even for bounds out of order). */
static int32_t shard_of(u128 h, const uint64_t *bounds, size_t n_shards)
{
    size_t lo = 0, hi = n_shards;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h < bound(bounds, mid, 0))
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo > 0 && h <= bound(bounds, lo - 1, 1) ? (int32_t)(lo - 1) : -1;
}

int fj_shard_indices(const uint8_t *keys, size_t keys_size, const uint32_t *key_at, const uint32_t *key_len,
                     const uint8_t *hashes, size_t hashes_size, const uint32_t *hash_at,
                     const uint32_t *hash_len, size_t n, const uint64_t *bounds, size_t n_shards,
                     int32_t *out, uint8_t *memo, size_t memo_size)
{
    size_t sets = memo_size / (2 * MEMO_SLOT);
    if (n_shards > INT32_MAX || (sets & (sets - 1)) != 0)
        return FJ_DECLINE;
    for (size_t i = 0; i < n; i++) {
        u128 h;
        if (hash_len != NULL && hash_len[i] != FJ_NO_HASH_KEY) {
            const uint8_t *text;
            if (!span(hashes, hashes_size, hash_at, hash_len, i, &text))
                return FJ_DECLINE;
            if (!parse_hash(text, hash_len[i], &h)) {
                out[i] = -1;
                continue;
            }
        } else {
            const uint8_t *key;
            if (!span(keys, keys_size, key_at, key_len, i, &key))
                return FJ_DECLINE;
            h = memo_hash(memo, sets, key, key_len[i]);
        }
        out[i] = shard_of(h, bounds, n_shards);
    }
    return FJ_OK;
}

/* A stable counting sort: first[] counts each lane, then holds where each
 * lane's run starts; placing an entry advances its lane's start, so that
 * afterwards first[L] is where lane L ends: shifted up one, first[L] is its
 * start again and first[lanes + 1] the end of the last. */
int fj_group(const int32_t *shards, size_t n, size_t lanes, uint32_t *order, uint32_t *first)
{
    if (n > UINT32_MAX)
        return FJ_DECLINE;
    memset(first, 0, (lanes + 2) * sizeof *first);
    for (size_t i = 0; i < n; i++) {
        size_t lane = shards[i] < 0 ? lanes : (size_t)shards[i];
        if (lane > lanes)  /* the reference raises IndexError: it says so */
            return FJ_DECLINE;
        first[lane + 1]++;
    }
    for (size_t lane = 1; lane <= lanes + 1; lane++)
        first[lane] += first[lane - 1];
    for (size_t i = 0; i < n; i++)
        order[first[shards[i] < 0 ? lanes : (size_t)shards[i]]++] = (uint32_t)i;
    for (size_t lane = lanes + 1; lane > 0; lane--)
        first[lane] = first[lane - 1];
    first[0] = 0;
    return FJ_OK;
}

struct entry_ref {
    const uint8_t *data, *key, *hash;
    size_t data_len, key_len;
    int64_t hash_len;  /* -1: none */
};

struct table {
    const uint8_t *data, *keys, *hashes;
    size_t data_size, keys_size, hashes_size, n;
    const uint32_t *data_at, *data_len, *key_at, *key_len, *hash_at, *hash_len;
};

/* entry `index` of the table, its spans checked; 0 when something is outside */
static int entry_at(const struct table *t, size_t index, struct entry_ref *e)
{
    if (index >= t->n)
        return 0;
    if (!span(t->data, t->data_size, t->data_at, t->data_len, index, &e->data)
        || !span(t->keys, t->keys_size, t->key_at, t->key_len, index, &e->key))
        return 0;
    e->data_len = t->data_len[index];
    e->key_len = t->key_len[index];
    e->hash = NULL;
    e->hash_len = -1;
    if (t->hash_len != NULL && t->hash_len[index] != FJ_NO_HASH_KEY) {
        if (!span(t->hashes, t->hashes_size, t->hash_at, t->hash_len, index, &e->hash))
            return 0;
        e->hash_len = t->hash_len[index];
    }
    return 1;
}

/* The room fastjson_body.c's writer may take for these entries (the same
 * bound as request_body.py's for fj_put_records_body); 0: declined. */
static size_t body_room(const struct table *t, size_t stream_field_len, const uint32_t *indices, size_t n)
{
    size_t room = 16 + stream_field_len;
    for (size_t i = 0; i < n; i++) {
        struct entry_ref e;
        if (!entry_at(t, indices[i], &e))
            return 0;
        /* each term below 2**36: no overflow in 64 bits before the cut */
        room += 4 * (e.data_len / 3 + 1) + 6 * e.key_len + (e.hash_len > 0 ? (size_t)e.hash_len : 0)
              + FJ_ENTRY_ROOM;
        if (room > (size_t)1 << 62)
            return 0;
    }
    return room;
}

int fj_body_at(const uint8_t *stream_field, size_t stream_field_len,
               const uint8_t *data, size_t data_size, const uint32_t *data_at, const uint32_t *data_len,
               const uint8_t *keys, size_t keys_size, const uint32_t *key_at, const uint32_t *key_len,
               const uint8_t *hashes, size_t hashes_size, const uint32_t *hash_at, const uint32_t *hash_len,
               size_t n_table, const uint32_t *indices, size_t n_indices,
               uint8_t *out, size_t out_cap, size_t *out_used)
{
    const struct table t = { data, keys, hashes, data_size, keys_size, hashes_size, n_table,
                             data_at, data_len, key_at, key_len, hash_at, hash_len };
    if (sizeof(size_t) < 8 || n_indices > UINT32_MAX)
        return FJ_DECLINE;
    size_t room = body_room(&t, stream_field_len, indices, n_indices);
    if (room == 0)
        return FJ_DECLINE;
    if (room > out_cap) {  /* the caller asks for the room first, then writes */
        *out_used = room;
        return FJ_NEED_ROOM;
    }
    struct fj_body_out w = { out, out + out_cap };
    TRY(fj_body_head(&w, stream_field, stream_field_len));
    for (size_t i = 0; i < n_indices; i++) {
        struct entry_ref e;
        if (!entry_at(&t, indices[i], &e) || !fj_utf8_valid(e.key, e.key_len))
            return FJ_DECLINE;  /* orjson would refuse the key's str (lone surrogates) */
        if (i)
            TRY(fj_body_put(&w, ",", 1));
        TRY(fj_body_entry(&w, e.data, e.data_len, e.key, e.key_len, e.hash, e.hash_len));
    }
    TRY(fj_body_put(&w, "]}", 2));
    *out_used = (size_t)(w.o - out);
    return FJ_OK;
}
