/* fastjson.c: a Fluent Bit chunk (concatenated msgpack events) -> one JSON
 * payload per record, without a Python object per field.
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
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FJ_OK 0
#define FJ_DECLINE (-1)
#define FJ_NEED_ROOM (-2)

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

/* ---- reading ------------------------------------------------------------ */

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int k = 0; k < n; k++)
        v = (v << 8) | p[k];
    return v;
}

/* Reads one item's header; strings, bins and exts are consumed whole,
 * arrays and maps only up to their first element. -1 when malformed. */
static int read_item(struct ctx *c, struct item *it)
{
    const uint8_t *end = c->end;
    if (c->p >= end)
        return -1;
    uint8_t b = *c->p++;
    size_t width = 0, avail;
    if (b <= 0x7f) { it->type = T_UINT; it->u = b; return 0; }
    if (b >= 0xe0) { it->type = T_INT; it->i = (int8_t)b; return 0; }
    if (b <= 0x8f) { it->type = T_MAP; it->len = b & 0x0f; return 0; }
    if (b <= 0x9f) { it->type = T_ARRAY; it->len = b & 0x0f; return 0; }
    if (b <= 0xbf) { it->type = T_STR; it->len = b & 0x1f; goto payload; }
    avail = (size_t)(end - c->p);
    switch (b) {
    case 0xc0: it->type = T_NIL; return 0;
    case 0xc2: case 0xc3: it->type = T_BOOL; it->u = b == 0xc3; return 0;
    case 0xc4: case 0xc5: case 0xc6:
        it->type = T_BIN; width = (size_t)1 << (b - 0xc4); goto sized;
    case 0xd9: case 0xda: case 0xdb:
        it->type = T_STR; width = (size_t)1 << (b - 0xd9); goto sized;
    case 0xc7: case 0xc8: case 0xc9:
        width = (size_t)1 << (b - 0xc7);
        if (avail < width + 1)
            return -1;
        it->type = T_EXT;
        it->len = (uint32_t)be(c->p, (int)width);
        it->ext = (int8_t)c->p[width];
        c->p += width + 1;
        goto payload;
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
        if (avail < 1)
            return -1;
        it->type = T_EXT;
        it->len = 1u << (b - 0xd4);
        it->ext = (int8_t)*c->p++;
        goto payload;
    case 0xca: case 0xcb: {
        width = b == 0xca ? 4 : 8;
        if (avail < width)
            return -1;
        uint64_t bits = be(c->p, (int)width);
        if (width == 4) {
            float f32;
            uint32_t b32 = (uint32_t)bits;
            memcpy(&f32, &b32, 4);
            it->f = f32;
        } else {
            memcpy(&it->f, &bits, 8);
        }
        c->p += width;
        it->type = T_FLOAT;
        return 0;
    }
    case 0xcc: case 0xcd: case 0xce: case 0xcf:
        width = (size_t)1 << (b - 0xcc);
        if (avail < width)
            return -1;
        it->type = T_UINT;
        it->u = be(c->p, (int)width);
        c->p += width;
        return 0;
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
        width = (size_t)1 << (b - 0xd0);
        if (avail < width)
            return -1;
        uint64_t raw = be(c->p, (int)width);
        int shift = 64 - 8 * (int)width;
        int64_t v = (int64_t)(raw << shift) >> shift; /* sign-extend */
        c->p += width;
        if (v >= 0) { it->type = T_UINT; it->u = (uint64_t)v; }
        else { it->type = T_INT; it->i = v; }
        return 0;
    }
    case 0xdc: case 0xdd: case 0xde: case 0xdf:
        width = (b & 1) ? 4 : 2;
        if (avail < width)
            return -1;
        it->type = b <= 0xdd ? T_ARRAY : T_MAP;
        it->len = (uint32_t)be(c->p, (int)width);
        c->p += width;
        /* every element takes at least one byte: reject impossible counts early */
        if ((uint64_t)it->len * (it->type == T_MAP ? 2 : 1) > (uint64_t)(end - c->p))
            return -1;
        return 0;
    default: /* 0xc1 is never used */
        return -1;
    }
sized:
    if (avail < width)
        return -1;
    it->len = (uint32_t)be(c->p, (int)width);
    c->p += width;
payload:
    if ((size_t)(end - c->p) < it->len)
        return -1;
    it->ptr = c->p;
    c->p += it->len;
    return 0;
}

/* ---- UTF-8 -------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (n > 0 bytes left), or 0 with
 * *bad = the length of the maximal subpart that becomes one U+FFFD. */
static size_t utf8_sequence(const uint8_t *s, size_t n, size_t *bad)
{
    uint8_t b = s[0], lo = 0x80, hi = 0xbf;
    size_t more;
    if (b < 0x80)
        return 1;
    if (b < 0xc2 || b > 0xf4) { *bad = 1; return 0; }
    if (b < 0xe0)
        more = 1;
    else if (b < 0xf0) {
        more = 2;
        if (b == 0xe0) lo = 0xa0;
        else if (b == 0xed) hi = 0x9f; /* no surrogates */
    } else {
        more = 3;
        if (b == 0xf0) lo = 0x90;
        else if (b == 0xf4) hi = 0x8f; /* nothing above U+10FFFF */
    }
    for (size_t k = 1; k <= more; k++) {
        uint8_t lower = k == 1 ? lo : 0x80, upper = k == 1 ? hi : 0xbf;
        if (k >= n || s[k] < lower || s[k] > upper) { *bad = k; return 0; }
    }
    return more + 1;
}

static int utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0, bad;
    while (i < n) {
        if (s[i] < 0x80) { i++; continue; }
        size_t len = utf8_sequence(s + i, n - i, &bad);
        if (!len)
            return 0;
        i += len;
    }
    return 1;
}

/* ---- writing ------------------------------------------------------------ */

#define ROOM(c, n) do { if ((size_t)((c)->oend - (c)->o) < (size_t)(n)) return FJ_NEED_ROOM; } while (0)

static int put(struct ctx *c, const void *src, size_t n)
{
    ROOM(c, n);
    memcpy(c->o, src, n);
    c->o += n;
    return FJ_OK;
}

static int put_char(struct ctx *c, char ch)
{
    ROOM(c, 1);
    *c->o++ = (uint8_t)ch;
    return FJ_OK;
}

#define TRY(call) do { int _rc = (call); if (_rc != FJ_OK) return _rc; } while (0)

static const uint8_t REPLACEMENT[3] = {0xef, 0xbf, 0xbd};

/* Text with invalid UTF-8 replaced; as a JSON string when `json`. */
static int put_text(struct ctx *c, const uint8_t *s, size_t n, int json)
{
    static const char hex[] = "0123456789abcdef";
    size_t i = 0;
    if (json)
        TRY(put_char(c, '"'));
    while (i < n) {
        size_t start = i;
        if (json)
            while (i < n && s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' && s[i] != '\\')
                i++;
        else
            while (i < n && s[i] < 0x80)
                i++;
        if (i > start)
            TRY(put(c, s + start, i - start));
        if (i >= n)
            break;
        uint8_t b = s[i];
        if (b < 0x80) { /* json only: an escape */
            char esc[6] = {'\\', 0};
            size_t len = 2;
            switch (b) {
            case '"': esc[1] = '"'; break;
            case '\\': esc[1] = '\\'; break;
            case '\b': esc[1] = 'b'; break;
            case '\t': esc[1] = 't'; break;
            case '\n': esc[1] = 'n'; break;
            case '\f': esc[1] = 'f'; break;
            case '\r': esc[1] = 'r'; break;
            default:
                memcpy(esc + 1, "u00", 3);
                esc[4] = hex[b >> 4];
                esc[5] = hex[b & 15];
                len = 6;
            }
            TRY(put(c, esc, len));
            i++;
            continue;
        }
        size_t bad = 0, len = utf8_sequence(s + i, n - i, &bad);
        if (len) {
            TRY(put(c, s + i, len));
            i += len;
        } else {
            if (c->base64)
                return FJ_DECLINE;
            TRY(put(c, REPLACEMENT, 3));
            c->replaced = 1;
            i += bad;
        }
    }
    if (json)
        TRY(put_char(c, '"'));
    return FJ_OK;
}

static int put_u64(struct ctx *c, uint64_t v, int negative)
{
    char buf[24];
    char *q = buf + sizeof buf;
    do { *--q = (char)('0' + v % 10); v /= 10; } while (v);
    if (negative)
        *--q = '-';
    return put(c, q, (size_t)(buf + sizeof buf - q));
}

/* v (> 0, finite) correctly rounded to `prec` significant digits: the
 * digits as an integer in *mantissa, the power of ten of the first one in
 * *exp10, the double they read back as in *rounded. -1 on anything but
 * d.ddde[+-]x (e.g. a locale's decimal comma). */
static int round_digits(double v, int prec, uint64_t *mantissa, int *exp10, double *rounded)
{
    char sci[40];
    uint64_t m = 0;
    const char *q = sci;
    snprintf(sci, sizeof sci, "%.*e", prec - 1, v);
    *rounded = prec < 17 ? strtod(sci, NULL) : v; /* 17 digits always read back */
    for (; *q && *q != 'e'; q++) {
        if (*q >= '0' && *q <= '9')
            m = m * 10 + (uint64_t)(*q - '0');
        else if (*q != '.')
            return -1;
    }
    if (*q != 'e')
        return -1;
    *mantissa = m;
    *exp10 = atoi(q + 1);
    return 0;
}

/* The double nearest to mantissa (prec digits) x 10^(exp10 - prec + 1). */
static double decimal_value(uint64_t mantissa, int exp10, int prec)
{
    char text[40];
    snprintf(text, sizeof text, "%llue%d", (unsigned long long)mantissa, exp10 - prec + 1);
    return strtod(text, NULL);
}

/* The shortest digits that read back as the same double and, of those, the
 * closest to it (as orjson's shortest round-trip algorithm). The correctly
 * rounded 15 digits read back whenever 15 or fewer can (trailing zeros go);
 * with 16, a power of two's interval is lopsided (half as wide below), so
 * the nearest 16 digits may not read back while the next ones up do (2^-24);
 * 17 always do. Subnormals have fewer digits: every count from 1 is tried. Laid out as
 * orjson does: plain decimal for exponents -5 <= e < 16, else d.ddde+X (e-X).
 * NaN and infinities are null. */
static int put_double(struct ctx *c, double v)
{
    static const uint64_t pow10[18] = {1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull,
        10000000ull, 100000000ull, 1000000000ull, 10000000000ull, 100000000000ull, 1000000000000ull,
        10000000000000ull, 100000000000000ull, 1000000000000000ull, 10000000000000000ull,
        100000000000000000ull};
    char out[48];
    int prec, n = 0, exp10 = 0;
    uint64_t m = 0;
    if (!isfinite(v))
        return put(c, "null", 4);
    if (signbit(v)) {
        out[n++] = '-';
        v = -v;
    }
    if (v == 0) {
        memcpy(out + n, "0.0", 3);
        return put(c, out, (size_t)n + 3);
    }
    for (prec = v < 2.2250738585072014e-308 ? 1 : 15; prec <= 17; prec++) {
        double rounded;
        if (round_digits(v, prec, &m, &exp10, &rounded) != 0)
            return FJ_DECLINE;
        if (rounded == v)
            break;
        /* the other neighbour can only read back where the interval is
         * lopsided: a power of two (no mantissa bits), and from 16 digits */
        uint64_t bits;
        memcpy(&bits, &v, 8);
        if (prec < 16 || (bits & 0xfffffffffffffull) != 0)
            continue;
        /* the other neighbour at this precision: up if the rounding went down */
        uint64_t other = m;
        int other_exp = exp10;
        if (rounded < v) {
            if (++other == pow10[prec]) { other = pow10[prec - 1]; other_exp++; }
        } else {
            if (--other < pow10[prec - 1]) { other = pow10[prec] - 1; other_exp--; }
        }
        if (decimal_value(other, other_exp, prec) == v) {
            m = other;
            exp10 = other_exp;
            break;
        }
    }
    char digits[20];
    int nd = 0;
    while (m % 10 == 0 && m >= 10) /* trailing zeros go */
        m /= 10;
    uint64_t rest = m;
    do
        nd++;
    while (rest /= 10);
    for (int k = nd - 1; k >= 0; k--, m /= 10)
        digits[k] = (char)('0' + m % 10);
    if (exp10 >= 16 || exp10 < -5) {
        out[n++] = digits[0];
        if (nd > 1) {
            out[n++] = '.';
            memcpy(out + n, digits + 1, (size_t)nd - 1);
            n += nd - 1;
        }
        n += snprintf(out + n, sizeof out - (size_t)n, "e%s%d", exp10 < 0 ? "-" : "+", abs(exp10));
    } else if (exp10 >= 0) {
        for (int k = 0; k <= exp10; k++)
            out[n++] = k < nd ? digits[k] : '0';
        out[n++] = '.';
        if (nd > exp10 + 1) {
            memcpy(out + n, digits + exp10 + 1, (size_t)(nd - exp10 - 1));
            n += nd - exp10 - 1;
        } else {
            out[n++] = '0';
        }
    } else {
        out[n++] = '0';
        out[n++] = '.';
        for (int k = 0; k < -exp10 - 1; k++)
            out[n++] = '0';
        memcpy(out + n, digits, (size_t)nd);
        n += nd;
    }
    return put(c, out, (size_t)n);
}

/* ---- walking records ------------------------------------------------------ */

/* A map key: must be a valid UTF-8 str, not seen before in this map
 * (keys[base..top) holds the map's keys so far). */
static int take_key(struct ctx *c, const struct item *key, size_t base)
{
    if (key->type != T_STR || !utf8_valid(key->ptr, key->len) || c->top >= FJ_KEY_STACK)
        return FJ_DECLINE;
    for (size_t k = base; k < c->top; k++)
        if (c->keys[k].len == key->len && memcmp(c->keys[k].ptr, key->ptr, key->len) == 0)
            return FJ_DECLINE;
    c->keys[c->top].ptr = key->ptr;
    c->keys[c->top].len = key->len;
    c->top++;
    return FJ_OK;
}

/* Skips one value. strict: as inside a record (no ext, keys checked);
 * otherwise any well-formed msgpack. */
static int skip_value(struct ctx *c, int depth, int strict)
{
    struct item it;
    if (read_item(c, &it) != 0 || depth > FJ_MAX_DEPTH)
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
                if (read_item(c, &key) != 0)
                    return FJ_DECLINE;
                TRY(take_key(c, &key, base));
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

/* Writes one value of a record as JSON. */
static int emit_value(struct ctx *c, int depth)
{
    struct item it;
    if (read_item(c, &it) != 0 || depth > FJ_MAX_DEPTH)
        return FJ_DECLINE;
    switch (it.type) {
    case T_NIL: return put(c, "null", 4);
    case T_BOOL: return it.u ? put(c, "true", 4) : put(c, "false", 5);
    case T_UINT: return put_u64(c, it.u, 0);
    case T_INT: return put_u64(c, (uint64_t)0 - (uint64_t)it.i, 1);
    case T_FLOAT: return put_double(c, it.f);
    case T_STR: return put_text(c, it.ptr, it.len, 1);
    case T_BIN: return c->base64 ? FJ_DECLINE : put_text(c, it.ptr, it.len, 1);
    case T_ARRAY:
        TRY(put_char(c, '['));
        for (uint32_t k = 0; k < it.len; k++) {
            if (k)
                TRY(put_char(c, ','));
            TRY(emit_value(c, depth + 1));
        }
        return put_char(c, ']');
    case T_MAP: {
        size_t base = c->top;
        if (it.len > FJ_MAX_MAP_KEYS)
            return FJ_DECLINE;
        TRY(put_char(c, '{'));
        for (uint32_t k = 0; k < it.len; k++) {
            struct item key;
            if (read_item(c, &key) != 0)
                return FJ_DECLINE;
            TRY(take_key(c, &key, base));
            if (k)
                TRY(put_char(c, ','));
            TRY(put_text(c, key.ptr, key.len, 1));
            TRY(put_char(c, ':'));
            TRY(emit_value(c, depth + 1));
        }
        c->top = base;
        return put_char(c, '}');
    }
    default: /* ext */
        return FJ_DECLINE;
    }
}

/* In an already checked map at `at`: the value of key `name`, positioned at
 * its first byte in *found (NULL when the key is not there). */
static int find_key(struct ctx *c, const uint8_t *at, const uint8_t *name, size_t name_len,
                    const uint8_t **found)
{
    struct item it;
    c->p = at;
    *found = NULL;
    if (read_item(c, &it) != 0)
        return FJ_DECLINE;
    if (it.type != T_MAP)
        return FJ_OK;
    for (uint32_t k = 0; k < it.len; k++) {
        struct item key;
        if (read_item(c, &key) != 0)
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
        if (read_item(c, &event) != 0 || event.type != T_ARRAY || event.len != 2 ||
            read_item(c, &head) != 0) {
            rc = FJ_DECLINE;
            break;
        }
        if (head.type == T_ARRAY) { /* [time, metadata...] */
            if (head.len == 0 || read_item(c, &ts) != 0) {
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
                if (read_item(c, &it) != 0) { rc = FJ_DECLINE; break; }
                if (it.type == T_STR || it.type == T_BIN) {
                    rc = it.type == T_STR ? put_text(c, it.ptr, it.len, 0) : put(c, it.ptr, it.len);
                } else {
                    c->p = value;
                    rc = emit_value(c, 1);
                }
                if (rc != FJ_OK)
                    break;
            }
            c->p = next;
        } else if ((rc = emit_value(c, 0)) != FJ_OK) {
            break;
        }
        if ((flags & FJ_APPEND_NEWLINE) && rec[4] == FJ_STATUS_OK && (rc = put_char(c, '\n')) != FJ_OK)
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
                if (read_item(c, &it) != 0) { rc = FJ_DECLINE; break; }
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
