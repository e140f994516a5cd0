/* `make fuzz`: libFuzzer with AddressSanitizer and UBSan on the PutRecords
 * answer's scan (csrc/fastjson_answer.c). An input is a count byte (its low
 * 5 bits: the request's entries) and the answer's bytes, copied into a
 * buffer of exactly their size, so ASan sees any read past its end. Checks,
 * besides no crash, no leak and no recursion: the answer is -1 or at most
 * the count; and when the scan counts, the count is the only one it accepts
 * (one more or fewer: -1), white space after the answer changes nothing,
 * and the answer cut short by a byte (past its trailing white space) or
 * followed by another byte is refused (a JSON object ends with its '}');
 * and with a space after every '{' that opens a "S... key (which no usual
 * record then is: fastjson_answer_usual.c's one-pass match is skipped and the
 * general scan reads every record) the answer is the same. tests/delivery/test_answer_scan.py
 * holds the scan to orjson on the same kinds of inputs. */
#include "../../csrc/fastjson.h"

#include <assert.h>
#include <stdlib.h>

static int64_t scan(const uint8_t *src, size_t n, const char *tail, size_t tail_n, size_t count)
{
    uint8_t *copy = malloc(n + tail_n ? n + tail_n : 1);
    if (n)
        memcpy(copy, src, n);
    if (tail_n)
        memcpy(copy + n, tail, tail_n);
    int64_t found = fj_failed_entries(copy, n + tail_n, count);
    free(copy);
    return found;
}

/* the scan of src with a space after each {"S */
static int64_t scan_spaced(const uint8_t *src, size_t n, size_t count)
{
    uint8_t *spaced = malloc(2 * n + 1);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        spaced[m++] = src[i];
        if (src[i] == '{' && i + 2 < n && src[i + 1] == '"' && src[i + 2] == 'S')
            spaced[m++] = ' ';
    }
    int64_t found = scan(spaced, m, "", 0, count);
    free(spaced);
    return found;
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t n)
{
    if (n == 0)
        return 0;
    size_t count = input[0] & 31;
    const uint8_t *data = input + 1;
    size_t size = n - 1;
    int64_t found = scan(data, size, "", 0, count);
    assert(found >= -1 && found <= (int64_t)count);
    assert(scan_spaced(data, size, count) == found);
    if (found < 0)
        return 0;
    assert(scan(data, size, "", 0, count + 1) == -1);
    if (count)
        assert(scan(data, size, "", 0, count - 1) == -1);
    assert(scan(data, size, " \r\n\t", 4, count) == found);
    size_t end = size;  /* the answer without the white space after it */
    while (data[end - 1] == ' ' || data[end - 1] == '\t' || data[end - 1] == '\n' || data[end - 1] == '\r')
        end--;
    assert(scan(data, end - 1, "", 0, count) == -1);
    assert(scan(data, size, "}", 1, count) == -1);
    assert(scan(data, size, "0", 1, count) == -1);
    return 0;
}
