/* fastjson_md5_many.c: MD5 of many messages at once (KPL's aggregates of one
 * pack, fastjson_kpl_write.c): MD5 is serial within a message, so the lanes
 * of a vector each hash their own (fastjson_md5_lanes.h). Two builds of it:
 * 8 lanes with AVX2, chosen at run time, and one for any CPU. */
#include "fastjson_simd.h"
#include "fastjson_md5.h"

#include <stdlib.h>

/* any CPU: 8 lanes as two vectors of the baseline (SSE2, NEON), two chains
 * of operations the CPU runs side by side */
#define LANES 8
#define LANES_VEC md5_vec_portable
#define LANES_FN md5_lanes_portable
#define LANES_TARGET
#include "fastjson_md5_lanes.h"
#undef LANES
#undef LANES_VEC
#undef LANES_FN
#undef LANES_TARGET

#if defined(__x86_64__) || defined(__i386__)
#define LANES 16
#define LANES_VEC md5_vec_avx2
#define LANES_FN md5_lanes_avx2
#define LANES_TARGET __attribute__((target("avx2")))
#include "fastjson_md5_lanes.h"
#undef LANES
#undef LANES_VEC
#undef LANES_FN
#undef LANES_TARGET
#endif

static void md5_many_level(int level, const uint8_t *const *msgs, const size_t *lens, size_t n,
                           uint8_t (*digests)[16])
{
#if defined(__x86_64__) || defined(__i386__)
    if (level >= FJ_SIMD_AVX2) {
        md5_lanes_avx2(msgs, lens, n, digests);
        return;
    }
#endif
    if (level >= FJ_SIMD_PORTABLE) {
        md5_lanes_portable(msgs, lens, n, digests);
        return;
    }
    for (size_t i = 0; i < n; i++)
        fj_md5(msgs[i], lens[i], digests[i]);
}

FJ_INTERNAL void fj_md5_many(const uint8_t *const *msgs, const size_t *lens, size_t n, uint8_t (*digests)[16])
{
    md5_many_level(fj_simd_level(), msgs, lens, n, digests);
}

int fj_md5_many_at(int level, const uint8_t *data, size_t data_size, const uint64_t *at, const uint64_t *lens,
                   size_t n, uint8_t *digests)
{
    if (level < FJ_SIMD_SCALAR || level > fj_simd_best())
        return -1;
    const uint8_t **msgs = malloc((n ? n : 1) * sizeof *msgs);
    size_t *sizes = malloc((n ? n : 1) * sizeof *sizes);
    int rc = msgs && sizes ? 0 : -1;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (at[i] > data_size || lens[i] > data_size - at[i])
            rc = -1;
        msgs[i] = data ? data + at[i] : data;
        sizes[i] = (size_t)lens[i];
    }
    if (rc == 0)
        md5_many_level(level, msgs, sizes, n, (uint8_t (*)[16])digests);
    free(msgs);
    free(sizes);
    return rc;
}
