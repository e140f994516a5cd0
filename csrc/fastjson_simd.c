/* fastjson_simd.c: which level of the SIMD kernels runs (fastjson_simd.h).
 * The CPU is asked once; a test may lower the level to force a path. */
#include "fastjson_simd.h"

static int best_level;  /* 0 until asked */
static int limit_level; /* 0: no limit */

int fj_simd_best(void)
{
    int best = __atomic_load_n(&best_level, __ATOMIC_RELAXED);
    if (best)
        return best;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    best = __builtin_cpu_supports("avx2") ? FJ_SIMD_AVX2 : FJ_SIMD_PORTABLE;
#else
    best = FJ_SIMD_PORTABLE;
#endif
    __atomic_store_n(&best_level, best, __ATOMIC_RELAXED);
    return best;
}

FJ_INTERNAL int fj_simd_level(void)
{
    int best = fj_simd_best(), limit = __atomic_load_n(&limit_level, __ATOMIC_RELAXED);
    return limit && limit < best ? limit : best;
}

int fj_simd_limit(int limit)
{
    __atomic_store_n(&limit_level, limit > 0 ? limit : 0, __ATOMIC_RELAXED);
    return fj_simd_level();
}
