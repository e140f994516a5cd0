/* `make fuzz`: libFuzzer with AddressSanitizer and UBSan on csrc/fastjson_frames.c
 * (fj_frames: one compressed frame per record over a table's columns).
 * The codec is a stand-in with libzstd's contract (never past `cap`, an
 * error as a size near SIZE_MAX, at most ZSTD_COMPRESSBOUND bytes): a frame
 * is a length byte, the record's bytes xor 0x5a, then `pad` bytes up to the
 * bound, and record `fail_at` fails; so fj_frames' own part is what is
 * fuzzed: bounds, offsets, sizes, the output's room.
 * An input: count (6 bits), pad, fail_at, a cut of the output's room; then 4
 * bytes per record (a shift of its offset: from 250, outside the data; its
 * length, 2 bytes; a size short of it when 255), the data after that.
 * Every column and buffer is a copy of exactly its size. Checks against an
 * oracle written apart: FJ_DECLINE exactly when a record is outside the data,
 * a size is short or the codec fails (with the full room); else the frames,
 * one after another, the columns rewritten to them, sizes kept apart from
 * the frames by the key's bytes, the longest. With less room: no write past
 * it, and a success is still exact. */
#include "../../csrc/fastjson.h"
#include "../../csrc/fastjson_frames.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RECORDS 63

struct fake { size_t pad, fail_at, calls; };

static size_t bound(size_t n)
{
    const size_t small = (size_t)128 << 10;
    return n + (n >> 8) + (n < small ? (small - n) >> 11 : 0);
}

static size_t fake_frame_size(const struct fake *f, size_t n)
{
    size_t extra = bound(n) - n - 1;  /* bound(n) > n for the lengths here (< 64 KiB) */
    return 1 + n + (f->pad < extra ? f->pad : extra);
}

static size_t fake_compress(void *ctx, void *dst, size_t cap, const void *src, size_t n, int level)
{
    struct fake *f = ctx;
    assert(level == 3);
    if (f->calls++ == f->fail_at)
        return (size_t)-2;
    size_t size = fake_frame_size(f, n);
    if (size > cap)
        return (size_t)-3;
    uint8_t *out = dst;
    out[0] = (uint8_t)n;
    for (size_t i = 0; i < n; i++)
        out[1 + i] = ((const uint8_t *)src)[i] ^ 0x5a;
    memset(out + 1 + n, 0xee, size - 1 - n);
    return size;
}

static unsigned fake_is_error(size_t code) { return code > (size_t)-100; }

static void *copy(const void *src, size_t n)
{
    void *out = malloc(n ? n : 1);
    if (n)
        memcpy(out, src, n);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t n)
{
    if (n < 4)
        return 0;
    size_t count = input[0] & MAX_RECORDS;
    struct fake fake = { input[1], input[2], 0 };
    size_t cut = input[3];
    input += 4, n -= 4;
    if (n < 4 * count)
        return 0;
    const uint8_t *heads = input;
    uint8_t *data = copy(input + 4 * count, n - 4 * count);
    size_t size = n - 4 * count, next = 0;
    uint32_t at[MAX_RECORDS + 1], len[MAX_RECORDS + 1], sizes[MAX_RECORDS + 1];
    int outside = 0;
    for (size_t i = 0; i < count; i++) {
        const uint8_t *h = heads + 4 * i;
        len[i] = (uint32_t)(h[1] | h[2] << 8) % 2048;
        at[i] = (uint32_t)(h[0] >= 250 ? size + h[0] - 250 : next + h[0] % 4);
        sizes[i] = h[3] == 255 ? (len[i] ? len[i] - 1 : 0) : len[i] + h[3];
        outside |= at[i] > size || len[i] > size - at[i] || sizes[i] < len[i];
        if (!outside)
            next = at[i] + len[i];
    }
    uint32_t *at_c = copy(at, 4 * count), *len_c = copy(len, 4 * count), *sizes_c = copy(sizes, 4 * count);
    size_t full = fj_frames_cap(len, count), room = cut > full ? 0 : full - cut;
    uint8_t *out = malloc(room ? room : 1);
    struct fj_framer framer = { (void *)fake_compress, (void *)fake_is_error, &fake, 3 };
    size_t used = 0;
    uint32_t longest = 0;
    int rc = fj_frames(&framer, data, size, at_c, len_c, sizes_c, count, out, room, &used, &longest);
    int fails = fake.fail_at < count;
    assert(rc == FJ_OK || rc == FJ_DECLINE);
    if (room == full)
        assert((rc == FJ_DECLINE) == (outside || fails));
    if (rc == FJ_OK) {
        size_t written = 0;
        uint32_t most = 0;
        struct fake again = { fake.pad, (size_t)-1, 0 };
        for (size_t i = 0; i < count; i++) {
            size_t frame = fake_frame_size(&again, len[i]);
            assert(at_c[i] == written && len_c[i] == frame);
            assert(sizes_c[i] == sizes[i] - len[i] + frame);
            assert(out[written] == (uint8_t)len[i]);
            for (size_t k = 0; k < len[i]; k++)
                assert(out[written + 1 + k] == (data[at[i] + k] ^ 0x5a));
            most = frame > most ? (uint32_t)frame : most;
            written += frame;
        }
        assert(used == written && used <= room && longest == most);
    }
    free(data), free(at_c), free(len_c), free(sizes_c), free(out);
    return 0;
}
