/*
 * dense_gemm.c: MatMul and Gemm, float32 and float64, MatMul also on
 * 32/64-bit integers with a plain loop (wrapping arithmetic, as two's
 * complement hardware does). Owns nf__gemm, the one GEMM every dense
 * kernel calls: float32 on a CPU with AVX-512 runs our own kernel (below),
 * everything else OpenBLAS (cblas_sgemm / cblas_dgemm), loaded with
 * dlopen only when a model needs it. Owns the process-wide OpenBLAS
 * thread setting. Kernel state lives in n->priv (model arena); infer
 * writes the shapes the run reads.
 */
#include <cblas.h>
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ops_dense.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(NF_NO_AVX512_GEMM)
#include <immintrin.h>
#define NF_HAVE_SGEMM512 1
#endif

/* ---- BLAS --------------------------------------------------------------------
 * OpenBLAS is opened with dlopen the first time a model needs it, not
 * linked: Debian's libopenblas.so.0 (36 MB, with libgfortran) costs every
 * process that links it ~6 ms of dynamic linking at exec, measured on a
 * 2-core VM (worker exec to exit 10-12 ms linked, 4-5 ms without), and a
 * tree model, or a float32 model on an AVX-512 CPU with one thread, never
 * calls it. Needed: float64 products, float32 without AVX-512 or with
 * NGINFER_GEMM=openblas, and more than one thread (large products go to
 * OpenBLAS's pool). Prepare opens it in the last three cases, infer when
 * an operand is float64, so a model that needs it loads it while it loads
 * (the worker's warm-up runs infer), never in a request. If it cannot be
 * opened, the model fails to load with dlerror's message. */
static int blas_threads_set; /* process-wide: OpenBLAS has one thread pool */
static int blas_threads = 1;
static pthread_mutex_t blas_mu = PTHREAD_MUTEX_INITIALIZER;
static __typeof__(cblas_sgemm) *blas_sgemm;
static __typeof__(cblas_dgemm) *blas_dgemm;
static __typeof__(openblas_set_num_threads) *blas_set_threads;
static char blas_why[256]; /* dlerror of a failed open, kept for later callers */

#define NF_BLAS_SONAME "libopenblas.so.0"

/* Opens OpenBLAS once per process; NF_OK when its functions are there. */
static int blas_open(const nf_node *n, nf_err *err)
{
    pthread_mutex_lock(&blas_mu);
    if (blas_dgemm == NULL && blas_why[0] == '\0') {
        void *h = dlopen(NF_BLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
        if (h == NULL) {
            snprintf(blas_why, sizeof blas_why, "%s", dlerror());
        } else {
            __typeof__(cblas_sgemm) *sg = (__typeof__(cblas_sgemm) *)dlsym(h, "cblas_sgemm");
            __typeof__(cblas_dgemm) *dg = (__typeof__(cblas_dgemm) *)dlsym(h, "cblas_dgemm");
            __typeof__(openblas_set_num_threads) *st =
                (__typeof__(openblas_set_num_threads) *)dlsym(h, "openblas_set_num_threads");
            if (sg == NULL || dg == NULL || st == NULL) {
                snprintf(blas_why, sizeof blas_why, NF_BLAS_SONAME " lacks cblas_sgemm, cblas_dgemm or "
                         "openblas_set_num_threads");
                dlclose(h);
            } else {
                st(blas_threads);
                blas_set_threads = st;
                blas_sgemm = sg;
                __atomic_store_n(&blas_dgemm, dg, __ATOMIC_RELEASE);
            }
        }
    }
    int ok = blas_dgemm != NULL;
    pthread_mutex_unlock(&blas_mu);
    if (ok)
        return NF_OK;
    if (err == NULL)
        return NF_EUNSUPPORTED;
    return nf_node_err(err, NF_EUNSUPPORTED, n, "needs OpenBLAS (" NF_BLAS_SONAME ", Debian package "
                       "libopenblas0) for its matrix products, and it cannot be loaded: %s", blas_why);
}

int nf__dense_blas_init(const nf_model *m, const nf_node *n, nf_err *err)
{
    if (!blas_threads_set) {
        blas_threads_set = 1;
        int t = m->opts.n_threads;
        blas_threads = t > 0 ? t : 1;
    }
    if (!nf__sgemm_fast() || blas_threads > 1)
        return blas_open(n, err);
    return NF_OK;
}

int nf__dense_blas_dtype(const nf_node *n, int dtype, nf_err *err)
{
    if (dtype == NF_DT_DOUBLE || (dtype == NF_DT_FLOAT && !nf__sgemm_fast()))
        return __atomic_load_n(&blas_dgemm, __ATOMIC_ACQUIRE) != NULL ? NF_OK : blas_open(n, err);
    return NF_OK;
}

/* Plain products for the case that cannot happen once load has checked
 * (OpenBLAS missing at run time): slow, never wrong. op(X)[i][k] with lda
 * as BLAS takes it. */
#define NF_REF_GEMM(NAME, T)                                                                              \
    static void NAME(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T *A, int64_t lda, \
                     const T *B, int64_t ldb, T beta, T *C, int64_t ldc)                                  \
    {                                                                                                     \
        for (int64_t i = 0; i < M; i++)                                                                   \
            for (int64_t j = 0; j < N; j++) {                                                             \
                T s = 0;                                                                                  \
                for (int64_t k = 0; k < K; k++)                                                           \
                    s += (ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]); \
                C[i * ldc + j] = alpha * s + (beta == 0 ? 0 : beta * C[i * ldc + j]);                    \
            }                                                                                             \
    }
NF_REF_GEMM(ref_sgemm, float)
NF_REF_GEMM(ref_dgemm, double)

/* ---- float32 GEMM on AVX-512 --------------------------------------------------
 * Why our own: OpenBLAS picks its kernels by CPU at load, and an
 * OPENBLAS_CORETYPE in the environment overrides that (one set to Haswell
 * halves sgemm speed on an AVX-512 machine); and for the small products of
 * inference (a few rows; 32-row attention blocks) its per-call setup and
 * packing cost as much as the arithmetic. Single-threaded GFLOP/s on the
 * test machine (AMD EPYC with AVX-512), this kernel / OpenBLAS 0.3.21 with
 * its Haswell / Cooperlake kernels: 2048x512x128 160 / 77 / 144;
 * 32x512x128 186 / 80 / 126; 32x1024x144 (a conv) 158 / 78 / 101;
 * 32x32x32 33 / 29 / 40.
 *
 * C (M, N) = alpha op(A) op(B) + beta C, row-major. A micro-kernel keeps
 * an MR x 64 block of C in 4 * MR zmm registers and runs over k: four
 * 16-float loads of op(B)'s row k, MR broadcasts of A(r, k), 4 * MR FMAs.
 * op(B) is read in place when it is B (rows of 64 columns, the last panel
 * through masked loads, which do not touch memory beyond the mask), or
 * packed into 64-column panels when it is B^T (on the stack per call, or
 * once at load for a constant B: nf__sgemm_pack). k runs in blocks of KC
 * so a panel stays in L1; C is rounded once per block. Accuracy: each
 * element is a float FMA chain over k, as BLAS kernels compute it (max
 * error / sum |a b| 1e-7 over K up to 2000; OpenBLAS's the same or
 * larger). A CPU without AVX-512 (or valgrind, which hides it) takes
 * OpenBLAS; NGINFER_GEMM=openblas in the environment forces that (read
 * once). */
#define SG_NR 64
#define SG_MR 6
#define SG_KC 128

#ifdef NF_HAVE_SGEMM512
#define SG_TARGET __attribute__((target("avx512f,fma")))

/* mask of the columns below nr (nr <= 64) in the 16-lane quarter q */
SG_TARGET static inline __mmask16 sg_mask(int64_t nr, int q)
{
    int64_t n = nr - 16 * q;
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* C[r][0, nr) for r < MRV (row stride ldc) = alpha * sum over k < kc of
 * A(r, k) B(k, 0..nr) + (first ? beta C + bias[r] : C), where A(r, k) =
 * A[r * a_rs + k * a_ks] and B(k, .) starts at B + k * b_ks; bias may be
 * NULL. With first and beta == 0, C is not read (it may hold NaN). MR = 6
 * rows of 64 columns: 24 accumulators, and per k 4 loads of B and 6
 * broadcasts of A for 24 FMAs (8 x 32 measured 25% slower). */
#define SG_KERNEL(MRV)                                                                                      \
    SG_TARGET static void sg_kern_##MRV(const float *A, int64_t a_rs, int64_t a_ks, const float *B, int64_t b_ks, \
                                        int64_t kc, float *C, int64_t ldc, int64_t nr, float alpha, float beta,   \
                                        bool first, const float *bias)                                      \
    {                                                                                                       \
        __m512 c[MRV][4];                                                                                   \
        __mmask16 m[4] = {sg_mask(nr, 0), sg_mask(nr, 1), sg_mask(nr, 2), sg_mask(nr, 3)};                  \
        _Pragma("GCC unroll 8") for (int r = 0; r < MRV; r++)                                               \
            _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) c[r][q] = _mm512_setzero_ps();              \
        for (int64_t k = 0; k < kc; k++) {                                                                  \
            const float *bk = B + k * b_ks, *ak = A + k * a_ks;                                             \
            __m512 b[4];                                                                                    \
            _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) b[q] = _mm512_maskz_loadu_ps(m[q], bk + 16 * q); \
            _Pragma("GCC unroll 8") for (int r = 0; r < MRV; r++) {                                         \
                __m512 a = _mm512_set1_ps(ak[r * a_rs]);                                                    \
                _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) c[r][q] = _mm512_fmadd_ps(a, b[q], c[r][q]); \
            }                                                                                               \
        }                                                                                                   \
        __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);                                       \
        _Pragma("GCC unroll 8") for (int r = 0; r < MRV; r++) {                                             \
            float *cr = C + r * ldc;                                                                        \
            _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) {                                           \
                __m512 x = _mm512_mul_ps(c[r][q], va);                                                      \
                if (!first) {                                                                               \
                    x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m[q], cr + 16 * q));                         \
                } else {                                                                                    \
                    if (beta != 0)                                                                          \
                        x = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m[q], cr + 16 * q), x);               \
                    if (bias != NULL)                                                                       \
                        x = _mm512_add_ps(x, _mm512_set1_ps(bias[r]));                                      \
                }                                                                                           \
                _mm512_mask_storeu_ps(cr + 16 * q, m[q], x);                                                \
            }                                                                                               \
        }                                                                                                   \
    }
SG_KERNEL(1)
SG_KERNEL(2)
SG_KERNEL(3)
SG_KERNEL(4)
SG_KERNEL(5)
SG_KERNEL(6)

typedef void (*sg_kern_fn)(const float *, int64_t, int64_t, const float *, int64_t, int64_t, float *, int64_t,
                           int64_t, float, float, bool, const float *);
static const sg_kern_fn sg_kerns[SG_MR + 1] = {NULL, sg_kern_1, sg_kern_2, sg_kern_3, sg_kern_4, sg_kern_5, sg_kern_6};

/* Bp[k][0, nr) = B^T's rows k0 .. k0 + kc, columns j0 .. j0 + nr (that is
 * B[j0 + j][k0 + k]); the rest of each 64-float row is left as it is,
 * since the kernel's masked loads do not read it */
static void sg_pack_t(const float *B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0, int64_t nr, float *Bp)
{
    for (int64_t j = 0; j < nr; j++) {
        const float *src = B + (j0 + j) * ldb + k0;
        for (int64_t k = 0; k < kc; k++)
            Bp[k * SG_NR + j] = src[k];
    }
}

/* The blocked product, plus bias[i] on row i of C when bias is not NULL.
 * packed: B already in panels (nf__sgemm_pack: panel p is K x 64 floats
 * at packed + p * K * 64); else B with trans_b. */
SG_TARGET static void sgemm512(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                               int64_t lda, const float *B, int64_t ldb, const float *packed, float beta, float *C,
                               int64_t ldc, const float *bias)
{
    float Bp[SG_KC * SG_NR] __attribute__((aligned(64)));
    int64_t a_rs = ta ? 1 : lda, a_ks = ta ? lda : 1;
    for (int64_t j0 = 0; j0 < N; j0 += SG_NR) {
        int64_t nr = N - j0 < SG_NR ? N - j0 : SG_NR;
        for (int64_t k0 = 0; k0 < K; k0 += SG_KC) {
            int64_t kc = K - k0 < SG_KC ? K - k0 : SG_KC, b_ks;
            const float *bp;
            if (packed != NULL) {
                bp = packed + (j0 / SG_NR * K + k0) * SG_NR;
                b_ks = SG_NR;
            } else if (tb) {
                sg_pack_t(B, ldb, k0, kc, j0, nr, Bp);
                bp = Bp;
                b_ks = SG_NR;
            } else {
                bp = B + k0 * ldb + j0;
                b_ks = ldb;
            }
            /* rows in nb blocks of at most MR, as even as they go: 32 rows
             * are 6+6+5+5+5+5, not 6 x 5 + 2 (a 2-row block does 8 FMAs per
             * 4 loads of B) */
            int64_t nb = (M + SG_MR - 1) / SG_MR, base = M / nb, extra = M % nb;
            for (int64_t blk = 0, i0 = 0; blk < nb; blk++) {
                int64_t mr = base + (blk < extra);
                sg_kerns[mr](A + i0 * a_rs + k0 * a_ks, a_rs, a_ks, bp, b_ks, kc, C + i0 * ldc + j0, ldc, nr, alpha,
                             beta, k0 == 0, bias ? bias + i0 : NULL);
                i0 += mr;
            }
        }
    }
}
/* C[r][0, nr) for r < MRV = sum over j < nk of A[r * lda + a_cols[j]]
 * B_j[0, nr) (+ bias[r]), B_j = b_rows[j] + b_off: the product with B's
 * rows gathered (rows not listed are zero and cost nothing). With
 * b_masks, element c of B_j is read only where bit c of b_masks[j] is
 * set, else it is zero (a shifted image's columns that fall in the
 * padding). */
#define SG_GKERNEL(MRV)                                                                                     \
    SG_TARGET static void sg_gkern_##MRV(const float *A, int64_t lda, int64_t nk, const int32_t *a_cols,      \
                                         const float *const *b_rows, const uint64_t *b_masks, int64_t b_off,  \
                                         float *C, int64_t ldc, int64_t nr, const float *bias)               \
    {                                                                                                       \
        __m512 c[MRV][4];                                                                                   \
        __mmask16 m[4] = {sg_mask(nr, 0), sg_mask(nr, 1), sg_mask(nr, 2), sg_mask(nr, 3)};                  \
        _Pragma("GCC unroll 8") for (int r = 0; r < MRV; r++)                                               \
            _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) c[r][q] = _mm512_setzero_ps();              \
        for (int64_t j = 0; j < nk; j++) {                                                                  \
            const float *bk = b_rows[j] + b_off, *ak = A + a_cols[j];                                       \
            uint64_t bm = b_masks != NULL ? b_masks[j] : ~(uint64_t)0;                                      \
            __m512 b[4];                                                                                    \
            _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++)                                             \
                b[q] = _mm512_maskz_loadu_ps(m[q] & (__mmask16)(bm >> (16 * q)), bk + 16 * q);              \
            _Pragma("GCC unroll 8") for (int r = 0; r < MRV; r++) {                                         \
                __m512 a = _mm512_set1_ps(ak[r * lda]);                                                     \
                _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) c[r][q] = _mm512_fmadd_ps(a, b[q], c[r][q]); \
            }                                                                                               \
        }                                                                                                   \
        _Pragma("GCC unroll 8") for (int r = 0; r < MRV; r++)                                               \
            _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) {                                           \
                __m512 x = c[r][q];                                                                         \
                if (bias != NULL)                                                                           \
                    x = _mm512_add_ps(x, _mm512_set1_ps(bias[r]));                                          \
                _mm512_mask_storeu_ps(C + r * ldc + 16 * q, m[q], x);                                       \
            }                                                                                               \
    }
SG_GKERNEL(1)
SG_GKERNEL(2)
SG_GKERNEL(3)
SG_GKERNEL(4)
SG_GKERNEL(5)
SG_GKERNEL(6)

typedef void (*sg_gkern_fn)(const float *, int64_t, int64_t, const int32_t *, const float *const *,
                            const uint64_t *, int64_t, float *, int64_t, int64_t, const float *);
static const sg_gkern_fn sg_gkerns[SG_MR + 1] = {NULL,        sg_gkern_1, sg_gkern_2, sg_gkern_3,
                                                 sg_gkern_4, sg_gkern_5, sg_gkern_6};
#endif /* NF_HAVE_SGEMM512 */

void nf__sgemm_rows(int64_t M, int64_t N, const float *A, int64_t lda, int64_t nk, const int32_t *a_cols,
                    const float *const *b_rows, const uint64_t *b_masks, float *C, int64_t ldc, const float *bias)
{
#ifdef NF_HAVE_SGEMM512
    if (M <= 0 || N <= 0)
        return;
    int64_t nb = (M + SG_MR - 1) / SG_MR, base = M / nb, extra = M % nb;
    for (int64_t j0 = 0; j0 < N; j0 += SG_NR) {
        int64_t nr = N - j0 < SG_NR ? N - j0 : SG_NR;
        const uint64_t *bm = b_masks != NULL ? b_masks + j0 / SG_NR * nk : NULL;
        for (int64_t blk = 0, i0 = 0; blk < nb; blk++) {
            int64_t mr = base + (blk < extra);
            sg_gkerns[mr](A + i0 * lda, lda, nk, a_cols, b_rows, bm, j0, C + i0 * ldc + j0, ldc, nr,
                          bias ? bias + i0 : NULL);
            i0 += mr;
        }
    }
#else
    (void)M, (void)N, (void)A, (void)lda, (void)nk, (void)a_cols, (void)b_rows, (void)b_masks, (void)C, (void)ldc,
        (void)bias;
#endif
}

bool nf__sgemm_fast(void)
{
#ifdef NF_HAVE_SGEMM512
    static int ok = -1; /* a benign race: every thread computes the same */
    if (ok < 0) {
        const char *e = getenv("NGINFER_GEMM");
        __builtin_cpu_init();
        ok = __builtin_cpu_supports("avx512f") && !(e != NULL && strcmp(e, "openblas") == 0);
    }
    return ok == 1;
#else
    return false;
#endif
}

size_t nf__sgemm_pack_size(int64_t K, int64_t N)
{
    return (size_t)((N + SG_NR - 1) / SG_NR * SG_NR * K) * sizeof(float);
}

void nf__sgemm_pack(bool trans_b, int64_t K, int64_t N, const float *B, int64_t ldb, float *packed)
{
    for (int64_t j0 = 0; j0 < N; j0 += SG_NR) {
        float *pp = packed + j0 / SG_NR * K * SG_NR;
        for (int64_t k = 0; k < K; k++)
            for (int64_t j = 0; j < SG_NR; j++)
                pp[k * SG_NR + j] = j0 + j >= N ? 0.0f : trans_b ? B[(j0 + j) * ldb + k] : B[k * ldb + j0 + j];
    }
}

/* Large products with several OpenBLAS threads configured go to
 * OpenBLAS: our kernel runs on the calling thread only. */
static bool use_sgemm512(int64_t M, int64_t N, int64_t K)
{
    return nf__sgemm_fast() && (blas_threads <= 1 || (double)M * (double)N * (double)K < 1e6);
}

void nf__sgemm_packed(bool trans_a, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                      const float *packed, float beta, float *C, int64_t ldc)
{
#ifdef NF_HAVE_SGEMM512
    if (M > 0 && N > 0 && K > 0)
        sgemm512(trans_a, false, M, N, K, alpha, A, lda, NULL, 0, packed, beta, C, ldc, NULL);
#else
    (void)trans_a, (void)M, (void)N, (void)K, (void)alpha, (void)A, (void)lda, (void)packed, (void)beta, (void)C,
        (void)ldc;
#endif
}

int nf__dense_blas_dims(const nf_node *n, int count, const int64_t *dims, nf_err *err)
{
    for (int i = 0; i < count; i++)
        if (dims[i] > INT_MAX)
            return nf_node_err(err, NF_EUNSUPPORTED, n, "a matrix dimension of %lld exceeds BLAS's int",
                               (long long)dims[i]);
    return NF_OK;
}

static void scale(int dtype, void *c, int64_t rows, int64_t cols, int64_t ldc, double beta)
{
    for (int64_t i = 0; i < rows; i++) {
        if (dtype == NF_DT_FLOAT) {
            float *r = (float *)c + i * ldc;
            for (int64_t j = 0; j < cols; j++)
                r[j] = beta == 0 ? 0.0f : r[j] * (float)beta;
        } else {
            double *r = (double *)c + i * ldc;
            for (int64_t j = 0; j < cols; j++)
                r[j] = beta == 0 ? 0.0 : r[j] * beta;
        }
    }
}

void nf__gemm(int dtype, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
              const void *A, int64_t lda, const void *B, int64_t ldb, double beta, void *C, int64_t ldc)
{
    if (M == 0 || N == 0)
        return;
    if (K == 0) { /* BLAS would reject lda = 0; the product is empty */
        scale(dtype, C, M, N, ldc, beta);
        return;
    }
#ifdef NF_HAVE_SGEMM512
    if (dtype == NF_DT_FLOAT && use_sgemm512(M, N, K)) {
        sgemm512(trans_a, trans_b, M, N, K, (float)alpha, A, lda, B, ldb, NULL, (float)beta, C, ldc, NULL);
        return;
    }
#endif
    if (__atomic_load_n(&blas_dgemm, __ATOMIC_ACQUIRE) == NULL && blas_open(NULL, NULL) != NF_OK) {
        if (dtype == NF_DT_FLOAT)
            ref_sgemm(trans_a, trans_b, M, N, K, (float)alpha, A, lda, B, ldb, (float)beta, C, ldc);
        else
            ref_dgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    enum CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
    if (dtype == NF_DT_FLOAT)
        blas_sgemm(CblasRowMajor, ta, tb, (int)M, (int)N, (int)K, (float)alpha, A, (int)lda, B, (int)ldb,
                   (float)beta, C, (int)ldc);
    else
        blas_dgemm(CblasRowMajor, ta, tb, (int)M, (int)N, (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C,
                   (int)ldc);
}

/* C (M, N) = A (M, K) B (K, N) + bias[i] on row i (bias may be NULL),
 * both operands untransposed: in one pass over C with our float kernel,
 * else C filled with the bias and accumulated by nf__gemm. */
void nf__gemm_bias(int dtype, int64_t M, int64_t N, int64_t K, const void *A, int64_t lda, const void *B, int64_t ldb,
                   const void *bias, void *C, int64_t ldc)
{
    if (M == 0 || N == 0)
        return;
#ifdef NF_HAVE_SGEMM512
    if (dtype == NF_DT_FLOAT && K > 0 && use_sgemm512(M, N, K)) {
        sgemm512(false, false, M, N, K, 1.0f, A, lda, B, ldb, NULL, 0.0f, C, ldc, bias);
        return;
    }
#endif
    size_t es = nf_dtype_size(dtype);
    for (int64_t i = 0; i < M; i++) {
        char *row = (char *)C + (size_t)(i * ldc) * es;
        for (int64_t j = 0; j < N; j++) {
            if (dtype == NF_DT_FLOAT)
                ((float *)row)[j] = bias ? ((const float *)bias)[i] : 0.0f;
            else
                ((double *)row)[j] = bias ? ((const double *)bias)[i] : 0.0;
        }
    }
    nf__gemm(dtype, false, false, M, N, K, 1.0, A, lda, B, ldb, 1.0, C, ldc);
}

/* ---- Gemm: Y = alpha * A' * B' + beta * C ------------------------------------
 * ONNX Gemm-1..13: A' is A or A^T (transA), B' likewise; C is
 * unidirectionally broadcast to (M, N) (opsets 1 and 6: only when
 * broadcast = 1, else C is (M, N)); C is optional from opset 11. */
typedef struct gemm_priv {
    bool trans_a, trans_b, legacy_no_bcast;
    double alpha, beta;
    const float *packed; /* a constant float B packed at load (nf__sgemm_pack), model arena; or NULL */
    /* set by infer */
    int64_t M, N, K;
    int64_t c_rs, c_cs; /* strides of C over Y's rows and columns (0 = broadcast) */
} gemm_priv;

static int float_type(const nf_node *n, const nf_value *v, const char *in_name, nf_err *err)
{
    if (v->dtype == NF_DT_FLOAT || v->dtype == NF_DT_DOUBLE)
        return NF_OK;
    return nf_node_err(err, NF_EUNSUPPORTED, n, "input %s ('%s') is %s; float and double are supported", in_name,
                       v->name, nf_dtype_name(v->dtype));
}

int nf_op_gemm_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    if (n->n_in < 2 || n->in[0] < 0 || n->in[1] < 0 || n->n_out < 1 || n->out[0] < 0)
        return nf_node_err(err, NF_EMODEL, n, "needs inputs A, B and output Y");
    if (n->opset < 11 && nf_in(m, n, 2) == NULL)
        return nf_node_err(err, NF_EMODEL, n, "input C is required before opset 11 (model opset %d)", n->opset);
    gemm_priv *p = nf_arena_alloc(&m->arena, sizeof *p);
    if (p == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    p->trans_a = nf_attr_int(n, "transA", 0) != 0;
    p->trans_b = nf_attr_int(n, "transB", 0) != 0;
    p->alpha = nf_attr_float(n, "alpha", 1.0f);
    p->beta = nf_attr_float(n, "beta", 1.0f);
    p->legacy_no_bcast = n->opset < 7 && nf_attr_int(n, "broadcast", 0) == 0;
    n->priv = p;
    int rc = nf__dense_blas_init(m, n, err);
    if (rc != NF_OK)
        return rc;
    /* A constant B^T (the weights of a Linear layer as exported) is packed
     * once here instead of at every run; up to 1M elements, since the
     * packed copy stays in memory beside the original. */
    nf_value *b = nf_in(m, n, 1);
    if (p->trans_b && b->kind == NF_V_CONST && b->dtype == NF_DT_FLOAT && b->n_dims == 2 && b->size > 0 &&
        b->size <= (1 << 20) && nf__sgemm_fast()) {
        int64_t K = b->dims[1], N = b->dims[0];
        float *packed = nf_arena_alloc(&m->arena, nf__sgemm_pack_size(K, N));
        if (packed == NULL)
            return nf_err_set(err, NF_ENOMEM, "out of memory");
        nf__sgemm_pack(true, K, N, b->data, K, packed);
        p->packed = packed;
    }
    return NF_OK;
}

int nf_op_gemm_infer(nf_model *m, nf_node *n, nf_err *err)
{
    gemm_priv *p = n->priv;
    nf_value *a = nf_in(m, n, 0), *b = nf_in(m, n, 1), *c = nf_in(m, n, 2);
    int rc;
    if ((rc = float_type(n, a, "A", err)) != NF_OK)
        return rc;
    if (b->dtype != a->dtype || (c != NULL && c->dtype != a->dtype))
        return nf_node_err(err, NF_EMODEL, n, "inputs A, B%s differ in type (%s, %s%s%s)", c ? ", C" : "",
                           nf_dtype_name(a->dtype), nf_dtype_name(b->dtype), c ? ", " : "",
                           c ? nf_dtype_name(c->dtype) : "");
    if (a->n_dims != 2)
        return nf_node_err(err, nf__dense_shape_code(a, NULL), n, "input A ('%s') has rank %d, must be 2", a->name,
                           a->n_dims);
    if (b->n_dims != 2)
        return nf_node_err(err, nf__dense_shape_code(b, NULL), n, "input B ('%s') has rank %d, must be 2", b->name,
                           b->n_dims);
    int64_t M = a->dims[p->trans_a ? 1 : 0], K = a->dims[p->trans_a ? 0 : 1];
    int64_t kb = b->dims[p->trans_b ? 1 : 0], N = b->dims[p->trans_b ? 0 : 1];
    if (K != kb)
        return nf_node_err(err, nf__dense_shape_code(a, b), n,
                           "input A ('%s') has K = %lld (dim %d), input B ('%s') has K = %lld (dim %d)", a->name,
                           (long long)K, p->trans_a ? 0 : 1, b->name, (long long)kb, p->trans_b ? 1 : 0);
    int64_t dims[3] = {M, N, K};
    if ((rc = nf__dense_blas_dims(n, 3, dims, err)) != NF_OK)
        return rc;
    p->M = M;
    p->N = N;
    p->K = K;
    p->c_rs = p->c_cs = 0;
    if (c != NULL) {
        /* right-aligned against (M, N): each dim equal or 1 */
        int64_t cr = c->n_dims >= 2 ? c->dims[c->n_dims - 2] : 1, cc = c->n_dims >= 1 ? c->dims[c->n_dims - 1] : 1;
        if (c->n_dims > 2 || (cr != M && cr != 1) || (cc != N && cc != 1) ||
            (p->legacy_no_bcast && (c->n_dims != 2 || cr != M || cc != N)))
            return nf_node_err(err, nf__dense_shape_code(c, a), n,
                               "input C ('%s') of rank %d [%lld, %lld] does not broadcast to Y [%lld, %lld]%s",
                               c->name, c->n_dims, (long long)cr, (long long)cc, (long long)M, (long long)N,
                               p->legacy_no_bcast ? " (broadcast = 0)" : "");
        p->c_rs = cr == 1 ? 0 : cc;
        p->c_cs = cc == 1 ? 0 : 1;
    }
    int64_t ydims[2] = {M, N};
    if ((rc = nf__dense_blas_dtype(n, a->dtype, err)) != NF_OK)
        return rc;
    return nf_value_set(nf_out(m, n, 0), a->dtype, 2, ydims, err);
}

int nf_op_gemm_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    const gemm_priv *p = n->priv;
    nf_value *a = nf_in(m, n, 0), *b = nf_in(m, n, 1), *c = nf_in(m, n, 2), *y = nf_out(m, n, 0);
    int64_t M = p->M, N = p->N, K = p->K;
    double beta = 0;
    if (c != NULL && p->beta != 0) {
        /* Y = beta * C broadcast, then the product accumulates into it */
        if (y->dtype == NF_DT_FLOAT) {
            const float *cv = c->data, bf = (float)p->beta;
            float *yv = y->data;
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++)
                    yv[i * N + j] = bf * cv[i * p->c_rs + j * p->c_cs];
        } else {
            const double *cv = c->data;
            double *yv = y->data;
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++)
                    yv[i * N + j] = p->beta * cv[i * p->c_rs + j * p->c_cs];
        }
        beta = 1;
    }
    if (p->packed != NULL && use_sgemm512(M, N, K))
        nf__sgemm_packed(p->trans_a, M, N, K, (float)p->alpha, a->data, a->dims[1], p->packed, (float)beta, y->data,
                         N);
    else
        nf__gemm(y->dtype, p->trans_a, p->trans_b, M, N, K, p->alpha, a->data, a->dims[1], b->data, b->dims[1],
                 beta, y->data, N);
    return NF_OK;
}

/* ---- MatMul: numpy.matmul ---------------------------------------------------
 * Rank-1 A is (1, K) and rank-1 B is (K, 1), the added dim dropped from Y;
 * batch dims (all but the last two) broadcast both ways. */
typedef struct matmul_priv {
    /* set by infer */
    int64_t M, N, K;
    int nb;                       /* batch rank of Y */
    int64_t bdims[NF_MAX_DIMS];   /* Y's batch dims */
    int64_t sa[NF_MAX_DIMS], sb[NF_MAX_DIMS]; /* per batch dim: matrix stride in A, B (0 = broadcast) */
    int64_t n_batch;
    bool fold;                    /* B has no batch: one GEMM over all of A's rows */
} matmul_priv;

static int matmul_type_ok(int t)
{
    switch (t) {
    case NF_DT_FLOAT: case NF_DT_DOUBLE: case NF_DT_INT32: case NF_DT_INT64: case NF_DT_UINT32: case NF_DT_UINT64:
        return 1;
    default:
        return 0;
    }
}

int nf_op_matmul_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    if (n->n_in < 2 || n->in[0] < 0 || n->in[1] < 0 || n->n_out < 1 || n->out[0] < 0)
        return nf_node_err(err, NF_EMODEL, n, "needs inputs A, B and output Y");
    n->priv = nf_arena_alloc(&m->arena, sizeof(matmul_priv));
    if (n->priv == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    return nf__dense_blas_init(m, n, err);
}

int nf_op_matmul_infer(nf_model *m, nf_node *n, nf_err *err)
{
    matmul_priv *p = n->priv;
    nf_value *a = nf_in(m, n, 0), *b = nf_in(m, n, 1);
    if (!matmul_type_ok(a->dtype))
        return nf_node_err(err, NF_EUNSUPPORTED, n, "input A ('%s') is %s; float, double and 32/64-bit integers "
                           "are supported", a->name, nf_dtype_name(a->dtype));
    if (b->dtype != a->dtype)
        return nf_node_err(err, NF_EMODEL, n, "input A is %s, input B is %s", nf_dtype_name(a->dtype),
                           nf_dtype_name(b->dtype));
    int code = nf__dense_shape_code(a, b);
    if (a->n_dims < 1 || b->n_dims < 1)
        return nf_node_err(err, code, n, "input %s ('%s') is a scalar", a->n_dims < 1 ? "A" : "B",
                           a->n_dims < 1 ? a->name : b->name);
    int ra = a->n_dims, rb = b->n_dims;
    int64_t M = ra == 1 ? 1 : a->dims[ra - 2], K = a->dims[ra - 1];
    int64_t kb = rb == 1 ? b->dims[0] : b->dims[rb - 2], N = rb == 1 ? 1 : b->dims[rb - 1];
    if (K != kb)
        return nf_node_err(err, code, n, "input A ('%s') dim %d is %lld, input B ('%s') dim %d is %lld", a->name,
                           ra - 1, (long long)K, b->name, rb == 1 ? 0 : rb - 2, (long long)kb);
    int ba = ra > 2 ? ra - 2 : 0, bb = rb > 2 ? rb - 2 : 0, nb = ba > bb ? ba : bb;
    int64_t ydims[NF_MAX_DIMS];
    int64_t stride_a = M * K, stride_b = K * N;
    p->n_batch = 1;
    bool b_batched = false;
    /* from the innermost batch dim out, so strides accumulate */
    for (int i = nb - 1; i >= 0; i--) {
        int ia = i - (nb - ba), ib = i - (nb - bb);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return nf_node_err(err, code, n, "batch dims do not broadcast: input A ('%s') dim %d is %lld, input B "
                               "('%s') dim %d is %lld", a->name, ia, (long long)da, b->name, ib, (long long)db);
        int64_t dy = da == 1 ? db : da;
        p->bdims[i] = ydims[i] = dy;
        p->sa[i] = da == 1 ? 0 : stride_a;
        p->sb[i] = db == 1 ? 0 : stride_b;
        stride_a *= da;
        stride_b *= db;
        p->n_batch *= dy;
        if (db != 1)
            b_batched = true;
    }
    int ry = nb;
    if (ra > 1)
        ydims[ry++] = M;
    if (rb > 1)
        ydims[ry++] = N;
    p->M = M;
    p->N = N;
    p->K = K;
    p->nb = nb;
    /* B shared by every batch and A's batches all distinct (A is never
     * broadcast when B has no batch): A is one (batch*M, K) matrix */
    p->fold = !b_batched;
    int rc;
    if (a->dtype == NF_DT_FLOAT || a->dtype == NF_DT_DOUBLE) {
        int64_t dims[3] = {p->fold ? M * p->n_batch : M, N, K};
        if ((rc = nf__dense_blas_dims(n, 3, dims, err)) != NF_OK)
            return rc;
    }
    int brc = nf__dense_blas_dtype(n, a->dtype, err);
    if (brc != NF_OK)
        return brc;
    return nf_value_set(nf_out(m, n, 0), a->dtype, ry, ydims, err);
}

/* Y (M, N) = A (M, K) * B (K, N) over integers, modulo 2^bits. */
#define MATMUL_INT(sfx, T, U)                                                                    \
    static void matmul_##sfx(const T *a, const T *b, T *y, int64_t M, int64_t N, int64_t K)  \
    {                                                                                            \
        for (int64_t i = 0; i < M; i++) {                                                        \
            U *yr = (U *)(y + i * N);                                                            \
            for (int64_t j = 0; j < N; j++)                                                      \
                yr[j] = 0;                                                                       \
            for (int64_t k = 0; k < K; k++) {                                                    \
                U av = (U)a[i * K + k];                                                          \
                const T *br = b + k * N;                                                         \
                for (int64_t j = 0; j < N; j++)                                                  \
                    yr[j] += av * (U)br[j];                                                      \
            }                                                                                    \
        }                                                                                        \
    }
MATMUL_INT(i32, int32_t, uint32_t)
MATMUL_INT(u32, uint32_t, uint32_t)
MATMUL_INT(i64, int64_t, uint64_t)
MATMUL_INT(u64, uint64_t, uint64_t)

static void matmul_one(int dtype, const char *a, const char *b, char *y, int64_t M, int64_t N, int64_t K)
{
    switch (dtype) {
    case NF_DT_FLOAT:
    case NF_DT_DOUBLE:
        nf__gemm(dtype, false, false, M, N, K, 1.0, a, K, b, N, 0.0, y, N);
        break;
    case NF_DT_INT32: matmul_i32((const int32_t *)a, (const int32_t *)b, (int32_t *)y, M, N, K); break;
    case NF_DT_UINT32: matmul_u32((const uint32_t *)a, (const uint32_t *)b, (uint32_t *)y, M, N, K); break;
    case NF_DT_INT64: matmul_i64((const int64_t *)a, (const int64_t *)b, (int64_t *)y, M, N, K); break;
    case NF_DT_UINT64: matmul_u64((const uint64_t *)a, (const uint64_t *)b, (uint64_t *)y, M, N, K); break;
    default: break;
    }
}

int nf_op_matmul_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    const matmul_priv *p = n->priv;
    nf_value *a = nf_in(m, n, 0), *b = nf_in(m, n, 1), *y = nf_out(m, n, 0);
    size_t es = nf_dtype_size(y->dtype);
    int64_t M = p->M, N = p->N, K = p->K;
    if (p->fold) {
        matmul_one(y->dtype, a->data, b->data, y->data, M * p->n_batch, N, K);
        return NF_OK;
    }
    int64_t idx[NF_MAX_DIMS] = {0};
    for (int64_t t = 0; t < p->n_batch; t++) {
        int64_t oa = 0, ob = 0;
        for (int i = 0; i < p->nb; i++) {
            oa += idx[i] * p->sa[i];
            ob += idx[i] * p->sb[i];
        }
        matmul_one(y->dtype, (const char *)a->data + (size_t)oa * es, (const char *)b->data + (size_t)ob * es,
                   (char *)y->data + (size_t)(t * M * N) * es, M, N, K);
        for (int i = p->nb - 1; i >= 0; i--) { /* odometer over Y's batch dims */
            if (++idx[i] < p->bdims[i])
                break;
            idx[i] = 0;
        }
    }
    return NF_OK;
}
