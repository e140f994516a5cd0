/* fastjson.h: the native fast path's one header (fluentbit_kinesis._fastjson):
 * a Fluent Bit chunk (concatenated msgpack events) -> one JSON payload per
 * record, without a Python object per field.
 *
 *   fastjson.c          the record converter: fj_convert over a chunk's events
 *   fastjson_msgpack.c  reading msgpack items, every read bounds-checked
 *   fastjson_json.c     a record's values as JSON: UTF-8, strings, integers, keys
 *   fastjson_double.c   doubles as the shortest text that reads back the same
 *   fastjson_body.c     a PutRecords request body: base64, keys, the entries' JSON
 *
 * The Python path (events.decode_chunk + shaping.Shaper.payload) stays the
 * reference: this code produces the same bytes for the records it accepts and
 * DECLINES (returns FJ_DECLINE, so Python does the work) on anything unusual:
 * malformed or truncated msgpack, an event that is not [time, record], a body
 * that is not a map, ext types inside a record, map keys that are not valid
 * UTF-8 strings, duplicate keys, nesting deeper than FJ_MAX_DEPTH, maps with
 * more than FJ_MAX_MAP_KEYS keys, timestamps other than EventTime/int/float,
 * ext values with a negative type code anywhere (msgpack-python refuses them,
 * or turns -1 into a Timestamp), and with FJ_BASE64 any bin value or invalid
 * UTF-8 string it would have to encode.
 *
 * Every read is bounds-checked; recursion is limited to FJ_MAX_DEPTH.
 * Output rules (as orjson.dumps with OPT_NON_STR_KEYS, bytes as UTF-8 text):
 * strings escape '"', '\\' and control characters below 0x20; invalid UTF-8
 * becomes U+FFFD per maximal subpart (as CPython's decode(..., "replace"))
 * and sets FJ_STATUS_REPLACED on the record; bin values are strings; NaN and
 * infinities are null; floats are the shortest text that reads back the same.
 */
#ifndef FASTJSON_H
#define FASTJSON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- fj_convert, the one function Python calls (build.py's FASTJSON_API) -- */

#define FJ_OK 0
#define FJ_DECLINE (-1)
#define FJ_NEED_ROOM (-2)

/* fj_convert's per-record output, 5 uint32 each:
 * payload offset in out, payload length, partition key offset in data,
 * partition key length (0 = missing: not a str/bin, or empty), status. */
#define FJ_STATUS_OK 0
#define FJ_STATUS_NO_LOG_KEY 1  /* nothing written */
#define FJ_STATUS_REPLACED 2    /* a bit: invalid UTF-8 became U+FFFD */

/* flags */
#define FJ_APPEND_NEWLINE 1
#define FJ_BASE64 2             /* invalid_utf8 base64: Python encodes bin values and invalid text */

/* key_names: the partition key path's names concatenated, key_lens their
 * lengths, key_depth how many (< 0: no partition key). log_key_len < 0: no
 * log_key. flags: FJ_APPEND_NEWLINE, FJ_BASE64. Returns FJ_OK (with *out_used, *n_records), FJ_DECLINE or
 * FJ_NEED_ROOM (out or records too small). */
int fj_convert(const uint8_t *data, size_t size,
               const uint8_t *key_names, const uint32_t *key_lens, int key_depth,
               const uint8_t *log_key, int log_key_len, int flags,
               uint8_t *out, size_t out_cap, uint32_t *records, size_t records_cap,
               size_t *out_used, size_t *n_records);

/* fastjson_body.c: a PutRecords body from n entries given as concatenated
 * data, keys (ASCII) and explicit hash keys with their lengths (hash_lens
 * NULL: none; FJ_NO_HASH_KEY: this entry has none). FJ_OK (*out_used),
 * FJ_NEED_ROOM, or FJ_DECLINE when the lengths do not match the buffers. */
#define FJ_NO_HASH_KEY 0xFFFFFFFFu
int fj_put_records_body(const uint8_t *stream_field, size_t stream_field_len,
                        const uint8_t *data, size_t data_size, const uint32_t *data_lens,
                        const uint8_t *keys, size_t keys_size, const uint32_t *key_lens,
                        const uint8_t *hashes, size_t hashes_size, const uint32_t *hash_lens,
                        size_t n, uint8_t *out, size_t out_cap, size_t *out_used);

/* ---- shared by the fast path's files, never exported ---------------------- */

#define FJ_INTERNAL __attribute__((visibility("hidden")))

#define FJ_MAX_DEPTH 64
#define FJ_MAX_MAP_KEYS 256
#define FJ_KEY_STACK 1024

enum { T_NIL, T_BOOL, T_UINT, T_INT, T_FLOAT, T_STR, T_BIN, T_ARRAY, T_MAP, T_EXT };

struct item {
    int type;
    uint64_t u;      /* T_UINT, T_BOOL */
    int64_t i;       /* T_INT (always negative) */
    double f;        /* T_FLOAT */
    const uint8_t *ptr; /* T_STR, T_BIN, T_EXT payload */
    uint32_t len;    /* payload length, or element count of T_ARRAY / T_MAP */
    int ext;         /* T_EXT type code */
};

struct keyref { const uint8_t *ptr; uint32_t len; };

struct ctx {
    const uint8_t *p, *end;        /* input */
    uint8_t *o, *oend;             /* output */
    struct keyref keys[FJ_KEY_STACK]; /* keys of the maps being walked, for duplicates */
    size_t top;
    int base64;                    /* FJ_BASE64: decline where Python writes base64 */
    int replaced;                  /* this record had invalid UTF-8 replaced */
};

/* fastjson_msgpack.c: reads one item's header; strings, bins and exts are
 * consumed whole, arrays and maps only up to their first element. -1 when
 * malformed. */
FJ_INTERNAL int fj_read_item(struct ctx *c, struct item *it);

/* fastjson_json.c: text with invalid UTF-8 replaced, as a JSON string when
 * `json`; a map key checked (keys[base..top) holds the map's keys so far);
 * one value of a record written as JSON */
FJ_INTERNAL int fj_put_text(struct ctx *c, const uint8_t *s, size_t n, int json);
FJ_INTERNAL int fj_take_key(struct ctx *c, const struct item *key, size_t base);
FJ_INTERNAL int fj_emit_value(struct ctx *c, int depth);

/* fastjson_double.c: a double as orjson writes it (NaN and infinities: null) */
FJ_INTERNAL int fj_put_double(struct ctx *c, double v);

/* The smallest writers, here so that every file inlines them. */
#define ROOM(c, n) do { if ((size_t)((c)->oend - (c)->o) < (size_t)(n)) return FJ_NEED_ROOM; } while (0)
#define TRY(call) do { int _rc = (call); if (_rc != FJ_OK) return _rc; } while (0)

static inline int fj_put(struct ctx *c, const void *src, size_t n)
{
    ROOM(c, n);
    memcpy(c->o, src, n);
    c->o += n;
    return FJ_OK;
}

static inline int fj_put_char(struct ctx *c, char ch)
{
    ROOM(c, 1);
    *c->o++ = (uint8_t)ch;
    return FJ_OK;
}

#endif
