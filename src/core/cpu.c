/* cpu.c — run-time SIMD capability (see cpu.h). */
#include "core/cpu.h"

#include <stdlib.h>
#include <string.h>

static int query(int which)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (which == 512) {
        const char *off = getenv("MELODIC_NO_AVX512");
        return __builtin_cpu_supports("avx512f") && !(off && *off && strcmp(off, "0"));
    }
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    (void)which;
    return 0;
#endif
}

int mm_cpu_avx512(void)
{
    static int cached = -1;   /* benign race: every thread stores the same value */
    int c = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (c < 0) __atomic_store_n(&cached, c = query(512), __ATOMIC_RELAXED);
    return c;
}

int mm_cpu_avx2_fma(void)
{
    static int cached = -1;
    int c = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (c < 0) __atomic_store_n(&cached, c = query(2), __ATOMIC_RELAXED);
    return c;
}
