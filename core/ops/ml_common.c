/*
 * ml_common.c: what the ai.onnx.ml kernels (ml_trees.c, ml_linear.c)
 * share: attribute checks against a spec table, the [N, F] input, class
 * labels, post transforms (logistic, probit, softmax) and a classifier's
 * outputs (label choice, binary scores, writing labels and scores). No
 * state: everything here works on the caller's node and buffers.
 */
#include <math.h>
#include <string.h>

#include "ml_common.h"

/* ---- attributes and inputs -------------------------------------------------- */

static const char *at_name(int t)
{
    static const char *names[] = {"UNDEFINED", "FLOAT", "INT", "STRING", "TENSOR", "GRAPH", "FLOATS", "INTS",
                                  "STRINGS", "TENSORS", "GRAPHS", "SPARSE_TENSOR", "SPARSE_TENSORS",
                                  "TYPE_PROTO", "TYPE_PROTOS"};
    return (t >= 0 && t < (int)(sizeof names / sizeof names[0])) ? names[t] : "?";
}

/* Checks every attribute of n against spec (a NULL-named terminated table):
 * a known name, its spec type, present in the node's opset, given once.
 * Unknown attributes fail as the ONNX checker fails them. */
int nf__ml_check_attrs(const nf_node *n, const nf_ml_attrspec *spec, nf_err *err)
{
    for (int i = 0; i < n->n_attrs; i++) {
        const nf_attr *a = &n->attrs[i];
        const nf_ml_attrspec *s = spec;
        while (s->name != NULL && strcmp(s->name, a->name) != 0)
            s++;
        if (s->name == NULL)
            return nf_node_err(err, NF_EMODEL, n, "unknown attribute '%s' (not in the %s specification)", a->name,
                               n->op);
        if (a->type != s->type)
            return nf_node_err(err, NF_EMODEL, n, "attribute '%s' has type %s, the specification says %s", a->name,
                               at_name(a->type), at_name(s->type));
        if (n->opset < s->since)
            return nf_node_err(err, NF_EMODEL, n, "attribute '%s' exists from ai.onnx.ml opset %d; the model imports opset %d",
                               a->name, s->since, n->opset);
        for (int j = 0; j < i; j++)
            if (strcmp(n->attrs[j].name, a->name) == 0)
                return nf_node_err(err, NF_EMODEL, n, "attribute '%s' is given twice", a->name);
    }
    return NF_OK;
}

int nf__ml_post_transform(const nf_node *n, int *out, nf_err *err)
{
    static const char *names[] = {"NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT"};
    const char *s = nf_attr_str(n, "post_transform", "NONE");
    for (int i = 0; i < 5; i++)
        if (strcmp(s, names[i]) == 0)
            return *out = i, NF_OK;
    return nf_node_err(err, NF_EMODEL, n,
                       "attribute 'post_transform' = '%s': not one of NONE, LOGISTIC, SOFTMAX, SOFTMAX_ZERO, PROBIT", s);
}

/* Reads the class labels (exactly one of <ints_name> / classlabels_strings,
 * at least two) into *lab and records them in m->classes: the first
 * classifier wins, unless a later one's label output is a graph output and
 * the first's is not. lab points into the node's attributes (model arena). */
int nf__ml_labels(nf_model *m, nf_node *n, const char *ints_name, nf_ml_labels *lab, nf_err *err)
{
    int64_t ni = nf_attr_ints(n, ints_name, &lab->ints);
    int64_t ns = nf_attr_strings(n, "classlabels_strings", &lab->strs);
    if (ni > 0 && ns > 0)
        return nf_node_err(err, NF_EMODEL, n, "both '%s' and 'classlabels_strings' are set; the specification allows one",
                           ints_name);
    if (ni == 0 && ns == 0)
        return nf_node_err(err, NF_EMODEL, n, "no class labels: set '%s' or 'classlabels_strings'", ints_name);
    lab->n = ni > 0 ? ni : ns;
    if (ni == 0)
        lab->ints = NULL;
    else
        lab->strs = NULL;
    if (lab->n < 2)
        return nf_node_err(err, NF_EUNSUPPORTED, n, "attribute '%s' has one label; a classifier needs at least two",
                           ni > 0 ? ints_name : "classlabels_strings");
    if (lab->n > INT32_MAX)
        return nf_node_err(err, NF_EUNSUPPORTED, n, "%lld class labels is too many", (long long)lab->n);
    if (n->n_out < 1 || n->out[0] < 0)
        return NF_OK; /* no label output: nothing to report to callers */
    bool mine_out = m->values[n->out[0]].is_output;
    bool cur_out = m->classes.n_labels > 0 && m->classes.label_output >= 0 &&
                   m->values[m->classes.label_output].is_output;
    if (m->classes.n_labels == 0 || (mine_out && !cur_out)) {
        m->classes.n_labels = (int)lab->n;
        m->classes.ints = lab->ints;
        m->classes.strs = (const char *const *)lab->strs;
        m->classes.label_output = n->out[0];
        m->classes.score_output = n->n_out > 1 ? n->out[1] : -1;
    }
    return NF_OK;
}

/* One input X, between 1 and max_out outputs. */
int nf__ml_check_io(const nf_node *n, int max_out, nf_err *err)
{
    if (n->n_in != 1 || n->in[0] < 0)
        return nf_node_err(err, NF_EMODEL, n, "needs exactly one input X");
    if (n->n_out < 1 || n->n_out > max_out)
        return nf_node_err(err, NF_EMODEL, n, "has %d outputs; the specification has %d", n->n_out, max_out);
    return NF_OK;
}

/* Checks input X of an ai.onnx.ml kernel (float, double, int64 or int32;
 * rank 1 = one row, or rank 2 [N, F]) and returns N and F. */
int nf__ml_input(nf_model *m, nf_node *n, int64_t *rows, int64_t *feats, nf_err *err)
{
    const nf_value *x = nf_in(m, n, 0);
    if (x->dtype != NF_DT_FLOAT && x->dtype != NF_DT_DOUBLE && x->dtype != NF_DT_INT64 && x->dtype != NF_DT_INT32)
        return nf_node_err(err, NF_EUNSUPPORTED, n, "input '%s' is %s; the specification allows float, double, int64, int32",
                           x->name, nf_dtype_name(x->dtype));
    if (x->n_dims == 1) {
        *rows = 1;
        *feats = x->dims[0];
    } else if (x->n_dims == 2) {
        *rows = x->dims[0];
        *feats = x->dims[1];
    } else {
        return nf_node_err(err, NF_ESHAPE, n, "input '%s' has rank %d; expected [F] or [N, F]", x->name, x->n_dims);
    }
    return NF_OK;
}

/* ---- post transforms ------------------------------------------------------- */

/* Inverse of the standard normal CDF: Wichura's AS 241 (PPND16), a rational
 * approximation with relative error about 1e-16 (M. J. Wichura, "Algorithm
 * AS 241: The Percentage Points of the Normal Distribution", Applied
 * Statistics 37(3), 1988, 477-484). p outside [0, 1] gives NaN, 0 and 1
 * give -inf and +inf. ONNX Runtime instead uses Winitzki's erf^-1
 * approximation (a = 0.147), which is off by up to ~2e-4 absolute. */
static double horner(const double *c, int n, double x)
{
    double v = c[0];
    for (int i = 1; i < n; i++)
        v = v * x + c[i];
    return v;
}

double nf__ml_probit(double p)
{
    /* PPND16 coefficients, highest degree first */
    static const double a[8] = {2.5090809287301226727e+3, 3.3430575583588128105e+4, 6.7265770927008700853e+4,
                                4.5921953931549871457e+4, 1.3731693765509461125e+4, 1.9715909503065514427e+3,
                                1.3314166789178437745e+2, 3.3871328727963666080e+0};
    static const double b[8] = {5.2264952788528545610e+3, 2.8729085735721942674e+4, 3.9307895800092710610e+4,
                                2.1213794301586595867e+4, 5.3941960214247511077e+3, 6.8718700749205790830e+2,
                                4.2313330701600911252e+1, 1.0};
    static const double c[8] = {7.7454501427834140764e-4, 2.2723844989269184583e-2, 2.4178072517745061177e-1,
                                1.2704582524523683826e+0, 3.6478483247632045605e+0, 5.7694972214606914055e+0,
                                4.6303378461565452959e+0, 1.4234371107496835773e+0};
    static const double d[8] = {1.0507500716444168432e-9, 5.4759380849953449460e-4, 1.5198666563616457197e-2,
                                1.4810397642748007459e-1, 6.8976733498510000455e-1, 1.6763848301838038494e+0,
                                2.0531916266377588219e+0, 1.0};
    static const double e[8] = {2.0103343992922881327e-7, 2.7115555687434875782e-5, 1.2426609473880784386e-3,
                                2.6532189526576123093e-2, 2.9656057182850489123e-1, 1.7848265399172913358e+0,
                                5.4637849111641143699e+0, 6.6579046435011037772e+0};
    static const double f[8] = {2.0442631033899397856e-15, 1.4215117583164458887e-7, 1.8463183175100546818e-5,
                                7.8686913114561325910e-4, 1.4875361290850614853e-2, 1.3692988092273580531e-1,
                                5.9983220655588793769e-1, 1.0};
    if (!(p >= 0.0 && p <= 1.0))
        return NAN;
    if (p == 0.0)
        return -INFINITY;
    if (p == 1.0)
        return INFINITY;
    double q = p - 0.5, r, x;
    if (fabs(q) <= 0.425) {
        r = 0.180625 - q * q;
        return q * horner(a, 8, r) / horner(b, 8, r);
    }
    r = sqrt(-log(q < 0.0 ? p : 1.0 - p));
    if (r <= 5.0)
        x = horner(c, 8, r - 1.6) / horner(d, 8, r - 1.6);
    else
        x = horner(e, 8, r - 5.0) / horner(f, 8, r - 5.0);
    return q < 0.0 ? -x : x;
}

/* 1 / (1 + e^-x) without overflow for large |x|. */
double nf__ml_logistic(double x)
{
    if (x >= 0)
        return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

/* Applies post_transform pt to one row of c scores, in place.
 * SOFTMAX_ZERO (ONNX-ML spec: "SOFTMAX_ZERO") is a softmax over the
 * non-zero scores; zeros stay 0. Like ONNX Runtime, |s| <= 1e-7 counts as
 * zero. A row of zeros stays zeros (ONNX Runtime gives NaN from 0/0). */
void nf__ml_transform(double *s, int64_t c, int pt)
{
    double mx = -INFINITY, sum = 0;
    switch (pt) {
    case NF_PT_LOGISTIC:
        for (int64_t k = 0; k < c; k++)
            s[k] = nf__ml_logistic(s[k]);
        break;
    case NF_PT_PROBIT:
        for (int64_t k = 0; k < c; k++)
            s[k] = nf__ml_probit(s[k]);
        break;
    case NF_PT_SOFTMAX:
        for (int64_t k = 0; k < c; k++)
            mx = s[k] > mx ? s[k] : mx;
        for (int64_t k = 0; k < c; k++)
            sum += (s[k] = exp(s[k] - mx));
        for (int64_t k = 0; k < c; k++)
            s[k] /= sum;
        break;
    case NF_PT_SOFTMAX_ZERO:
        for (int64_t k = 0; k < c; k++)
            if (fabs(s[k]) > 1e-7 && s[k] > mx)
                mx = s[k];
        for (int64_t k = 0; k < c; k++)
            sum += (s[k] = fabs(s[k]) > 1e-7 ? exp(s[k] - mx) : 0.0);
        if (sum > 0)
            for (int64_t k = 0; k < c; k++)
                s[k] /= sum;
        break;
    default:
        break;
    }
}

/* ---- classifier outputs ------------------------------------------------------ */

/* Label [N] (int64 or string, as the labels) and scores [N, labels]. */
int nf__ml_clf_infer(nf_model *m, nf_node *n, int64_t rows, const nf_ml_labels *lab, nf_err *err)
{
    nf_value *y = nf_out(m, n, 0), *z = nf_out(m, n, 1);
    int64_t dims[2] = {rows, lab->n};
    int rc;
    if (y != NULL && (rc = nf_value_set(y, lab->strs ? NF_DT_STRING : NF_DT_INT64, 1, dims, err)) != NF_OK)
        return rc;
    return z ? nf_value_set(z, NF_DT_FLOAT, 2, dims, err) : NF_OK;
}

/* Label: the first maximum of the raw scores, before the post transform
 * (as ONNX Runtime; SOFTMAX_ZERO is not monotonic), among the classes with
 * has[k] set (all when has is NULL); 0 when none is. */
int64_t nf__ml_argmax(const double *s, const uint8_t *has, int64_t c)
{
    int64_t lab = -1;
    for (int64_t k = 0; k < c; k++) {
        if (has && !has[k])
            continue;
        if (lab < 0 || s[k] > s[lab])
            lab = k;
    }
    return lab < 0 ? 0 : lab;
}

/* Binary classifier with one score s for the second label (the spec is
 * silent; as ONNX Runtime 1.30 for both linear and tree classifiers):
 *   label: 1 if s > thresh, else 0;
 *   q = logistic(s) for LOGISTIC, probit(s) for PROBIT, else s (SOFTMAX
 *       and SOFTMAX_ZERO leave it: softmax of one score means nothing);
 *   scores z = [1 - q, q] when complement, else [-q, q]; PROBIT always
 *       [-q, q] (probit(1 - s) = -probit(s)); the callers say where ONNX
 *       Runtime departs from this. */
int64_t nf__ml_binary(double s, int post, double thresh, bool complement, double *z)
{
    double q = post == NF_PT_LOGISTIC ? nf__ml_logistic(s) : post == NF_PT_PROBIT ? nf__ml_probit(s) : s;
    z[1] = q;
    z[0] = post == NF_PT_PROBIT ? -q : complement ? 1.0 - q : -q;
    return s > thresh ? 1 : 0;
}

/* Row i of the outputs: the label of class lab in y, the scores
 * z[0..labs->n) as floats in zs; either output may be absent (NULL). */
void nf__ml_clf_write(nf_value *y, nf_value *zs, int64_t i, int64_t lab, const double *z, const nf_ml_labels *labs)
{
    const int64_t nl = labs->n;
    if (zs != NULL) {
        float *o = (float *)zs->data + i * nl;
        for (int64_t k = 0; k < nl; k++)
            o[k] = (float)z[k];
    }
    if (y != NULL) {
        if (labs->strs)
            ((char **)y->data)[i] = labs->strs[lab];
        else
            ((int64_t *)y->data)[i] = labs->ints[lab];
    }
}
