/* fastjson_answer.c: how many entries of a PutRecords answer failed, read
 * without a Python object per entry (delivery/answer_scan.py; its Python
 * reference reads the answer with orjson). A strict scan of the whole answer
 * by RFC 8259's grammar, strings' UTF-8 checked as orjson does; it finds the
 * top-level "Records" array, checks that it holds exactly `count` objects
 * and counts those whose "ErrorCode" member is present and not null.
 *
 * Whatever orjson might read otherwise declines (-1, as invalid JSON does:
 * Python then runs the reference): a "Records" twice at the top or an
 * "ErrorCode" twice in a record (orjson keeps the last), a key with a
 * backslash escape at those two levels (it may spell either name), nesting
 * deeper than ANSWER_MAX_DEPTH, a \u escape of a surrogate, a number with an
 * exponent or longer than NUMBER_MAX (orjson refuses those that are infinite
 * as doubles). No recursion: nested values are skipped with a stack of the
 * containers open. Every read is checked against the end. */
#include "fastjson.h"
#include "fastjson_answer.h"

#define ANSWER_MAX_DEPTH 64
#define NUMBER_MAX 300  /* under 10**300: finite as a double */

struct scan { const uint8_t *p, *end; };

static void ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* the next byte after white space, -1 at the end */
static int next(struct scan *s)
{
    ws(s);
    return s->p < s->end ? *s->p : -1;
}

static int take(struct scan *s, uint8_t c)
{
    if (next(s) != c)
        return 0;
    s->p++;
    return 1;
}

/* A \u escape's 4 hex digits, not a surrogate's (D800-DFFF: declined) */
static int unicode_escape(const uint8_t *p)
{
    for (int i = 0; i < 4; i++)
        if (!memchr("0123456789abcdefABCDEF", p[i], 22))
            return 0;
    return (p[0] | 0x20) != 'd' || !memchr("89abcdefABCDEF", p[1], 14);
}

/* The bytes a string's scan passes over without a second look: printable
 * ASCII but '"' and '\\' (an answer's strings are mostly these) */
static uint8_t PLAIN[256];

/* when the module is loaded, before any thread can scan */
__attribute__((constructor)) static void make_plain(void)
{
    for (int c = 0x20; c < 0x80; c++)
        PLAIN[c] = c != '"' && c != '\\';
}

/* A string at s->p: its raw text between the quotes, whether it holds an
 * escape. 0: not one orjson reads (a control character, a bad escape,
 * invalid UTF-8, the end) or a surrogate escape. */
static int string(struct scan *s, const uint8_t **text, size_t *len, int *escaped)
{
    int high = 0;
    if (next(s) != '"')
        return 0;
    /* in locals: a store through a byte pointer could alias s->p, so the
     * compiler would reload it every byte */
    const uint8_t *start = s->p + 1, *p = start, *end = s->end;
    *escaped = 0;
    while (p < end) {
        if (PLAIN[*p]) {
            p++;
            continue;
        }
        uint8_t c = *p;
        if (c == '"') {
            *text = start;
            *len = (size_t)(p - start);
            s->p = p + 1;
            /* escapes are ASCII: the raw text is UTF-8 exactly when the string's bytes are */
            return !high || fj_utf8_valid(start, *len);
        }
        if (c < 0x20)
            return 0;
        high |= c >= 0x80;
        if (c != '\\') {
            p++;
            continue;
        }
        *escaped = 1;
        if (end - p < 2)
            return 0;
        c = p[1];
        if (c == 'u') {
            if (end - p < 6 || !unicode_escape(p + 2))
                return 0;
            p += 6;
        } else if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't') {
            p += 2;
        } else {
            return 0;
        }
    }
    return 0;
}

static int digits(struct scan *s)
{
    const uint8_t *start = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > start;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?, no exponent, at most NUMBER_MAX bytes */
static int number(struct scan *s)
{
    const uint8_t *start = s->p;
    if (*s->p == '-')
        s->p++;
    if (s->p < s->end && *s->p == '0')
        s->p++;
    else if (s->p >= s->end || *s->p < '1' || *s->p > '9' || !digits(s))
        return 0;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!digits(s))
            return 0;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E'))
        return 0;
    return s->p - start <= NUMBER_MAX;
}

static int word(struct scan *s, const char *w, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0)
        return 0;
    s->p += n;
    return 1;
}

/* a string, number or literal at s->p (after white space) */
static int scalar(struct scan *s)
{
    const uint8_t *text;
    size_t len;
    int escaped;
    switch (next(s)) {
    case '"': return string(s, &text, &len, &escaped);
    case 't': return word(s, "true", 4);
    case 'f': return word(s, "false", 5);
    case 'n': return word(s, "null", 4);
    case '-': case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': case '8': case '9':
        return number(s);
    default: return 0;
    }
}

/* a member's key and its colon, any key */
static int member_key(struct scan *s)
{
    const uint8_t *text;
    size_t len;
    int escaped;
    return string(s, &text, &len, &escaped) && take(s, ':');
}

/* One value of any kind, with `depth` containers open around it. */
static int value(struct scan *s, int depth)
{
    uint8_t closing[ANSWER_MAX_DEPTH];
    int top = 0;
    for (;;) {
        int c = next(s);
        if (c == '{' || c == '[') {
            if (depth + top >= ANSWER_MAX_DEPTH)
                return 0;
            closing[top++] = c == '{' ? '}' : ']';
            s->p++;
            if (next(s) == closing[top - 1]) {  /* empty */
                s->p++;
                top--;
            } else {
                if (c == '{' && !member_key(s))
                    return 0;
                continue;  /* its first value */
            }
        } else if (!scalar(s)) {
            return 0;
        }
        for (;;) {  /* a value ended: the next member or element, or its container's end */
            if (top == 0)
                return 1;
            c = next(s);
            if (c == ',') {
                s->p++;
                if (closing[top - 1] == '}' && !member_key(s))
                    return 0;
                break;
            }
            if (c != closing[top - 1])
                return 0;
            s->p++;
            top--;
        }
    }
}

#define IS(key, len, name) ((len) == sizeof(name) - 1 && memcmp((key), (name), (len)) == 0)

/* The next member's key and colon (keys with an escape declined), or 0
 * with *closed set at the object's end: `first` for its first member. */
static int next_member(struct scan *s, int first, const uint8_t **key, size_t *len, int *closed)
{
    int escaped;
    *closed = 0;
    if (first ? next(s) == '}' : !take(s, ',')) {
        *closed = take(s, '}');
        return 0;
    }
    return string(s, key, len, &escaped) && !escaped && take(s, ':');
}

/* A record (at its '{'): 1 when its ErrorCode is present and not null, -1
 * to decline */
static int record(struct scan *s)
{
    int seen = 0, failed = 0, closed;
    const uint8_t *key;
    size_t len;
    s->p++;
    for (int first = 1; next_member(s, first, &key, &len, &closed); first = 0) {
        if (IS(key, len, "ErrorCode")) {
            if (seen++)
                return -1;
            ws(s);  /* null, or a value to count; value() reads it either way */
            failed = (size_t)(s->end - s->p) < 4 || memcmp(s->p, "null", 4) != 0;
        }
        if (!value(s, 3))  /* the answer, Records, this record */
            return -1;
    }
    return closed ? failed : -1;
}

/* Records (at s->p after its colon): its failed entries when it is an
 * array of exactly `count` objects, else -1 */
static int64_t records(struct scan *s, size_t count)
{
    size_t n = 0;
    int64_t failed = 0;
    if (!take(s, '['))
        return -1;
    if (take(s, ']'))
        return count == 0 ? 0 : -1;
    do {
        if (next(s) != '{' || n == count)  /* not an object, or one too many */
            return -1;
        size_t usual = fj_usual_record(s->p, s->end);  /* the usual one, in one pass: acknowledged */
        int one = usual ? (s->p += usual, 0) : record(s);
        if (one < 0)
            return -1;
        failed += one;
        n++;
    } while (take(s, ','));
    return take(s, ']') && n == count ? failed : -1;
}

int64_t fj_failed_entries(const uint8_t *data, size_t size, size_t count)
{
    if (size == 0)  /* data may be NULL */
        return -1;
    struct scan s = { data, data + size };
    int64_t failed = -1;  /* no Records yet */
    int closed;
    const uint8_t *key;
    size_t len;
    if (!take(&s, '{'))
        return -1;
    for (int first = 1; next_member(&s, first, &key, &len, &closed); first = 0) {
        if (IS(key, len, "Records")) {
            if (failed >= 0)  /* a second one */
                return -1;
            failed = records(&s, count);
            if (failed < 0)
                return -1;
        } else if (!value(&s, 1)) {
            return -1;
        }
    }
    ws(&s);
    return closed && s.p == s.end ? failed : -1;
}
