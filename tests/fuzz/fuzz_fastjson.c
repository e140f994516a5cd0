/* `make fuzz`, the C half: libFuzzer with AddressSanitizer and UBSan on
 * the native fast path, csrc/fastjson*.c (the Makefile links them here, as
 * fluentbit_kinesis._fastjson does). An input is an options byte then a
 * chunk, as in tests/support/differential.py (partition key path, log_key, flags), so
 * the corpus is shared. Besides memory errors it checks what fj_convert promises:
 * FJ_OK, FJ_DECLINE or FJ_NEED_ROOM; records and partition keys inside the
 * buffers; the same records when the output buffer is just big enough. Then
 * fj_table_columns over what it made (csrc/fastjson_indices.c): each key its
 * span in the chunk or the pool's next, the other columns the records'. */
#include "../../csrc/fastjson.h"

#include <assert.h>
#include <stdlib.h>

static const uint8_t POD_PATH[] = "kubernetespod_name";
static const uint32_t POD_LENS[] = {10, 8};
static const uint8_t LOG_PATH[] = "log";
static const uint32_t LOG_LENS[] = {3};

#include "fuzz_format.h"

static int convert(const uint8_t *data, size_t size, uint8_t options, size_t out_cap,
                   uint8_t **out, uint32_t **records, size_t *used, size_t *count)
{
    int paths = options & 3;
    const uint8_t *names = paths == 1 ? POD_PATH : LOG_PATH;
    const uint32_t *lens = paths == 1 ? POD_LENS : LOG_LENS;
    int depth = paths == 1 ? 2 : paths == 2 ? 1 : -1;
    int flags = ((options & 8) ? FJ_APPEND_NEWLINE : 0) | (((options >> 4) & 3) == 1 ? FJ_BASE64 : 0);
    size_t records_cap = size / 3 + 1;
    *out = malloc(out_cap ? out_cap : 1);
    *records = malloc(records_cap * 5 * sizeof(uint32_t));
    int rc = fj_convert(data, size, names, lens, depth, LOG_PATH, (options & 4) ? 3 : -1, flags,
                        *out, out_cap, *records, records_cap, used, count);
    assert(rc == FJ_OK || rc == FJ_DECLINE || rc == FJ_NEED_ROOM);
    if (rc == FJ_OK) {
        assert(*used <= out_cap && *count <= records_cap);
        for (size_t k = 0; k < *count; k++) {
            const uint32_t *rec = *records + 5 * k;
            assert((size_t)rec[0] + rec[1] <= *used);
            assert((size_t)rec[2] + rec[3] <= size);
            assert((rec[4] & ~(uint32_t)(FJ_STATUS_NO_LOG_KEY | FJ_STATUS_REPLACED)) == 0);
            assert(!(rec[4] & FJ_STATUS_NO_LOG_KEY) || rec[1] == 0);
        }
    }
    return rc;
}

static void check_table(const uint8_t *data, size_t size, const uint32_t *records, size_t count, uint8_t options)
{
    static const uint8_t POOL[] = "0123456789abcdef" "fedcba9876543210" "00112233aabbccdd";
    size_t cap = size + 16 * count, used = 0, taken = 0;
    uint32_t *col = malloc(5 * count * sizeof *col + 1);
    uint8_t *keys = malloc(cap + 1);
    struct fj_table_keys in = { (options & 3) == 1 ? data : NULL, POOL, size, 8, 3, options % 3, 16 };
    struct fj_table_out out = { col, col + count, col + 2 * count, col + 3 * count, col + 4 * count, keys, cap };
    if (fj_table_columns(records, count, &in, &out) == FJ_OK) {
        for (size_t i = 0; i < count; i++) {
            const uint32_t *rec = records + 5 * i;
            int own = in.chunk != NULL && rec[3] != 0;
            const uint8_t *key = own ? data + rec[2] : POOL + (in.pool_start + taken++) % 3 * 16;
            size_t len = own ? rec[3] : 16;
            assert(rec[4] == 0 && out.key_at[i] == used && out.key_len[i] == len && (!own || len <= 8));
            assert(memcmp(keys + used, key, len) == 0 && fj_utf8_valid(key, len));
            assert(out.data_at[i] == rec[0] && out.data_len[i] == rec[1] && out.sizes[i] == rec[1] + len);
            used += len;
        }
        assert(out.keys_used == used && out.made_up == (in.chunk != NULL ? taken : 0));
    }
    free(col);
    free(keys);
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t n)
{
    if (n == 0)
        return 0;
    uint8_t options = input[0];
    /* a copy of exactly the chunk's size: ASan sees any read past its end */
    uint8_t *data = malloc(n - 1 ? n - 1 : 1);
    memcpy(data, input + 1, n - 1);
    uint8_t *out, *again_out;
    uint32_t *records, *again_records;
    size_t used, count, again_used, again_count;
    int rc = convert(data, n - 1, options, 6 * (n - 1) + 64, &out, &records, &used, &count);
    if (rc == FJ_OK) {
        /* exactly the room it needs: the same answer; one byte less: NEED_ROOM (or DECLINE) */
        int again = convert(data, n - 1, options, used, &again_out, &again_records, &again_used, &again_count);
        assert(again == FJ_OK && again_used == used && again_count == count);
        assert(memcmp(out, again_out, used) == 0 && memcmp(records, again_records, count * 5 * 4) == 0);
        free(again_out);
        free(again_records);
        if (used > 0) {
            again = convert(data, n - 1, options, used - 1, &again_out, &again_records, &again_used, &again_count);
            assert(again == FJ_NEED_ROOM);
            free(again_out);
            free(again_records);
        }
        check_table(data, n - 1, records, count, options);
    }
    free(out);
    free(records);
    fuzz_format(data, n - 1, options);
    free(data);
    return 0;
}
