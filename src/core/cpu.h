/* cpu.h — which SIMD kernels this process may use, decided once at run time.
 *
 * The build targets plain x86-64 (no -march); kernels for wider vector units
 * carry target attributes and ask here before running. MELODIC_NO_AVX512
 * set to anything but "" or "0" hides AVX-512 (to test or force the
 * portable paths). Thread-safe: every thread computes the same answer. */
#ifndef MM_CORE_CPU_H
#define MM_CORE_CPU_H

/* 1 when AVX-512F may be used (CPU has it, MELODIC_NO_AVX512 unset), else 0. */
int mm_cpu_avx512(void);
/* 1 when the CPU has AVX2 and FMA (x86-64-v3), else 0. Not affected by the
 * environment. */
int mm_cpu_avx2_fma(void);

#endif
