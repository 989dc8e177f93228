/* sgemm.c — packed float32 GEMM (see sgemm.h). Reference: the Goto/BLIS
 * loop structure (pack a K-block of B into 32-column panels, an M-block of A
 * into 12-row panels, then a register tile of 12 rows x 32 columns accumulated
 * over the K-block); a NoTrans A is read in place instead of packed, and a
 * small enough B is packed whole (see packed_gemm). Three micro-kernels
 * compute the same arithmetic: each element of a tile is one fused
 * multiply-add chain over the K-block from zero, then added to C. AVX-512
 * (16 lanes), AVX2+FMA (8 lanes) and a scalar one with fmaf() therefore give
 * bit-identical results, whatever the loop order or where A is read from;
 * which one runs is decided at run time (cpuid, MELODIC_NO_AVX512). Leaves
 * out multithreading (the callers split rows). */
#include "nn/sgemm.h"

#include "core/cpu.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <math.h>
#include <stdint.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_X86_KERNELS 1
#endif

#define MR 12
#define NR 32
#define KC MM_SGEMM_KC   /* fixed: it sets where the chains restart (the results' bits) */
#define MC 96
#define NC 1536
_Static_assert(MR >= 8 && MR % 4 == 0 && NR == 32, "pack_a's 8 + 4k row tiles and the AVX kernels' 2 x 16 columns");

/* C[0..mr, 0..nr) (+)= A (MR x kc) . Bp (kc x NR), A's element (i, k) at
 * A[i rs + k cs]: a packed panel (rs 1, cs MR) or the caller's matrix read
 * in place (all MR rows readable); Bp a packed panel. `add` keeps C's values. The contract every kernel keeps:
 * acc = fma(a_k, b_k, acc) for k = 0..kc-1 from acc = 0, then C = C + acc
 * (add) or C = acc — so where the operands are read from never changes a bit. */
typedef void (*ukernel_fn)(size_t kc, const float *A, size_t rs, size_t cs, const float *Bp, float *C, size_t ldc,
                           size_t mr, size_t nr, int add);

static void ukernel_scalar(size_t kc, const float *A, size_t rs, size_t cs, const float *Bp, float *C, size_t ldc,
                           size_t mr, size_t nr, int add)
{
    float acc[MR][NR];
    memset(acc, 0, sizeof acc);
    for (size_t k = 0; k < kc; k++, A += cs, Bp += NR)
        for (size_t i = 0; i < MR; i++)
            for (size_t j = 0; j < NR; j++) acc[i][j] = fmaf(A[i * rs], Bp[j], acc[i][j]);
    for (size_t i = 0; i < mr; i++)
        for (size_t j = 0; j < nr; j++) C[i * ldc + j] = add ? C[i * ldc + j] + acc[i][j] : acc[i][j];
}

#ifdef HAVE_X86_KERNELS
/* AVX2 + FMA: the MR x 32 tile as (MR / 4) x 2 sub-tiles of 4 rows x 16 columns
 * (8 accumulators), each the same chain per element as the other kernels. */
__attribute__((target("avx2,fma"))) static void ukernel_avx2(size_t kc, const float *A, size_t rs, size_t cs,
                                                             const float *Bp, float *C, size_t ldc, size_t mr,
                                                             size_t nr, int add)
{
    for (size_t i0 = 0; i0 < MR && i0 < mr; i0 += 4)
        for (size_t j0 = 0; j0 < NR && j0 < nr; j0 += 16) {
            __m256 c[4][2];
            for (int i = 0; i < 4; i++) c[i][0] = c[i][1] = _mm256_setzero_ps();
            const float *a = A + i0 * rs, *b = Bp + j0;
            for (size_t k = 0; k < kc; k++, a += cs, b += NR) {
                __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
                for (int i = 0; i < 4; i++) {
                    __m256 av = _mm256_broadcast_ss(a + i * rs);
                    c[i][0] = _mm256_fmadd_ps(av, b0, c[i][0]);
                    c[i][1] = _mm256_fmadd_ps(av, b1, c[i][1]);
                }
            }
            size_t rows = mr - i0 < 4 ? mr - i0 : 4, cols = nr - j0 < 16 ? nr - j0 : 16;
            for (size_t i = 0; i < rows; i++) {
                float *ci = C + (i0 + i) * ldc + j0;
                if (cols == 16) {
                    __m256 v0 = c[i][0], v1 = c[i][1];
                    if (add) { v0 = _mm256_add_ps(_mm256_loadu_ps(ci), v0); v1 = _mm256_add_ps(_mm256_loadu_ps(ci + 8), v1); }
                    _mm256_storeu_ps(ci, v0);
                    _mm256_storeu_ps(ci + 8, v1);
                } else {
                    float t[16];
                    _mm256_storeu_ps(t, c[i][0]);
                    _mm256_storeu_ps(t + 8, c[i][1]);
                    for (size_t j = 0; j < cols; j++) ci[j] = add ? ci[j] + t[j] : t[j];
                }
            }
        }
}

/* AVX-512: the 12 x 32 tile in 24 accumulators (2 vectors per row), B a
 * few rows ahead prefetched: with A's 12 rows held in L1 across the column
 * panels (see gemm_blocks), B streams from L2. A's rows are read through
 * three base pointers (rows 0, 4, 8) plus multiples of rs. */
__attribute__((target("avx512f"))) static void ukernel_avx512(size_t kc, const float *A, size_t rs, size_t cs,
                                                       const float *Bp, float *C, size_t ldc, size_t mr, size_t nr,
                                                       int add)
{
    __m512 acc[MR][2];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    const float *a0 = A, *a4 = A + 4 * rs, *a8 = A + 8 * rs;
    for (size_t k = 0; k < kc; k++, a0 += cs, a4 += cs, a8 += cs, Bp += NR) {
        __m512 b0 = _mm512_loadu_ps(Bp), b1 = _mm512_loadu_ps(Bp + 16);
        _mm_prefetch((const char *)(Bp + 16 * NR), _MM_HINT_T0);
        _mm_prefetch((const char *)(Bp + 16 * NR + 16), _MM_HINT_T0);
#pragma GCC unroll 12
        for (int i = 0; i < MR; i++) {
            const float *ai = (i < 4 ? a0 : i < 8 ? a4 : a8) + (size_t)(i % 4) * rs;
            __m512 a = _mm512_set1_ps(*ai);
            acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
        }
    }
    __mmask16 m0 = nr >= 16 ? 0xFFFF : (__mmask16)((1u << nr) - 1);
    __mmask16 m1 = nr >= 32 ? 0xFFFF : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
    for (size_t i = 0; i < mr; i++) {
        float *ci = C + i * ldc;
        __m512 v0 = acc[i][0], v1 = acc[i][1];
        if (add) {
            v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, ci), v0);
            v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, ci + 16), v1);
        }
        _mm512_mask_storeu_ps(ci, m0, v0);
        _mm512_mask_storeu_ps(ci + 16, m1, v1);
    }
}

/* dst[c*ldd + r] = src[r*lds + c] for an 8 x 8 tile (AVX unpack/shuffle/permute). */
__attribute__((target("avx2"))) static void tr8x8_avx(const float *src, size_t lds, float *dst, size_t ldd)
{
    __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + lds), r2 = _mm256_loadu_ps(src + 2 * lds);
    __m256 r3 = _mm256_loadu_ps(src + 3 * lds), r4 = _mm256_loadu_ps(src + 4 * lds);
    __m256 r5 = _mm256_loadu_ps(src + 5 * lds), r6 = _mm256_loadu_ps(src + 6 * lds);
    __m256 r7 = _mm256_loadu_ps(src + 7 * lds);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(dst + ldd, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(dst + 2 * ldd, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(dst + 3 * ldd, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(dst + 4 * ldd, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(dst + 5 * ldd, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(dst + 6 * ldd, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(dst + 7 * ldd, _mm256_permute2f128_ps(u3, u7, 0x31));
}


/* dst[c*ldd + r] = src[r*lds + c] for a 4 x 8 tile (rows r < 4, columns c < 8). */
__attribute__((target("avx2"))) static void tr4x8_avx(const float *src, size_t lds, float *dst, size_t ldd)
{
    __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + lds);
    __m256 r2 = _mm256_loadu_ps(src + 2 * lds), r3 = _mm256_loadu_ps(src + 3 * lds);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    _mm_storeu_ps(dst, _mm256_castps256_ps128(u0));
    _mm_storeu_ps(dst + ldd, _mm256_castps256_ps128(u1));
    _mm_storeu_ps(dst + 2 * ldd, _mm256_castps256_ps128(u2));
    _mm_storeu_ps(dst + 3 * ldd, _mm256_castps256_ps128(u3));
    _mm_storeu_ps(dst + 4 * ldd, _mm256_extractf128_ps(u0, 1));
    _mm_storeu_ps(dst + 5 * ldd, _mm256_extractf128_ps(u1, 1));
    _mm_storeu_ps(dst + 6 * ldd, _mm256_extractf128_ps(u2, 1));
    _mm_storeu_ps(dst + 7 * ldd, _mm256_extractf128_ps(u3, 1));
}
#endif

static int have_avx512 = -1, have_avx2 = -1;   /* set once by pick(), same value from any thread */

/* dst[c*ldd + r] = src[r*lds + c] for a rows x 8 tile, rows 4 or 8. */
static void tr_tile(size_t rows, const float *src, size_t lds, float *dst, size_t ldd)
{
#ifdef HAVE_X86_KERNELS
    if (have_avx2) {
        if (rows == 8) tr8x8_avx(src, lds, dst, ldd);
        else tr4x8_avx(src, lds, dst, ldd);
        return;
    }
#endif
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < 8; c++) dst[c * ldd + r] = src[r * lds + c];
}

/* Bp: the (kc x nc) block of op(B) at (pc, jc) as panels of NR columns,
 * each kc x NR, zero-padded past nc. */
static void pack_b(enum CBLAS_TRANSPOSE tb, const float *B, size_t ldb, size_t pc, size_t jc, size_t kc, size_t nc,
                   float *Bp)
{
    if (tb == CblasNoTrans && nc % NR == 0) {   /* whole panels: each row of B read once, in order */
        for (size_t k = 0; k < kc; k++) {
            const float *src = B + (pc + k) * ldb + jc;
            for (size_t jr = 0; jr < nc; jr += NR) memcpy(Bp + jr * kc + k * NR, src + jr, NR * sizeof *B);
        }
        return;
    }
    for (size_t jr = 0; jr < nc; jr += NR) {
        size_t nr = nc - jr < NR ? nc - jr : NR;
        float *dst = Bp + jr * kc;
        if (tb == CblasNoTrans) {
            if (nr == NR)   /* a constant size: inlined vector moves, not a rep movs per row */
                for (size_t k = 0; k < kc; k++) memcpy(dst + k * NR, B + (pc + k) * ldb + jc + jr, NR * sizeof *B);
            else
                for (size_t k = 0; k < kc; k++) {
                    const float *src = B + (pc + k) * ldb + jc + jr;
                    memcpy(dst + k * NR, src, nr * sizeof *src);
                    memset(dst + k * NR + nr, 0, (NR - nr) * sizeof *src);
                }
        } else {
            if (nr < NR) memset(dst, 0, kc * NR * sizeof *dst);
            size_t j8 = nr / 8 * 8, k8 = kc / 8 * 8;
            for (size_t j = 0; j < j8; j += 8)          /* 8 x 8 tiles, then the edges */
                for (size_t k = 0; k < k8; k += 8)
                    tr_tile(8, B + (jc + jr + j) * ldb + pc + k, ldb, dst + k * NR + j, NR);
            for (size_t j = 0; j < nr; j++) {
                const float *src = B + (jc + jr + j) * ldb + pc;
                for (size_t k = j < j8 ? k8 : 0; k < kc; k++) dst[k * NR + j] = src[k];
            }
        }
    }
}

/* Ap: the (mc x kc) block of op(A) at (ic, pc) as panels of MR rows, each
 * kc x MR, zero-padded past mc. */
static void pack_a(enum CBLAS_TRANSPOSE ta, const float *A, size_t lda, size_t ic, size_t pc, size_t mc, size_t kc,
                   float *Ap)
{
    for (size_t ir = 0; ir < mc; ir += MR) {
        size_t mr = mc - ir < MR ? mc - ir : MR;
        float *dst = Ap + ir * kc;
        if (mr < MR) memset(dst, 0, kc * MR * sizeof *dst);
        if (ta == CblasNoTrans) {
            /* 8 x 8 tiles, 4 x 8 tiles for rows 8..11, then the edges */
            size_t i8 = mr >= 8 ? 8 : 0, i4 = mr == MR ? MR : i8, k8 = kc / 8 * 8;
            for (size_t k = 0; k < k8; k += 8) {
                const float *src = A + (ic + ir) * lda + pc + k;
                if (i8) tr_tile(8, src, lda, dst + k * MR, MR);
                for (size_t i = i8; i < i4; i += 4) tr_tile(4, src + i * lda, lda, dst + k * MR + i, MR);
            }
            for (size_t i = 0; i < mr; i++) {
                const float *src = A + (ic + ir + i) * lda + pc;
                for (size_t k = i < i4 ? k8 : 0; k < kc; k++) dst[k * MR + i] = src[k];
            }
        } else if (mr == MR) {
            for (size_t k = 0; k < kc; k++) memcpy(dst + k * MR, A + (pc + k) * lda + ic + ir, MR * sizeof *A);
        } else {
            for (size_t k = 0; k < kc; k++) {
                const float *src = A + (pc + k) * lda + ic + ir;
                for (size_t i = 0; i < mr; i++) dst[k * MR + i] = src[i];
            }
        }
    }
}

/* The packing buffers (B block, then A block): one per thread, kept for the
 * thread's life and freed when it exits (a fresh 1.6 MB per call would be
 * mapped and faulted in every time). NULL when out of memory. */
static pthread_key_t pack_key;
static pthread_once_t pack_once = PTHREAD_ONCE_INIT;
static void pack_key_make(void) { pthread_key_create(&pack_key, free); }

static float *pack_buffers(void)
{
    pthread_once(&pack_once, pack_key_make);
    float *p = pthread_getspecific(pack_key);
    if (!p && (p = aligned_alloc(64, (size_t)KC * (NC + MC) * sizeof(float))) && pthread_setspecific(pack_key, p)) {
        free(p);
        p = NULL;
    }
    return p;
}

/* C = op(A) op(B) (+ C). Two loop orders, the same chains either way (each
 * element's K-blocks summed in order): when A is read in place (NoTrans) and
 * all of op(B) packs within BWHOLE floats, B is packed once and each block of
 * MC rows runs over all of K while its rows of C stay in L2; otherwise (the
 * Goto order) one K-block of B is packed at a time and a transposed A's
 * blocks are packed for it. A's whole 12-row panels are read in place when A
 * is NoTrans (rows at stride lda; a transposed A's 12 values per k would
 * straddle lines), the next panel's rows prefetched while the current one
 * runs, and the next C tile prefetched before each micro-kernel call. */
#define BWHOLE (256 * 1024)   /* 1 MB: L2 (2 MB here) holds it beside an MC block of C and A */
static int packed_gemm(ukernel_fn ukernel, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, size_t M, size_t N,
                       size_t K, const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                       size_t ldc)
{
    float *Bp = pack_buffers(), *Ap = Bp ? Bp + (size_t)KC * NC : NULL;
    if (!Bp) return -1;
    int direct = ta == CblasNoTrans;
    size_t Nr = (N + NR - 1) / NR * NR;   /* N with its padding to whole panels */
    int whole = direct && K * Nr <= BWHOLE;
    size_t ncmax = whole ? Nr : NC;
    for (size_t jc = 0; jc < N; jc += ncmax) {
        size_t nc = N - jc < ncmax ? N - jc : ncmax, ncr = (nc + NR - 1) / NR * NR;
        for (size_t pc0 = 0, pend; pc0 < K; pc0 = pend) {   /* K-blocks [pc0, pend) of B packed */
            pend = whole ? K : pc0 + KC < K ? pc0 + KC : K;
            for (size_t pc = pc0; pc < pend; pc += KC)
                pack_b(tb, B, ldb, pc, jc, K - pc < KC ? K - pc : KC, nc, Bp + (pc - pc0) * ncr);
            for (size_t ic = 0; ic < M; ic += MC) {
                size_t mc = M - ic < MC ? M - ic : MC;
                for (size_t pc = pc0; pc < pend; pc += KC) {
                    size_t kc = K - pc < KC ? K - pc : KC;
                    int add = pc > 0 || beta != 0;
                    const float *bp = Bp + (pc - pc0) * ncr;
                    if (!direct) pack_a(ta, A, lda, ic, pc, mc, kc, Ap);
                    for (size_t ir = 0; ir < mc; ir += MR) {   /* A's rows stay in L1, B panels stream */
                        size_t mr = mc - ir < MR ? mc - ir : MR, rs = 1, cs = MR;
                        const float *ap = Ap + ir * kc, *next = NULL;
                        if (direct && mr == MR) {
                            ap = A + (ic + ir) * lda + pc;
                            rs = lda;
                            cs = 1;
                            if (ir + 2 * MR <= mc) next = ap + MR * lda;
                        } else if (direct) {   /* a last partial panel: packed, zero rows below M */
                            pack_a(ta, A, lda, ic + ir, pc, mr, kc, Ap);
                            ap = Ap;
                        }
                        /* the next panel's lines spread over this panel's column calls */
                        size_t lines = (kc + 15) / 16, npan = (nc + NR - 1) / NR, per = (lines + npan - 1) / npan;
                        for (size_t jr = 0, q = 0; jr < nc; jr += NR, q++) {
                            for (size_t l = q * per; next && l < (q + 1) * per && l < lines; l++)
                                for (size_t r = 0; r < MR; r++) __builtin_prefetch(next + r * lda + l * 16);
                            for (size_t r = 0; jr + NR < nc && r < mr; r++) {
                                const float *cn = C + (ic + ir + r) * ldc + jc + jr + NR;
                                __builtin_prefetch(cn);
                                __builtin_prefetch(cn + 16);
                            }
                            ukernel(kc, ap, rs, cs, bp + jr * kc, C + (ic + ir) * ldc + jc + jr, ldc, mr,
                                    nc - jr < NR ? nc - jr : NR, add);
                        }
                    }
                }
            }
        }
    }
    return 0;
}

/* The kernel for this CPU, chosen once: AVX-512, else AVX2+FMA, else scalar.
 * MELODIC_NO_AVX512 (not "0") skips AVX-512; all three give the same bits. */
static ukernel_fn pick(void)
{
    if (have_avx512 < 0) {
        have_avx2 = mm_cpu_avx2_fma();
        have_avx512 = mm_cpu_avx512();
    }
#ifdef HAVE_X86_KERNELS
    if (have_avx512) return ukernel_avx512;
    if (have_avx2) return ukernel_avx2;
#endif
    return ukernel_scalar;
}

mm_sgemm_kernel mm_sgemm_kernel_auto(void)
{
    ukernel_fn k = pick();
    return k == ukernel_scalar ? MM_SGEMM_SCALAR : have_avx512 ? MM_SGEMM_AVX512 : MM_SGEMM_AVX2;
}

int mm_sgemm_kernel_available(mm_sgemm_kernel k)
{
    pick();
    return k == MM_SGEMM_AUTO || k == MM_SGEMM_SCALAR || (k == MM_SGEMM_AVX2 && have_avx2) ||
           (k == MM_SGEMM_AVX512 && have_avx512);
}

const char *mm_sgemm_kernel_name(mm_sgemm_kernel k)
{
    static const char *names[] = {"auto", "scalar", "avx2", "avx512"};
    return k >= MM_SGEMM_AUTO && k <= MM_SGEMM_AVX512 ? names[k] : "?";
}

void mm_sgemm_using(mm_sgemm_kernel kern, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, size_t M, size_t N,
                    size_t K, const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                    size_t ldc)
{
    if (!M || !N) return;
    ukernel_fn k = pick();
#ifdef HAVE_X86_KERNELS
    if (kern == MM_SGEMM_AVX2 && have_avx2) k = ukernel_avx2;
    if (kern == MM_SGEMM_AVX512 && have_avx512) k = ukernel_avx512;
#endif
    if (kern == MM_SGEMM_SCALAR) k = ukernel_scalar;
    if (K > 0 && packed_gemm(k, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc) == 0) return;
    /* K == 0 (C = beta C) or out of memory for the 1.6 MB of packing buffers */
    cblas_sgemm(CblasRowMajor, ta, tb, (int)M, (int)N, (int)K, 1, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

void mm_sgemm(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, size_t M, size_t N, size_t K, const float *A,
              size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc)
{
    mm_sgemm_using(MM_SGEMM_AUTO, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}
