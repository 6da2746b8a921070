/*
 * norm.c: BatchNormalization, InstanceNormalization and LayerNormalization.
 * Specs: onnx/docs/Operators.md and Changelog.md (BatchNormalization-6/7/9/
 * 14/15, InstanceNormalization-6, LayerNormalization-17).
 *
 * All three reduce to y = x * a + b on contiguous runs of x, with a and b
 * per channel (BatchNormalization, from the given or the batch statistics),
 * per instance and channel (InstanceNormalization) or per row
 * (LayerNormalization, times the Scale and plus B pattern). Statistics are
 * two-pass (mean, then squared deviations), so large offsets do not
 * cancel, and summed in double (float rows: four float lanes flushed into
 * a double every 1024 elements); the per-element loops stay in the element
 * type.
 */
#include <math.h>
#include <string.h>

#include "ops.h"
#include "ops_vec.h"

/* as in elementwise.c: let -O2 vectorise loops of unknown trip count */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("tree-vectorize", "vect-cost-model=cheap", "no-trapping-math")
#endif

/* Sum and sum of squared deviations of a contiguous run, in double with
 * four partial sums in flight; y = x * a + b. The float versions below are
 * written on GCC vector extensions instead (four lanes: SSE2 on x86-64,
 * NEON on arm64), since -O2 does not vectorize reductions. */
#define DEF_STATS(T, SUF)                                                    \
    static double sum_##SUF(const T *x, int64_t n)                           \
    {                                                                        \
        double a0 = 0, a1 = 0, a2 = 0, a3 = 0;                               \
        int64_t i = 0;                                                       \
        for (; i + 4 <= n; i += 4) {                                         \
            a0 += x[i];                                                      \
            a1 += x[i + 1];                                                  \
            a2 += x[i + 2];                                                  \
            a3 += x[i + 3];                                                  \
        }                                                                    \
        for (; i < n; i++)                                                   \
            a0 += x[i];                                                      \
        return (a0 + a1) + (a2 + a3);                                        \
    }                                                                        \
    static double sqdev_##SUF(const T *x, int64_t n, double mean)            \
    {                                                                        \
        double a0 = 0, a1 = 0, a2 = 0, a3 = 0;                               \
        int64_t i = 0;                                                       \
        for (; i + 4 <= n; i += 4) {                                         \
            double d0 = x[i] - mean, d1 = x[i + 1] - mean;                   \
            double d2 = x[i + 2] - mean, d3 = x[i + 3] - mean;               \
            a0 += d0 * d0;                                                   \
            a1 += d1 * d1;                                                   \
            a2 += d2 * d2;                                                   \
            a3 += d3 * d3;                                                   \
        }                                                                    \
        for (; i < n; i++) {                                                 \
            double d = x[i] - mean;                                          \
            a0 += d * d;                                                     \
        }                                                                    \
        return (a0 + a1) + (a2 + a3);                                        \
    }                                                                        \
    static void affine_##SUF(const T *x, T *y, int64_t n, double a, double b) \
    {                                                                        \
        T ta = (T)a, tb = (T)b;                                              \
        for (int64_t i = 0; i < n; i++)                                      \
            y[i] = x[i] * ta + tb;                                           \
    }

DEF_STATS(double, f64)

typedef float v4f __attribute__((vector_size(16)));

static inline v4f v4f_load(const float *p)
{
    v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void v4f_store(float *p, v4f v)
{
    memcpy(p, &v, sizeof v);
}

/* Float lanes sum at most this many elements before they are added into
 * a double: the float partial sums stay short, the total stays exact
 * enough for rows of any length. */
#define CHUNK 1024

static double sum_f32(const float *x, int64_t n)
{
    double total = 0;
    int64_t i = 0;
    while (i + 4 <= n) {
        int64_t end = n - i > CHUNK ? i + CHUNK : n;
        v4f a0 = {0}, a1 = {0};
        for (; i + 8 <= end; i += 8) {
            a0 += v4f_load(x + i);
            a1 += v4f_load(x + i + 4);
        }
        for (; i + 4 <= end; i += 4)
            a0 += v4f_load(x + i);
        a0 += a1;
        total += ((double)a0[0] + a0[1]) + ((double)a0[2] + a0[3]);
    }
    for (; i < n; i++)
        total += x[i];
    return total;
}

/* Sum of (x - mean)^2; the deviations in float, the mean rounded to
 * float once (an error c in it adds c^2 to the variance: negligible). */
static double sqdev_f32(const float *x, int64_t n, double mean)
{
    double total = 0;
    float mf = (float)mean;
    v4f m = {mf, mf, mf, mf};
    int64_t i = 0;
    while (i + 4 <= n) {
        int64_t end = n - i > CHUNK ? i + CHUNK : n;
        v4f a0 = {0}, a1 = {0};
        for (; i + 8 <= end; i += 8) {
            v4f d0 = v4f_load(x + i) - m, d1 = v4f_load(x + i + 4) - m;
            a0 += d0 * d0;
            a1 += d1 * d1;
        }
        for (; i + 4 <= end; i += 4) {
            v4f d = v4f_load(x + i) - m;
            a0 += d * d;
        }
        a0 += a1;
        total += ((double)a0[0] + a0[1]) + ((double)a0[2] + a0[3]);
    }
    for (; i < n; i++) {
        float d = x[i] - mf;
        total += (double)d * d;
    }
    return total;
}

/* y = x * a + b; compiled per SIMD level (ops_vec.h): with FMA the
 * product is not rounded before the sum */
NF_VEC_CLONES static void affine_f32(const float *x, float *y, int64_t n, double a, double b)
{
    float fa = (float)a, fb = (float)b;
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * fa + fb;
}


static bool is_float_type(int dt)
{
    return dt == NF_DT_FLOAT || dt == NF_DT_DOUBLE;
}

/* ---- BatchNormalization ---------------------------------------------------
 * Inference: y = (x - mean) / sqrt(var + eps) * scale + B per channel.
 * Training mode (opset 14+, training_mode = 1): mean and var are the batch's
 * (population variance over every axis but 1), and outputs 1 and 2 are the
 * running statistics  input * momentum + batch * (1 - momentum).
 * Before opset 14 the training outputs (mean, var, saved_mean, saved_var)
 * are refused: a trained model exported for inference does not ask for
 * them; opset 6's is_test is ignored (this is inference). */
typedef struct bn_priv {
    double eps, momentum;
    bool training;
    bool spatial;       /* opset 6-8 attribute; spatial = 0 normalizes per element of dims[1:] */
    int64_t N, ch, inner; /* planned: x is [N, ch, inner] */
} bn_priv;

static int bn_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    if (n->n_in < 5 || n->n_out < 1 || n->out[0] < 0)
        return nf_node_err(err, NF_EMODEL, n, "needs inputs X, scale, B, mean, var and output Y");
    for (int i = 0; i < 5; i++)
        if (n->in[i] < 0)
            return nf_node_err(err, NF_EMODEL, n, "input %d is missing (all five are required)", i);
    bn_priv *p = nf_arena_alloc(&m->arena, sizeof *p);
    if (p == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    p->eps = nf_attr_float(n, "epsilon", 1e-5f);
    p->momentum = nf_attr_float(n, "momentum", 0.9f);
    p->spatial = n->opset >= 9 || nf_attr_int(n, "spatial", 1) != 0;
    p->training = n->opset >= 14 && nf_attr_int(n, "training_mode", 0) != 0;
    for (int j = 1; j < n->n_out; j++) {
        if (n->out[j] < 0)
            continue;
        if (n->opset < 14)
            return nf_node_err(err, NF_EUNSUPPORTED, n,
                               "output %d: training outputs (mean, var, saved_mean, saved_var) are not supported", j);
        if (!p->training)
            return nf_node_err(err, NF_EMODEL, n, "output %d: running statistics need training_mode = 1", j);
        if (j > 2)
            return nf_node_err(err, NF_EMODEL, n, "has %d outputs, at most 3 at opset %d", n->n_out, n->opset);
    }
    n->priv = p;
    return NF_OK;
}

int nf_op_batchnorm_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    return bn_prepare(m, n, err);
}

int nf_op_batchnorm14_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    return bn_prepare(m, n, err);
}

int nf_op_batchnorm_infer(nf_model *m, nf_node *n, nf_err *err)
{
    bn_priv *p = n->priv;
    nf_value *x = nf_in(m, n, 0);
    static const char *const names[] = {"X", "scale", "B", "mean", "var"};
    if (!is_float_type(x->dtype))
        return nf_node_err(err, NF_EUNSUPPORTED, n, "input X type %s is not supported (float32, double)",
                           nf_dtype_name(x->dtype));
    if (x->n_dims < 2)
        return nf_node_err(err, NF_ESHAPE, n, "input X has rank %d, needs [N, C, ...]", x->n_dims);
    p->N = x->dims[0];
    p->ch = x->dims[1];
    p->inner = nf_dims_count(x->n_dims - 2, x->dims + 2);
    if (!p->spatial && nf_in(m, n, 1)->size != p->ch) {
        /* non-spatial: statistics per element of [C, D1, ...] */
        p->ch *= p->inner;
        p->inner = 1;
    }
    for (int i = 1; i < 5; i++) {
        nf_value *v = nf_in(m, n, i);
        if (!is_float_type(v->dtype))
            return nf_node_err(err, NF_EUNSUPPORTED, n, "input %s type %s is not supported (float32, double)",
                               names[i], nf_dtype_name(v->dtype));
        if (v->size != p->ch)
            return nf_node_err(err, NF_ESHAPE, n, "input %s has %lld elements, X has %lld channels", names[i],
                               (long long)v->size, (long long)p->ch);
    }
    int rc = nf_value_set(nf_out(m, n, 0), x->dtype, x->n_dims, x->dims, err);
    for (int j = 1; j <= 2 && rc == NF_OK; j++) {
        nf_value *o = nf_out(m, n, j), *src = nf_in(m, n, 2 + j);
        if (o != NULL)
            rc = nf_value_set(o, src->dtype, src->n_dims, src->dims, err);
    }
    n->scratch_bytes = (size_t)p->ch * 2 * sizeof(double);
    return rc;
}

int nf_op_batchnorm_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    const bn_priv *p = n->priv;
    nf_value *x = nf_in(m, n, 0), *y = nf_out(m, n, 0);
    nf_value *sc = nf_in(m, n, 1), *bi = nf_in(m, n, 2), *mv = nf_in(m, n, 3), *vv = nf_in(m, n, 4);
    double *a = n->scratch, *b = a + p->ch;
    int64_t N = p->N, C = p->ch, I = p->inner;
    bool f32 = x->dtype == NF_DT_FLOAT;
    for (int64_t c = 0; c < C; c++) {
        double mean, var;
        if (p->training) {
            double s = 0, q = 0, cnt = (double)(N * I);
            for (int64_t k = 0; k < N; k++) {
                int64_t off = (k * C + c) * I;
                s += f32 ? sum_f32((const float *)x->data + off, I) : sum_f64((const double *)x->data + off, I);
            }
            mean = cnt > 0 ? s / cnt : 0;
            for (int64_t k = 0; k < N; k++) {
                int64_t off = (k * C + c) * I;
                q += f32 ? sqdev_f32((const float *)x->data + off, I, mean)
                         : sqdev_f64((const double *)x->data + off, I, mean);
            }
            var = cnt > 0 ? q / cnt : 0;
            nf_value *rm = nf_out(m, n, 1), *rv = nf_out(m, n, 2);
            double mom = p->momentum;
            if (rm != NULL)
                nf_set_f64(rm->data, rm->dtype, c, nf_get_f64(mv->data, mv->dtype, c) * mom + mean * (1 - mom));
            if (rv != NULL)
                nf_set_f64(rv->data, rv->dtype, c, nf_get_f64(vv->data, vv->dtype, c) * mom + var * (1 - mom));
        } else {
            mean = nf_get_f64(mv->data, mv->dtype, c);
            var = nf_get_f64(vv->data, vv->dtype, c);
        }
        a[c] = nf_get_f64(sc->data, sc->dtype, c) / sqrt(var + p->eps);
        b[c] = nf_get_f64(bi->data, bi->dtype, c) - mean * a[c];
    }
    for (int64_t k = 0; k < N; k++)
        for (int64_t c = 0; c < C; c++) {
            int64_t off = (k * C + c) * I;
            if (f32)
                affine_f32((const float *)x->data + off, (float *)y->data + off, I, a[c], b[c]);
            else
                affine_f64((const double *)x->data + off, (double *)y->data + off, I, a[c], b[c]);
        }
    return NF_OK;
}

int nf_op_batchnorm14_infer(nf_model *m, nf_node *n, nf_err *err)
{
    return nf_op_batchnorm_infer(m, n, err);
}

int nf_op_batchnorm14_run(nf_model *m, nf_node *n, nf_err *err)
{
    return nf_op_batchnorm_run(m, n, err);
}

/* ---- InstanceNormalization ------------------------------------------------
 * y = scale[c] * (x - mean) / sqrt(var + eps) + B[c], mean and population
 * variance over the spatial dims of each (instance, channel). */
int nf_op_instancenorm_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    (void)m;
    if (n->n_in < 3 || n->in[0] < 0 || n->in[1] < 0 || n->in[2] < 0 || n->n_out < 1 || n->out[0] < 0)
        return nf_node_err(err, NF_EMODEL, n, "needs inputs input, scale, B and one output");
    return NF_OK;
}

int nf_op_instancenorm_infer(nf_model *m, nf_node *n, nf_err *err)
{
    nf_value *x = nf_in(m, n, 0), *s = nf_in(m, n, 1), *b = nf_in(m, n, 2);
    if (!is_float_type(x->dtype) || s->dtype != x->dtype || b->dtype != x->dtype)
        return nf_node_err(err, NF_EUNSUPPORTED, n, "types %s, %s, %s are not supported (float32 or double, all alike)",
                           nf_dtype_name(x->dtype), nf_dtype_name(s->dtype), nf_dtype_name(b->dtype));
    if (x->n_dims < 2)
        return nf_node_err(err, NF_ESHAPE, n, "input has rank %d, needs [N, C, ...]", x->n_dims);
    if (s->size != x->dims[1] || b->size != x->dims[1])
        return nf_node_err(err, NF_ESHAPE, n, "scale and B have %lld and %lld elements, the input %lld channels",
                           (long long)s->size, (long long)b->size, (long long)x->dims[1]);
    return nf_value_set(nf_out(m, n, 0), x->dtype, x->n_dims, x->dims, err);
}

int nf_op_instancenorm_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    nf_value *x = nf_in(m, n, 0), *s = nf_in(m, n, 1), *b = nf_in(m, n, 2), *y = nf_out(m, n, 0);
    double eps = nf_attr_float(n, "epsilon", 1e-5f);
    int64_t N = x->dims[0], C = x->dims[1], I = nf_dims_count(x->n_dims - 2, x->dims + 2);
    bool f32 = x->dtype == NF_DT_FLOAT;
    if (I == 0)
        return NF_OK;
    for (int64_t k = 0; k < N; k++)
        for (int64_t c = 0; c < C; c++) {
            int64_t off = (k * C + c) * I;
            double mean, var;
            if (f32) {
                const float *xp = (const float *)x->data + off;
                mean = sum_f32(xp, I) / (double)I;
                var = sqdev_f32(xp, I, mean) / (double)I;
            } else {
                const double *xp = (const double *)x->data + off;
                mean = sum_f64(xp, I) / (double)I;
                var = sqdev_f64(xp, I, mean) / (double)I;
            }
            double a = nf_get_f64(s->data, s->dtype, c) / sqrt(var + eps);
            double bb = nf_get_f64(b->data, b->dtype, c) - mean * a;
            if (f32)
                affine_f32((const float *)x->data + off, (float *)y->data + off, I, a, bb);
            else
                affine_f64((const double *)x->data + off, (double *)y->data + off, I, a, bb);
        }
    return NF_OK;
}

/* ---- LayerNormalization ---------------------------------------------------
 * Rows are x[outer, D] with D = prod(dims[axis:]); per row
 *   Mean = mean(x), InvStdDev = 1 / sqrt(mean((x - Mean)^2) + eps),
 *   Y = (x - Mean) * InvStdDev * Scale + B.
 * Scale and B broadcast over the normalized dims (opset 17's function body
 * multiplies with numpy broadcasting); we take the shapes that repeat one
 * contiguous pattern along the row: trailing dims equal to X's, leading
 * ones 1. Mean and InvStdDev are float (stash_type 1, the only type U may
 * be besides bfloat16). */
typedef struct ln_priv {
    int64_t axis;
    double eps;
    int64_t outer, D, ls, lb; /* planned: pattern lengths of Scale and B (lb 0: no B) */
} ln_priv;

int nf_op_layernorm_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    if (n->n_in < 2 || n->in[0] < 0 || n->in[1] < 0 || n->n_out < 1 || n->out[0] < 0)
        return nf_node_err(err, NF_EMODEL, n, "needs inputs X, Scale and output Y");
    int64_t st = nf_attr_int(n, "stash_type", 1);
    if (st != NF_DT_FLOAT)
        return nf_node_err(err, NF_EUNSUPPORTED, n, "stash_type %lld is not supported (1: float)", (long long)st);
    ln_priv *p = nf_arena_alloc(&m->arena, sizeof *p);
    if (p == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    p->axis = nf_attr_int(n, "axis", -1);
    p->eps = nf_attr_float(n, "epsilon", 1e-5f);
    n->priv = p;
    return NF_OK;
}

/* Length of the pattern v repeats along a row of x normalized from dim a,
 * or -1 when v does not broadcast that way. */
static int64_t ln_pattern(const nf_value *v, const nf_value *x, int a)
{
    int off = x->n_dims - v->n_dims;
    if (off < 0)
        return -1;
    int first = v->n_dims; /* first dim of v that is not 1 */
    for (int i = 0; i < v->n_dims; i++)
        if (v->dims[i] != 1) {
            first = i;
            break;
        }
    if (first < v->n_dims && first + off < a)
        return -1; /* varies along a dim that is not normalized */
    for (int i = first; i < v->n_dims; i++)
        if (v->dims[i] != x->dims[i + off])
            return -1;
    return v->size;
}

int nf_op_layernorm_infer(nf_model *m, nf_node *n, nf_err *err)
{
    ln_priv *p = n->priv;
    nf_value *x = nf_in(m, n, 0), *s = nf_in(m, n, 1), *b = nf_in(m, n, 2);
    if (!is_float_type(x->dtype) || s->dtype != x->dtype || (b != NULL && b->dtype != x->dtype))
        return nf_node_err(err, NF_EUNSUPPORTED, n, "types %s, %s, %s are not supported (float32 or double, all alike)",
                           nf_dtype_name(x->dtype), nf_dtype_name(s->dtype), b ? nf_dtype_name(b->dtype) : "-");
    int r = x->n_dims;
    int64_t a = p->axis < 0 ? p->axis + r : p->axis;
    if (a < 0 || a >= r)
        return nf_node_err(err, NF_ESHAPE, n, "axis %lld is out of range for rank %d", (long long)p->axis, r);
    p->outer = nf_dims_count((int)a, x->dims);
    p->D = nf_dims_count(r - (int)a, x->dims + a);
    p->ls = ln_pattern(s, x, (int)a);
    p->lb = b ? ln_pattern(b, x, (int)a) : 0;
    if (p->ls < 0 || p->lb < 0)
        return nf_node_err(err, NF_EUNSUPPORTED, n, "%s does not broadcast along the normalized dims of X",
                           p->ls < 0 ? "Scale" : "B");
    int rc = nf_value_set(nf_out(m, n, 0), x->dtype, r, x->dims, err);
    int64_t sd[NF_MAX_DIMS];
    for (int d = 0; d < r; d++)
        sd[d] = d < a ? x->dims[d] : 1;
    for (int j = 1; j <= 2 && rc == NF_OK; j++)
        if (nf_out(m, n, j) != NULL)
            rc = nf_value_set(nf_out(m, n, j), NF_DT_FLOAT, r, sd, err);
    return rc;
}

/* One row: Y from x, the Scale pattern s (length ls) and the B pattern b
 * (length lb, or lb 0 for none). */
#define DEF_LN_ROW(T, SUF)                                                                         \
    static void ln_row_##SUF(const T *x, T *y, int64_t D, T mean, T inv, const T *s, int64_t ls,   \
                             const T *b, int64_t lb)                                               \
    {                                                                                              \
        for (int64_t j = 0, js = 0, jb = 0; j < D; j++) {                                          \
            y[j] = (x[j] - mean) * inv * s[js] + (lb ? b[jb] : 0);                                 \
            if (++js == ls)                                                                        \
                js = 0;                                                                            \
            if (lb && ++jb == lb)                                                                  \
                jb = 0;                                                                            \
        }                                                                                          \
    }

DEF_LN_ROW(float, f32_any)
DEF_LN_ROW(double, f64)

/* The transformer case: Scale and B cover the whole row. */
static void ln_row_f32(const float *x, float *y, int64_t D, float mean, float inv, const float *s, int64_t ls,
                       const float *b, int64_t lb)
{
    if (ls != D || lb != D) {
        ln_row_f32_any(x, y, D, mean, inv, s, ls, b, lb);
        return;
    }
    v4f m = {mean, mean, mean, mean}, iv = {inv, inv, inv, inv};
    int64_t j = 0;
    for (; j + 4 <= D; j += 4)
        v4f_store(y + j, (v4f_load(x + j) - m) * iv * v4f_load(s + j) + v4f_load(b + j));
    for (; j < D; j++)
        y[j] = (x[j] - mean) * inv * s[j] + b[j];
}

int nf_op_layernorm_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    const ln_priv *p = n->priv;
    nf_value *x = nf_in(m, n, 0), *s = nf_in(m, n, 1), *b = nf_in(m, n, 2), *y = nf_out(m, n, 0);
    nf_value *mo = nf_out(m, n, 1), *io = nf_out(m, n, 2);
    int64_t D = p->D;
    bool f32 = x->dtype == NF_DT_FLOAT;
    if (D == 0)
        return NF_OK;
    for (int64_t o = 0; o < p->outer; o++) {
        double mean, var;
        if (f32) {
            const float *xr = (const float *)x->data + o * D;
            mean = sum_f32(xr, D) / (double)D;
            var = sqdev_f32(xr, D, mean) / (double)D;
        } else {
            const double *xr = (const double *)x->data + o * D;
            mean = sum_f64(xr, D) / (double)D;
            var = sqdev_f64(xr, D, mean) / (double)D;
        }
        double inv = 1.0 / sqrt(var + p->eps);
        if (f32)
            ln_row_f32((const float *)x->data + o * D, (float *)y->data + o * D, D, (float)mean, (float)inv,
                       s->data, p->ls, b ? b->data : NULL, p->lb);
        else
            ln_row_f64((const double *)x->data + o * D, (double *)y->data + o * D, D, mean, inv, s->data, p->ls,
                       b ? b->data : NULL, p->lb);
        if (mo != NULL)
            ((float *)mo->data)[o] = (float)mean;
        if (io != NULL)
            ((float *)io->data)[o] = (float)inv;
    }
    return NF_OK;
}
