/* fuzz_fastjson.c's second half: fj_format (csrc/fastjson_format*.c) on the
 * same input. First without plans: every record's signature comes back
 * (FJ_FMT_UNKNOWN) or it is Python's; then with a plan made here for each
 * signature seen (literals, values as they are, AnyValues, strings cut,
 * values inside a string, a port's digits, a slot past the record's, the
 * event time in a form the options byte picks, or a refusal), so the plan runner and the value writers meet what
 * the fuzzer makes. Checks what fj_format promises: FJ_OK, FJ_DECLINE or
 * FJ_NEED_ROOM; records inside the buffers; known statuses; the same
 * signatures twice. */
#include <stdio.h>

/* descend into kubernetes and metadata; level, severity, kubernetes.pod_name keyed; log, remote
 * IP names, kubernetes.pod_name and src_port port names (keyed unless they hold one) */
static const uint8_t FORMAT_NAMES[] = "\x01\x00\x0akubernetes" "\x01\x00\x08metadata" "\x02\x00\x05level"
                                      "\x02\x00\x08severity" "\x0a\x0a\x08kubernetespod_name"
                                      "\x06\x00\x03log" "\x06\x00\x06remote" "\x0a\x00\x08src_port";
#define MAX_FUZZ_PLANS 8

static int format_once(const uint8_t *data, size_t size, uint8_t options, const uint8_t *plans,
                       const uint32_t *offsets, const uint64_t *hashes, size_t n_plans,
                       uint8_t **out, uint32_t **records, size_t *used, size_t *count)
{
    size_t records_cap = size / 3 + 1, out_cap = 48 * size + 65536;
    int depth = (options & 3) == 1 ? 2 : (options & 3) == 2 ? 1 : -1;
    *out = malloc(out_cap);
    *records = malloc(records_cap * 5 * sizeof(uint32_t));
    int rc = fj_format(data, size, FORMAT_NAMES, sizeof FORMAT_NAMES - 1, plans, offsets, hashes, n_plans,
                       (options & 3) == 1 ? POD_PATH : LOG_PATH, (options & 3) == 1 ? POD_LENS : LOG_LENS, depth,
                       (options & 8) ? FJ_APPEND_NEWLINE : 0, *out, out_cap, *records, records_cap, used, count);
    assert(rc == FJ_OK || rc == FJ_DECLINE || rc == FJ_NEED_ROOM);
    if (rc == FJ_OK) {
        assert(*used <= out_cap && *count <= records_cap);
        for (size_t k = 0; k < *count; k++) {
            const uint32_t *rec = *records + 5 * k;
            assert(rec[4] == FJ_STATUS_OK || rec[4] == FJ_FMT_PYTHON || rec[4] == FJ_FMT_UNKNOWN);
            assert((size_t)rec[0] + rec[1] <= *used);
            assert(rec[4] != FJ_FMT_PYTHON || rec[1] == 0);
            assert(rec[4] != FJ_FMT_UNKNOWN || rec[1] <= FJ_FMT_SIG_CAP);
            assert(rec[4] == FJ_FMT_UNKNOWN || (size_t)rec[2] + rec[3] <= size);
        }
    }
    return rc;
}

static size_t put_op(uint8_t *at, uint8_t op, uint32_t arg, const char *lit)
{
    at[0] = op;
    if (op == FJ_OP_LIT) {
        uint32_t n = (uint32_t)strlen(lit);
        memcpy(at + 1, &n, 4);
        memcpy(at + 5, lit, n);
        return 5 + n;
    }
    if (op == FJ_OP_TIME) {
        at[1] = (uint8_t)arg;
        return 2;
    }
    uint16_t slot = (uint16_t)arg;
    memcpy(at + 1, &slot, 2);
    return op == FJ_OP_END || op == FJ_OP_REFUSE ? 1 : 3;
}

/* A plan for the k-th signature: what it writes depends on k and the options. */
static size_t make_program(uint8_t *at, size_t k, uint8_t options)
{
    size_t n = 0;
    if ((k + options) % 7 == 6)
        return put_op(at, FJ_OP_REFUSE, 0, NULL);
    n += put_op(at + n, FJ_OP_LIT, 0, "{\"a\":");
    n += put_op(at + n, FJ_OP_RAW, (uint32_t)k % 3, NULL);
    n += put_op(at + n, FJ_OP_LIT, 0, ",\"b\":");
    n += put_op(at + n, FJ_OP_ANY, (uint32_t)(k + 1) % 4, NULL);
    n += put_op(at + n, FJ_OP_LIT, 0, ",\"c\":");
    n += put_op(at + n, FJ_OP_RAW_CUT, (uint32_t)(k + 2) % 5, NULL);
    n += put_op(at + n, FJ_OP_LIT, 0, ",\"t\":");
    n += put_op(at + n, FJ_OP_TIME, 1 + (uint32_t)(options >> 4) % 6 + (options >> 7), NULL); /* 7: unknown */
    n += put_op(at + n, FJ_OP_LIT, 0, ",\"d\":");
    n += put_op(at + n, FJ_OP_ANY, 0, NULL);
    n += put_op(at + n, FJ_OP_LIT, 0, ",\"e\":\"");
    n += put_op(at + n, FJ_OP_IN_STRING, (uint32_t)k % 3, NULL);
    n += put_op(at + n, FJ_OP_EXTENSION, (uint32_t)(k + 1) % 4, NULL);
    n += put_op(at + n, FJ_OP_LIT, 0, "\",\"f\":");
    n += put_op(at + n, (uint8_t)(k % 2 ? FJ_OP_DIGITS : FJ_OP_DIGITS_ANY), (uint32_t)(k + 2) % 3, NULL);
    n += put_op(at + n, FJ_OP_LIT, 0, "}");
    return n + put_op(at + n, FJ_OP_END, 0, NULL);
}

static void fuzz_format(const uint8_t *data, size_t size, uint8_t options)
{
    uint8_t *out, *again_out, plans[MAX_FUZZ_PLANS * (FJ_FMT_SIG_CAP + 128)];
    uint32_t *records, *again_records, offsets[MAX_FUZZ_PLANS];
    uint64_t hashes[MAX_FUZZ_PLANS];
    size_t used, count, again_used, again_count, n_plans = 0, at = 0;
    int rc = format_once(data, size, options, plans, offsets, hashes, 0, &out, &records, &used, &count);
    for (size_t k = 0; rc == FJ_OK && k < count && n_plans < MAX_FUZZ_PLANS; k++) {
        const uint32_t *rec = records + 5 * k;
        if (rec[4] != FJ_FMT_UNKNOWN)
            continue;
        uint64_t h = rec[2] | (uint64_t)rec[3] << 32;
        int seen = 0;
        for (size_t p = 0; p < n_plans; p++)
            seen |= hashes[p] == h;
        if (seen)
            continue;
        offsets[n_plans] = (uint32_t)at;
        hashes[n_plans++] = h;
        memcpy(plans + at, &rec[1], 4);
        memcpy(plans + at + 4, out + rec[0], rec[1]);
        at += 4 + rec[1];
        at += make_program(plans + at, n_plans, options);
    }
    if (rc == FJ_OK) {
        int again = format_once(data, size, options, plans, offsets, hashes, n_plans, &again_out,
                                &again_records, &again_used, &again_count);
        assert(again == FJ_OK || again == FJ_NEED_ROOM); /* a plan may write far more than the record */
        for (size_t k = 0; again == FJ_OK && k < count; k++) /* a record keeps its status but UNKNOWN */
            assert(records[5 * k + 4] == FJ_FMT_UNKNOWN || again_records[5 * k + 4] == records[5 * k + 4]);
        assert(again != FJ_OK || again_count == count);
        free(again_out);
        free(again_records);
    }
    free(out);
    free(records);
}
