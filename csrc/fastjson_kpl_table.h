/* fastjson_kpl_table.h: KPL aggregation over an EntryTable's columns (issue
 * 18), for pipeline/kpl_table.py; the plan and the bytes are fj_kpl_pack's
 * (fastjson_kpl*.c), only the input and the answer take another form.
 *
 * fj_kpl_key_ids: each of n records' partition key (keys[key_at[i] ..
 * + key_len[i]]) numbered in first-use order, the same bytes the same id;
 * records with keyless[i] set (keyless may be NULL) are skipped, their id 0.
 * firsts[id] is the record where key `id` is first used; *n_ids how many.
 * FJ_DECLINE: a key outside `keys`.
 *
 * fj_kpl_pack_table: fj_kpl_pack over records read where the table has them
 * (in->data the table's buffer, in->data_lens its lengths, data_at its
 * offsets), answered as an EntryTable's columns: per entry, in fj_kpl_pack's
 * order, its bytes in out->data (an aggregate written there, a record alone
 * copied), its partition key in out->keys ("a" for an aggregate, the key
 * table's key for a record alone), its explicit hash key in out->hashes (an
 * aggregate's; FJ_NO_HASH_KEY for a record alone), sizes = data + key, and a
 * row (aggregate?, start, count, key): the events (in_events[record]) of the
 * entry's records are out->events[start .. start + count). Every per-entry
 * array has room for in->n. FJ_NEED_ROOM: data_used, keys_used and
 * hashes_used say what each buffer needs; FJ_DECLINE as fj_kpl_pack. */
#ifndef FASTJSON_KPL_TABLE_H
#define FASTJSON_KPL_TABLE_H

#include "fastjson.h"

#define FJ_KPL_ROW 4

struct fj_kpl_table_out {
    uint8_t *data, *keys, *hashes;
    size_t data_cap, keys_cap, hashes_cap;
    size_t data_used, keys_used, hashes_used;
    uint32_t *data_at, *data_len, *key_at, *key_len, *hash_at, *hash_len, *sizes;
    uint32_t *rows, *events;
    size_t n_entries, n_aggregates;
};

int fj_kpl_key_ids(const uint8_t *keys, size_t keys_size, const uint32_t *key_at, const uint32_t *key_len,
                   const uint8_t *keyless, size_t n, uint32_t *ids, uint32_t *firsts, size_t *n_ids);
int fj_kpl_pack_table(const struct fj_kpl_input *in, const uint32_t *data_at, const uint32_t *in_events,
                      struct fj_kpl_table_out *out);

#endif
