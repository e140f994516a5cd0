/* fastjson_indices.c: operations over uint32 columns (issue 18,
 * fastjson_indices.h): per request, the native versions of
 * pipeline/entry_kernels.py's sum_at, events_at and in_chunk_order and of
 * delivery/ledger.py's line: a column's values at some indices summed or
 * gathered, the indices sorted, their span or hex bitmap written with the
 * line's CRC-32; per chunk, the fast path's record table as an EntryTable's
 * columns. No bytes from outside are read: every index, offset and length is
 * checked first (outside: FJ_DECLINE). */
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

int fj_take_lanes(const uint32_t *order, const uint32_t *sizes, size_t order_n, uint32_t *bounds, size_t lanes,
                  const uint32_t *ns, const uint32_t *counts, size_t n, uint32_t *group, uint64_t *taken,
                  uint32_t *emptied, size_t *emptied_n)
{
    for (size_t k = 0; k < n; k++) {  /* all checked before anything moves */
        if (ns[k] >= lanes)
            return FJ_DECLINE;
        uint32_t at = bounds[2 * ns[k]], end = bounds[2 * ns[k] + 1];
        if (at > end || end > order_n || counts[k] > end - at)
            return FJ_DECLINE;
    }
    *emptied_n = 0;
    for (size_t k = 0; k < n; k++) {  /* a lane twice: the second part after the first */
        uint32_t at = bounds[2 * ns[k]], end = bounds[2 * ns[k] + 1], count = counts[k];
        if (count > end - at)
            return FJ_DECLINE;  /* only a lane asked twice for more than it has gets here, part-way */
        uint64_t sum = 0;
        memcpy(group, order + at, count * sizeof *group);
        for (uint32_t i = 0; i < count; i++)
            sum += sizes[at + i];
        group += count;
        taken[k] = sum;
        bounds[2 * ns[k]] = at + count;
        if (count && at + count == end)  /* once per lane: a lane is emptied by one part */
            emptied[(*emptied_n)++] = ns[k];
    }
    return FJ_OK;
}

static const char hex_digits[] = "0123456789abcdef";

/* The least and greatest of n > 0 indices. */
static void span_of(const uint32_t *idx, size_t n, uint32_t *lo, uint32_t *hi)
{
    *lo = *hi = idx[0];
    for (size_t i = 1; i < n; i++) {
        *lo = idx[i] < *lo ? idx[i] : *lo;
        *hi = idx[i] > *hi ? idx[i] : *hi;
    }
}

/* need = hi / 4 + 1 hex digits into out, most significant first. */
static void put_bitmap(const uint32_t *idx, size_t n, size_t need, uint8_t *out)
{
    memset(out, 0, need);
    for (size_t i = 0; i < n; i++)  /* the last digit holds bits 0 to 3 */
        out[need - 1 - idx[i] / 4] |= (uint8_t)(1u << (idx[i] % 4));
    for (size_t k = 0; k < need; k++)
        out[k] = (uint8_t)hex_digits[out[k]];
}

int fj_sort_indices(uint32_t *idx, size_t n, size_t bound, uint64_t *bits, size_t words)
{
    if (bound > words * 64 || n > bound)
        return FJ_DECLINE;
    for (size_t i = 0; i < n; i++) {
        uint64_t bit = idx[i] < bound ? (uint64_t)1 << (idx[i] % 64) : 0;
        if (!bit || bits[idx[i] / 64] & bit) {  /* outside, or twice: the bits set so far cleared */
            for (size_t k = 0; k < i; k++)
                bits[idx[k] / 64] = 0;
            return FJ_DECLINE;
        }
        bits[idx[i] / 64] |= bit;
    }
    size_t k = 0;
    for (size_t w = 0; k < n; w++) {  /* n indices set: the scan ends at the word of the greatest */
        uint64_t word = bits[w];
        bits[w] = 0;
        while (word) {
            idx[k++] = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(word));
            word &= word - 1;
        }
    }
    return FJ_OK;
}

static uint32_t crc_table[256];  /* CRC-32 (zlib's), reflected 0xEDB88320 */

__attribute__((constructor)) static void make_crc_table(void)
{
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[b] = c;
    }
}

static uint32_t crc32_of(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    while (n--)
        c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static uint8_t *put_decimal(uint8_t *at, uint64_t v)
{
    uint8_t digits[20];
    size_t k = 0;
    do {
        digits[k++] = (uint8_t)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k)
        *at++ = digits[--k];
    return at;
}

int fj_ledger_line(const uint32_t *idx, size_t n, const uint8_t *key, size_t key_len, uint64_t when,
                   uint8_t *out, size_t cap, size_t *used)
{
    if (!n || key_len > 64)
        return FJ_DECLINE;
    uint32_t lo, hi;
    span_of(idx, n, &lo, &hi);
    int one_run = (uint64_t)hi - lo + 1 == n;
    size_t bitmap = (size_t)(hi / 4) + 1;
    size_t need = *used = 9 + 2 * key_len + 1 + 20 + 1 + (one_run ? 21 : 1 + bitmap) + 1;
    if (cap < need)
        return FJ_NEED_ROOM;
    uint8_t *at = out + 9;  /* "CRC32 " comes last, over the rest */
    for (size_t i = 0; i < key_len; i++) {
        *at++ = (uint8_t)hex_digits[key[i] >> 4];
        *at++ = (uint8_t)hex_digits[key[i] & 15];
    }
    *at++ = ' ';
    at = put_decimal(at, when);
    *at++ = ' ';
    if (one_run) {
        at = put_decimal(at, lo);
        *at++ = ':';
        at = put_decimal(at, hi);
    } else {
        *at++ = '*';
        put_bitmap(idx, n, bitmap, at);
        at += bitmap;
    }
    uint32_t crc = crc32_of(out + 9, (size_t)(at - out - 9));
    *at++ = '\n';
    for (int k = 0; k < 8; k++)
        out[k] = (uint8_t)hex_digits[(crc >> (28 - 4 * k)) & 15];
    out[8] = ' ';
    *used = (size_t)(at - out);
    return FJ_OK;
}

/* Record rec's partition key appended to out->keys: its own from the chunk,
 * or (missing, or no chunk) the pool's next; 0: one Python must look at. */
static int put_key(const uint32_t *rec, const struct fj_table_keys *in, struct fj_table_out *out,
                   size_t *taken)
{
    const uint8_t *key = NULL;
    size_t len = 0;
    if (in->chunk != NULL && rec[3] != 0) {
        if (rec[2] > in->chunk_size || rec[3] > in->chunk_size - rec[2] || rec[3] > in->max_key
            || !fj_utf8_valid(in->chunk + rec[2], rec[3]))
            return 0;  /* too long to keep whole, or not UTF-8: Python cuts or replaces */
        key = in->chunk + rec[2], len = rec[3];
    } else if (in->pool_count == 0) {
        return 0;
    } else {
        key = in->pool + (in->pool_start + (*taken)++) % in->pool_count * in->key_size, len = in->key_size;
        out->made_up += in->chunk != NULL;  /* a record without its key: counted */
    }
    if (len > out->keys_cap - out->keys_used)
        return 0;
    memcpy(out->keys + out->keys_used, key, len);
    out->keys_used += len;
    return 1;
}

int fj_table_columns(const uint32_t *records, size_t n, const struct fj_table_keys *in, struct fj_table_out *out)
{
    size_t taken = 0;  /* keys taken from the pool */
    out->keys_used = 0, out->max_data = 0, out->made_up = 0;
    for (size_t i = 0; i < n; i++) {
        const uint32_t *rec = records + 5 * i;
        size_t at = out->keys_used, pooled = taken;
        if (rec[4] != 0 || at > UINT32_MAX || !put_key(rec, in, out, &taken))
            return FJ_DECLINE;  /* a record not converted cleanly, or a key: Python's */
        if (out->keyless != NULL)
            out->keyless[i] = taken != pooled;
        out->key_at[i] = (uint32_t)at;
        out->key_len[i] = (uint32_t)(out->keys_used - at);
        out->data_at[i] = rec[0];
        out->data_len[i] = rec[1];
        if (rec[1] > UINT32_MAX - out->key_len[i])
            return FJ_DECLINE;
        out->sizes[i] = rec[1] + out->key_len[i];
        out->max_data = rec[1] > out->max_data ? rec[1] : out->max_data;
    }
    return FJ_OK;
}
