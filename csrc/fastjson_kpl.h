/* fastjson_kpl.h: what the KPL aggregation's files share, never exported
 * (fj_kpl_pack itself is declared in fastjson.h):
 *
 *   fastjson_kpl.c        the plan: which record goes where, each aggregate's size
 *   fastjson_kpl_write.c  the bytes: each aggregate written, the entries for Python
 *   fastjson_kpl_check.c  every length and index Python gave, checked first
 *   fastjson_kpl_table.c  the same plan over an EntryTable's columns, answered as columns
 *                         (fastjson_kpl_table.h), and its records' key ids
 *   fastjson_md5.c        MD5 (RFC 1321), the aggregate's trailer (fj_md5: fastjson.h,
 *                         fastjson_entries.c hashes partition keys with it too)
 */
#ifndef FASTJSON_KPL_H
#define FASTJSON_KPL_H

#include "fastjson.h"

#define KPL_NONE 0xFFFFFFFFu
#define KPL_OVERHEAD (4 + 16 + 1)  /* magic, MD5, the outer partition key "a" (counted, not written here) */

struct kpl_builder {            /* the open aggregate of one shard (aggregation.py's _Builder) */
    uint64_t size;              /* _Builder.size: the Kinesis record's bytes with its outer key */
    uint64_t order;             /* when it was opened (0: none open): the end finishes them in this order */
    uint32_t serial;            /* marks which keys are in its table (key_serial) */
    uint32_t head, tail, count; /* its records, linked by rec_next */
    uint32_t key_head, key_tail, n_keys; /* its key table in order, linked by key_next */
    uint32_t first_key;         /* its first record's key: the hash key and shard */
};

struct kpl_entry {              /* an entry of the answer: a record alone, or an aggregate */
    uint32_t first, count;      /* alone: the record; aggregate: its records in positions[] */
    uint32_t key;               /* alone: its key; aggregate: its first record's */
    uint32_t keys_first, n_keys; /* aggregate: its key table in key_order[] */
    uint64_t bytes;             /* aggregate: its size without the outer key; 0: alone */
};

struct kpl {
    const struct fj_kpl_input *in;
    size_t *rec_at, *key_at, *hash_at;        /* offsets in data, key_bytes, hash_bytes */
    uint32_t *rec_next, *rec_local, *rec_key; /* per record: next in its aggregate, key index there, key */
    uint32_t *key_serial, *key_local, *key_next; /* per key: in which aggregate's table, where, next */
    struct kpl_builder *builders;             /* per shard */
    struct kpl_entry *plan;
    size_t n_plan;
    uint32_t *positions;                      /* the aggregates' records, one after the other */
    size_t n_positions;
    uint32_t *key_order;                      /* the aggregates' key tables, one after the other */
    size_t n_key_order;
    uint32_t serial;
    uint64_t order;
};

static inline size_t kpl_varint_size(uint64_t n)
{
    size_t size = 1;
    while (n >= 128) {
        n >>= 7;
        size++;
    }
    return size;
}

/* a Record's bytes after its own tag and length: key index, hash key index 0, data */
static inline uint64_t kpl_record_inner(uint64_t local, uint64_t n)
{
    return 1 + kpl_varint_size(local) + 2 + 1 + kpl_varint_size(n) + n;
}

FJ_INTERNAL int fj_kpl_check(const struct fj_kpl_input *in, const uint32_t *data_at, size_t *rec_at,
                             size_t *key_at, size_t *hash_at);
FJ_INTERNAL int fj_kpl_plan(struct kpl *k, const uint32_t *data_at, void **block);
FJ_INTERNAL int fj_kpl_write(const struct kpl *k, uint8_t *out, size_t out_cap, size_t *out_used,
                             uint32_t *entries);
#define KPL_MD5_BATCH 64  /* aggregates hashed together (fj_md5_many), enough to keep the lanes busy */
/* aggregates written whose MD5 trailers are not yet */
struct kpl_digests {
    const uint8_t *bodies[KPL_MD5_BATCH];
    size_t lens[KPL_MD5_BATCH], n;
};
/* one aggregate's bytes at o (room for e->bytes): the end of what it wrote; its
 * MD5 trailer is written once `later` is full, or by fj_kpl_digests_done */
FJ_INTERNAL uint8_t *fj_kpl_write_aggregate(const struct kpl *k, const struct kpl_entry *e, uint8_t *o,
                                            struct kpl_digests *later);
FJ_INTERNAL void fj_kpl_digests_done(struct kpl_digests *later);

#endif
