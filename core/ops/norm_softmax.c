/*
 * norm_softmax.c: Softmax, LogSoftmax and Hardmax, in both semantics:
 * before opset 13 the input is coerced to 2-D [prod(dims[:axis]),
 * prod(dims[axis:])] and normalized along the rows; from 13 along the one
 * axis. Specs: onnx/docs/Changelog.md, Softmax-1/11/13.
 *
 * Numerically stable: exp(x - max) over the axis, so large inputs do not
 * overflow. Either semantics becomes [outer, R, inner]: inner == 1 is a
 * contiguous row per output (the transformer case: attention scores along
 * the last axis); inner > 1 keeps per-column maxima and sums in scratch so
 * every loop stays contiguous.
 */
#include <math.h>
#include <string.h>

#include "ops.h"
#include "ops_vec.h"

enum { SM_SOFTMAX, SM_LOGSOFTMAX, SM_HARDMAX };

typedef struct sm_priv {
    int kind;     /* SM_* */
    bool coerce;  /* opset < 13: flatten to 2-D at axis */
    int64_t axis;
    int64_t outer, red, inner; /* planned by infer */
} sm_priv;

static int sm_prepare(nf_model *m, nf_node *n, nf_err *err, bool coerce)
{
    if (n->n_in < 1 || n->in[0] < 0 || n->n_out < 1 || n->out[0] < 0)
        return nf_node_err(err, NF_EMODEL, n, "needs one input and one output");
    sm_priv *p = nf_arena_alloc(&m->arena, sizeof *p);
    if (p == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    if (strcmp(n->op, "Softmax") == 0)
        p->kind = SM_SOFTMAX;
    else if (strcmp(n->op, "LogSoftmax") == 0)
        p->kind = SM_LOGSOFTMAX;
    else if (strcmp(n->op, "Hardmax") == 0)
        p->kind = SM_HARDMAX;
    else
        return nf_err_set(err, NF_EINTERNAL, "softmax kernel registered for unknown op %s", n->op);
    p->coerce = coerce;
    /* the default axis moved from 1 to -1 with the semantics at opset 13 */
    p->axis = nf_attr_int(n, "axis", coerce ? 1 : -1);
    n->priv = p;
    return NF_OK;
}

int nf_op_softmax_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    return sm_prepare(m, n, err, false);
}

int nf_op_softmax_2d_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    return sm_prepare(m, n, err, true);
}

int nf_op_softmax_infer(nf_model *m, nf_node *n, nf_err *err)
{
    sm_priv *p = n->priv;
    nf_value *x = nf_in(m, n, 0), *y = nf_out(m, n, 0);
    if (x->dtype != NF_DT_FLOAT && x->dtype != NF_DT_DOUBLE)
        return nf_node_err(err, NF_EUNSUPPORTED, n, "input type %s is not supported (float32, double)",
                           nf_dtype_name(x->dtype));
    int r = x->n_dims;
    int64_t a = p->axis < 0 ? p->axis + r : p->axis;
    if (a < 0 || a >= r)
        return nf_node_err(err, NF_ESHAPE, n, "axis %lld is out of range for rank %d", (long long)p->axis, r);
    p->outer = nf_dims_count((int)a, x->dims);
    if (p->coerce) {
        p->red = nf_dims_count(r - (int)a, x->dims + a);
        p->inner = 1;
    } else {
        p->red = x->dims[a];
        p->inner = nf_dims_count(r - (int)a - 1, x->dims + a + 1);
    }
    /* inner > 1: a row of maxima and a row of sums */
    n->scratch_bytes = p->inner > 1 && p->kind != SM_HARDMAX ? (size_t)p->inner * 2 * sizeof(double) : 0;
    return nf_value_set(y, x->dtype, x->n_dims, x->dims, err);
}

/* inner == 1, double (float has its own on four lanes, below). */
static void rows_f64(int kind, const double *x, double *y, int64_t outer, int64_t R)
{
    for (int64_t o = 0; o < outer; o++, x += R, y += R) {
        double mx = x[0], s = 0;
        for (int64_t r = 1; r < R; r++)
            mx = x[r] > mx ? x[r] : mx;
        if (kind == SM_SOFTMAX) {
            for (int64_t r = 0; r < R; r++) {
                y[r] = exp(x[r] - mx);
                s += y[r];
            }
            double inv = 1.0 / s;
            for (int64_t r = 0; r < R; r++)
                y[r] *= inv;
        } else {
            for (int64_t r = 0; r < R; r++)
                s += exp(x[r] - mx);
            double ls = log(s);
            for (int64_t r = 0; r < R; r++)
                y[r] = (x[r] - mx) - ls;
        }
    }
}

/* DEF_PLANE(T, SUF, EXP, LOG): the inner > 1 and Hardmax kernels. */
#define DEF_PLANE(T, SUF, EXP, LOG)                                                                \
    static void plane_##SUF(int kind, const T *x, T *y, int64_t outer, int64_t R, int64_t I,       \
                            double *mx, double *s)                                                 \
    {                                                                                              \
        for (int64_t o = 0; o < outer; o++, x += R * I, y += R * I) {                              \
            for (int64_t i = 0; i < I; i++)                                                        \
                mx[i] = x[i], s[i] = 0;                                                            \
            for (int64_t r = 1; r < R; r++)                                                        \
                for (int64_t i = 0; i < I; i++)                                                    \
                    mx[i] = x[r * I + i] > mx[i] ? x[r * I + i] : mx[i];                           \
            for (int64_t r = 0; r < R; r++)                                                        \
                for (int64_t i = 0; i < I; i++) {                                                  \
                    T e = EXP(x[r * I + i] - (T)mx[i]);                                            \
                    if (kind == SM_SOFTMAX)                                                        \
                        y[r * I + i] = e;                                                          \
                    s[i] += e;                                                                     \
                }                                                                                  \
            if (kind == SM_SOFTMAX) {                                                              \
                for (int64_t i = 0; i < I; i++)                                                    \
                    s[i] = 1.0 / s[i];                                                             \
                for (int64_t r = 0; r < R; r++)                                                    \
                    for (int64_t i = 0; i < I; i++)                                                \
                        y[r * I + i] *= (T)s[i];                                                   \
            } else {                                                                               \
                for (int64_t i = 0; i < I; i++)                                                    \
                    s[i] = (double)LOG((T)s[i]);                                                   \
                for (int64_t r = 0; r < R; r++)                                                    \
                    for (int64_t i = 0; i < I; i++)                                                \
                        y[r * I + i] = (x[r * I + i] - (T)mx[i]) - (T)s[i];                        \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    /* 1 at the first maximum along the axis, 0 elsewhere (a NaN counts as                         \
     * the maximum, as numpy's argmax has it). */                                                  \
    static void hardmax_##SUF(const T *x, T *y, int64_t outer, int64_t R, int64_t I)               \
    {                                                                                              \
        memset(y, 0, (size_t)(outer * R * I) * sizeof(T));                                         \
        for (int64_t o = 0; o < outer; o++, x += R * I, y += R * I)                                \
            for (int64_t i = 0; i < I; i++) {                                                      \
                int64_t bi = 0;                                                                    \
                T b = x[i];                                                                        \
                for (int64_t r = 1; r < R && b == b; r++) {                                        \
                    T v = x[r * I + i];                                                            \
                    if (v > b || v != v)                                                           \
                        b = v, bi = r;                                                             \
                }                                                                                  \
                y[bi * I + i] = 1;                                                                 \
            }                                                                                      \
    }

DEF_PLANE(float, f32, expf, logf)
DEF_PLANE(double, f64, exp, log)

/* ---- float rows on sixteen lanes -----------------------------------------
 * expf is most of a softmax's time; exp_v16f is Cephes' expf polynomial on
 * GCC vector extensions of 16 floats, within 2 ulp of expf for x in
 * [-87.33, 88.37]. Below (exp goes subnormal) it returns 0, above it
 * saturates at exp(88.37) (softmax only feeds it x - max <= 0); NaN stays
 * NaN. rows_f32 is compiled per SIMD level (ops_vec.h): a v16f is four
 * SSE2 registers in the baseline build, one zmm in the AVX-512 clone (the
 * transformer case, rows of 32 scores: 9 -> 4 us a node at batch 1). The
 * scalar tail (rows not a multiple of 16) uses nf__exp_f32; rows shorter
 * than 16 go through short_rows_f32. */
typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
/* the helpers taking and returning v16f are always inlined: no call, so no
 * ABI for GCC to warn about in the baseline build */
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wpsabi"
#elif defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

NF_VEC_INLINE v16f v16f_load(const float *p)
{
    v16f v;
    memcpy(&v, p, sizeof v);
    return v;
}

NF_VEC_INLINE void v16f_store(float *p, v16f v)
{
    memcpy(p, &v, sizeof v);
}

NF_VEC_INLINE v16f v16f_splat(float f)
{
    return (v16f){f, f, f, f, f, f, f, f, f, f, f, f, f, f, f, f};
}

NF_VEC_INLINE v16f exp_v16f(v16f x)
{
    const v16f hi = v16f_splat(88.37f), lo = v16f_splat(-87.33654f);
    v16i under = x < lo;
    v16i over = x > hi;
    x = (v16f)(((v16i)x & ~over) | ((v16i)hi & over));
    /* x = n ln2 + r, |r| <= ln2 / 2; n rounded by the 1.5 * 2^23 trick */
    const v16f magic = v16f_splat(12582912.0f);
    v16f t = x * v16f_splat(1.44269504088896341f) + magic;
    v16f n = t - magic;
    v16f r = x - n * v16f_splat(0.693359375f) - n * v16f_splat(-2.12194440e-4f);
    v16f p = v16f_splat(1.9875691500e-4f);
    p = p * r + v16f_splat(1.3981999507e-3f);
    p = p * r + v16f_splat(8.3334519073e-3f);
    p = p * r + v16f_splat(4.1665795894e-2f);
    p = p * r + v16f_splat(1.6666665459e-1f);
    p = p * r + v16f_splat(5.0000001201e-1f);
    p = p * r * r + r + v16f_splat(1.0f);
    /* 2^n from the exponent bits: n in [-126, 127] here */
    v16i e = (__builtin_convertvector(n, v16i) + 127) << 23;
    p *= (v16f)e;
    return (v16f)((v16i)p & ~under);
}

/* horizontal max and sum of a v16f by halving: 4 steps, not 15 */
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

NF_VEC_INLINE float hmax16(v16f m)
{
    v8f a = __builtin_shufflevector(m, m, 0, 1, 2, 3, 4, 5, 6, 7);
    v8f b = __builtin_shufflevector(m, m, 8, 9, 10, 11, 12, 13, 14, 15);
    a = (v8f)(((v8i)b & (b > a)) | ((v8i)a & ~(b > a)));
    v4f c = __builtin_shufflevector(a, a, 0, 1, 2, 3), d = __builtin_shufflevector(a, a, 4, 5, 6, 7);
    c = (v4f)(((v4i)d & (d > c)) | ((v4i)c & ~(d > c)));
    float r = c[0];
    for (int j = 1; j < 4; j++)
        r = c[j] > r ? c[j] : r;
    return r;
}

NF_VEC_INLINE float hsum16(v16f m)
{
    v8f a = __builtin_shufflevector(m, m, 0, 1, 2, 3, 4, 5, 6, 7) +
            __builtin_shufflevector(m, m, 8, 9, 10, 11, 12, 13, 14, 15);
    v4f c = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
    return (c[0] + c[2]) + (c[1] + c[3]);
}

NF_VEC_INLINE float max_f32(const float *x, int64_t n)
{
    int64_t i = 0;
    float mx = x[0];
    if (n >= 16) {
        v16f m = v16f_load(x);
        for (i = 16; i + 16 <= n; i += 16) {
            v16f v = v16f_load(x + i);
            m = (v16f)(((v16i)v & (v > m)) | ((v16i)m & ~(v > m)));
        }
        mx = hmax16(m);
    }
    for (; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    return mx;
}

/* y = exp(x - mx) (y may be NULL: only the sum is wanted); returns the sum
 * in double, the float lanes flushed into it every 1024 elements. */
NF_VEC_INLINE double expsum_f32(const float *x, float *y, int64_t n, float mx)
{
    v16f m = v16f_splat(mx);
    double total = 0;
    int64_t i = 0;
    while (i + 16 <= n) {
        int64_t end = n - i > 1024 ? i + 1024 : n;
        v16f acc = v16f_splat(0.0f);
        for (; i + 16 <= end; i += 16) {
            v16f e = exp_v16f(v16f_load(x + i) - m);
            if (y != NULL)
                v16f_store(y + i, e);
            acc += e;
        }
        total += hsum16(acc);
    }
    for (; i < n; i++) {
        float e = nf__exp_f32(x[i] - mx);
        if (y != NULL)
            y[i] = e;
        total += e;
    }
    return total;
}

/* Softmax of rows shorter than a vector (a classifier's classes): the
 * rows' maxima subtracted one by one, then e^ over the whole block in
 * vectors, then each row scaled by its sum; the same arithmetic as the
 * row by row path, without a scalar exp per element. */
NF_VEC_INLINE void short_rows_f32(const float *x, float *y, int64_t outer, int64_t R)
{
    for (int64_t o = 0; o < outer; o++) {
        float mx = max_f32(x + o * R, R);
        for (int64_t r = 0; r < R; r++)
            y[o * R + r] = x[o * R + r] - mx;
    }
    int64_t n = outer * R, i = 0;
    for (; i + 16 <= n; i += 16)
        v16f_store(y + i, exp_v16f(v16f_load(y + i)));
    for (; i < n; i++)
        y[i] = nf__exp_f32(y[i]);
    for (int64_t o = 0; o < outer; o++) {
        double total = 0;
        for (int64_t r = 0; r < R; r++)
            total += y[o * R + r];
        float inv = (float)(1.0 / total);
        for (int64_t r = 0; r < R; r++)
            y[o * R + r] *= inv;
    }
}

NF_VEC_CLONES static void rows_f32(int kind, const float *x, float *y, int64_t outer, int64_t R)
{
    if (kind == SM_SOFTMAX && R < 16) {
        short_rows_f32(x, y, outer, R);
        return;
    }
    for (int64_t o = 0; o < outer; o++, x += R, y += R) {
        float mx = max_f32(x, R);
        int64_t i = 0;
        if (kind == SM_SOFTMAX) {
            float inv = (float)(1.0 / expsum_f32(x, y, R, mx));
            v16f vi = v16f_splat(inv);
            for (; i + 16 <= R; i += 16)
                v16f_store(y + i, v16f_load(y + i) * vi);
            for (; i < R; i++)
                y[i] *= inv;
        } else {
            float ls = logf((float)expsum_f32(x, NULL, R, mx));
            v16f m = v16f_splat(mx), l = v16f_splat(ls);
            for (; i + 16 <= R; i += 16)
                v16f_store(y + i, (v16f_load(x + i) - m) - l);
            for (; i < R; i++)
                y[i] = (x[i] - mx) - ls;
        }
    }
}

int nf_op_softmax_run(nf_model *m, nf_node *n, nf_err *err)
{
    const sm_priv *p = n->priv;
    nf_value *x = nf_in(m, n, 0), *y = nf_out(m, n, 0);
    if (y->size == 0)
        return NF_OK;
    double *mx = n->scratch, *s = mx ? mx + p->inner : NULL;
    if (x->dtype == NF_DT_FLOAT) {
        if (p->kind == SM_HARDMAX)
            hardmax_f32(x->data, y->data, p->outer, p->red, p->inner);
        else if (p->inner == 1)
            rows_f32(p->kind, x->data, y->data, p->outer, p->red);
        else
            plane_f32(p->kind, x->data, y->data, p->outer, p->red, p->inner, mx, s);
    } else if (x->dtype == NF_DT_DOUBLE) {
        if (p->kind == SM_HARDMAX)
            hardmax_f64(x->data, y->data, p->outer, p->red, p->inner);
        else if (p->inner == 1)
            rows_f64(p->kind, x->data, y->data, p->outer, p->red);
        else
            plane_f64(p->kind, x->data, y->data, p->outer, p->red, p->inner, mx, s);
    } else {
        return nf_err_set(err, NF_EINTERNAL, "softmax: unchecked type %d", x->dtype);
    }
    return NF_OK;
}

/* The opset < 13 hooks differ only in prepare. */
int nf_op_softmax_2d_infer(nf_model *m, nf_node *n, nf_err *err)
{
    return nf_op_softmax_infer(m, n, err);
}

int nf_op_softmax_2d_run(nf_model *m, nf_node *n, nf_err *err)
{
    return nf_op_softmax_run(m, n, err);
}
