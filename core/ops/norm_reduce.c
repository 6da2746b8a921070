/*
 * norm_reduce.c: ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd,
 * ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSum, ReduceLogSumExp, and
 * ArgMax / ArgMin. Specs: onnx/docs/Operators.md; axes are an attribute
 * before opset 13 (ReduceSum) or 18 (the others), an optional input after.
 *
 * infer plans each reduction into n->priv and run follows the plan: the
 * input shape is compacted (size-1 dims dropped, neighbours that are both
 * reduced or both kept merged), then either a "plane" loop [outer, R, inner]
 * with one accumulator per inner element in scratch (contiguous, reduced
 * axes in the middle) or a strided walk per output element whose innermost
 * loop runs along the last reduced dim (contiguous when it is the last dim).
 * float and double accumulate in double, int32 and int64 in int64.
 */
#include <math.h>
#include <string.h>

#include "ops.h"

enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_PROD, R_L1, R_L2, R_SUMSQ, R_LOGSUM, R_LSE, R_EXPSUM };

static const struct {
    const char *op;
    int kind;
    int float_only; /* no integer kernel: the result is not an integer */
} red_ops[] = {
    {"ReduceSum", R_SUM, 0},      {"ReduceMean", R_MEAN, 0},        {"ReduceMax", R_MAX, 0},
    {"ReduceMin", R_MIN, 0},      {"ReduceProd", R_PROD, 0},        {"ReduceL1", R_L1, 0},
    {"ReduceL2", R_L2, 1},        {"ReduceSumSquare", R_SUMSQ, 0},  {"ReduceLogSum", R_LOGSUM, 1},
    {"ReduceLogSumExp", R_LSE, 1},
};

typedef struct red_priv {
    int kind;           /* R_* */
    int float_only;
    bool axes_input;    /* axes come from input 1 (ReduceSum 13+, others 18+) */
    bool keepdims, noop;
    int n_axes;         /* attribute axes, model arena */
    const int64_t *axes;
    /* the plan, written by infer for the run that follows */
    bool plane;         /* [outer, R, inner] loop, else strided walk */
    int64_t outer, red, inner;
    int64_t count;      /* elements per output (ReduceMean's divisor) */
    int n_k, n_r;       /* kept and reduced compact dims of the walk */
    int64_t k_ext[NF_MAX_DIMS], k_str[NF_MAX_DIMS];
    int64_t r_ext[NF_MAX_DIMS], r_str[NF_MAX_DIMS];
    int64_t r_blocks;   /* product of r_ext[0 .. n_r-2] */
} red_priv;

static int red_prepare(nf_model *m, nf_node *n, nf_err *err, bool axes_input)
{
    if (n->n_in < 1 || n->in[0] < 0 || n->n_out < 1 || n->out[0] < 0)
        return nf_node_err(err, NF_EMODEL, n, "needs input 'data' and output 'reduced'");
    red_priv *p = nf_arena_alloc(&m->arena, sizeof *p);
    if (p == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    p->kind = -1;
    for (size_t i = 0; i < sizeof red_ops / sizeof red_ops[0]; i++)
        if (strcmp(n->op, red_ops[i].op) == 0) {
            p->kind = red_ops[i].kind;
            p->float_only = red_ops[i].float_only;
        }
    if (p->kind < 0)
        return nf_err_set(err, NF_EINTERNAL, "reduce kernel registered for unknown op %s", n->op);
    p->axes_input = axes_input;
    p->keepdims = nf_attr_int(n, "keepdims", 1) != 0;
    p->noop = axes_input && nf_attr_int(n, "noop_with_empty_axes", 0) != 0;
    if (axes_input) {
        if (nf_attr_get(n, "axes") != NULL)
            return nf_node_err(err, NF_EMODEL, n, "attribute 'axes' is not allowed at opset %d (axes is an input)",
                               n->opset);
    } else {
        int64_t na = nf_attr_ints(n, "axes", &p->axes);
        if (na > NF_MAX_DIMS)
            return nf_node_err(err, NF_EMODEL, n, "attribute 'axes' has %lld entries, more than any rank",
                               (long long)na);
        p->n_axes = (int)na;
    }
    n->priv = p;
    return NF_OK;
}

int nf_op_reduce_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    return red_prepare(m, n, err, false);
}

int nf_op_reduce_axes_in_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    return red_prepare(m, n, err, true);
}

/* Marks the reduced dims of a rank-r input in red[]. Returns NF_OK, or an
 * error naming the axis that is out of range or repeated. */
static int red_axes(nf_node *n, const int64_t *axes, int64_t n_axes, int r, bool red[NF_MAX_DIMS], nf_err *err)
{
    for (int d = 0; d < r; d++)
        red[d] = false;
    for (int64_t i = 0; i < n_axes; i++) {
        int64_t a = axes[i] < 0 ? axes[i] + r : axes[i];
        if (a < 0 || a >= r)
            return nf_node_err(err, NF_ESHAPE, n, "axis %lld is out of range for rank %d", (long long)axes[i], r);
        if (red[a])
            return nf_node_err(err, NF_EMODEL, n, "axis %lld is repeated", (long long)axes[i]);
        red[a] = true;
    }
    return NF_OK;
}

/* Compacts the input shape and chooses the loop (see the file header). */
static void red_plan(red_priv *p, int r, const int64_t *dims, const bool red[NF_MAX_DIMS])
{
    int64_t ext[NF_MAX_DIMS], str[NF_MAX_DIMS];
    bool rd[NF_MAX_DIMS];
    int c = 0;
    int64_t stride = 1;
    p->count = 1;
    /* from the innermost dim out, so strides accumulate; with size-1 dims
     * skipped, each dim starts where the previous compact one ends */
    for (int d = r - 1; d >= 0; d--) {
        if (red[d])
            p->count *= dims[d];
        if (dims[d] == 1)
            continue;
        if (c > 0 && rd[c - 1] == red[d]) {
            ext[c - 1] *= dims[d];
        } else {
            ext[c] = dims[d];
            str[c] = stride;
            rd[c] = red[d];
            c++;
        }
        stride *= dims[d];
    }
    /* back to outermost first */
    for (int i = 0; i < c / 2; i++) {
        int64_t te = ext[i], ts = str[i];
        bool tr = rd[i];
        ext[i] = ext[c - 1 - i], str[i] = str[c - 1 - i], rd[i] = rd[c - 1 - i];
        ext[c - 1 - i] = te, str[c - 1 - i] = ts, rd[c - 1 - i] = tr;
    }
    int n_red_blocks = 0;
    for (int i = 0; i < c; i++)
        n_red_blocks += rd[i];
    p->plane = c >= 2 && !rd[c - 1] && n_red_blocks == 1;
    if (p->plane) {
        p->inner = ext[c - 1];
        p->red = ext[c - 2];
        p->outer = c == 3 ? ext[0] : 1;
        return;
    }
    p->n_k = p->n_r = 0;
    for (int i = 0; i < c; i++) {
        if (rd[i]) {
            p->r_ext[p->n_r] = ext[i];
            p->r_str[p->n_r++] = str[i];
        } else {
            p->k_ext[p->n_k] = ext[i];
            p->k_str[p->n_k++] = str[i];
        }
    }
    p->r_blocks = 1;
    for (int i = 0; i + 1 < p->n_r; i++)
        p->r_blocks *= p->r_ext[i];
}

int nf_op_reduce_infer(nf_model *m, nf_node *n, nf_err *err)
{
    red_priv *p = n->priv;
    nf_value *x = nf_in(m, n, 0), *y = nf_out(m, n, 0);
    int dt = x->dtype;
    if (dt != NF_DT_FLOAT && dt != NF_DT_DOUBLE && (p->float_only || (dt != NF_DT_INT32 && dt != NF_DT_INT64)))
        return nf_node_err(err, NF_EUNSUPPORTED, n, "input type %s is not supported (float32, double%s)",
                           nf_dtype_name(dt), p->float_only ? "" : ", int32, int64");
    const int64_t *axes = p->axes;
    int64_t n_axes = p->n_axes;
    if (p->axes_input) {
        nf_value *a = nf_in(m, n, 1);
        n_axes = 0;
        if (a != NULL) {
            if (a->dtype != NF_DT_INT64)
                return nf_node_err(err, NF_EMODEL, n, "input 'axes' is %s, not int64", nf_dtype_name(a->dtype));
            if (a->n_dims > 1)
                return nf_node_err(err, NF_ESHAPE, n, "input 'axes' has rank %d, not 1", a->n_dims);
            if (a->size > NF_MAX_DIMS)
                return nf_node_err(err, NF_ESHAPE, n, "input 'axes' has %lld entries, more than any rank",
                                   (long long)a->size);
            n_axes = a->size;
            axes = a->data;
        }
    }
    int r = x->n_dims;
    bool red[NF_MAX_DIMS];
    if (n_axes == 0) {
        /* empty axes: all of them, or none with noop_with_empty_axes */
        for (int d = 0; d < r; d++)
            red[d] = !p->noop;
    } else {
        int rc = red_axes(n, axes, n_axes, r, red, err);
        if (rc != NF_OK)
            return rc;
    }
    int64_t od[NF_MAX_DIMS];
    int orank = 0;
    for (int d = 0; d < r; d++) {
        if (!red[d])
            od[orank++] = x->dims[d];
        else if (p->keepdims)
            od[orank++] = 1;
    }
    red_plan(p, r, x->dims, red);
    /* plane accumulators: 8 bytes each (double or int64), LSE needs two rows */
    if (p->plane)
        n->scratch_bytes = (size_t)p->inner * 8 * (p->kind == R_LSE ? 2 : 1);
    return nf_value_set(y, dt, orank, od, err);
}

/* Integer sums and products wrap around (two's complement, as the other
 * runtimes' kernels do) instead of overflowing, which C leaves undefined. */
static inline int64_t wrap_add(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}
static inline int64_t wrap_mul(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a * (uint64_t)b);
}
static inline double f_add(double a, double b)
{
    return a + b;
}
static inline double f_mul(double a, double b)
{
    return a * b;
}
#define ADD(a, b) _Generic((a), int64_t: wrap_add, double: f_add)(a, b)
#define MUL(a, b) _Generic((a), int64_t: wrap_mul, double: f_mul)(a, b)

/* ---- kernels ------------------------------------------------------------
 * DEF_REDUCE(T, SUF, ACC) defines, for elements T accumulated in ACC:
 *   red1_SUF: one strided 1-D run folded into an accumulator;
 *   finish_SUF: the final transform (mean, sqrt, log);
 *   walk_SUF / plane_SUF: the two loops described at the top.
 * NaN propagates through max and min, as numpy's maximum.reduce does. */
#define DEF_REDUCE(T, SUF, ACC)                                                                    \
    static ACC red1_##SUF(int op, const T *x, int64_t n, int64_t s, ACC a, ACC shift)             \
    {                                                                                              \
        int64_t i = 0;                                                                             \
        switch (op) {                                                                              \
        case R_SUM:                                                                                \
        case R_MEAN:                                                                               \
        case R_LOGSUM:                                                                             \
            if (s == 1) { /* independent partial sums: four adds in flight */                      \
                ACC a0 = 0, a1 = 0, a2 = 0, a3 = 0;                                                \
                for (; i + 4 <= n; i += 4) {                                                       \
                    a0 = ADD(a0, (ACC)x[i]);                                                       \
                    a1 = ADD(a1, (ACC)x[i + 1]);                                                   \
                    a2 = ADD(a2, (ACC)x[i + 2]);                                                   \
                    a3 = ADD(a3, (ACC)x[i + 3]);                                                   \
                }                                                                                  \
                a = ADD(a, ADD(ADD(a0, a1), ADD(a2, a3)));                                         \
            }                                                                                      \
            for (; i < n; i++)                                                                     \
                a = ADD(a, (ACC)x[i * s]);                                                         \
            break;                                                                                 \
        case R_SUMSQ:                                                                              \
        case R_L2:                                                                                 \
            for (; i < n; i++) {                                                                   \
                ACC v = (ACC)x[i * s];                                                             \
                a = ADD(a, MUL(v, v));                                                             \
            }                                                                                      \
            break;                                                                                 \
        case R_L1:                                                                                 \
            for (; i < n; i++) {                                                                   \
                ACC v = (ACC)x[i * s];                                                             \
                a = v < 0 ? ADD(a, MUL(v, -1)) : ADD(a, v);                                        \
            }                                                                                      \
            break;                                                                                 \
        case R_PROD:                                                                               \
            for (; i < n; i++)                                                                     \
                a = MUL(a, (ACC)x[i * s]);                                                         \
            break;                                                                                 \
        case R_MAX:                                                                                \
            for (; i < n; i++) {                                                                   \
                ACC v = (ACC)x[i * s];                                                             \
                a = (v > a || v != v) ? v : a;                                                     \
            }                                                                                      \
            break;                                                                                 \
        case R_MIN:                                                                                \
            for (; i < n; i++) {                                                                   \
                ACC v = (ACC)x[i * s];                                                             \
                a = (v < a || v != v) ? v : a;                                                     \
            }                                                                                      \
            break;                                                                                 \
        case R_EXPSUM:                                                                             \
            for (; i < n; i++)                                                                     \
                a += (ACC)exp((double)((ACC)x[i * s] - shift));                                    \
            break;                                                                                 \
        }                                                                                          \
        return a;                                                                                  \
    }                                                                                              \
                                                                                                   \
    /* Folds the reduced region that starts at x (see red_priv). */                                \
    static ACC region_##SUF(const red_priv *p, const T *x, int op, ACC a, ACC shift)               \
    {                                                                                              \
        if (p->n_r == 0)                                                                           \
            return red1_##SUF(op, x, 1, 1, a, shift);                                              \
        int nr = p->n_r;                                                                           \
        int64_t idx[NF_MAX_DIMS] = {0};                                                            \
        for (int64_t b = 0; b < p->r_blocks; b++) {                                                \
            int64_t off = 0;                                                                       \
            for (int j = 0; j + 1 < nr; j++)                                                       \
                off += idx[j] * p->r_str[j];                                                       \
            a = red1_##SUF(op, x + off, p->r_ext[nr - 1], p->r_str[nr - 1], a, shift);             \
            for (int j = nr - 2; j >= 0 && ++idx[j] == p->r_ext[j]; j--)                           \
                idx[j] = 0;                                                                        \
        }                                                                                          \
        return a;                                                                                  \
    }                                                                                              \
                                                                                                   \
    static ACC init_##SUF(int op)                                                                  \
    {                                                                                              \
        switch (op) {                                                                              \
        case R_PROD: return 1;                                                                     \
        case R_MAX: return red_lowest_##SUF;                                                       \
        case R_MIN: return red_highest_##SUF;                                                      \
        default: return 0;                                                                         \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    static T finish_##SUF(int op, ACC a, int64_t count)                                            \
    {                                                                                              \
        switch (op) {                                                                              \
        case R_MEAN: return count ? (T)(a / (ACC)count) : (T)red_empty_mean_##SUF;                 \
        case R_L2: return (T)sqrt((double)a);                                                      \
        case R_LOGSUM: return (T)log((double)a);                                                   \
        default: return (T)a;                                                                      \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    static void walk_##SUF(const red_priv *p, const T *x, T *y)                                    \
    {                                                                                              \
        int64_t n_out = 1, idx[NF_MAX_DIMS] = {0};                                                 \
        for (int j = 0; j < p->n_k; j++)                                                           \
            n_out *= p->k_ext[j];                                                                  \
        for (int64_t o = 0; o < n_out; o++) {                                                      \
            int64_t base = 0;                                                                      \
            for (int j = 0; j < p->n_k; j++)                                                       \
                base += idx[j] * p->k_str[j];                                                      \
            if (p->kind == R_LSE) {                                                                \
                /* log(sum(exp(x - max))) + max: no overflow */                                    \
                ACC mx = region_##SUF(p, x + base, R_MAX, red_lowest_##SUF, 0);                    \
                if (isfinite((double)mx))                                                          \
                    mx += (ACC)log((double)region_##SUF(p, x + base, R_EXPSUM, 0, mx));            \
                y[o] = (T)mx;                                                                      \
            } else {                                                                               \
                y[o] = finish_##SUF(p->kind, region_##SUF(p, x + base, p->kind, init_##SUF(p->kind), 0), \
                                    p->count);                                                     \
            }                                                                                      \
            for (int j = p->n_k - 1; j >= 0 && ++idx[j] == p->k_ext[j]; j--)                       \
                idx[j] = 0;                                                                        \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    /* acc: inner accumulators (scratch); for LSE acc2 holds the maxima. */                        \
    static void plane_##SUF(const red_priv *p, const T *x, T *y, ACC *acc, ACC *acc2)              \
    {                                                                                              \
        int64_t R = p->red, I = p->inner;                                                          \
        int op = p->kind;                                                                          \
        for (int64_t o = 0; o < p->outer; o++, x += R * I, y += I) {                               \
            if (op == R_LSE) {                                                                     \
                for (int64_t i = 0; i < I; i++)                                                    \
                    acc2[i] = red_lowest_##SUF, acc[i] = 0;                                        \
                for (int64_t r = 0; r < R; r++)                                                    \
                    for (int64_t i = 0; i < I; i++) {                                              \
                        ACC v = (ACC)x[r * I + i];                                                 \
                        acc2[i] = (v > acc2[i] || v != v) ? v : acc2[i];                           \
                    }                                                                              \
                for (int64_t r = 0; r < R; r++)                                                    \
                    for (int64_t i = 0; i < I; i++)                                                \
                        acc[i] += (ACC)exp((double)((ACC)x[r * I + i] - acc2[i]));                 \
                for (int64_t i = 0; i < I; i++)                                                    \
                    y[i] = (T)(isfinite((double)acc2[i]) ? acc2[i] + (ACC)log((double)acc[i]) : acc2[i]); \
                continue;                                                                          \
            }                                                                                      \
            ACC a0 = init_##SUF(op);                                                               \
            for (int64_t i = 0; i < I; i++)                                                        \
                acc[i] = a0;                                                                       \
            for (int64_t r = 0; r < R; r++) {                                                      \
                const T *row = x + r * I;                                                          \
                switch (op) {                                                                      \
                case R_SUM: case R_MEAN: case R_LOGSUM:                                            \
                    for (int64_t i = 0; i < I; i++)                                                \
                        acc[i] = ADD(acc[i], (ACC)row[i]);                                         \
                    break;                                                                         \
                case R_MAX:                                                                        \
                    for (int64_t i = 0; i < I; i++) {                                              \
                        ACC v = (ACC)row[i];                                                       \
                        acc[i] = (v > acc[i] || v != v) ? v : acc[i];                              \
                    }                                                                              \
                    break;                                                                         \
                case R_MIN:                                                                        \
                    for (int64_t i = 0; i < I; i++) {                                              \
                        ACC v = (ACC)row[i];                                                       \
                        acc[i] = (v < acc[i] || v != v) ? v : acc[i];                              \
                    }                                                                              \
                    break;                                                                         \
                default:                                                                           \
                    for (int64_t i = 0; i < I; i++)                                                \
                        acc[i] = red1_##SUF(op, row + i, 1, 1, acc[i], 0);                         \
                    break;                                                                         \
                }                                                                                  \
            }                                                                                      \
            for (int64_t i = 0; i < I; i++)                                                        \
                y[i] = finish_##SUF(op, acc[i], p->count);                                         \
        }                                                                                          \
    }

/* per type: the identity of max and min, and the mean of nothing */
#define red_lowest_f32 (-INFINITY)
#define red_highest_f32 INFINITY
#define red_lowest_f64 (-INFINITY)
#define red_highest_f64 INFINITY
#define red_lowest_i32 INT32_MIN
#define red_highest_i32 INT32_MAX
#define red_lowest_i64 INT64_MIN
#define red_highest_i64 INT64_MAX
#define red_empty_mean_f32 NAN
#define red_empty_mean_f64 NAN
#define red_empty_mean_i32 0
#define red_empty_mean_i64 0

DEF_REDUCE(float, f32, double)
DEF_REDUCE(double, f64, double)
DEF_REDUCE(int32_t, i32, int64_t)
DEF_REDUCE(int64_t, i64, int64_t)

int nf_op_reduce_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    const red_priv *p = n->priv;
    nf_value *x = nf_in(m, n, 0), *y = nf_out(m, n, 0);
    if (y->size == 0)
        return NF_OK;
    void *acc = n->scratch;
    int64_t I = p->inner;
    switch (x->dtype) {
    case NF_DT_FLOAT:
        if (p->plane)
            plane_f32(p, x->data, y->data, acc, (double *)acc + I);
        else
            walk_f32(p, x->data, y->data);
        break;
    case NF_DT_DOUBLE:
        if (p->plane)
            plane_f64(p, x->data, y->data, acc, (double *)acc + I);
        else
            walk_f64(p, x->data, y->data);
        break;
    case NF_DT_INT32:
        if (p->plane)
            plane_i32(p, x->data, y->data, acc, (int64_t *)acc + I);
        else
            walk_i32(p, x->data, y->data);
        break;
    case NF_DT_INT64:
        if (p->plane)
            plane_i64(p, x->data, y->data, acc, (int64_t *)acc + I);
        else
            walk_i64(p, x->data, y->data);
        break;
    default:
        return nf_err_set(err, NF_EINTERNAL, "reduce: unchecked type %d", x->dtype);
    }
    return NF_OK;
}

/* The axes-input hooks share infer and run: only prepare differs. */
int nf_op_reduce_axes_in_infer(nf_model *m, nf_node *n, nf_err *err)
{
    return nf_op_reduce_infer(m, n, err);
}

int nf_op_reduce_axes_in_run(nf_model *m, nf_node *n, nf_err *err)
{
    return nf_op_reduce_run(m, n, err);
}

/* ---- ArgMax, ArgMin -------------------------------------------------------
 * Output int64 indices along one axis. Ties pick the first index, or the
 * last with select_last_index (opset 12+). NaN counts as the extreme (as
 * numpy's argmax/argmin: the first NaN wins). */
typedef struct arg_priv {
    bool is_min, keepdims, last;
    int64_t axis;
    int64_t outer, red, inner; /* planned by infer */
} arg_priv;

int nf_op_argminmax_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    if (n->n_in < 1 || n->in[0] < 0 || n->n_out < 1 || n->out[0] < 0)
        return nf_node_err(err, NF_EMODEL, n, "needs input 'data' and output 'reduced'");
    arg_priv *p = nf_arena_alloc(&m->arena, sizeof *p);
    if (p == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    p->is_min = strcmp(n->op, "ArgMin") == 0;
    p->keepdims = nf_attr_int(n, "keepdims", 1) != 0;
    p->last = nf_attr_int(n, "select_last_index", 0) != 0;
    p->axis = nf_attr_int(n, "axis", 0);
    n->priv = p;
    return NF_OK;
}

static size_t arg_elem(int dt)
{
    switch (dt) {
    case NF_DT_FLOAT: case NF_DT_DOUBLE: case NF_DT_INT32: case NF_DT_INT64: case NF_DT_INT8: case NF_DT_UINT8:
        return nf_dtype_size(dt);
    default:
        return 0;
    }
}

int nf_op_argminmax_infer(nf_model *m, nf_node *n, nf_err *err)
{
    arg_priv *p = n->priv;
    nf_value *x = nf_in(m, n, 0), *y = nf_out(m, n, 0);
    if (arg_elem(x->dtype) == 0)
        return nf_node_err(err, NF_EUNSUPPORTED, n, "input type %s is not supported (float32, double, int8, "
                           "uint8, int32, int64)", nf_dtype_name(x->dtype));
    int r = x->n_dims;
    int64_t a = p->axis < 0 ? p->axis + r : p->axis;
    if (a < 0 || a >= r)
        return nf_node_err(err, NF_ESHAPE, n, "axis %lld is out of range for rank %d", (long long)p->axis, r);
    p->outer = nf_dims_count((int)a, x->dims);
    p->red = x->dims[a];
    p->inner = nf_dims_count(r - (int)a - 1, x->dims + a + 1);
    if (p->red == 0 && p->outer * p->inner > 0)
        return nf_node_err(err, NF_ESHAPE, n, "axis %lld has size 0: no index to return", (long long)p->axis);
    int64_t od[NF_MAX_DIMS];
    int orank = 0;
    for (int d = 0; d < r; d++) {
        if (d != a)
            od[orank++] = x->dims[d];
        else if (p->keepdims)
            od[orank++] = 1;
    }
    /* running best values of one inner row when the axis is not the last */
    n->scratch_bytes = p->inner > 1 ? (size_t)p->inner * arg_elem(x->dtype) : 0;
    return nf_value_set(y, NF_DT_INT64, orank, od, err);
}

/* v beats the best b: strictly (first index) or also on ties (last), and
 * a NaN beats any number (first NaN, or last NaN with select_last_index). */
#define ARG_BEATS(CMP, v, b, last) \
    ((v) != (v) ? ((b) == (b) || (last)) : ((v) CMP (b) || ((last) && (v) == (b))))

#define DEF_ARG(T, SUF, NAME, CMP)                                                                 \
    static void NAME##_##SUF(const arg_priv *p, const T *x, int64_t *y, T *best)                   \
    {                                                                                              \
        int64_t R = p->red, I = p->inner;                                                          \
        bool last = p->last;                                                                       \
        for (int64_t o = 0; o < p->outer; o++, x += R * I, y += I) {                               \
            if (I == 1) {                                                                          \
                T b = x[0];                                                                        \
                int64_t bi = 0;                                                                    \
                for (int64_t r = 1; r < R; r++)                                                    \
                    if (ARG_BEATS(CMP, x[r], b, last))                                             \
                        b = x[r], bi = r;                                                          \
                y[0] = bi;                                                                         \
                continue;                                                                          \
            }                                                                                      \
            for (int64_t i = 0; i < I; i++)                                                        \
                best[i] = x[i], y[i] = 0;                                                          \
            for (int64_t r = 1; r < R; r++) {                                                      \
                const T *row = x + r * I;                                                          \
                for (int64_t i = 0; i < I; i++)                                                    \
                    if (ARG_BEATS(CMP, row[i], best[i], last))                                     \
                        best[i] = row[i], y[i] = r;                                                \
            }                                                                                      \
        }                                                                                          \
    }

#define DEF_ARGS(T, SUF) DEF_ARG(T, SUF, argmax, >) DEF_ARG(T, SUF, argmin, <)
DEF_ARGS(float, f32)
DEF_ARGS(double, f64)
DEF_ARGS(int8_t, i8)
DEF_ARGS(uint8_t, u8)
DEF_ARGS(int32_t, i32)
DEF_ARGS(int64_t, i64)

int nf_op_argminmax_run(nf_model *m, nf_node *n, nf_err *err)
{
    const arg_priv *p = n->priv;
    nf_value *x = nf_in(m, n, 0), *y = nf_out(m, n, 0);
    if (y->size == 0)
        return NF_OK;
#define ARG_CASE(DT, T, SUF)                                                   \
    case DT:                                                                   \
        if (p->is_min)                                                         \
            argmin_##SUF(p, x->data, y->data, n->scratch);                     \
        else                                                                   \
            argmax_##SUF(p, x->data, y->data, n->scratch);                     \
        break;
    switch (x->dtype) {
    ARG_CASE(NF_DT_FLOAT, float, f32)
    ARG_CASE(NF_DT_DOUBLE, double, f64)
    ARG_CASE(NF_DT_INT8, int8_t, i8)
    ARG_CASE(NF_DT_UINT8, uint8_t, u8)
    ARG_CASE(NF_DT_INT32, int32_t, i32)
    ARG_CASE(NF_DT_INT64, int64_t, i64)
    default:
        return nf_err_set(err, NF_EINTERNAL, "argmax: unchecked type %d", x->dtype);
    }
#undef ARG_CASE
    return NF_OK;
}
