/* fastjson_answer_usual.c: the record Kinesis answers for each entry it
 * took, {"SequenceNumber":"...","ShardId":"..."}, matched as bytes in one
 * pass. fastjson_answer.c's scan reads the same bytes member by member, to
 * the same end (no ErrorCode: acknowledged); matched first, the usual record
 * skips those steps, and anything else (white space, other members or
 * order, an escape, a byte outside printable ASCII) is left to it. */
#include "fastjson_answer.h"
#include "fastjson_scan.h"

/* printable ASCII but '"' and '\\': bytes a string carries as they are */
static int plain(uint8_t c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* past the plain bytes from p, eight a step while a word holds only those */
static const uint8_t *plain_run(const uint8_t *p, const uint8_t *end)
{
    while (end - p >= 8 && !fj_json_odd_bytes(fj_load8(p)))
        p += 8;
    while (p < end && plain(*p))
        p++;
    return p;
}

/* p past `text` (n bytes) when it is there, else NULL */
static const uint8_t *literal(const uint8_t *p, const uint8_t *end, const char *text, size_t n)
{
    return (size_t)(end - p) >= n && memcmp(p, text, n) == 0 ? p + n : NULL;
}

size_t fj_usual_record(const uint8_t *p, const uint8_t *end)
{
    static const char head[] = "{\"SequenceNumber\":\"", middle[] = "\",\"ShardId\":\"", tail[] = "\"}";
    const uint8_t *start = p;
    if (!(p = literal(p, end, head, sizeof head - 1)))
        return 0;
    if (!(p = literal(plain_run(p, end), end, middle, sizeof middle - 1)))
        return 0;
    if (!(p = literal(plain_run(p, end), end, tail, sizeof tail - 1)))
        return 0;
    return (size_t)(p - start);
}
