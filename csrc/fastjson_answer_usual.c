/* fastjson_answer_usual.c: the record Kinesis answers for each entry it
 * took, {"SequenceNumber":"...","ShardId":"..."}, matched as bytes in one
 * pass. fastjson_answer.c's scan reads the same bytes member by member, to
 * the same end (no ErrorCode: acknowledged); matched first, the usual record
 * skips those steps, and anything else (white space, other members or
 * order, an escape, a byte outside printable ASCII) is left to it. */
#include "fastjson_answer.h"
#include "fastjson_scan.h"

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
    /* the values: fj_json_plain_run's bytes, which the general scan reads as they are */
    if (!(p = literal(p + fj_json_plain_run(p, (size_t)(end - p)), end, middle, sizeof middle - 1)))
        return 0;
    if (!(p = literal(p + fj_json_plain_run(p, (size_t)(end - p)), end, tail, sizeof tail - 1)))
        return 0;
    return (size_t)(p - start);
}
