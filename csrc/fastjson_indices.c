/* fastjson_indices.c: per-request operations over arrays of entry indices
 * (issue 18), the native versions of pipeline/entry_kernels.py's sum_at and
 * events_at and of delivery/ledger.py's bitmap (fastjson_indices.h): a column's values at
 * some indices summed or gathered, the span and hex bitmap of a set of
 * indices. No bytes from outside are read: every index is checked against
 * the column's length first (outside: FJ_DECLINE). */
#include "fastjson.h"

int fj_sum_at(const uint32_t *column, size_t column_n, const uint32_t *idx, size_t n, uint64_t *sum)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (idx[i] >= column_n)
            return FJ_DECLINE;
        total += column[idx[i]];
    }
    *sum = total;
    return FJ_OK;
}

int fj_gather_at(const uint32_t *column, size_t column_n, const uint32_t *idx, size_t n, uint32_t *out)
{
    for (size_t i = 0; i < n; i++) {
        if (idx[i] >= column_n)
            return FJ_DECLINE;
        out[i] = column[idx[i]];
    }
    return FJ_OK;
}

int fj_index_bitmap(const uint32_t *idx, size_t n, uint32_t *lo_hi, uint8_t *out, size_t cap, size_t *digits)
{
    static const char hex[] = "0123456789abcdef";
    if (!n)
        return FJ_DECLINE;
    uint32_t lo = idx[0], hi = idx[0];
    for (size_t i = 1; i < n; i++) {
        lo = idx[i] < lo ? idx[i] : lo;
        hi = idx[i] > hi ? idx[i] : hi;
    }
    lo_hi[0] = lo;
    lo_hi[1] = hi;
    size_t need = *digits = (size_t)(hi / 4) + 1;
    if (cap < need)
        return FJ_NEED_ROOM;
    memset(out, 0, need);
    for (size_t i = 0; i < n; i++)  /* the last digit holds bits 0 to 3 */
        out[need - 1 - idx[i] / 4] |= (uint8_t)(1u << (idx[i] % 4));
    for (size_t k = 0; k < need; k++)
        out[k] = (uint8_t)hex[out[k]];
    return FJ_OK;
}
