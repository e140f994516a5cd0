/* fastjson_frames.h: fastjson_frames.c, `compression zstd` over the fast
 * path's EntryTable (issue 18), for pipeline/zstd_frames.py. One frame per
 * record, as compress() makes it, with no Python step per record: fj_frames
 * calls the codec's own one-shot function (libzstd's ZSTD_compressCCtx, its
 * address taken from python-zstandard's cffi module, so the library and the
 * bytes are python-zstandard's) once per record, in order.
 * Record i is data[at[i] .. at[i] + len[i]); its frame goes to out at `used`,
 * at[i], len[i] are rewritten to the frame's span and sizes[i] (record +
 * key) to the frame's + key. cap must hold every frame at the codec's
 * bound (fj_frames_cap). FJ_OK with *used and *longest; FJ_DECLINE (the
 * columns partly rewritten: the caller drops them) when a record lies
 * outside data or is longer than its size, a frame is past 4 GiB, or the
 * codec reports an error.
 * Included by fastjson.h's users through build.py. */
#ifndef FASTJSON_FRAMES_H
#define FASTJSON_FRAMES_H

#include <stddef.h>
#include <stdint.h>

typedef size_t (*fj_frame_fn)(void *ctx, void *dst, size_t cap, const void *src, size_t n, int level);
typedef unsigned (*fj_frame_error_fn)(size_t code);

struct fj_framer {
    void *compress;  /* an fj_frame_fn */
    void *is_error;  /* an fj_frame_error_fn */
    void *ctx;       /* the codec's context, one per thread */
    int level;
};

size_t fj_frames_cap(const uint32_t *len, size_t n);
int fj_frames(const struct fj_framer *framer, const uint8_t *data, size_t data_size, uint32_t *at, uint32_t *len,
              uint32_t *sizes, size_t n, uint8_t *out, size_t cap, size_t *used, uint32_t *longest);

#endif
