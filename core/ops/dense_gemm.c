/*
 * dense_gemm.c: MatMul and Gemm, float32 and float64 through OpenBLAS
 * (cblas_sgemm / cblas_dgemm), MatMul also on 32/64-bit integers with a
 * plain loop (wrapping arithmetic, as two's complement hardware does).
 * Owns the process-wide OpenBLAS thread setting. Kernel state lives in
 * n->priv (model arena); infer writes the shapes the run reads.
 */
#include <cblas.h>
#include <limits.h>
#include <string.h>

#include "ops_dense.h"

/* ---- BLAS -------------------------------------------------------------------- */
static int blas_threads_set; /* process-wide: OpenBLAS has one thread pool */

void nf__dense_blas_init(const nf_model *m)
{
    if (blas_threads_set)
        return;
    blas_threads_set = 1;
    int t = m->opts.n_threads;
    openblas_set_num_threads(t > 0 ? t : 1);
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
    enum CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
    if (dtype == NF_DT_FLOAT)
        cblas_sgemm(CblasRowMajor, ta, tb, (int)M, (int)N, (int)K, (float)alpha, A, (int)lda, B, (int)ldb,
                    (float)beta, C, (int)ldc);
    else
        cblas_dgemm(CblasRowMajor, ta, tb, (int)M, (int)N, (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C,
                    (int)ldc);
}

/* ---- Gemm: Y = alpha * A' * B' + beta * C ------------------------------------
 * ONNX Gemm-1..13: A' is A or A^T (transA), B' likewise; C is
 * unidirectionally broadcast to (M, N) (opsets 1 and 6: only when
 * broadcast = 1, else C is (M, N)); C is optional from opset 11. */
typedef struct gemm_priv {
    bool trans_a, trans_b, legacy_no_bcast;
    double alpha, beta;
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
    nf__dense_blas_init(m);
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
    nf__gemm(y->dtype, p->trans_a, p->trans_b, M, N, K, p->alpha, a->data, a->dims[1], b->data, b->dims[1], beta,
             y->data, N);
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
    nf__dense_blas_init(m);
    return NF_OK;
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
