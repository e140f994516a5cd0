/* fastjson_kpl_write.c: the bytes of the aggregates fastjson_kpl.c planned,
 * as aggregation.py's encode writes them, and the entries Python reads:
 *
 *   F3 89 9A C2, AggregatedRecord { partition_key_table (1) the aggregate's
 *   keys in first-use order; explicit_hash_key_table (2) its one hash key;
 *   records (3) { partition_key_index (1), explicit_hash_key_index (2) 0,
 *   data (3) } }, the MD5 of the AggregatedRecord's bytes
 *
 * Nothing is written unless the whole answer fits out_cap. */
#include "fastjson_kpl.h"
#include "fastjson_simd.h"

static const uint8_t MAGIC[4] = { 0xf3, 0x89, 0x9a, 0xc2 };

static uint8_t *put_varint(uint8_t *o, uint64_t n)
{
    while (n >= 128) {
        *o++ = (uint8_t)(n | 0x80);
        n >>= 7;
    }
    *o++ = (uint8_t)n;
    return o;
}

uint8_t *fj_kpl_write_aggregate(const struct kpl *k, const struct kpl_entry *e, uint8_t *o,
                                struct kpl_digests *later)
{
    const struct fj_kpl_input *in = k->in;
    memcpy(o, MAGIC, 4);
    uint8_t *body = o += 4;
    for (uint32_t i = 0; i < e->n_keys; i++) {
        uint32_t key = k->key_order[e->keys_first + i], len = in->key_lens[key];
        *o++ = 0x0a;
        o = put_varint(o, len);
        if (len)  /* an empty buffer may be NULL */
            memcpy(o, in->key_bytes + k->key_at[key], len);
        o += len;
    }
    uint32_t hash_len = in->hash_lens[e->key];
    *o++ = 0x12;
    o = put_varint(o, hash_len);
    if (hash_len)
        memcpy(o, in->hash_bytes + k->hash_at[e->key], hash_len);
    o += hash_len;
    for (uint32_t i = 0; i < e->count; i++) {
        uint32_t rec = k->positions[e->first + i], local = k->rec_local[rec];
        uint64_t n = in->data_lens[rec];
        *o++ = 0x1a;
        o = put_varint(o, kpl_record_inner(local, n));
        *o++ = 0x08;
        o = put_varint(o, local);
        *o++ = 0x10;
        *o++ = 0x00;
        *o++ = 0x1a;
        o = put_varint(o, n);
        if (n)  /* data may be NULL when empty */
            memcpy(o, in->data + k->rec_at[rec], n);
        o += n;
    }
    later->bodies[later->n] = body;
    later->lens[later->n++] = (size_t)(o - body);
    if (later->n == KPL_MD5_BATCH)
        fj_kpl_digests_done(later);
    return o + 16;
}

/* MD5 is serial within an aggregate: hashing a batch at once keeps the vector lanes busy */
void fj_kpl_digests_done(struct kpl_digests *later)
{
    uint8_t digests[KPL_MD5_BATCH][16];
    fj_md5_many(later->bodies, later->lens, later->n, digests);
    for (size_t i = 0; i < later->n; i++)
        memcpy((uint8_t *)later->bodies[i] + later->lens[i], digests[i], 16);  /* into out, ours to write */
    later->n = 0;
}

int fj_kpl_write(const struct kpl *k, uint8_t *out, size_t out_cap, size_t *out_used, uint32_t *entries)
{
    uint64_t need = 0;
    for (size_t i = 0; i < k->n_plan; i++)
        need += k->plan[i].bytes;
    *out_used = (size_t)need;
    if (need > UINT32_MAX)
        return FJ_DECLINE;
    if (need > out_cap)
        return FJ_NEED_ROOM;
    uint8_t *o = out;
    struct kpl_digests later = { .n = 0 };
    for (size_t i = 0; i < k->n_plan; i++, entries += FJ_KPL_ENTRY) {
        const struct kpl_entry *e = &k->plan[i];
        uint8_t *start = o;
        if (e->bytes) {
            o = fj_kpl_write_aggregate(k, e, o, &later);
            if ((uint64_t)(o - start) != e->bytes)
                return FJ_DECLINE;  /* the plan's sums and the bytes disagree: never seen */
        }
        uint32_t row[FJ_KPL_ENTRY] = { e->bytes != 0, e->first, e->count, e->key,
                                       (uint32_t)(start - out), (uint32_t)(o - start) };
        memcpy(entries, row, sizeof row);
    }
    fj_kpl_digests_done(&later);
    return FJ_OK;
}

