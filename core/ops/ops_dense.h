/*
 * ops_dense.h: hooks of core/ops/dense*.c (MatMul, Gemm, Conv,
 * ConvTranspose and the pools) and the internals those files share: the
 * sliding-window geometry of dense_win.c and the BLAS wrapper of
 * dense_gemm.c. Spatial operators work on a canonical 3-D window (1-D and
 * 2-D get leading dims of size 1), so 4-D and higher spatial ranks are
 * refused with NF_EUNSUPPORTED.
 */
#ifndef NF_OPS_DENSE_H
#define NF_OPS_DENSE_H

#include "ops.h"

/* dense_gemm.c */
NF_DECLARE_OP(nf_op_gemm);
NF_DECLARE_OP(nf_op_matmul);
/* dense_conv.c */
NF_DECLARE_OP(nf_op_conv);
NF_DECLARE_OP(nf_op_conv_transpose);
/* dense_pool.c */
NF_DECLARE_OP(nf_op_max_pool);
NF_DECLARE_OP(nf_op_average_pool);
NF_DECLARE_OP(nf_op_global_average_pool);
NF_DECLARE_OP(nf_op_global_max_pool);

/* ---- BLAS (dense_gemm.c) ------------------------------------------------- */

/* At prepare of a node that may multiply matrices: takes OpenBLAS's thread
 * count from m->opts.n_threads (0 or 1: one thread) the first time in the
 * process (later models do not change it: one setting per worker), and
 * opens OpenBLAS (dlopen) when float32 products will go to it (no AVX-512,
 * NGINFER_GEMM=openblas, or more than one thread). An error names the node
 * when it is needed and cannot be opened. */
int nf__dense_blas_init(const nf_model *m, const nf_node *n, nf_err *err);

/* At infer: opens OpenBLAS if products of dtype go to it (float64; float32
 * without our kernel). NF_OK when not needed or open. */
int nf__dense_blas_dtype(const nf_node *n, int dtype, nf_err *err);

/* C = alpha * op(A) * op(B) + beta * C, row-major, dtype NF_DT_FLOAT
 * (cblas_sgemm) or NF_DT_DOUBLE (cblas_dgemm). M, N, K and the leading
 * dimensions must fit an int (nf__dense_blas_dims checks at infer); M, N
 * or K of 0 is handled here (BLAS is not called with empty operands). */
void nf__gemm(int dtype, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
              const void *A, int64_t lda, const void *B, int64_t ldb, double beta, void *C, int64_t ldc);

/* C (M, N) = A (M, K) B (K, N) + bias[i] on row i of C (bias NULL: none);
 * dtype float or double, no transposes, BLAS-int dims as nf__gemm. */
void nf__gemm_bias(int dtype, int64_t M, int64_t N, int64_t K, const void *A, int64_t lda, const void *B, int64_t ldb,
                   const void *bias, void *C, int64_t ldc);

/* float32 with B packed ahead (dense_gemm.c): nf__sgemm_fast() is true
 * when our AVX-512 kernel runs on this CPU (only then may the other two be
 * used). nf__sgemm_pack writes op(B) (K, N) into nf__sgemm_pack_size(K, N)
 * bytes of 64-byte aligned memory; nf__sgemm_packed is nf__gemm's float
 * case on it (M, N, K > 0 or nothing happens). */
bool nf__sgemm_fast(void);
size_t nf__sgemm_pack_size(int64_t K, int64_t N);
void nf__sgemm_pack(bool trans_b, int64_t K, int64_t N, const float *B, int64_t ldb, float *packed);
void nf__sgemm_packed(bool trans_a, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                      const float *packed, float beta, float *C, int64_t ldc);

/* C (M, N) = A (M, K) B (K, N) + bias[i] on row i (bias may be NULL) with
 * B's rows gathered: row a_cols[j] of B (j < nk) starts at b_rows[j], the
 * K - nk rows not listed are zero (a convolution's padding taps: skipped,
 * not multiplied). The B rows' columns are contiguous floats. b_masks,
 * when not NULL, holds nk 64-bit masks per 64 columns of C (panel p at
 * b_masks + p * nk): element c of row j in panel p is read only where
 * bit c is set, else taken as zero; such elements need not be readable
 * memory. Float32, only when nf__sgemm_fast(). */
void nf__sgemm_rows(int64_t M, int64_t N, const float *A, int64_t lda, int64_t nk, const int32_t *a_cols,
                    const float *const *b_rows, const uint64_t *b_masks, float *C, int64_t ldc, const float *bias);

/* NF_OK when every dims[i] fits BLAS's int; else NF_EUNSUPPORTED naming
 * the node. */
int nf__dense_blas_dims(const nf_node *n, int count, const int64_t *dims, nf_err *err);

/* ---- sliding windows (dense_win.c) --------------------------------------- */
#define NF_WIN_DIMS 3

enum { NF_PAD_NOTSET = 0, NF_PAD_SAME_UPPER, NF_PAD_SAME_LOWER, NF_PAD_VALID };

/* Window attributes as the node has them (arrays owned by the node's
 * attributes, model arena); n_* is 0 when the attribute is absent. */
typedef struct nf__winattr {
    int auto_pad;        /* NF_PAD_* */
    int ceil_mode;       /* pools from opset 10 */
    int64_t n_kernel, n_strides, n_dilations, n_pads;
    const int64_t *kernel, *strides, *dilations, *pads;
} nf__winattr;

/* A window over one input shape, canonical 3-D: index 2 is the innermost
 * (contiguous) spatial dim; a model rank nd < 3 fills dims 0..3-nd-1 with
 * in = out = k = s = d = 1 and no padding. */
typedef struct nf__win {
    int nd;                      /* the model's spatial rank, 1..3 */
    int64_t in[NF_WIN_DIMS];     /* input spatial sizes */
    int64_t out[NF_WIN_DIMS];    /* output spatial sizes */
    int64_t k[NF_WIN_DIMS], s[NF_WIN_DIMS], d[NF_WIN_DIMS];
    int64_t pb[NF_WIN_DIMS], pe[NF_WIN_DIMS]; /* padding at begin / end */
} nf__win;

/* Reads auto_pad, kernel_shape, strides, dilations, pads and ceil_mode
 * and checks what can be checked without shapes (values positive, pads
 * non-negative, lengths agreeing). NF_EMODEL naming the attribute. */
int nf__winattr_parse(const nf_node *n, nf__winattr *a, nf_err *err);

/* Fills w for input X = x, (N, C, D1, ..., Dnd), and a kernel
 * kernel[0..nd) (from kernel_shape or from W), following the output-size
 * rules of ONNX Conv/MaxPool/AveragePool (floor, or ceil with ceil_mode;
 * SAME_* gives ceil(in / stride)). In ceil mode a last window that would
 * start in the end padding is dropped (PyTorch and the ONNX reference).
 * Attribute-length errors are NF_EMODEL; an input smaller than the window
 * fails with shape_code (NF_ESHAPE for request data) naming X's dim. */
int nf__win_infer(const nf_node *n, const nf__winattr *a, const nf_value *x, const int64_t *kernel, int shape_code,
                  nf__win *w, nf_err *err);

/* NF_EMODEL when every given value is a constant (the model is wrong),
 * NF_ESHAPE otherwise (the request's shapes are). NULLs are skipped. */
int nf__dense_shape_code(const nf_value *a, const nf_value *b);

#endif
