/* fastjson_kpl_table.c: KPL aggregation fed by an EntryTable and answered
 * as one (fastjson_kpl_table.h, issue 18): the records' bytes are read where
 * the fast path's table has them, every entry's bytes land in one buffer, so
 * no record crosses into Python as an object of its own. The plan and each
 * aggregate's bytes are fastjson_kpl.c's and fastjson_kpl_write.c's. */
#include "fastjson_kpl.h"
#include "fastjson_kpl_table.h"

#include <stdlib.h>

static uint64_t key_hash(const uint8_t *s, size_t n)
{
    uint64_t h = 1469598103934665603u;  /* FNV-1a: keys are short and few distinct */
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211u;
    return h ^ (h >> 29);
}

int fj_kpl_key_ids(const uint8_t *keys, size_t keys_size, const uint32_t *key_at, const uint32_t *key_len,
                   const uint8_t *keyless, size_t n, uint32_t *ids, uint32_t *firsts, size_t *n_ids)
{
    size_t size = 16, count = 0;
    while (size < 2 * n)
        size *= 2;
    uint32_t *slots = calloc(size, sizeof *slots);  /* id + 1; 0: empty */
    if (slots == NULL)
        return FJ_DECLINE;
    for (size_t i = 0; i < n; i++) {
        ids[i] = 0;
        if (keyless != NULL && keyless[i])
            continue;
        if (key_at[i] > keys_size || key_len[i] > keys_size - key_at[i]) {
            free(slots);
            return FJ_DECLINE;
        }
        const uint8_t *key = keys + key_at[i];
        size_t at = (size_t)key_hash(key, key_len[i]) & (size - 1);
        for (;; at = (at + 1) & (size - 1)) {
            uint32_t slot = slots[at];
            if (slot == 0) {  /* a new key: the next id */
                slots[at] = (uint32_t)count + 1;
                firsts[count] = (uint32_t)i;
                ids[i] = (uint32_t)count++;
                break;
            }
            uint32_t first = firsts[slot - 1];
            if (key_len[first] == key_len[i]
                && (key_len[i] == 0 || memcmp(keys + key_at[first], key, key_len[i]) == 0)) {
                ids[i] = slot - 1;
                break;
            }
        }
    }
    free(slots);
    *n_ids = count;
    return FJ_OK;
}

/* What the answer's buffers need; FJ_DECLINE when an offset would pass uint32. */
static int room(const struct kpl *k, struct fj_kpl_table_out *out)
{
    const struct fj_kpl_input *in = k->in;
    uint64_t data = 0, keys = 0, hashes = 0;
    for (size_t i = 0; i < k->n_plan; i++) {
        const struct kpl_entry *e = &k->plan[i];
        if (e->bytes) {
            data += e->bytes, keys += 1, hashes += in->hash_lens[e->key];
        } else {
            data += in->data_lens[e->first], keys += in->key_lens[e->key];
        }
    }
    if (data + keys > UINT32_MAX || hashes > UINT32_MAX)
        return FJ_DECLINE;
    out->data_used = (size_t)data, out->keys_used = (size_t)keys, out->hashes_used = (size_t)hashes;
    if (data > out->data_cap || keys > out->keys_cap || hashes > out->hashes_cap)
        return FJ_NEED_ROOM;
    return FJ_OK;
}

static void put(uint8_t *to, const uint8_t *from, size_t n)
{
    if (n)  /* an empty buffer may be NULL */
        memcpy(to, from, n);
}

/* Entry i of the plan into the columns; used: where the next one's data, key, hash key and events go. */
static int put_entry(const struct kpl *k, size_t i, const uint32_t *in_events, struct fj_kpl_table_out *out,
                     size_t *used, struct kpl_digests *later)
{
    const struct fj_kpl_input *in = k->in;
    const struct kpl_entry *e = &k->plan[i];
    size_t data = used[0], keys = used[1], hashes = used[2], ev = used[3];
    uint32_t *row = out->rows + FJ_KPL_ROW * i;
    out->data_at[i] = (uint32_t)data, out->key_at[i] = (uint32_t)keys, out->hash_at[i] = (uint32_t)hashes;
    row[0] = e->bytes != 0, row[1] = (uint32_t)ev, row[2] = e->count, row[3] = e->key;
    if (e->bytes) {
        uint8_t *end = fj_kpl_write_aggregate(k, e, out->data + data, later);
        if ((uint64_t)(end - (out->data + data)) != e->bytes)
            return FJ_DECLINE;  /* the plan's sums and the bytes disagree: never seen */
        out->data_len[i] = (uint32_t)e->bytes;
        out->keys[keys] = 'a';  /* aggregation.py's AGGREGATE_KEY, counted in KPL_OVERHEAD */
        out->key_len[i] = 1;
        out->hash_len[i] = in->hash_lens[e->key];
        put(out->hashes + hashes, in->hash_bytes + k->hash_at[e->key], in->hash_lens[e->key]);
        for (uint32_t j = 0; j < e->count; j++)
            out->events[ev + j] = in_events[k->positions[e->first + j]];
        out->n_aggregates++;
    } else {
        out->data_len[i] = in->data_lens[e->first];
        put(out->data + data, in->data + k->rec_at[e->first], in->data_lens[e->first]);
        out->key_len[i] = in->key_lens[e->key];
        put(out->keys + keys, in->key_bytes + k->key_at[e->key], in->key_lens[e->key]);
        out->hash_len[i] = FJ_NO_HASH_KEY;
        out->events[ev] = in_events[e->first];
    }
    out->sizes[i] = out->data_len[i] + out->key_len[i];
    used[0] += out->data_len[i], used[1] += out->key_len[i];
    used[2] += e->bytes ? in->hash_lens[e->key] : 0, used[3] += e->count;
    return FJ_OK;
}

int fj_kpl_pack_table(const struct fj_kpl_input *in, const uint32_t *data_at, const uint32_t *in_events,
                      struct fj_kpl_table_out *out)
{
    struct kpl k = { .in = in };
    void *block = NULL;
    out->n_entries = out->n_aggregates = 0;
    out->data_used = out->keys_used = out->hashes_used = 0;
    if (data_at == NULL || in_events == NULL || in->n >= KPL_NONE)
        return FJ_DECLINE;
    k.positions = malloc((in->n ? in->n : 1) * sizeof *k.positions);
    if (k.positions == NULL)
        return FJ_DECLINE;
    int rc = fj_kpl_plan(&k, data_at, &block);
    if (rc == FJ_OK)
        rc = room(&k, out);
    size_t used[4] = { 0, 0, 0, 0 };  /* data, keys, hashes, events */
    struct kpl_digests later = { .n = 0 };
    for (size_t i = 0; rc == FJ_OK && i < k.n_plan; i++)
        rc = put_entry(&k, i, in_events, out, used, &later);
    if (rc == FJ_OK) {
        fj_kpl_digests_done(&later);
        out->n_entries = k.n_plan;
    }
    free(block);
    free(k.positions);
    return rc;
}
