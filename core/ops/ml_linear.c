/*
 * ml_linear.c: LinearRegressor, LinearClassifier, Scaler and Normalizer
 * (ai.onnx.ml opset 1). Scores are computed in double and stored as float
 * (the spec's output type). prepare keeps the attribute arrays (model
 * arena, owned by the node) and checks them against each other; infer
 * checks X's features against them; run allocates nothing.
 */
#include <math.h>
#include <string.h>

#include "ml_common.h"


/* Element i of X as a double. */
static inline double x_at(const nf_value *x, int64_t i)
{
    switch (x->dtype) {
    case NF_DT_FLOAT: return ((const float *)x->data)[i];
    case NF_DT_DOUBLE: return ((const double *)x->data)[i];
    case NF_DT_INT64: return (double)((const int64_t *)x->data)[i];
    default: return ((const int32_t *)x->data)[i];
    }
}

/* ---- the linear score, shared by both linear kernels ----------------------- */
typedef struct nf_linear {
    int64_t n_rows;       /* coefficient rows: targets, or classes (1 for a binary one-row model) */
    int64_t n_feat;       /* coefficients per row */
    const float *coef;    /* [n_rows][n_feat], the node's attribute */
    const float *icpt;    /* [n_rows] or NULL */
    int post;             /* NF_PT_* */
    nf_ml_labels lab;     /* classifier */
} nf_linear;

/* scores[e] = intercept[e] + sum_j coef[e][j] * x[row][j], in double */
static void linear_scores(const nf_linear *p, const nf_value *x, int64_t row, double *s)
{
    const int64_t f = p->n_feat;
    if (x->dtype == NF_DT_FLOAT) {
        const float *xr = (const float *)x->data + row * f;
        for (int64_t e = 0; e < p->n_rows; e++) {
            const float *c = p->coef + e * f;
            double v = p->icpt ? p->icpt[e] : 0.0;
            for (int64_t j = 0; j < f; j++)
                v += (double)c[j] * xr[j];
            s[e] = v;
        }
        return;
    }
    for (int64_t e = 0; e < p->n_rows; e++) {
        const float *c = p->coef + e * f;
        double v = p->icpt ? p->icpt[e] : 0.0;
        for (int64_t j = 0; j < f; j++)
            v += (double)c[j] * x_at(x, row * f + j);
        s[e] = v;
    }
}

/* Reads coefficients / intercepts for n_rows rows (n_rows <= 0: from the
 * intercepts' length, else fallback_rows). */
static int linear_read(const nf_node *n, nf_linear *p, int64_t rows, nf_err *err)
{
    int64_t nc = nf_attr_floats(n, "coefficients", &p->coef);
    int64_t ni = nf_attr_floats(n, "intercepts", &p->icpt);
    if (nc == 0)
        return nf_node_err(err, NF_EMODEL, n, "attribute 'coefficients' is missing or empty");
    p->n_rows = rows;
    if (ni > 0 && ni != rows)
        return nf_node_err(err, NF_EMODEL, n, "attribute 'intercepts' has %lld values; expected %lld", (long long)ni,
                           (long long)rows);
    if (ni == 0)
        p->icpt = NULL;
    if (nc % rows != 0)
        return nf_node_err(err, NF_EMODEL, n, "attribute 'coefficients' has %lld values, not a multiple of %lld rows",
                           (long long)nc, (long long)rows);
    p->n_feat = nc / rows;
    return nf__ml_post_transform(n, &p->post, err);
}

/* X must have exactly the coefficients' features. */
static int linear_infer_x(nf_model *m, nf_node *n, const nf_linear *p, int64_t *rows, nf_err *err)
{
    int64_t f;
    int rc = nf__ml_input(m, n, rows, &f, err);
    if (rc != NF_OK)
        return rc;
    if (f != p->n_feat)
        return nf_node_err(err, NF_ESHAPE, n, "input '%s' has %lld features, attribute 'coefficients' is for %lld",
                           nf_in(m, n, 0)->name, (long long)f, (long long)p->n_feat);
    n->scratch_bytes = (size_t)(p->n_rows > 2 ? p->n_rows : 2) * sizeof(double);
    return NF_OK;
}

/* ---- LinearRegressor --------------------------------------------------------- */
static const nf_ml_attrspec linreg_spec[] = {
    {"coefficients", NF_AT_FLOATS, 1}, {"intercepts", NF_AT_FLOATS, 1}, {"post_transform", NF_AT_STRING, 1},
    {"targets", NF_AT_INT, 1},         {NULL, 0, 0},
};

int nf_op_linear_regressor_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    int rc = nf__ml_check_attrs(n, linreg_spec, err);
    if (rc == NF_OK)
        rc = nf__ml_check_io(n, 1, err);
    if (rc != NF_OK)
        return rc;
    nf_linear *p = nf_arena_alloc(&m->arena, sizeof *p);
    if (p == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    int64_t t = nf_attr_int(n, "targets", 1);
    if (t < 1 || t > INT32_MAX)
        return nf_node_err(err, NF_EMODEL, n, "attribute 'targets' = %lld: must be >= 1", (long long)t);
    if ((rc = linear_read(n, p, t, err)) != NF_OK)
        return rc;
    n->priv = p;
    return NF_OK;
}

int nf_op_linear_regressor_infer(nf_model *m, nf_node *n, nf_err *err)
{
    const nf_linear *p = n->priv;
    int64_t rows;
    int rc = linear_infer_x(m, n, p, &rows, err);
    if (rc != NF_OK)
        return rc;
    int64_t dims[2] = {rows, p->n_rows};
    nf_value *y = nf_out(m, n, 0);
    return y ? nf_value_set(y, NF_DT_FLOAT, 2, dims, err) : NF_OK;
}

int nf_op_linear_regressor_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    const nf_linear *p = n->priv;
    const nf_value *x = nf_in(m, n, 0);
    nf_value *y = nf_out(m, n, 0);
    if (y == NULL)
        return NF_OK;
    int64_t rows = x->n_dims == 1 ? 1 : x->dims[0], c = p->n_rows;
    double *s = n->scratch;
    float *out = y->data;
    for (int64_t r = 0; r < rows; r++) {
        linear_scores(p, x, r, s);
        /* as the spec says, for any number of targets (ONNX Runtime
         * applies only PROBIT to a single target) */
        nf__ml_transform(s, c, p->post);
        for (int64_t k = 0; k < c; k++)
            out[r * c + k] = (float)s[k];
    }
    return NF_OK;
}

/* ---- LinearClassifier -------------------------------------------------------- */
static const nf_ml_attrspec linclf_spec[] = {
    {"classlabels_ints", NF_AT_INTS, 1}, {"classlabels_strings", NF_AT_STRINGS, 1}, {"coefficients", NF_AT_FLOATS, 1},
    {"intercepts", NF_AT_FLOATS, 1},     {"multi_class", NF_AT_INT, 1},             {"post_transform", NF_AT_STRING, 1},
    {NULL, 0, 0},
};

/* Rows of coefficients: one per class label, or one for two labels (the
 * binary form: the row scores the second label). Without intercepts the
 * row count is the label count (ONNX Runtime refuses a model without
 * intercepts; the spec makes them optional). */
int nf_op_linear_classifier_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    int rc = nf__ml_check_attrs(n, linclf_spec, err);
    if (rc == NF_OK)
        rc = nf__ml_check_io(n, 2, err);
    if (rc != NF_OK)
        return rc;
    nf_linear *p = nf_arena_alloc(&m->arena, sizeof *p);
    if (p == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    int64_t mc = nf_attr_int(n, "multi_class", 0);
    if (mc != 0 && mc != 1)
        return nf_node_err(err, NF_EMODEL, n, "attribute 'multi_class' = %lld: must be 0 (one-vs-rest) or 1 (multinomial)",
                           (long long)mc);
    if ((rc = nf__ml_labels(m, n, "classlabels_ints", &p->lab, err)) != NF_OK)
        return rc;
    const float *icpt;
    int64_t ni = nf_attr_floats(n, "intercepts", &icpt);
    int64_t rows = ni > 0 ? ni : p->lab.n;
    if (rows != p->lab.n && !(rows == 1 && p->lab.n == 2))
        return nf_node_err(err, NF_EMODEL, n, "attribute 'intercepts' has %lld values for %lld class labels; expected one "
                           "per label (or 1 for 2 labels)", (long long)rows, (long long)p->lab.n);
    if ((rc = linear_read(n, p, rows, err)) != NF_OK)
        return rc;
    n->priv = p;
    return NF_OK;
}

int nf_op_linear_classifier_infer(nf_model *m, nf_node *n, nf_err *err)
{
    const nf_linear *p = n->priv;
    int64_t rows;
    int rc = linear_infer_x(m, n, p, &rows, err);
    if (rc != NF_OK)
        return rc;
    return nf__ml_clf_infer(m, n, rows, &p->lab, err);
}

/* Binary one-row model, score s of the second label: nf__ml_binary with
 * the label at s > 0 and scores [1 - q, q] (as ONNX Runtime 1.30; the
 * spec is silent). Departure: for PROBIT ONNX Runtime writes a misplaced
 * column; we write [-q, q]. Otherwise one row per label: the label is the
 * first maximum of the raw scores, then the post transform. */
int nf_op_linear_classifier_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    const nf_linear *p = n->priv;
    const nf_value *x = nf_in(m, n, 0);
    nf_value *y = nf_out(m, n, 0), *z = nf_out(m, n, 1);
    int64_t rows = x->n_dims == 1 ? 1 : x->dims[0], nl = p->lab.n;
    double *s = n->scratch;
    for (int64_t r = 0; r < rows; r++) {
        linear_scores(p, x, r, s);
        int64_t lab;
        if (p->n_rows == 1) {
            lab = nf__ml_binary(s[0], p->post, 0.0, true, s);
        } else {
            lab = nf__ml_argmax(s, NULL, nl);
            nf__ml_transform(s, nl, p->post);
        }
        nf__ml_clf_write(y, z, r, lab, s, &p->lab);
    }
    return NF_OK;
}

/* ---- Scaler: Y = (X - offset) * scale, per feature ---------------------------- */
typedef struct nf_scaler {
    int64_t n;            /* 1 (all features) or F */
    const float *offset;  /* n values or NULL (0) */
    const float *scale;   /* n values or NULL (1) */
} nf_scaler;

static const nf_ml_attrspec scaler_spec[] = {
    {"offset", NF_AT_FLOATS, 1}, {"scale", NF_AT_FLOATS, 1}, {NULL, 0, 0},
};

/* offset and scale must have the same length when both are given; a
 * missing one is the identity (ONNX Runtime insists on both). */
int nf_op_scaler_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    int rc = nf__ml_check_attrs(n, scaler_spec, err);
    if (rc == NF_OK)
        rc = nf__ml_check_io(n, 1, err);
    if (rc != NF_OK)
        return rc;
    nf_scaler *p = nf_arena_alloc(&m->arena, sizeof *p);
    if (p == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    int64_t no = nf_attr_floats(n, "offset", &p->offset), ns = nf_attr_floats(n, "scale", &p->scale);
    if (no > 0 && ns > 0 && no != ns)
        return nf_node_err(err, NF_EMODEL, n, "attribute 'offset' has %lld values, 'scale' %lld; they must match",
                           (long long)no, (long long)ns);
    if (no == 0 && ns == 0)
        return nf_node_err(err, NF_EMODEL, n, "neither 'offset' nor 'scale' is set");
    if (no == 0)
        p->offset = NULL;
    if (ns == 0)
        p->scale = NULL;
    p->n = no > 0 ? no : ns;
    n->priv = p;
    return NF_OK;
}

int nf_op_scaler_infer(nf_model *m, nf_node *n, nf_err *err)
{
    const nf_scaler *p = n->priv;
    int64_t rows, f;
    int rc = nf__ml_input(m, n, &rows, &f, err);
    if (rc != NF_OK)
        return rc;
    if (p->n != 1 && p->n != f)
        return nf_node_err(err, NF_ESHAPE, n, "input '%s' has %lld features, attributes 'offset'/'scale' have %lld values",
                           nf_in(m, n, 0)->name, (long long)f, (long long)p->n);
    const nf_value *x = nf_in(m, n, 0);
    nf_value *y = nf_out(m, n, 0);
    return y ? nf_value_set(y, NF_DT_FLOAT, x->n_dims, x->dims, err) : NF_OK;
}

int nf_op_scaler_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    const nf_scaler *p = n->priv;
    const nf_value *x = nf_in(m, n, 0);
    nf_value *y = nf_out(m, n, 0);
    if (y == NULL)
        return NF_OK;
    int64_t f = x->dims[x->n_dims - 1];
    float *out = y->data;
    for (int64_t i = 0; i < x->size; i++) {
        int64_t j = p->n == 1 ? 0 : i % f;
        double v = x_at(x, i);
        if (p->offset)
            v -= p->offset[j];
        if (p->scale)
            v *= p->scale[j];
        out[i] = (float)v;
    }
    return NF_OK;
}

/* ---- Normalizer ---------------------------------------------------------------- */
enum { NF_NORM_MAX, NF_NORM_L1, NF_NORM_L2 };

typedef struct nf_normalizer {
    int norm;
} nf_normalizer;

static const nf_ml_attrspec normalizer_spec[] = {
    {"norm", NF_AT_STRING, 1}, {NULL, 0, 0},
};

int nf_op_normalizer_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    int rc = nf__ml_check_attrs(n, normalizer_spec, err);
    if (rc == NF_OK)
        rc = nf__ml_check_io(n, 1, err);
    if (rc != NF_OK)
        return rc;
    nf_normalizer *p = nf_arena_alloc(&m->arena, sizeof *p);
    if (p == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    const char *s = nf_attr_str(n, "norm", "MAX");
    if (strcmp(s, "MAX") == 0)
        p->norm = NF_NORM_MAX;
    else if (strcmp(s, "L1") == 0)
        p->norm = NF_NORM_L1;
    else if (strcmp(s, "L2") == 0)
        p->norm = NF_NORM_L2;
    else
        return nf_node_err(err, NF_EMODEL, n, "attribute 'norm' = '%s': not one of MAX, L1, L2", s);
    n->priv = p;
    return NF_OK;
}

/* Any rank >= 1: normalised along axis 1 ([N, C]: each row), axis 0 for a
 * vector, as ONNX Runtime does for higher ranks. */
int nf_op_normalizer_infer(nf_model *m, nf_node *n, nf_err *err)
{
    const nf_value *x = nf_in(m, n, 0);
    if (x->dtype != NF_DT_FLOAT && x->dtype != NF_DT_DOUBLE && x->dtype != NF_DT_INT64 && x->dtype != NF_DT_INT32)
        return nf_node_err(err, NF_EUNSUPPORTED, n, "input '%s' is %s; the specification allows float, double, int64, int32",
                           x->name, nf_dtype_name(x->dtype));
    if (x->n_dims < 1)
        return nf_node_err(err, NF_ESHAPE, n, "input '%s' is a scalar; expected [C] or [N, C]", x->name);
    nf_value *y = nf_out(m, n, 0);
    return y ? nf_value_set(y, NF_DT_FLOAT, x->n_dims, x->dims, err) : NF_OK;
}

/* MAX: X / max(X); L1: X / sum|X|; L2: X / sqrt(sum X^2); a zero divisor
 * leaves X (spec). The spec's formulas read "sum(X)" and
 * "sqrt(X^2 / sum(X^2))"; like ONNX Runtime and scikit-learn we use the
 * norms, |x| for L1 and the sign of x kept for L2. */
int nf_op_normalizer_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    const nf_normalizer *p = n->priv;
    const nf_value *x = nf_in(m, n, 0);
    nf_value *y = nf_out(m, n, 0);
    if (y == NULL || x->size == 0)
        return NF_OK;
    int64_t outer = x->n_dims == 1 ? 1 : x->dims[0], c = x->n_dims == 1 ? x->dims[0] : x->dims[1];
    int64_t inner = x->size / (outer * c);
    float *out = y->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            int64_t base = o * c * inner + in;
            double d = 0;
            if (p->norm == NF_NORM_MAX) {
                d = -INFINITY;
                for (int64_t k = 0; k < c; k++)
                    d = fmax(d, x_at(x, base + k * inner));
            } else {
                for (int64_t k = 0; k < c; k++) {
                    double v = x_at(x, base + k * inner);
                    d += p->norm == NF_NORM_L1 ? fabs(v) : v * v;
                }
                if (p->norm == NF_NORM_L2)
                    d = sqrt(d);
            }
            for (int64_t k = 0; k < c; k++) {
                double v = x_at(x, base + k * inner);
                out[base + k * inner] = (float)(d != 0 ? v / d : v);
            }
        }
    return NF_OK;
}
