/* fastjson_format_values.c: the values fj_format's plans write that are not
 * a record's value as it is: an OTLP/JSON AnyValue (as formats/otel.py's
 * any_value, then orjson), a value inside a JSON string (CSL's
 * AdditionalExtensions), a port's digits, and the event time in a schema's
 * form (as formats/values.py's TimeWriter, then orjson); and which IPv4
 * addresses and ports a signature leaves out. */
#include "fastjson.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int put_lit(struct ctx *c, const char *s)
{
    return fj_put(c, s, strlen(s));
}

static int put_digits(struct ctx *c, uint64_t v, int width)
{
    char buf[24];
    char *q = buf + sizeof buf;
    do { *--q = (char)('0' + v % 10); v /= 10; width--; } while (v || width > 0);
    return fj_put(c, q, (size_t)(buf + sizeof buf - q));
}

static int put_any_list(struct ctx *c, const struct item *it, int depth)
{
    TRY(put_lit(c, it->type == T_MAP ? "{\"kvlistValue\":{\"values\":[" : "{\"arrayValue\":{\"values\":["));
    size_t base = c->top;
    for (uint32_t k = 0; k < it->len; k++) {
        if (k)
            TRY(fj_put_char(c, ','));
        if (it->type == T_MAP) {
            struct item key;
            if (fj_read_item(c, &key) != 0)
                return FJ_DECLINE;
            TRY(fj_take_key(c, &key, base));
            TRY(put_lit(c, "{\"key\":"));
            TRY(fj_put_text(c, key.ptr, key.len, 1));
            TRY(put_lit(c, ",\"value\":"));
            TRY(fj_put_any(c, depth + 1));
            TRY(fj_put_char(c, '}'));
        } else {
            TRY(fj_put_any(c, depth + 1));
        }
    }
    c->top = base;
    return put_lit(c, "]}}");
}

/* One value as an OTLP/JSON AnyValue. */
int fj_put_any(struct ctx *c, int depth)
{
    struct item it;
    if (fj_read_item(c, &it) != 0 || depth > FJ_MAX_DEPTH)
        return FJ_DECLINE;
    switch (it.type) {
    case T_NIL: return put_lit(c, "{}");
    case T_BOOL: return put_lit(c, it.u ? "{\"boolValue\":true}" : "{\"boolValue\":false}");
    case T_UINT:
        TRY(put_lit(c, it.u > (uint64_t)INT64_MAX ? "{\"stringValue\":\"" : "{\"intValue\":\""));
        TRY(put_digits(c, it.u, 1));
        return put_lit(c, "\"}");
    case T_INT:
        TRY(put_lit(c, "{\"intValue\":\"-"));
        TRY(put_digits(c, (uint64_t)0 - (uint64_t)it.i, 1));
        return put_lit(c, "\"}");
    case T_FLOAT:
        if (isnan(it.f))
            return put_lit(c, "{\"doubleValue\":\"NaN\"}");
        if (isinf(it.f))
            return put_lit(c, it.f > 0 ? "{\"doubleValue\":\"Infinity\"}" : "{\"doubleValue\":\"-Infinity\"}");
        TRY(put_lit(c, "{\"doubleValue\":"));
        TRY(fj_put_double(c, it.f));
        return fj_put_char(c, '}');
    case T_STR:
        TRY(put_lit(c, "{\"stringValue\":"));
        TRY(fj_put_text(c, it.ptr, it.len, 1));
        return fj_put_char(c, '}');
    case T_ARRAY: case T_MAP:
        if (it.type == T_MAP && it.len > FJ_MAX_MAP_KEYS)
            return FJ_DECLINE;
        return put_any_list(c, &it, depth);
    default: /* bin (bytesValue, base64) and ext: the Python normalizer's */
        return FJ_DECLINE;
    }
}

/* The JSON written since start as the content of a JSON string: it has no
 * control characters, so only '"' and '\\' are escaped, in place from the end. */
static int escape_in_place(struct ctx *c, uint8_t *start)
{
    size_t extra = 0;
    for (const uint8_t *q = start; q < c->o; q++)
        extra += *q == '"' || *q == '\\';
    ROOM(c, extra);
    uint8_t *src = c->o, *dst = c->o + extra;
    c->o = dst;
    while (src > start) {
        uint8_t b = *--src;
        *--dst = b;
        if (b == '"' || b == '\\')
            *--dst = '\\';
    }
    return FJ_OK;
}

/* One value inside a JSON string: its JSON, escaped (schemas.csl's JSON of
 * an extension); extension: a string without ';', '=' or a newline is its
 * own text (schemas._extension_value). */
int fj_put_in_string(struct ctx *c, int extension)
{
    uint8_t *start = c->o;
    const uint8_t *at = c->p;
    struct item it;
    if (extension) {
        if (fj_read_item(c, &it) != 0)
            return FJ_DECLINE;
        if (it.type == T_STR && !memchr(it.ptr, ';', it.len) && !memchr(it.ptr, '=', it.len) &&
            !memchr(it.ptr, '\n', it.len)) {
            TRY(fj_put_text(c, it.ptr, it.len, 1));
            memmove(start, start + 1, (size_t)(c->o - start) - 2); /* the text without its quotes */
            c->o -= 2;
            return FJ_OK;
        }
        c->p = at;
    }
    TRY(fj_emit_value(c, 1));
    return escape_in_place(c, start);
}

/* A port's digits (a string fj_format's signature found to be one) as a
 * number, or as an OTLP intValue (Python reads it as an int). */
int fj_put_digits(struct ctx *c, int as_any)
{
    struct item it;
    if (fj_read_item(c, &it) != 0 || it.type != T_STR)
        return FJ_FMT_PYTHON;
    if (as_any)
        TRY(put_lit(c, "{\"intValue\":\""));
    TRY(fj_put(c, it.ptr, it.len));
    return as_any ? put_lit(c, "\"}") : FJ_OK;
}

/* A dotted quad as Python's ipaddress writes it back: four numbers 0-255, no
 * leading zeros, nothing else (formats/plans.py's IPV4 is the same rule). */
static int canonical_ipv4(const uint8_t *s, uint32_t n)
{
    uint32_t parts = 0, k = 0;
    while (k < n && parts < 4) {
        uint32_t start = k, value = 0;
        while (k < n && k - start < 3 && s[k] >= '0' && s[k] <= '9')
            value = value * 10 + (uint32_t)(s[k++] - '0');
        if (k == start || value > 255 || (k - start > 1 && s[start] == '0'))
            return 0;
        parts++;
        if (k < n && parts < 4) {
            if (s[k] != '.')
                return 0;
            k++;
        }
    }
    return parts == 4 && k == n;
}

/* A port as Python's int() reads it back to the same text: 1-5 digits, no leading zero, at most 65535. */
static int port_text(const uint8_t *s, uint32_t n)
{
    uint32_t value = 0;
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return 0;
    for (uint32_t k = 0; k < n; k++) {
        if (s[k] < '0' || s[k] > '9')
            return 0;
        value = value * 10 + (uint32_t)(s[k] - '0');
    }
    return value <= 65535;
}

/* A value's kind when its name is an IP's or a port's and it holds one: then not keyed. */
int fj_fmt_kind_named(int flags, int kind, const struct item *it)
{
    if ((flags & FJ_FMT_IP) && kind == FJ_KIND_STR && canonical_ipv4(it->ptr, it->len))
        return FJ_KIND_IPV4; /* every such address is written as it is */
    if ((flags & FJ_FMT_PORT) && kind == FJ_KIND_UINT && it->u <= 65535)
        return FJ_KIND_PORT_INT;
    if ((flags & FJ_FMT_PORT) && kind == FJ_KIND_STR && port_text(it->ptr, it->len))
        return FJ_KIND_PORT_TEXT;
    return kind;
}

/* Days since 1970-01-01 -> year, month (1-12), day (proleptic Gregorian). */
static void civil(int64_t days, int64_t *year, unsigned *month, unsigned *day)
{
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    unsigned doe = (unsigned)(days - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *day = doy - (153 * mp + 2) / 5 + 1;
    *month = mp < 10 ? mp + 3 : mp - 9;
    *year = (int64_t)yoe + era * 400 + (*month <= 2);
}

/* "%Y-%m-%dT%H:%M:%S" (iso) or "Mon DD YYYY HH:MM:SS" (leef), unquoted. */
static int put_clock(struct ctx *c, uint64_t second, int leef)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    int64_t year;
    unsigned month, day, in_day = (unsigned)(second % 86400);
    civil((int64_t)(second / 86400), &year, &month, &day);
    if (leef) {
        TRY(fj_put(c, months + 3 * (month - 1), 3));
        TRY(fj_put_char(c, ' '));
        TRY(put_digits(c, day, 2));
        TRY(fj_put_char(c, ' '));
        TRY(put_digits(c, (uint64_t)year, 4));
        TRY(fj_put_char(c, ' '));
    } else {
        TRY(put_digits(c, (uint64_t)year, 4));
        TRY(fj_put_char(c, '-'));
        TRY(put_digits(c, month, 2));
        TRY(fj_put_char(c, '-'));
        TRY(put_digits(c, day, 2));
        TRY(fj_put_char(c, 'T'));
    }
    TRY(put_digits(c, in_day / 3600, 2));
    TRY(fj_put_char(c, ':'));
    TRY(put_digits(c, in_day / 60 % 60, 2));
    TRY(fj_put_char(c, ':'));
    return put_digits(c, in_day % 60, 2);
}

/* round(ns / 1e9, 6) as Python computes it: the quotient correctly rounded
 * (strtod of its exact decimal), then rounded half-even to 6 decimals. */
static int put_epoch_seconds(struct ctx *c, uint64_t ns)
{
    char text[48];
    snprintf(text, sizeof text, "%llu.%09llu", (unsigned long long)(ns / 1000000000ULL),
             (unsigned long long)(ns % 1000000000ULL));
    double quotient = strtod(text, NULL);
    snprintf(text, sizeof text, "%.6f", quotient);
    return fj_put_double(c, strtod(text, NULL));
}

/* The event time (ns since the epoch) in a schema's form (FJ_TIME_*). */
int fj_put_time(struct ctx *c, int form, uint64_t ns)
{
    uint64_t second = ns / 1000000000ULL, fraction = ns % 1000000000ULL;
    switch (form) {
    case FJ_TIME_EPOCH_MS: return put_digits(c, ns / 1000000ULL, 1);
    case FJ_TIME_EPOCH_S: return put_epoch_seconds(c, ns);
    case FJ_TIME_EPOCH_NS:
        TRY(fj_put_char(c, '"'));
        TRY(put_digits(c, ns, 1));
        return fj_put_char(c, '"');
    case FJ_TIME_ISO_MS: case FJ_TIME_ISO_US: case FJ_TIME_LEEF:
        TRY(fj_put_char(c, '"'));
        TRY(put_clock(c, second, form == FJ_TIME_LEEF));
        TRY(fj_put_char(c, '.'));
        if (form == FJ_TIME_ISO_US) {
            TRY(put_digits(c, fraction / 1000, 6));
            return put_lit(c, "Z\"");
        }
        TRY(put_digits(c, fraction / 1000000, 3));
        return put_lit(c, form == FJ_TIME_LEEF ? " UTC\"" : "Z\"");
    default:
        return FJ_FMT_PYTHON;
    }
}
