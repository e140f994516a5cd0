/* fastjson_format.c: field_format in the native fast path, fj_format. Each
 * record's shape (its keys in order, each value's kind, the keys of the maps
 * a schema reads inside, and the values whose content decides the output,
 * such as a severity word) is written as a signature; the plan Python made
 * for that signature (formats/plans.py: literal JSON and holes) is then run
 * over the record's values. A record whose signature has no plan is reported
 * (FJ_FMT_UNKNOWN, its signature as its payload) and one a plan cannot take
 * (FJ_FMT_PYTHON) goes to the Python normalizer, the reference. Holes and
 * the chunk walk: fastjson_format_walk.c; value writers:
 * fastjson_format_values.c. */
#include "fastjson.h"

#include <stdlib.h>

/* The names table: entries of flags, parent length, name length, parent, name. */
static uint64_t name_hash(const uint8_t *parent, size_t parent_len, const uint8_t *name, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t k = 0; k < parent_len; k++)
        h = (h ^ parent[k]) * 1099511628211ULL;
    h = (h ^ 0x1ff) * 1099511628211ULL; /* a separator no byte equals */
    for (size_t k = 0; k < len; k++)
        h = (h ^ name[k]) * 1099511628211ULL;
    return h;
}

/* Indexes the names table; -1 when malformed or too many names. */
int fj_fmt_index_names(struct fj_fmt *f, const uint8_t *names, size_t size)
{
    size_t at = 0;
    memset(f->name_at, 0, sizeof f->name_at);
    f->names = names;
    while (at < size) {
        if (size - at < 3 || size - at - 3 < (size_t)names[at + 1] + names[at + 2])
            return -1;
        const uint8_t *parent = names + at + 3, *name = parent + names[at + 1];
        uint64_t h = name_hash(parent, names[at + 1], name, names[at + 2]);
        size_t probes = 0, slot = h & (FJ_FMT_NAME_SLOTS - 1);
        while (f->name_at[slot]) {
            if (++probes >= FJ_FMT_NAME_SLOTS / 2)
                return -1;
            slot = (slot + 1) & (FJ_FMT_NAME_SLOTS - 1);
        }
        f->name_at[slot] = (uint32_t)at + 1;
        at += 3 + (size_t)names[at + 1] + names[at + 2];
    }
    return 0;
}

/* A key's flags (FJ_FMT_DESCEND, FJ_FMT_KEYED) under parent (NULL: the top). */
int fj_fmt_name_flags(const struct fj_fmt *f, const struct keyref *parent, const struct item *key)
{
    const uint8_t *pp = parent ? parent->ptr : NULL;
    size_t plen = parent ? parent->len : 0;
    uint64_t h = name_hash(pp, plen, key->ptr, key->len);
    size_t slot = h & (FJ_FMT_NAME_SLOTS - 1);
    for (uint32_t at; (at = f->name_at[slot]) != 0; slot = (slot + 1) & (FJ_FMT_NAME_SLOTS - 1)) {
        const uint8_t *e = f->names + at - 1;
        if (e[1] == plen && e[2] == key->len && (plen == 0 || memcmp(e + 3, pp, plen) == 0) &&
            memcmp(e + 3 + plen, key->ptr, key->len) == 0)
            return e[0];
    }
    return 0;
}

/* The plan of the signature just made: its program, or NULL. */
static const uint8_t *find_plan(struct fj_fmt *f)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t k = 0; k < f->sig_len; k++)
        h = (h ^ f->sig[k]) * 1099511628211ULL;
    f->sig_hash = h;
    for (size_t n = 0; n < f->n_plans; n++) {
        size_t k = (f->last_plan + n) % f->n_plans;
        if (f->plan_hashes[k] != h)
            continue;
        const uint8_t *plan = f->plans + f->plan_offsets[k];
        uint32_t sig_len;
        memcpy(&sig_len, plan, 4);
        if (sig_len == f->sig_len && memcmp(plan + 4, f->sig, sig_len) == 0) {
            f->last_plan = k;
            return plan + 4 + sig_len;
        }
    }
    return NULL;
}

/* Runs a plan's program over the record's slots. FJ_FMT_PYTHON: a value the
 * plan cannot take (bin, invalid UTF-8, a text where a string must be). */
static int run_plan(struct fj_fmt *f, const uint8_t *op)
{
    struct ctx *c = &f->c;
    for (;;) {
        uint32_t n;
        switch (*op++) {
        case FJ_OP_END:
            return FJ_OK;
        case FJ_OP_LIT:
            memcpy(&n, op, 4);
            TRY(fj_put(c, op + 4, n));
            op += 4 + n;
            break;
        case FJ_OP_RAW: case FJ_OP_RAW_CUT: case FJ_OP_ANY: case FJ_OP_IN_STRING: case FJ_OP_EXTENSION:
        case FJ_OP_DIGITS: case FJ_OP_DIGITS_ANY: {
            uint8_t kind = op[-1];
            uint16_t slot;
            memcpy(&slot, op, 2);
            op += 2;
            if (slot >= f->n_slots)
                return FJ_FMT_PYTHON;
            c->p = f->slot[slot];
            int rc = kind == FJ_OP_ANY ? fj_put_any(c, 1)
                   : kind >= FJ_OP_DIGITS ? fj_put_digits(c, kind == FJ_OP_DIGITS_ANY)
                   : kind >= FJ_OP_IN_STRING ? fj_put_in_string(c, kind == FJ_OP_EXTENSION)
                   : fj_fmt_raw(c, kind == FJ_OP_RAW_CUT);
            if (rc != FJ_OK)
                return rc == FJ_NEED_ROOM ? rc : FJ_FMT_PYTHON;
            break;
        }
        case FJ_OP_TIME:
            if (!f->has_ns)
                return FJ_FMT_PYTHON;
            TRY(fj_put_time(c, *op++, f->ns));
            break;
        default: /* FJ_OP_REFUSE: this shape is the Python normalizer's */
            return FJ_FMT_PYTHON;
        }
    }
}

/* One record's output at rec (see fastjson.h): its JSON, or its status. */
int fj_fmt_record(struct fj_fmt *f, const uint8_t *body, uint32_t *rec, int newline)
{
    struct ctx *c = &f->c;
    uint8_t *start = c->o;
    int rc = fj_fmt_signature(f, body);
    if (rc == FJ_OK) {
        const uint8_t *program = find_plan(f);
        if (!program) {
            TRY(fj_put(c, f->sig, f->sig_len));
            rec[2] = (uint32_t)f->sig_hash;
            rec[3] = (uint32_t)(f->sig_hash >> 32);
            rec[4] = FJ_FMT_UNKNOWN;
            return FJ_OK;
        }
        rc = run_plan(f, program);
        if (rc == FJ_OK && newline)
            rc = fj_put_char(c, '\n');
    }
    if (rc == FJ_FMT_PYTHON) {
        c->o = start;
        rec[4] = FJ_FMT_PYTHON;
        return FJ_OK;
    }
    return rc;
}

/* The whole chunk: see fastjson.h for the arguments and the output. */
int fj_format(const uint8_t *data, size_t size, const uint8_t *names, size_t names_size,
              const uint8_t *plans, const uint32_t *plan_offsets, const uint64_t *plan_hashes, size_t n_plans,
              const uint8_t *key_names, const uint32_t *key_lens, int key_depth, int flags,
              uint8_t *out, size_t out_cap, uint32_t *records, size_t records_cap,
              size_t *out_used, size_t *n_records)
{
    struct fj_fmt *f = malloc(sizeof *f);
    if (!f || size > UINT32_MAX || out_cap > UINT32_MAX || fj_fmt_index_names(f, names, names_size) != 0) {
        free(f);
        return FJ_DECLINE;
    }
    f->out = out;
    f->plans = plans;
    f->plan_offsets = plan_offsets;
    f->plan_hashes = plan_hashes;
    f->n_plans = n_plans;
    f->last_plan = 0;
    f->key_names = key_names;
    f->key_lens = key_lens;
    f->key_depth = key_depth;
    f->c.p = data;
    f->c.end = data + size;
    f->c.o = out;
    f->c.oend = out + out_cap;
    f->c.top = 0;
    f->c.base64 = 1; /* bin values and invalid UTF-8: the record is Python's */
    int rc = fj_fmt_chunk(f, data, flags, records, records_cap, n_records);
    *out_used = (size_t)(f->c.o - out);
    free(f);
    return rc;
}
