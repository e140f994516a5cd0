/* fastjson_indices.h: fastjson_indices.c, per request over arrays of entry
 * indices (issue 18), for pipeline/entry_kernels.py and delivery/ledger.py.
 * fj_sum_at: *sum = the sum of column[idx[i]]; fj_gather_at: out[i] =
 * column[idx[i]]; both FJ_DECLINE on an index outside the column.
 * fj_ledger_line (n > 0, key_len <= 64, else FJ_DECLINE): ledger.py's
 * line for these indices, "CRC32 KEYHEX WHEN EVENTS\n", EVENTS "lo:hi" for
 * one run, else "*" and the hex digits, most significant first, of the number
 * whose bit i is set for each index i; *used bytes of out, or FJ_NEED_ROOM
 * (*used = the room it needs) when cap is short. fj_sort_indices: n distinct
 * indices below bound rewritten in ascending order through a bitmap of at
 * least bound bits (`words` uint64 of `bits`, all 0, left all 0); FJ_DECLINE,
 * idx unchanged, on an index at or past bound, one twice, or too few words.
 * fj_table_columns: fj_convert's n
 * records (5 uint32 each) as an EntryTable's columns (out: data offsets and
 * lengths, keys, key offsets and lengths, sizes = data + key, the longest
 * data, how many keys were made up). A record's key is its span in `chunk`
 * (at most max_key bytes, UTF-8), or when it has none, or chunk is NULL, the
 * next of the pool's pool_count keys of key_size bytes (from pool_start);
 * out->keyless, when not NULL, flags the records given a key of the pool.
 * FJ_DECLINE: a record's status is not 0, a key is outside the chunk, too
 * long or not UTF-8, keys_cap is short. fj_take_lanes (delivery/batching.py's
 * Lanes.take): lane ns[k] gives counts[k] entries from its head, for each k
 * in turn: order[bounds[2 ns[k]]..] appended to group, their sizes (sizes[]
 * is in order's order) summed into taken[k], bounds[2 ns[k]] moved past them,
 * the lanes a part emptied listed in emptied[] (n of room, *emptied_n of them);
 * FJ_DECLINE, nothing changed, when a lane is outside bounds (2 lanes items)
 * or asked for more than it has, or a bound is outside order (ns distinct: a
 * lane twice may be declined part-way). Included by fastjson.h. */
#ifndef FASTJSON_INDICES_H
#define FASTJSON_INDICES_H

#include <stddef.h>
#include <stdint.h>

int fj_sum_at(const uint32_t *column, size_t column_n, const uint32_t *idx, size_t n, uint64_t *sum);
int fj_gather_at(const uint32_t *column, size_t column_n, const uint32_t *idx, size_t n, uint32_t *out);
int fj_sort_indices(uint32_t *idx, size_t n, size_t bound, uint64_t *bits, size_t words);
int fj_ledger_line(const uint32_t *idx, size_t n, const uint8_t *key, size_t key_len, uint64_t when,
                   uint8_t *out, size_t cap, size_t *used);
struct fj_table_keys {
    const uint8_t *chunk, *pool;
    size_t chunk_size, max_key, pool_count, pool_start, key_size;
};
struct fj_table_out {
    uint32_t *data_at, *data_len, *key_at, *key_len, *sizes;
    uint8_t *keys;
    size_t keys_cap, keys_used;
    uint32_t max_data, made_up;
    uint8_t *keyless;  /* NULL, or per record: 1 when its key came from the pool */
};
int fj_table_columns(const uint32_t *records, size_t n, const struct fj_table_keys *in, struct fj_table_out *out);
int fj_take_lanes(const uint32_t *order, const uint32_t *sizes, size_t order_n, uint32_t *bounds, size_t lanes,
                  const uint32_t *ns, const uint32_t *counts, size_t n, uint32_t *group, uint64_t *taken,
                  uint32_t *emptied, size_t *emptied_n);

#endif
