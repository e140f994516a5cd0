/* fastjson.h: the native fast path's one header (fluentbit_kinesis._fastjson):
 * a Fluent Bit chunk (concatenated msgpack events) -> one JSON payload per
 * record, without a Python object per field.
 *
 *   fastjson.c          the record converter: fj_convert over a chunk's events
 *   fastjson_msgpack.c  reading msgpack items, every read bounds-checked
 *   fastjson_json.c     a record's values as JSON: UTF-8, strings, integers, keys
 *   fastjson_double.c   doubles as the shortest text that reads back the same
 *   fastjson_format.c   field_format: fj_format runs Python's per-shape plans
 *   fastjson_format_walk.c    its walk: events, record signatures, partition keys
 *   fastjson_format_values.c  its writers: OTLP AnyValue, event times
 *   fastjson_body.c     a PutRecords request body: base64, keys, the entries' JSON
 *   fastjson_kpl*.c     KPL aggregation's per-record part (fastjson_kpl.h), MD5 in fastjson_md5.c
 *   fastjson_entries.c  an EntryTable's per-entry kernels: shards, grouping, a body from indices
 *   fastjson_answer.c   a PutRecords answer's failed entries counted by a strict JSON scan
 *   fastjson_indices.c  uint32 columns (fastjson_indices.h): sums, gathers, bitmaps; the table's columns
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

/* ---- fj_format: field_format's native path (build.py's FASTJSON_API) ------ */

/* per-record status besides FJ_STATUS_OK */
#define FJ_FMT_PYTHON 4   /* the Python normalizer does this record (nothing written) */
#define FJ_FMT_UNKNOWN 8  /* no plan for its signature: the payload is the signature,
                             rec[2], rec[3] its hash's low and high halves */

/* names: entries of (flags, parent length, name length, parent, name), the
 * keys the signature treats apart (FJ_FMT_DESCEND, FJ_FMT_KEYED). plans:
 * n_plans of (u32 signature length, signature, program) at plan_offsets,
 * with the FNV-1a hash of each signature in plan_hashes. The partition key
 * and flags (FJ_APPEND_NEWLINE) as fj_convert's. Returns FJ_OK, FJ_DECLINE or
 * FJ_NEED_ROOM. */
int fj_format(const uint8_t *data, size_t size, const uint8_t *names, size_t names_size,
              const uint8_t *plans, const uint32_t *plan_offsets, const uint64_t *plan_hashes, size_t n_plans,
              const uint8_t *key_names, const uint32_t *key_lens, int key_depth, int flags,
              uint8_t *out, size_t out_cap, uint32_t *records, size_t records_cap,
              size_t *out_used, size_t *n_records);

#define FJ_FMT_DESCEND 1
#define FJ_FMT_KEYED 2
#define FJ_FMT_IP 4     /* a canonical IPv4 text here is FJ_KIND_IPV4, not keyed by its content */
#define FJ_FMT_PORT 8   /* a port (0-65535, or its digits) here is FJ_KIND_PORT_*, not keyed */
/* a program's ops (native-endian operands): END; LIT u32 length, bytes; RAW,
 * RAW_CUT (a string's first 512 characters: CEF's name), ANY (OTLP AnyValue),
 * IN_STRING (its JSON inside a JSON string), EXTENSION (CSL's: a string
 * without ';', '=', newline as its text, else as IN_STRING), DIGITS (a port's
 * digits as a number), DIGITS_ANY (as an OTLP intValue) u16 slot; TIME u8
 * form; REFUSE: the shape is Python's */
enum { FJ_OP_END, FJ_OP_LIT, FJ_OP_RAW, FJ_OP_RAW_CUT, FJ_OP_ANY, FJ_OP_TIME, FJ_OP_IN_STRING, FJ_OP_EXTENSION,
       FJ_OP_DIGITS, FJ_OP_DIGITS_ANY, FJ_OP_REFUSE = 255 };
enum { FJ_TIME_ISO_MS = 1, FJ_TIME_ISO_US, FJ_TIME_EPOCH_MS, FJ_TIME_EPOCH_NS, FJ_TIME_EPOCH_S, FJ_TIME_LEEF };
/* a value's kind in a signature */
enum { FJ_KIND_NIL = 1, FJ_KIND_FALSE, FJ_KIND_TRUE, FJ_KIND_UINT, FJ_KIND_BIG, FJ_KIND_NEG, FJ_KIND_FLOAT,
       FJ_KIND_EMPTY_STR, FJ_KIND_DASH, FJ_KIND_STR, FJ_KIND_BIN, FJ_KIND_EMPTY_ARRAY, FJ_KIND_ARRAY,
       FJ_KIND_EMPTY_MAP, FJ_KIND_MAP, FJ_KIND_IPV4, FJ_KIND_PORT_INT, FJ_KIND_PORT_TEXT };
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

/* fastjson_kpl.c: KPL aggregates of n records, as pipeline/aggregation.py's
 * Aggregator.pack. The key table (n_keys keys, UTF-8, concatenated) gives
 * each key's shard index (< n_shards, or -1: a gap in the map, sent alone)
 * and the hash key (decimal) of an aggregate it opens; keys keyless_base +
 * t (t < n_keyless) are the keyless keys. A record has its key's id in
 * rec_keys, or none of its own (rec_keys NULL, or keyless[i] 1): it takes
 * the keyless keys in turn, from the one numbered `turn`. Answers FJ_OK with *n_entries rows of FJ_KPL_ENTRY
 * uint32 in entries (room for n): (1 aggregate / 0 alone, first, count, key,
 * offset in out, length); an aggregate's records are positions[first ..
 * first + count), a record alone is `first`, with `key` its key (an
 * aggregate's: its first record's). FJ_NEED_ROOM: *out_used says how much;
 * FJ_DECLINE: lengths, ids or shards that do not fit the buffers. */
#define FJ_KPL_ENTRY 6
struct fj_kpl_input {
    const uint8_t *data;
    size_t data_size;
    const uint32_t *data_lens;
    size_t n;
    const uint32_t *rec_keys;
    const uint8_t *keyless;
    const uint8_t *key_bytes;
    size_t key_bytes_size;
    const uint32_t *key_lens;
    const int32_t *key_shards;
    const uint8_t *hash_bytes;
    size_t hash_bytes_size;
    const uint32_t *hash_lens;
    size_t n_keys, keyless_base, n_keyless, n_shards, turn;
    uint64_t limit, skip;
};
int fj_kpl_pack(const struct fj_kpl_input *in, uint8_t *out, size_t out_cap, size_t *out_used,
                uint32_t *entries, size_t *n_entries, uint32_t *positions);

/* fastjson_entries.c: pipeline/entry_kernels.py's kernels over an EntryTable's columns (offsets
 * *_at and lengths *_len into each buffer; hash_len NULL: no entry has an explicit hash key,
 * FJ_NO_HASH_KEY: this one has none). fj_shard_indices: per entry, the index of the shard its hash
 * falls in or -1; bounds: n_shards rows of 4 uint64 (start high, start low, end high, end low);
 * memo: bytes the caller keeps (zeroed at first), 2^k sets of 96 bytes or none. fj_group: the
 * entries' stable order by lane (shards[i], or `lanes` when negative) and each lane's first
 * position (lanes + 2). fj_body_at: the PutRecords body of the entries at `indices`; FJ_NEED_ROOM
 * sets *out_used to the room it needs. All: FJ_DECLINE on an offset, index or shard outside what
 * was given, or (fj_body_at) a key that is not UTF-8. */
int fj_shard_indices(const uint8_t *keys, size_t keys_size, const uint32_t *key_at, const uint32_t *key_len,
                     const uint8_t *hashes, size_t hashes_size, const uint32_t *hash_at,
                     const uint32_t *hash_len, size_t n, const uint64_t *bounds, size_t n_shards,
                     int32_t *out, uint8_t *memo, size_t memo_size);
int fj_group(const int32_t *shards, size_t n, size_t lanes, uint32_t *order, uint32_t *first);
int fj_body_at(const uint8_t *stream_field, size_t stream_field_len,
               const uint8_t *data, size_t data_size, const uint32_t *data_at, const uint32_t *data_len,
               const uint8_t *keys, size_t keys_size, const uint32_t *key_at, const uint32_t *key_len,
               const uint8_t *hashes, size_t hashes_size, const uint32_t *hash_at, const uint32_t *hash_len,
               size_t n_table, const uint32_t *indices, size_t n_indices,
               uint8_t *out, size_t out_cap, size_t *out_used);

/* fastjson_answer.c: how many of a PutRecords answer's `count` records have an
 * ErrorCode that is not null, or -1 for anything orjson might read otherwise */
int64_t fj_failed_entries(const uint8_t *data, size_t size, size_t count);
#include "fastjson_indices.h"  /* per request over entry indices */

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

/* fastjson_json.c: whether s is valid UTF-8 (as Python's strict decoding) */
FJ_INTERNAL int fj_utf8_valid(const uint8_t *s, size_t n);

/* fastjson_md5.c: MD5 of a whole buffer (KPL's trailer, partition keys' hashes) */
FJ_INTERNAL void fj_md5(const uint8_t *data, size_t n, uint8_t digest[16]);

/* fastjson_body.c's writer, shared by fj_put_records_body and fj_body_at:
 * bounded by `end`; the body's head ({stream field,"Records":[), one
 * entry's JSON (hash_len < 0: no ExplicitHashKey), and FJ_ENTRY_ROOM, what an
 * entry takes besides its base64, key (at most 6 bytes per byte) and hash key */
struct fj_body_out { uint8_t *o, *end; };
#define FJ_ENTRY_ROOM 64
FJ_INTERNAL int fj_body_put(struct fj_body_out *w, const void *src, size_t n);
FJ_INTERNAL int fj_body_head(struct fj_body_out *w, const uint8_t *stream_field, size_t stream_field_len);
FJ_INTERNAL int fj_body_entry(struct fj_body_out *w, const uint8_t *data, size_t data_len,
                              const uint8_t *key, size_t key_len, const uint8_t *hash, int64_t hash_len);

/* fastjson_double.c: a double as orjson writes it (NaN and infinities: null) */
FJ_INTERNAL int fj_put_double(struct ctx *c, double v);

/* fastjson_format*.c: fj_format's state and steps */
#define FJ_FMT_SIG_CAP 4096
#define FJ_FMT_MAX_SLOTS 512
#define FJ_FMT_NAME_SLOTS 1024            /* a power of two */
#define FJ_FMT_MAX_SECONDS 253402300799ULL /* an integer event time past year 9999 is Python's */

struct fj_fmt {
    struct ctx c;
    uint8_t *out;                         /* the output's start */
    const uint8_t *names;
    uint32_t name_at[FJ_FMT_NAME_SLOTS];  /* 1 + offset of a names entry, 0: empty */
    const uint8_t *plans;
    const uint32_t *plan_offsets;
    const uint64_t *plan_hashes;
    size_t n_plans, last_plan;
    const uint8_t *key_names;
    const uint32_t *key_lens;
    int key_depth;
    uint8_t sig[FJ_FMT_SIG_CAP];
    size_t sig_len;
    uint64_t sig_hash;
    const uint8_t *slot[FJ_FMT_MAX_SLOTS]; /* each key's value, in signature order */
    size_t n_slots;
    const uint8_t *record_end;
    uint64_t ns;                          /* the event time */
    int has_ns;
};

FJ_INTERNAL int fj_fmt_index_names(struct fj_fmt *f, const uint8_t *names, size_t size);
FJ_INTERNAL int fj_fmt_name_flags(const struct fj_fmt *f, const struct keyref *parent, const struct item *key);
FJ_INTERNAL int fj_fmt_record(struct fj_fmt *f, const uint8_t *body, uint32_t *rec, int newline);
FJ_INTERNAL int fj_fmt_signature(struct fj_fmt *f, const uint8_t *body);
FJ_INTERNAL int fj_fmt_raw(struct ctx *c, int cut);
FJ_INTERNAL int fj_fmt_chunk(struct fj_fmt *f, const uint8_t *data, int flags, uint32_t *records,
                             size_t records_cap, size_t *n_records);
FJ_INTERNAL int fj_put_any(struct ctx *c, int depth);
FJ_INTERNAL int fj_put_in_string(struct ctx *c, int extension);
FJ_INTERNAL int fj_put_digits(struct ctx *c, int as_any);
FJ_INTERNAL int fj_fmt_kind_named(int flags, int kind, const struct item *it);
FJ_INTERNAL int fj_put_time(struct ctx *c, int form, uint64_t ns);

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
