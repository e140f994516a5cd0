/* fastjson_simd.h: the kernels that have SIMD versions (issue 18), and which
 * version runs: the widest this CPU has (fastjson_simd.c), or fewer when a
 * test asks. Every version gives the same bytes.
 *
 *   fastjson_simd.c      the level: AVX2 checked at run time, once
 *   fastjson_md5_many.c  MD5 of many messages at once, one a lane (fastjson_md5_lanes.h)
 *   fastjson_base64_avx2.c  base64 24 bytes a step, for fastjson_body.c
 */
#ifndef FASTJSON_SIMD_H
#define FASTJSON_SIMD_H

#include "fastjson.h"

#define FJ_SIMD_SCALAR 1    /* no vectors */
#define FJ_SIMD_PORTABLE 2  /* the vectors every such CPU has: SSE2 on x86_64, NEON on aarch64 */
#define FJ_SIMD_AVX2 3      /* x86_64 with AVX2 */

/* the level the kernels use: the widest this CPU runs, at most `limit` once a
 * test set it (0: no limit); returns the level then in use */
int fj_simd_limit(int limit);
/* the widest level this CPU runs */
int fj_simd_best(void);
FJ_INTERNAL int fj_simd_level(void);

/* the MD5 of each of n messages (fastjson_md5_many.c) */
FJ_INTERNAL void fj_md5_many(const uint8_t *const *msgs, const size_t *lens, size_t n, uint8_t (*digests)[16]);
/* the same for tests and benchmarks, at a given level, over messages at
 * offsets in one buffer: 0, or -1 when the CPU lacks the level or a message
 * lies outside the buffer */
int fj_md5_many_at(int level, const uint8_t *data, size_t data_size, const uint64_t *at, const uint64_t *lens,
                   size_t n, uint8_t *digests);

/* base64 of s's whole 24-byte steps while 28 bytes are left to read, at o:
 * returns the bytes done (a multiple of 24). x86_64 with AVX2 only (0 elsewhere) */
FJ_INTERNAL size_t fj_base64_avx2(const uint8_t *s, size_t n, uint8_t *o);

#endif
