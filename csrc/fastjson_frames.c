/* fastjson_frames.c: one compressed frame per record over a table's columns
 * (fastjson_frames.h). */
#include "fastjson_frames.h"

#include "fastjson.h"

/* libzstd's ZSTD_COMPRESSBOUND: the most a frame of n bytes can take */
static size_t frame_bound(size_t n)
{
    const size_t small = (size_t)128 << 10;
    return n + (n >> 8) + (n < small ? (small - n) >> 11 : 0);
}

size_t fj_frames_cap(const uint32_t *len, size_t n)
{
    size_t cap = 0;
    for (size_t i = 0; i < n; i++)
        cap += frame_bound(len[i]);
    return cap;
}

int fj_frames(const struct fj_framer *framer, const uint8_t *data, size_t data_size, uint32_t *at, uint32_t *len,
              uint32_t *sizes, size_t n, uint8_t *out, size_t cap, size_t *used, uint32_t *longest)
{
    fj_frame_fn compress = (fj_frame_fn)framer->compress;
    fj_frame_error_fn is_error = (fj_frame_error_fn)framer->is_error;
    size_t written = 0;
    uint32_t most = 0;
    for (size_t i = 0; i < n; i++) {
        if (at[i] > data_size || len[i] > data_size - at[i] || frame_bound(len[i]) > cap - written
            || sizes[i] < len[i])
            return FJ_DECLINE;
        size_t frame = compress(framer->ctx, out + written, cap - written, data + at[i], len[i], framer->level);
        if (is_error(frame) || frame > UINT32_MAX || written > UINT32_MAX)
            return FJ_DECLINE;
        at[i] = (uint32_t)written;
        sizes[i] = sizes[i] - len[i] + (uint32_t)frame;  /* the key's bytes stay */
        len[i] = (uint32_t)frame;
        most = len[i] > most ? len[i] : most;
        written += frame;
    }
    *used = written;
    *longest = most;
    return FJ_OK;
}
