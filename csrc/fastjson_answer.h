/* fastjson_answer.h: the usual record of a PutRecords answer, acknowledged,
 * read in one pass (fastjson_answer_usual.c) for fastjson_answer.c's scan. */
#ifndef FASTJSON_ANSWER_H
#define FASTJSON_ANSWER_H

#include <stddef.h>
#include <stdint.h>

/* The length of the record at p when it is exactly
 * {"SequenceNumber":"...","ShardId":"..."} with only printable ASCII but '"'
 * and '\\' in the two values (what Kinesis answers for a record it took);
 * 0 for any other, which the general scan reads. */
size_t fj_usual_record(const uint8_t *p, const uint8_t *end);

#endif
