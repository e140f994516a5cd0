/* fastjson_format_walk.c: fj_format's walk over a chunk (events, event
 * times, partition keys) and over each record, writing its signature: per
 * key its length and bytes and its value's kind (FJ_KIND_*), the value's
 * msgpack bytes when the names table marks the key FJ_FMT_KEYED, and the
 * entries of a map marked FJ_FMT_DESCEND (one level). Every value is checked
 * as fj_convert checks a record (no ext, keys valid UTF-8 and unique, depth
 * and size limits): anything else declines the chunk. */
#include "fastjson.h"

#include <math.h>

/* Skips one value as inside a record; FJ_DECLINE on what fj_convert declines. */
static int skip_strict(struct ctx *c, int depth)
{
    struct item it;
    if (fj_read_item(c, &it) != 0 || depth > FJ_MAX_DEPTH || it.type == T_EXT)
        return FJ_DECLINE;
    if (it.type == T_ARRAY) {
        for (uint32_t k = 0; k < it.len; k++)
            TRY(skip_strict(c, depth + 1));
    } else if (it.type == T_MAP) {
        size_t base = c->top;
        if (it.len > FJ_MAX_MAP_KEYS)
            return FJ_DECLINE;
        for (uint32_t k = 0; k < it.len; k++) {
            struct item key;
            if (fj_read_item(c, &key) != 0)
                return FJ_DECLINE;
            TRY(fj_take_key(c, &key, base));
            TRY(skip_strict(c, depth + 1));
        }
        c->top = base;
    }
    return FJ_OK;
}

/* Skips any well-formed value (an event's metadata), as fj_convert does. */
static int skip_loose(struct ctx *c, int depth)
{
    struct item it;
    if (fj_read_item(c, &it) != 0 || depth > FJ_MAX_DEPTH || (it.type == T_EXT && it.ext < 0))
        return FJ_DECLINE;
    uint64_t n = it.type == T_ARRAY ? it.len : it.type == T_MAP ? 2 * (uint64_t)it.len : 0;
    for (uint64_t k = 0; k < n; k++) {
        const uint8_t *key = c->p; /* Python's decoder fails on unhashable (array, map) keys */
        if (it.type == T_MAP && k % 2 == 0 && key < c->end &&
            ((*key >= 0x80 && *key <= 0x9f) || (*key >= 0xdc && *key <= 0xdf)))
            return FJ_DECLINE;
        TRY(skip_loose(c, depth + 1));
    }
    return FJ_OK;
}

static int kind_of(const struct item *it)
{
    switch (it->type) {
    case T_NIL: return FJ_KIND_NIL;
    case T_BOOL: return it->u ? FJ_KIND_TRUE : FJ_KIND_FALSE;
    case T_UINT: return it->u > (uint64_t)INT64_MAX ? FJ_KIND_BIG : FJ_KIND_UINT;
    case T_INT: return FJ_KIND_NEG;
    case T_FLOAT: return FJ_KIND_FLOAT;
    case T_STR:
        if (it->len == 0) return FJ_KIND_EMPTY_STR;
        return it->len == 1 && it->ptr[0] == '-' ? FJ_KIND_DASH : FJ_KIND_STR;
    case T_BIN: return FJ_KIND_BIN;
    case T_ARRAY: return it->len ? FJ_KIND_ARRAY : FJ_KIND_EMPTY_ARRAY;
    case T_MAP: return it->len ? FJ_KIND_MAP : FJ_KIND_EMPTY_MAP;
    default: return -1;
    }
}

static int sig_put(struct fj_fmt *f, const void *src, size_t n)
{
    if (FJ_FMT_SIG_CAP - f->sig_len < n)
        return FJ_FMT_PYTHON;
    memcpy(f->sig + f->sig_len, src, n);
    f->sig_len += n;
    return FJ_OK;
}

static int sig_u32(struct fj_fmt *f, uint32_t v)
{
    return sig_put(f, &v, 4);
}

/* A map's n entries into the signature and the slots; parent NULL: the record. */
static int walk_map(struct fj_fmt *f, uint32_t n, const struct keyref *parent)
{
    struct ctx *c = &f->c;
    size_t base = c->top;
    TRY(sig_u32(f, n));
    for (uint32_t k = 0; k < n; k++) {
        struct item key, it;
        if (fj_read_item(c, &key) != 0)
            return FJ_DECLINE;
        TRY(fj_take_key(c, &key, base));
        int flags = fj_fmt_name_flags(f, parent, &key);
        const uint8_t *at = c->p;
        if (f->n_slots >= FJ_FMT_MAX_SLOTS)
            return FJ_FMT_PYTHON;
        f->slot[f->n_slots++] = at;
        if (fj_read_item(c, &it) != 0)
            return FJ_DECLINE;
        int kind = kind_of(&it);
        if (kind < 0)
            return FJ_DECLINE;
        if (flags & (FJ_FMT_IP | FJ_FMT_PORT)) {
            int named = fj_fmt_kind_named(flags, kind, &it);
            if (named != kind)
                flags &= ~FJ_FMT_KEYED;
            kind = named;
        }
        uint8_t tag = (uint8_t)kind;
        TRY(sig_u32(f, key.len));
        TRY(sig_put(f, key.ptr, key.len));
        TRY(sig_put(f, &tag, 1));
        if (!parent && (flags & FJ_FMT_DESCEND) && kind == FJ_KIND_MAP) {
            struct keyref me = {key.ptr, key.len};
            if (it.len > FJ_MAX_MAP_KEYS)
                return FJ_DECLINE;
            TRY(walk_map(f, it.len, &me));
            continue;
        }
        c->p = at;
        TRY(skip_strict(c, parent ? 2 : 1));
        if (flags & FJ_FMT_KEYED) {
            TRY(sig_u32(f, (uint32_t)(c->p - at)));
            TRY(sig_put(f, at, (size_t)(c->p - at)));
        }
    }
    c->top = base;
    return FJ_OK;
}

/* The record at body (a map) -> f->sig, f->slot. */
int fj_fmt_signature(struct fj_fmt *f, const uint8_t *body)
{
    struct item it;
    struct ctx *c = &f->c;
    f->sig_len = 0;
    f->n_slots = 0;
    c->p = body;
    c->top = 0;
    if (fj_read_item(c, &it) != 0 || it.type != T_MAP || it.len > FJ_MAX_MAP_KEYS)
        return FJ_DECLINE;
    int rc = walk_map(f, it.len, NULL);
    if (rc == FJ_FMT_PYTHON) { /* the record must still be whole: skip it from its start */
        c->p = body;
        c->top = 0;
        TRY(skip_strict(c, 0));
    }
    f->record_end = c->p;
    return rc;
}

/* One value as JSON; cut: a string's first 512 characters (CEF's name, as
 * Python's text[:512]; valid UTF-8, or the record is Python's). */
int fj_fmt_raw(struct ctx *c, int cut)
{
    if (cut) {
        struct item it;
        if (fj_read_item(c, &it) != 0 || it.type != T_STR)
            return FJ_FMT_PYTHON;
        uint32_t n = 0, chars = 0;
        for (; n < it.len; n++) /* a character starts at every byte but a continuation byte */
            if ((it.ptr[n] & 0xc0) != 0x80 && ++chars > 512)
                break;
        return fj_put_text(c, it.ptr, n, 1);
    }
    return fj_emit_value(c, 1);
}

/* The partition key's value at rec[2..3] (offsets into data), as fj_convert finds it; the
 * record is not checked yet (its keys may be anything but strings match). */
static int find_partition_key(struct fj_fmt *f, const uint8_t *data, const uint8_t *body, uint32_t *rec)
{
    struct ctx *c = &f->c;
    const uint8_t *at = body, *name = f->key_names;
    rec[2] = rec[3] = 0;
    for (int depth = 0; depth < f->key_depth && at; depth++) {
        struct item it, key;
        c->p = at;
        at = NULL;
        if (fj_read_item(c, &it) != 0)
            return FJ_DECLINE;
        for (uint32_t k = 0; it.type == T_MAP && k < it.len; k++) {
            if (fj_read_item(c, &key) != 0)
                return FJ_DECLINE;
            if (key.type == T_STR && key.len == f->key_lens[depth] && memcmp(key.ptr, name, key.len) == 0) {
                at = c->p;
                break;
            }
            TRY(skip_strict(c, depth + 1));
        }
        name += f->key_lens[depth];
    }
    if (at && f->key_depth > 0) {
        struct item it;
        c->p = at;
        if (fj_read_item(c, &it) != 0)
            return FJ_DECLINE;
        if (it.type == T_STR || it.type == T_BIN) {
            rec[2] = (uint32_t)(it.ptr - data);
            rec[3] = it.len;
        }
    }
    return FJ_OK;
}

/* An event's head: *marker for group markers, f->ns (has_ns) for its time. */
static int event_time(struct fj_fmt *f, const struct item *ts, int *marker)
{
    *marker = 0;
    f->has_ns = 0;
    if (ts->type == T_EXT && ts->ext == 0 && ts->len == 8) {
        const uint8_t *b = ts->ptr;
        uint64_t seconds = ((uint64_t)b[0] << 24) | ((uint64_t)b[1] << 16) | ((uint64_t)b[2] << 8) | b[3];
        uint64_t nanos = ((uint64_t)b[4] << 24) | ((uint64_t)b[5] << 16) | ((uint64_t)b[6] << 8) | b[7];
        *marker = b[0] == 0xff && b[1] == 0xff && b[2] == 0xff && (b[3] == 0xff || b[3] == 0xfe);
        f->ns = seconds * 1000000000ULL + nanos;
        f->has_ns = 1;
    } else if (ts->type == T_INT) {
        *marker = ts->i == -1 || ts->i == -2;
    } else if (ts->type == T_FLOAT) {
        *marker = ts->f == -1.0 || ts->f == -2.0;
        /* as values.number_ns: int(round(t * 1e9 / 1000)) * 1000, to the microsecond */
        f->has_ns = ts->f >= 0 && ts->f <= (double)FJ_FMT_MAX_SECONDS;
        f->ns = f->has_ns ? (uint64_t)nearbyint(ts->f * 1e9 / 1000) * 1000 : 0;
    } else if (ts->type == T_UINT) {
        f->has_ns = ts->u <= FJ_FMT_MAX_SECONDS;
        f->ns = ts->u * 1000000000ULL;
    } else {
        return FJ_DECLINE;
    }
    return FJ_OK;
}

/* One event: skipped (marker) or its record written at records[5 * *count]. */
static int one_event(struct fj_fmt *f, const uint8_t *data, int flags, uint32_t *records,
                     size_t records_cap, size_t *count)
{
    struct ctx *c = &f->c;
    struct item event, head, ts;
    int marker;
    if (fj_read_item(c, &event) != 0 || event.type != T_ARRAY || event.len != 2 || fj_read_item(c, &head) != 0)
        return FJ_DECLINE;
    ts = head;
    if (head.type == T_ARRAY) { /* [time, metadata...] */
        if (head.len == 0 || fj_read_item(c, &ts) != 0)
            return FJ_DECLINE;
        for (uint32_t k = 1; k < head.len; k++)
            TRY(skip_loose(c, 1));
    }
    TRY(event_time(f, &ts, &marker));
    if (marker)
        return skip_loose(c, 1);
    const uint8_t *body = c->p;
    if (body >= c->end || !((*body >= 0x80 && *body <= 0x8f) || *body == 0xde || *body == 0xdf))
        return FJ_DECLINE; /* not a map: Python rejects it */
    if (*count >= records_cap)
        return FJ_NEED_ROOM;
    uint32_t *rec = records + 5 * *count;
    uint8_t *start = c->o;
    rec[2] = rec[3] = 0;
    rec[4] = FJ_STATUS_OK;
    if (f->key_depth >= 0)
        TRY(find_partition_key(f, data, body, rec));
    TRY(fj_fmt_record(f, body, rec, flags & FJ_APPEND_NEWLINE));
    rec[0] = (uint32_t)(start - f->out);
    rec[1] = (uint32_t)(c->o - start);
    c->p = f->record_end;
    c->top = 0;
    (*count)++;
    return FJ_OK;
}

int fj_fmt_chunk(struct fj_fmt *f, const uint8_t *data, int flags, uint32_t *records, size_t records_cap,
                 size_t *n_records)
{
    size_t count = 0;
    int rc = FJ_OK;
    while (f->c.p < f->c.end && rc == FJ_OK)
        rc = one_event(f, data, flags, records, records_cap, &count);
    *n_records = count;
    return rc;
}
