/* fastjson_json.c: a record's values as JSON (see fastjson.h for the output
 * rules): UTF-8 checked and invalid sequences replaced, strings escaped,
 * integers, map keys checked (valid UTF-8, no duplicates), and the recursive
 * value writer. Doubles: fastjson_double.c. */
#include "fastjson.h"
#include "fastjson_scan.h"

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

int fj_utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0, bad;
    if (fj_all_ascii(s, n))  /* most keys */
        return 1;
    while (i < n) {
        i += fj_ascii_run(s + i, n - i);
        if (i >= n)
            break;
        size_t len = utf8_sequence(s + i, n - i, &bad);
        if (!len)
            return 0;
        i += len;
    }
    return 1;
}

/* ---- writing ------------------------------------------------------------ */

static const uint8_t REPLACEMENT[3] = {0xef, 0xbf, 0xbd};

/* A byte below 0x80 that a JSON string escapes */
static int put_escape(struct ctx *c, uint8_t b)
{
    static const char hex[] = "0123456789abcdef";
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
    return fj_put(c, esc, len);
}

/* What follows a plain run at s (n > 0 bytes left): an escape (json), a
 * UTF-8 sequence as it is, or U+FFFD for an invalid one; *took: its bytes. */
static int put_odd(struct ctx *c, const uint8_t *s, size_t n, size_t *took)
{
    size_t bad = 0, len;
    if (s[0] < 0x80) {
        *took = 1;
        return put_escape(c, s[0]);
    }
    len = utf8_sequence(s, n, &bad);
    if (len) {
        *took = len;
        return fj_put(c, s, len);
    }
    if (c->base64)
        return FJ_DECLINE;
    TRY(fj_put(c, REPLACEMENT, 3));
    c->replaced = 1;
    *took = bad;
    return FJ_OK;
}

/* the bytes from s on that go out as they are: in a JSON string (json), or plain ASCII */
static inline size_t plain_run(const uint8_t *s, size_t n, int json)
{
    return json ? fj_json_plain_run(s, n) : fj_ascii_run(s, n);
}

/* Text with invalid UTF-8 replaced; as a JSON string when `json`. */
int fj_put_text(struct ctx *c, const uint8_t *s, size_t n, int json)
{
    size_t i, start = 0;
    if (json ? fj_json_all_plain(s, n) : fj_ascii_run(s, n) == n) {  /* most text: one room check, one copy */
        ROOM(c, n + (json ? 2 : 0));
        uint8_t *o = c->o;  /* a local: C lets a byte stored through c->o be c->o */
        if (json)
            *o++ = '"';
        fj_copy(o, s, n);
        o += n;
        if (json)
            *o++ = '"';
        c->o = o;
        return FJ_OK;
    }
    i = plain_run(s, n, json);
    if (json)
        TRY(fj_put_char(c, '"'));
    for (;;) {
        if (i > start)
            TRY(fj_put(c, s + start, i - start));
        if (i >= n)
            break;
        size_t took;
        TRY(put_odd(c, s + i, n - i, &took));
        i += took;
        start = i;
        i += plain_run(s + i, n - i, json);
    }
    if (json)
        TRY(fj_put_char(c, '"'));
    return FJ_OK;
}

static int put_u64(struct ctx *c, uint64_t v, int negative)
{
    char buf[24];
    char *q = buf + sizeof buf;
    do { *--q = (char)('0' + v % 10); v /= 10; } while (v);
    if (negative)
        *--q = '-';
    return fj_put(c, q, (size_t)(buf + sizeof buf - q));
}

/* ---- keys and values ------------------------------------------------------ */

/* A map key: must be a valid UTF-8 str, not seen before in this map
 * (keys[base..top) holds the map's keys so far). */
int fj_take_key(struct ctx *c, const struct item *key, size_t base)
{
    if (key->type != T_STR || !(fj_all_ascii(key->ptr, key->len) || fj_utf8_valid(key->ptr, key->len))
        || c->top >= FJ_KEY_STACK)
        return FJ_DECLINE;
    for (size_t k = base; k < c->top; k++)
        if (c->keys[k].len == key->len && memcmp(c->keys[k].ptr, key->ptr, key->len) == 0)
            return FJ_DECLINE;
    c->keys[c->top].ptr = key->ptr;
    c->keys[c->top].len = key->len;
    c->top++;
    return FJ_OK;
}

/* A map's key as JSON with the ',' before it (but the first) and the ':'
 * after; a plain key (most) in one check of the room */
static int put_key(struct ctx *c, const struct item *key, int first)
{
    size_t n = key->len;
    if (!fj_json_all_plain(key->ptr, n)) {
        if (!first)
            TRY(fj_put_char(c, ','));
        TRY(fj_put_text(c, key->ptr, n, 1));
        return fj_put_char(c, ':');
    }
    ROOM(c, n + 4);
    uint8_t *o = c->o;  /* a local, as fj_put_text's */
    if (!first)
        *o++ = ',';
    *o++ = '"';
    fj_copy(o, key->ptr, n);
    memcpy(o + n, "\":", 2);
    c->o = o + n + 2;
    return FJ_OK;
}

/* Writes one value of a record as JSON. */
int fj_emit_value(struct ctx *c, int depth)
{
    struct item it;
    if (fj_read_item(c, &it) != 0 || depth > FJ_MAX_DEPTH)
        return FJ_DECLINE;
    switch (it.type) {
    case T_NIL: return fj_put(c, "null", 4);
    case T_BOOL: return it.u ? fj_put(c, "true", 4) : fj_put(c, "false", 5);
    case T_UINT: return put_u64(c, it.u, 0);
    case T_INT: return put_u64(c, (uint64_t)0 - (uint64_t)it.i, 1);
    case T_FLOAT: return fj_put_double(c, it.f);
    case T_STR: return fj_put_text(c, it.ptr, it.len, 1);
    case T_BIN: return c->base64 ? FJ_DECLINE : fj_put_text(c, it.ptr, it.len, 1);
    case T_ARRAY:
        TRY(fj_put_char(c, '['));
        for (uint32_t k = 0; k < it.len; k++) {
            if (k)
                TRY(fj_put_char(c, ','));
            TRY(fj_emit_value(c, depth + 1));
        }
        return fj_put_char(c, ']');
    case T_MAP: {
        size_t base = c->top;
        if (it.len > FJ_MAX_MAP_KEYS)
            return FJ_DECLINE;
        TRY(fj_put_char(c, '{'));
        for (uint32_t k = 0; k < it.len; k++) {
            struct item key;
            if (fj_read_item(c, &key) != 0)
                return FJ_DECLINE;
            TRY(fj_take_key(c, &key, base));
            TRY(put_key(c, &key, k == 0));
            TRY(fj_emit_value(c, depth + 1));
        }
        c->top = base;
        return fj_put_char(c, '}');
    }
    default: /* ext */
        return FJ_DECLINE;
    }
}
