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

/* For plain C loops whose arithmetic is the same on every path (no
 * reassociation: -ffp-contract=off, fused multiply-adds written as fmaf()):
 * GCC compiles an x86-64-v3 (AVX2+FMA) clone beside the default one and picks
 * at load time. fmaf() is one instruction in the clone and a correctly
 * rounded library call in the default: the same bits either way. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define MM_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define MM_SIMD_CLONES
#endif

#endif
