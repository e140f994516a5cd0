/* fastjson.c: the fast path's record converter, fj_convert: walks a Fluent
 * Bit chunk's events (markers and metadata skipped), checks each record as
 * Python would accept it, writes its JSON payload (or its log_key's value)
 * and finds its partition key. What it declines and how it writes: fastjson.h. */
#include "fastjson.h"

#include <stdlib.h>

/* ---- walking records ------------------------------------------------------ */

/* Skips one value. strict: as inside a record (no ext, keys checked);
 * otherwise any well-formed msgpack. */
static int skip_value(struct ctx *c, int depth, int strict)
{
    struct item it;
    if (fj_read_item(c, &it) != 0 || depth > FJ_MAX_DEPTH)
        return FJ_DECLINE;
    if (it.type == T_EXT && (strict || it.ext < 0))
        return FJ_DECLINE;
    if (it.type == T_ARRAY) {
        for (uint32_t k = 0; k < it.len; k++)
            TRY(skip_value(c, depth + 1, strict));
    } else if (it.type == T_MAP) {
        size_t base = c->top;
        if (strict && it.len > FJ_MAX_MAP_KEYS)
            return FJ_DECLINE;
        for (uint32_t k = 0; k < it.len; k++) {
            if (strict) {
                struct item key;
                if (fj_read_item(c, &key) != 0)
                    return FJ_DECLINE;
                TRY(fj_take_key(c, &key, base));
            } else { /* Python's decoder fails on unhashable (array, map) keys */
                const uint8_t *key = c->p;
                if (key < c->end && ((*key >= 0x80 && *key <= 0x9f) || (*key >= 0xdc && *key <= 0xdf)))
                    return FJ_DECLINE;
                TRY(skip_value(c, depth + 1, 0));
            }
            TRY(skip_value(c, depth + 1, strict));
        }
        c->top = base;
    }
    return FJ_OK;
}

/* In an already checked map at `at`: the value of key `name`, positioned at
 * its first byte in *found (NULL when the key is not there). */
static int find_key(struct ctx *c, const uint8_t *at, const uint8_t *name, size_t name_len,
                    const uint8_t **found)
{
    struct item it;
    c->p = at;
    *found = NULL;
    if (fj_read_item(c, &it) != 0)
        return FJ_DECLINE;
    if (it.type != T_MAP)
        return FJ_OK;
    for (uint32_t k = 0; k < it.len; k++) {
        struct item key;
        if (fj_read_item(c, &key) != 0)
            return FJ_DECLINE;
        if (key.len == name_len && memcmp(key.ptr, name, name_len) == 0) {
            *found = c->p;
            return FJ_OK;
        }
        TRY(skip_value(c, 1, 0));
    }
    return FJ_OK;
}

/* ---- the chunk -------------------------------------------------------------- */

/* The whole chunk: see fastjson.h for the arguments and the output. */
int fj_convert(const uint8_t *data, size_t size,
               const uint8_t *key_names, const uint32_t *key_lens, int key_depth,
               const uint8_t *log_key, int log_key_len, int flags,
               uint8_t *out, size_t out_cap, uint32_t *records, size_t records_cap,
               size_t *out_used, size_t *n_records)
{
    struct ctx *c = malloc(sizeof *c);
    int rc = FJ_OK;
    size_t count = 0;
    if (!c || size > UINT32_MAX || out_cap > UINT32_MAX) { /* offsets are 32-bit */
        free(c);
        return FJ_DECLINE;
    }
    c->p = data;
    c->end = data + size;
    c->o = out;
    c->oend = out + out_cap;
    c->top = 0;
    c->base64 = (flags & FJ_BASE64) != 0;
    while (c->p < c->end) {
        struct item event, head, ts;
        int marker = 0;
        if (fj_read_item(c, &event) != 0 || event.type != T_ARRAY || event.len != 2 ||
            fj_read_item(c, &head) != 0) {
            rc = FJ_DECLINE;
            break;
        }
        if (head.type == T_ARRAY) { /* [time, metadata...] */
            if (head.len == 0 || fj_read_item(c, &ts) != 0) {
                rc = FJ_DECLINE;
                break;
            }
            for (uint32_t k = 1; k < head.len && rc == FJ_OK; k++)
                rc = skip_value(c, 1, 0);
            if (rc != FJ_OK)
                break;
        } else {
            ts = head;
        }
        if (ts.type == T_EXT && ts.ext == 0 && ts.len == 8)
            marker = ts.ptr[0] == 0xff && ts.ptr[1] == 0xff && ts.ptr[2] == 0xff &&
                     (ts.ptr[3] == 0xff || ts.ptr[3] == 0xfe);
        else if (ts.type == T_INT)
            marker = ts.i == -1 || ts.i == -2;
        else if (ts.type == T_FLOAT)
            marker = ts.f == -1.0 || ts.f == -2.0;
        else if (ts.type != T_UINT) {
            rc = FJ_DECLINE;
            break;
        }
        if (marker) {
            if ((rc = skip_value(c, 1, 0)) != FJ_OK)
                break;
            continue;
        }
        const uint8_t *body = c->p;
        if (body >= c->end || !((*body >= 0x80 && *body <= 0x8f) || *body == 0xde || *body == 0xdf)) {
            rc = FJ_DECLINE; /* not a map: Python rejects it */
            break;
        }
        if (count >= records_cap) {
            rc = FJ_NEED_ROOM;
            break;
        }
        uint32_t *rec = records + 5 * count;
        size_t start = (size_t)(c->o - out);
        rec[2] = rec[3] = 0;
        rec[4] = FJ_STATUS_OK;
        c->replaced = 0;
        if (log_key_len >= 0) {
            const uint8_t *value;
            if ((rc = skip_value(c, 0, 1)) != FJ_OK)
                break;
            const uint8_t *next = c->p;
            if ((rc = find_key(c, body, log_key, (size_t)log_key_len, &value)) != FJ_OK)
                break;
            if (!value) {
                rec[4] = FJ_STATUS_NO_LOG_KEY;
            } else {
                struct item it;
                c->p = value;
                if (fj_read_item(c, &it) != 0) { rc = FJ_DECLINE; break; }
                if (it.type == T_STR || it.type == T_BIN) {
                    rc = it.type == T_STR ? fj_put_text(c, it.ptr, it.len, 0) : fj_put(c, it.ptr, it.len);
                } else {
                    c->p = value;
                    rc = fj_emit_value(c, 1);
                }
                if (rc != FJ_OK)
                    break;
            }
            c->p = next;
        } else if ((rc = fj_emit_value(c, 0)) != FJ_OK) {
            break;
        }
        if ((flags & FJ_APPEND_NEWLINE) && rec[4] == FJ_STATUS_OK && (rc = fj_put_char(c, '\n')) != FJ_OK)
            break;
        if (c->replaced)
            rec[4] |= FJ_STATUS_REPLACED;
        rec[0] = (uint32_t)start;
        rec[1] = (uint32_t)((size_t)(c->o - out) - start);
        if (key_depth >= 0) {
            const uint8_t *next = c->p, *at = body, *name = key_names;
            for (int k = 0; k < key_depth && at; k++) {
                if ((rc = find_key(c, at, name, key_lens[k], &at)) != FJ_OK)
                    break;
                name += key_lens[k];
            }
            if (rc != FJ_OK)
                break;
            if (at && key_depth > 0) {
                struct item it;
                c->p = at;
                if (fj_read_item(c, &it) != 0) { rc = FJ_DECLINE; break; }
                if (it.type == T_STR || it.type == T_BIN) {
                    rec[2] = (uint32_t)(it.ptr - data);
                    rec[3] = it.len;
                }
            }
            c->p = next;
        }
        count++;
    }
    *out_used = (size_t)(c->o - out);
    *n_records = count;
    free(c);
    return rc;
}
