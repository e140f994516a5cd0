/* fastjson_indices.h: fastjson_indices.c, per request over arrays of entry
 * indices (issue 18), for pipeline/entry_kernels.py and delivery/ledger.py.
 * fj_sum_at: *sum = the sum of column[idx[i]]; fj_gather_at: out[i] =
 * column[idx[i]]; both FJ_DECLINE on an index outside the column.
 * fj_index_bitmap (n > 0, else FJ_DECLINE): lo_hi = the least and the
 * greatest index, *digits = greatest / 4 + 1; with that room in out (else
 * FJ_NEED_ROOM), the hex digits, most significant first, of the number
 * whose bit i is set for each index i. Included by fastjson.h. */
#ifndef FASTJSON_INDICES_H
#define FASTJSON_INDICES_H

#include <stddef.h>
#include <stdint.h>

int fj_sum_at(const uint32_t *column, size_t column_n, const uint32_t *idx, size_t n, uint64_t *sum);
int fj_gather_at(const uint32_t *column, size_t column_n, const uint32_t *idx, size_t n, uint32_t *out);
int fj_index_bitmap(const uint32_t *idx, size_t n, uint32_t *lo_hi, uint8_t *out, size_t cap, size_t *digits);

#endif
