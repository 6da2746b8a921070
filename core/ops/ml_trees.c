/*
 * ml_trees.c: TreeEnsembleRegressor and TreeEnsembleClassifier (ai.onnx.ml
 * opsets 1 and 3), plus the helpers the ai.onnx.ml kernels share (attribute
 * checks, class labels, post transforms, probit).
 *
 * prepare validates every attribute and flattens the ensemble into one node
 * array in the model arena (each tree contiguous, pre-order, the true child
 * right after its parent); run walks it tree by tree over blocks of rows and
 * allocates nothing. Invariant after prepare: every walk from a root ends at
 * a leaf within depth[tree] steps (the trees were checked to be acyclic).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ml_common.h"

/* ---- shared ai.onnx.ml helpers (also used by ml_linear.c) ----------------- */


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
 * at least two) and records them in m->classes: the first classifier wins,
 * unless a later one's label output is a graph output and the first's is
 * not. *ints / *strs point into the node's attributes (model arena). */
int nf__ml_labels(nf_model *m, nf_node *n, const char *ints_name, int64_t *n_labels, const int64_t **ints,
                  char *const **strs, nf_err *err)
{
    int64_t ni = nf_attr_ints(n, ints_name, ints);
    int64_t ns = nf_attr_strings(n, "classlabels_strings", strs);
    if (ni > 0 && ns > 0)
        return nf_node_err(err, NF_EMODEL, n, "both '%s' and 'classlabels_strings' are set; the specification allows one",
                           ints_name);
    if (ni == 0 && ns == 0)
        return nf_node_err(err, NF_EMODEL, n, "no class labels: set '%s' or 'classlabels_strings'", ints_name);
    *n_labels = ni > 0 ? ni : ns;
    if (ni == 0)
        *ints = NULL;
    else
        *strs = NULL;
    if (*n_labels < 2)
        return nf_node_err(err, NF_EUNSUPPORTED, n, "attribute '%s' has one label; a classifier needs at least two",
                           ni > 0 ? ints_name : "classlabels_strings");
    if (*n_labels > INT32_MAX)
        return nf_node_err(err, NF_EUNSUPPORTED, n, "%lld class labels is too many", (long long)*n_labels);
    if (n->n_out < 1 || n->out[0] < 0)
        return NF_OK; /* no label output: nothing to report to callers */
    bool mine_out = m->values[n->out[0]].is_output;
    bool cur_out = m->classes.n_labels > 0 && m->classes.label_output >= 0 &&
                   m->values[m->classes.label_output].is_output;
    if (m->classes.n_labels == 0 || (mine_out && !cur_out)) {
        m->classes.n_labels = (int)*n_labels;
        m->classes.ints = *ints;
        m->classes.strs = (const char *const *)*strs;
        m->classes.label_output = n->out[0];
        m->classes.score_output = n->n_out > 1 ? n->out[1] : -1;
    }
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

/* ---- the flattened ensemble ------------------------------------------------ */

/* One node, 16 bytes. A leaf points to itself on both sides, so a walk can
 * take a fixed number of steps without testing for leaves; its feat is 0,
 * a valid column whenever the tree has a branch. */
typedef struct nf_tnode {
    float thr;
    int32_t feat;
    int32_t child[2]; /* [0]: comparison true, [1]: false */
} nf_tnode;

enum { NF_M_LEQ, NF_M_LT, NF_M_GTE, NF_M_GT, NF_M_EQ, NF_M_NEQ, NF_M_LEAF };
#define NF_TRACK_TRUE 0x10 /* flags bit: NaN takes the true branch */

enum { NF_AGG_SUM, NF_AGG_AVERAGE, NF_AGG_MIN, NF_AGG_MAX };

/* Rows evaluated together: each tree is walked for every row of the block
 * before the next tree, so a tree's nodes are fetched once per block.
 * Measured (tests report, 100 and 500 trees of depth 12, 20 features):
 * tree-outer beats row-outer 5-7x; for 500 trees (47 MB of nodes, more
 * than the L3) 16384-row blocks are 3x faster than 256-row ones, for 100
 * trees the block size hardly matters. Capped so the block's scratch
 * stays under NF_TREE_SCRATCH bytes for many classes. */
#ifndef NF_TREE_BLOCK
#define NF_TREE_BLOCK 16384
#endif
#define NF_TREE_SCRATCH ((int64_t)8 << 20)

typedef struct nf_trees {
    bool classifier;
    int32_t n_trees;
    int32_t n_nodes;       /* reachable nodes, laid out */
    int32_t *root;         /* per tree: index of its root */
    int32_t *depth;        /* per tree: longest root-to-leaf path, in edges */
    nf_tnode *nodes;
    uint8_t *flags;        /* per node: NF_M_* | NF_TRACK_TRUE */
    double *thr_d;         /* per node, when a double threshold is not a float; else NULL */
    int32_t *wbeg;         /* n_nodes + 1: node i's weights are [wbeg[i], wbeg[i+1]) */
    int32_t *wtgt;         /* weight -> accumulator column */
    double *wval;          /* leaf weights, one per (leaf, column): repeated columns merged */
    int32_t n_acc;         /* accumulator columns per row */
    int agg;               /* NF_AGG_*; classifiers sum */
    int post;              /* NF_PT_* */
    bool fast;             /* all BRANCH_LEQ, no NaN tracking, float thresholds */
    bool need_has;         /* track which columns got a weight (MIN/MAX, classifier argmax) */
    int64_t max_feature;   /* largest feature a reachable branch reads; -1 if none */
    double *base;          /* n_acc base values, or NULL */
    /* classifier */
    int64_t n_labels;
    const int64_t *lab_i;  /* classlabels_int64s (node attribute) or NULL */
    char *const *lab_s;    /* classlabels_strings (node attribute) or NULL */
    bool bin1;             /* binary, one score: see clf_finish_bin1 */
    bool bin2;             /* binary, weights for one class id: see clf_finish_bin2 */
    int bin_col;           /* bin2: that class id */
    bool wpos;             /* every class weight >= 0 */
    double bin_base;       /* bin1, bin2: base value added to the score */
} nf_trees;

/* a FLOATS attribute or its *_as_tensor twin, read as doubles */
typedef struct dvec {
    const float *f;
    const double *d;
    int64_t n;
    const char *name; /* the one present, for messages */
} dvec;

static inline double dv_at(const dvec *v, int64_t i) { return v->d ? v->d[i] : (double)v->f[i]; }

static int dvec_get(const nf_node *n, const char *name, const char *tname, dvec *v, nf_err *err)
{
    memset(v, 0, sizeof *v);
    v->name = name;
    v->n = nf_attr_floats(n, name, &v->f);
    const nf_attr *t = nf_attr_get(n, tname);
    if (t == NULL || t->t == NULL)
        return NF_OK;
    if (v->n > 0)
        return nf_node_err(err, NF_EMODEL, n, "both '%s' and '%s' are set; the specification allows one", name, tname);
    v->name = tname;
    v->f = NULL;
    if (t->t->dtype == NF_DT_DOUBLE) {
        v->d = t->t->data;
    } else if (t->t->dtype == NF_DT_FLOAT) {
        v->f = t->t->data; /* the spec says double; float loses nothing */
    } else {
        return nf_node_err(err, NF_EMODEL, n, "attribute '%s' is a %s tensor; the specification says double", tname,
                           nf_dtype_name(t->t->dtype));
    }
    v->n = t->t->size;
    return NF_OK;
}

static const nf_ml_attrspec reg_spec[] = {
    {"nodes_falsenodeids", NF_AT_INTS, 1},     {"nodes_featureids", NF_AT_INTS, 1},
    {"nodes_hitrates", NF_AT_FLOATS, 1},       {"nodes_hitrates_as_tensor", NF_AT_TENSOR, 3},
    {"nodes_missing_value_tracks_true", NF_AT_INTS, 1},
    {"nodes_modes", NF_AT_STRINGS, 1},         {"nodes_nodeids", NF_AT_INTS, 1},
    {"nodes_treeids", NF_AT_INTS, 1},          {"nodes_truenodeids", NF_AT_INTS, 1},
    {"nodes_values", NF_AT_FLOATS, 1},         {"nodes_values_as_tensor", NF_AT_TENSOR, 3},
    {"post_transform", NF_AT_STRING, 1},       {"base_values", NF_AT_FLOATS, 1},
    {"base_values_as_tensor", NF_AT_TENSOR, 3},
    {"aggregate_function", NF_AT_STRING, 1},   {"n_targets", NF_AT_INT, 1},
    {"target_ids", NF_AT_INTS, 1},             {"target_nodeids", NF_AT_INTS, 1},
    {"target_treeids", NF_AT_INTS, 1},         {"target_weights", NF_AT_FLOATS, 1},
    {"target_weights_as_tensor", NF_AT_TENSOR, 3},
    {NULL, 0, 0},
};

static const nf_ml_attrspec clf_spec[] = {
    {"nodes_falsenodeids", NF_AT_INTS, 1},     {"nodes_featureids", NF_AT_INTS, 1},
    {"nodes_hitrates", NF_AT_FLOATS, 1},       {"nodes_hitrates_as_tensor", NF_AT_TENSOR, 3},
    {"nodes_missing_value_tracks_true", NF_AT_INTS, 1},
    {"nodes_modes", NF_AT_STRINGS, 1},         {"nodes_nodeids", NF_AT_INTS, 1},
    {"nodes_treeids", NF_AT_INTS, 1},          {"nodes_truenodeids", NF_AT_INTS, 1},
    {"nodes_values", NF_AT_FLOATS, 1},         {"nodes_values_as_tensor", NF_AT_TENSOR, 3},
    {"post_transform", NF_AT_STRING, 1},       {"base_values", NF_AT_FLOATS, 1},
    {"base_values_as_tensor", NF_AT_TENSOR, 3},
    {"class_ids", NF_AT_INTS, 1},              {"class_nodeids", NF_AT_INTS, 1},
    {"class_treeids", NF_AT_INTS, 1},          {"class_weights", NF_AT_FLOATS, 1},
    {"class_weights_as_tensor", NF_AT_TENSOR, 3},
    {"classlabels_int64s", NF_AT_INTS, 1},     {"classlabels_strings", NF_AT_STRINGS, 1},
    {NULL, 0, 0},
};

/* ---- building ----------------------------------------------------------- */

/* The per-node and per-leaf arrays: prepare flattens them into nf_trees
 * and nothing reads them afterwards (run and infer use only n->priv), so
 * the loader need not keep a copy (nf__attr_prepare_only). Class labels
 * and base values are not here: prepare keeps pointers to the labels. */
bool nf__attr_prepare_only(const char *domain, const char *op, const char *name)
{
    static const char *const names[] = {
        "nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_truenodeids", "nodes_falsenodeids",
        "nodes_values", "nodes_hitrates", "nodes_missing_value_tracks_true",
        "target_ids", "target_nodeids", "target_treeids", "target_weights",
        "class_ids", "class_nodeids", "class_treeids", "class_weights", NULL};
    if (strcmp(domain, "ai.onnx.ml") != 0 || strncmp(op, "TreeEnsemble", 12) != 0 ||
        (strcmp(op + 12, "Regressor") != 0 && strcmp(op + 12, "Classifier") != 0))
        return false;
    for (int i = 0; names[i] != NULL; i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

/* Temporary state of prepare; freed by build_free. */
typedef struct build {
    const nf_node *n;
    int64_t nn;                 /* nodes in the attributes */
    const int64_t *treeids, *nodeids, *featids, *tids, *fids, *tracks;
    char *const *modes;
    dvec values;
    int32_t *ord;               /* node indices sorted by (tree id, node id) */
    int64_t *tree_lo;           /* n_trees + 1: tree t's nodes are ord[tree_lo[t] .. tree_lo[t+1]) */
    int64_t *tree_ids;          /* n_trees: the tree ids, ascending */
    int64_t *id_base;           /* n_trees: first node id when tree t's ids are consecutive (node id
                                 * id is ord[tree_lo[t] + id - id_base[t]]), else INT64_MIN */
    int64_t n_trees;
    int32_t *tix;               /* per node: its tree index */
    uint8_t *mode;              /* per node: NF_M_* */
    int32_t *tchild, *fchild;   /* per branch node: attribute index of its children */
    int32_t *newidx;            /* per node: index in the layout, -1 if unreachable */
    uint8_t *color;
    int32_t *stack;
    uint8_t *it;
    int32_t *dep;               /* per node: longest path down to a leaf */
} build;

static void build_free(build *b)
{
    free(b->ord);
    free(b->tree_lo);
    free(b->tree_ids);
    free(b->id_base);
    free(b->tix);
    free(b->mode);
    free(b->tchild);
    free(b->fchild);
    free(b->newidx);
    free(b->color);
    free(b->stack);
    free(b->it);
    free(b->dep);
}

typedef struct sortkey {
    int64_t tree, node, i;
} sortkey;

static int cmp_tree_node(const void *pa, const void *pb)
{
    const sortkey *a = pa, *b = pb;
    if (a->tree != b->tree)
        return a->tree < b->tree ? -1 : 1;
    if (a->node != b->node)
        return a->node < b->node ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

/* Tree index of tree id, or -1. */
static int64_t find_tree(const build *b, int64_t id)
{
    int64_t lo = 0, hi = b->n_trees;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (b->tree_ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (lo < b->n_trees && b->tree_ids[lo] == id) ? lo : -1;
}

/* Attribute index of node id in tree t, or -1. Exporters number each
 * tree's nodes 0..n-1: then it is an index, else a binary search. */
static int64_t find_node(const build *b, int64_t t, int64_t id)
{
    int64_t lo = b->tree_lo[t], hi = b->tree_lo[t + 1];
    if (b->id_base[t] != INT64_MIN) {
        uint64_t k = (uint64_t)id - (uint64_t)b->id_base[t]; /* no signed overflow */
        return k < (uint64_t)(hi - lo) ? b->ord[lo + (int64_t)k] : -1;
    }
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (b->nodeids[b->ord[mid]] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (lo < b->tree_lo[t + 1] && b->nodeids[b->ord[lo]] == id) ? b->ord[lo] : -1;
}

static int parse_mode(const char *s)
{
    static const char *names[] = {"BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ", "LEAF"};
    if (strcmp(s, "LEAF") == 0) /* half of every tree */
        return NF_M_LEAF;
    for (int i = 0; i < 7; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

#define NEED_LEN(attr, len)                                                                                      \
    do {                                                                                                         \
        if ((len) != b->nn)                                                                                      \
            return nf_node_err(err, NF_EMODEL, n, "attribute '%s' has %lld values, 'nodes_treeids' has %lld", \
                               (attr), (long long)(len), (long long)b->nn);                                      \
    } while (0)

/* Reads and checks the nodes_* attributes, resolves children, finds each
 * tree's root and checks that every tree is a tree (no cycle reachable from
 * the root). Fills b; allocations are freed by build_free. */
static int build_nodes(build *b, const nf_node *n, nf_err *err)
{
    b->n = n;
    b->nn = nf_attr_ints(n, "nodes_treeids", &b->treeids);
    if (b->nn == 0)
        return nf_node_err(err, NF_EMODEL, n, "attribute 'nodes_treeids' is missing or empty: no trees");
    if (b->nn >= INT32_MAX / 2)
        return nf_node_err(err, NF_EUNSUPPORTED, n, "%lld nodes is too many", (long long)b->nn);
    NEED_LEN("nodes_nodeids", nf_attr_ints(n, "nodes_nodeids", &b->nodeids));
    NEED_LEN("nodes_featureids", nf_attr_ints(n, "nodes_featureids", &b->featids));
    NEED_LEN("nodes_modes", nf_attr_strings(n, "nodes_modes", &b->modes));
    NEED_LEN("nodes_truenodeids", nf_attr_ints(n, "nodes_truenodeids", &b->tids));
    NEED_LEN("nodes_falsenodeids", nf_attr_ints(n, "nodes_falsenodeids", &b->fids));
    int rc = dvec_get(n, "nodes_values", "nodes_values_as_tensor", &b->values, err);
    if (rc != NF_OK)
        return rc;
    NEED_LEN(b->values.name, b->values.n);
    int64_t nt = nf_attr_ints(n, "nodes_missing_value_tracks_true", &b->tracks);
    if (nt > 0)
        NEED_LEN("nodes_missing_value_tracks_true", nt);
    else
        b->tracks = NULL;
    dvec hit;
    if ((rc = dvec_get(n, "nodes_hitrates", "nodes_hitrates_as_tensor", &hit, err)) != NF_OK)
        return rc;
    if (hit.n > 0) /* unused for inference, but must line up */
        NEED_LEN(hit.name, hit.n);

    int64_t nn = b->nn;
    b->ord = malloc((size_t)nn * sizeof(int32_t)); /* indices: nn < 2^30 (above) */
    b->tix = malloc((size_t)nn * sizeof(int32_t));
    b->mode = malloc((size_t)nn);
    b->tchild = malloc((size_t)nn * sizeof(int32_t));
    b->fchild = malloc((size_t)nn * sizeof(int32_t));
    b->newidx = malloc((size_t)nn * sizeof(int32_t));
    b->color = calloc((size_t)nn, 1);
    b->stack = malloc((size_t)nn * sizeof(int32_t));
    b->it = calloc((size_t)nn, 1);
    b->dep = calloc((size_t)nn, sizeof(int32_t));
    if (!b->dep || !b->ord || !b->tix || !b->mode || !b->tchild || !b->fchild || !b->newidx || !b->color || !b->stack || !b->it)
        return nf_err_set(err, NF_ENOMEM, "out of memory preparing node '%s'", n->name);

    const char *seen_s[2] = {NULL, NULL}; /* the loader keeps one copy of a repeated string: */
    int seen_m[2] = {0, 0};               /* a pointer seen before has the same mode */
    bool sorted = true;                   /* by (tree id, node id), as exporters write them */
    for (int64_t i = 0; i < nn; i++) {
        int md;
        if (b->modes[i] == seen_s[0]) {
            md = seen_m[0];
        } else if (b->modes[i] == seen_s[1]) {
            md = seen_m[1];
        } else {
            md = parse_mode(b->modes[i]);
            seen_s[1] = seen_s[0], seen_m[1] = seen_m[0];
            seen_s[0] = b->modes[i], seen_m[0] = md;
        }
        if (md < 0)
            return nf_node_err(err, NF_EMODEL, n,
                               "attribute 'nodes_modes'[%lld] = '%s': not one of BRANCH_LEQ, BRANCH_LT, BRANCH_GTE, "
                               "BRANCH_GT, BRANCH_EQ, BRANCH_NEQ, LEAF", (long long)i, b->modes[i]);
        b->mode[i] = (uint8_t)md;
        if (md != NF_M_LEAF && (b->featids[i] < 0 || b->featids[i] >= INT32_MAX))
            return nf_node_err(err, NF_EMODEL, n, "attribute 'nodes_featureids'[%lld] = %lld: a feature id must be >= 0%s",
                               (long long)i, (long long)b->featids[i], b->featids[i] < 0 ? "" : " and < 2^31-1");
        if (b->tracks && b->tracks[i] != 0 && b->tracks[i] != 1)
            return nf_node_err(err, NF_EMODEL, n, "attribute 'nodes_missing_value_tracks_true'[%lld] = %lld: must be 0 or 1",
                               (long long)i, (long long)b->tracks[i]);
        b->ord[i] = (int32_t)i;
        b->newidx[i] = -1;
        if (i > 0 && (b->treeids[i] < b->treeids[i - 1] ||
                      (b->treeids[i] == b->treeids[i - 1] && b->nodeids[i] < b->nodeids[i - 1])))
            sorted = false;
    }
    if (!sorted) { /* else ord is the identity: what the stable sort below gives */
        sortkey *keys = malloc((size_t)nn * sizeof(sortkey));
        if (keys == NULL)
            return nf_err_set(err, NF_ENOMEM, "out of memory preparing node '%s'", n->name);
        for (int64_t i = 0; i < nn; i++)
            keys[i] = (sortkey){b->treeids[i], b->nodeids[i], i};
        qsort(keys, (size_t)nn, sizeof(sortkey), cmp_tree_node);
        for (int64_t k = 0; k < nn; k++)
            b->ord[k] = (int32_t)keys[k].i;
        free(keys);
    }

    /* trees and duplicate (tree, node) pairs */
    int64_t ntr = 0;
    for (int64_t k = 0; k < nn; k++) {
        int64_t i = b->ord[k];
        if (k == 0 || b->treeids[i] != b->treeids[b->ord[k - 1]]) {
            ntr++;
        } else if (b->nodeids[i] == b->nodeids[b->ord[k - 1]]) {
            return nf_node_err(err, NF_EMODEL, n, "attribute 'nodes_nodeids'[%lld] = %lld: node %lld of tree %lld is already "
                               "defined at index %lld", (long long)i, (long long)b->nodeids[i], (long long)b->nodeids[i],
                               (long long)b->treeids[i], (long long)b->ord[k - 1]);
        }
    }
    b->n_trees = ntr;
    b->tree_lo = malloc((size_t)(ntr + 1) * sizeof(int64_t));
    b->tree_ids = malloc((size_t)ntr * sizeof(int64_t));
    b->id_base = malloc((size_t)ntr * sizeof(int64_t));
    if (!b->tree_lo || !b->tree_ids || !b->id_base)
        return nf_err_set(err, NF_ENOMEM, "out of memory preparing node '%s'", n->name);
    for (int64_t k = 0, t = -1; k < nn; k++) {
        int64_t i = b->ord[k];
        if (k == 0 || b->treeids[i] != b->treeids[b->ord[k - 1]]) {
            t++;
            b->tree_lo[t] = k;
            b->tree_ids[t] = b->treeids[i];
        }
        b->tix[i] = (int32_t)t;
    }
    b->tree_lo[ntr] = nn;
    for (int64_t t = 0; t < ntr; t++) {
        /* ids are distinct (checked above) and ascending: consecutive iff
         * last - first == count - 1 (computed without overflow) */
        int64_t first = b->nodeids[b->ord[b->tree_lo[t]]], last = b->nodeids[b->ord[b->tree_lo[t + 1] - 1]];
        b->id_base[t] = (uint64_t)last - (uint64_t)first == (uint64_t)(b->tree_lo[t + 1] - b->tree_lo[t] - 1)
                            ? first : INT64_MIN;
    }

    /* children: in the same tree, not the node itself */
    for (int64_t i = 0; i < nn; i++) {
        if (b->mode[i] == NF_M_LEAF)
            continue;
        for (int side = 0; side < 2; side++) {
            const char *an = side ? "nodes_falsenodeids" : "nodes_truenodeids";
            int64_t id = side ? b->fids[i] : b->tids[i];
            int64_t c = find_node(b, b->tix[i], id);
            if (c < 0)
                return nf_node_err(err, NF_EMODEL, n, "attribute '%s'[%lld] = %lld: no node %lld in tree %lld", an,
                                   (long long)i, (long long)id, (long long)id, (long long)b->treeids[i]);
            if (c == i)
                return nf_node_err(err, NF_EMODEL, n, "attribute '%s'[%lld] = %lld: node %lld of tree %lld is its own child",
                                   an, (long long)i, (long long)id, (long long)id, (long long)b->treeids[i]);
            (side ? b->fchild : b->tchild)[i] = (int32_t)c;
            b->color[c] = 1; /* has a parent (color reused before the walk) */
        }
    }
    return NF_OK;
}

/* Root of tree t: the first node listed for it, as ONNX Runtime and the ONNX
 * reference take it, when that node has no parent; otherwise (nodes listed
 * out of order) the one node without a parent. */
static int find_root(build *b, int64_t t, int64_t *root, nf_err *err)
{
    const nf_node *n = b->n;
    int64_t first = -1, lone = -1, n_lone = 0;
    for (int64_t k = b->tree_lo[t]; k < b->tree_lo[t + 1]; k++) {
        int64_t i = b->ord[k];
        if (first < 0 || i < first)
            first = i;
        if (!b->color[i]) {
            n_lone++;
            if (lone < 0 || i < lone)
                lone = i;
        }
    }
    if (!b->color[first]) {
        *root = first;
        return NF_OK;
    }
    if (n_lone == 1) {
        *root = lone;
        return NF_OK;
    }
    if (n_lone == 0)
        return nf_node_err(err, NF_EMODEL, n, "tree %lld has no root: every node is a child of another (a cycle; "
                           "see 'nodes_truenodeids' / 'nodes_falsenodeids')", (long long)b->tree_ids[t]);
    return nf_node_err(err, NF_EMODEL, n, "tree %lld: its first node (node %lld) has a parent and %lld nodes have none; "
                       "cannot tell its root", (long long)b->tree_ids[t], (long long)b->nodeids[first], (long long)n_lone);
}

/* Depth-first walk of tree t from root: fails on a cycle, numbers the nodes
 * it reaches in pre-order (true child first) from *next on, and returns the
 * longest root-to-leaf path in *depth. The walk is bounded by the tree's node count:
 * each node is pushed at most once. With next == NULL it only looks for a
 * cycle (from a node the root does not reach). */
static int walk_tree(build *b, int64_t t, int64_t root, int32_t *next, int32_t *depth, nf_err *err)
{
    const nf_node *n = b->n;
    int64_t sp = 0;
    b->stack[sp++] = (int32_t)root;
    b->color[root] = 1; /* 1: on the path, 2: done */
    if (next)
        b->newidx[root] = (*next)++;
    while (sp > 0) {
        int64_t u = b->stack[sp - 1];
        if (b->mode[u] == NF_M_LEAF || b->it[u] == 2) {
            /* both children are done here (a child on the path would be a
             * cycle), so the longest path is exact even where subtrees
             * are shared */
            if (b->mode[u] != NF_M_LEAF) {
                int32_t dt = b->dep[b->tchild[u]], df = b->dep[b->fchild[u]];
                b->dep[u] = 1 + (dt > df ? dt : df);
            }
            b->color[u] = 2;
            sp--;
            continue;
        }
        int side = b->it[u]++;
        int64_t v = side ? b->fchild[u] : b->tchild[u];
        if (b->color[v] == 1)
            return nf_node_err(err, NF_EMODEL, n, "attribute '%s'[%lld] = %lld: a cycle in tree %lld (node %lld is an "
                               "ancestor of node %lld)", side ? "nodes_falsenodeids" : "nodes_truenodeids", (long long)u,
                               (long long)b->nodeids[v], (long long)b->tree_ids[t], (long long)b->nodeids[v],
                               (long long)b->nodeids[u]);
        if (b->color[v] == 0) {
            b->color[v] = 1;
            if (next)
                b->newidx[v] = (*next)++;
            b->stack[sp++] = (int32_t)v;
        }
    }
    if (depth)
        *depth = b->dep[root];
    return NF_OK;
}

/* one leaf weight on the way to the layout */
typedef struct wrec {
    int32_t node; /* layout index of the leaf */
    int32_t col;
    int64_t k;    /* attribute index: keeps the file's order for sums */
    double v;
} wrec;

static int cmp_wrec(const void *pa, const void *pb)
{
    const wrec *a = pa, *b = pb;
    if (a->node != b->node)
        return a->node < b->node ? -1 : 1;
    if (a->col != b->col)
        return a->col < b->col ? -1 : 1;
    return a->k < b->k ? -1 : a->k > b->k;
}

/* Builds the whole nf_trees in the model arena. pfx is "target" or "class";
 * n_cols the number of targets or labels (ids must be below it); with
 * one_col every weight goes to accumulator column 0 (the binary cases),
 * else to the column of its id. */
static int build_trees(nf_model *m, nf_node *n, nf_trees *p, const char *pfx, int64_t n_cols, bool one_col, nf_err *err)
{
    build b;
    memset(&b, 0, sizeof b);
    wrec *w = NULL;
    int rc = build_nodes(&b, n, err);
    if (rc != NF_OK)
        goto out;

    /* layout: trees in ascending id order, each pre-order from its root */
    p->n_trees = (int32_t)b.n_trees;
    p->root = nf_arena_alloc(&m->arena, (size_t)b.n_trees * sizeof(int32_t));
    p->depth = nf_arena_alloc(&m->arena, (size_t)b.n_trees * sizeof(int32_t));
    if (!p->root || !p->depth)
        goto nomem;
    int32_t *roots = b.stack; /* not in use yet: remember roots before clearing colors */
    for (int64_t t = 0; t < b.n_trees; t++) {
        int64_t r = 0;
        if ((rc = find_root(&b, t, &r, err)) != NF_OK)
            goto out;
        roots[t] = (int32_t)r;
    }
    for (int64_t t = 0; t < b.n_trees; t++)
        p->root[t] = (int32_t)roots[t];
    memset(b.color, 0, (size_t)b.nn);
    int32_t next = 0;
    for (int64_t t = 0; t < b.n_trees; t++) {
        int64_t r = p->root[t];
        if (b.color[r] != 0) { /* cannot happen: roots have no parent */
            rc = nf_node_err(err, NF_EINTERNAL, n, "tree %lld: root reached twice", (long long)b.tree_ids[t]);
            goto out;
        }
        if ((rc = walk_tree(&b, t, r, &next, &p->depth[t], err)) != NF_OK)
            goto out;
        p->root[t] = b.newidx[r];
        /* nodes the root does not reach are never evaluated (ONNX Runtime
         * ignores them too), but a cycle among them means the tree is
         * not a tree: refuse it */
        for (int64_t k = b.tree_lo[t]; k < b.tree_lo[t + 1]; k++)
            if (b.color[b.ord[k]] == 0 && (rc = walk_tree(&b, t, b.ord[k], NULL, NULL, err)) != NF_OK)
                goto out;
    }
    p->n_nodes = next;

    /* leaf weights */
    char an_ids[32], an_nodes[32], an_trees[32], an_w[32], an_wt[40];
    snprintf(an_ids, sizeof an_ids, "%s_ids", pfx);
    snprintf(an_nodes, sizeof an_nodes, "%s_nodeids", pfx);
    snprintf(an_trees, sizeof an_trees, "%s_treeids", pfx);
    snprintf(an_w, sizeof an_w, "%s_weights", pfx);
    snprintf(an_wt, sizeof an_wt, "%s_weights_as_tensor", pfx);
    const int64_t *wid, *wnode, *wtree;
    int64_t nw = nf_attr_ints(n, an_ids, &wid);
    dvec wv;
    if ((rc = dvec_get(n, an_w, an_wt, &wv, err)) != NF_OK)
        goto out;
    if (nf_attr_ints(n, an_nodes, &wnode) != nw || nf_attr_ints(n, an_trees, &wtree) != nw || wv.n != nw) {
        rc = nf_node_err(err, NF_EMODEL, n, "attributes '%s', '%s', '%s', '%s' must have the same length (%lld, %lld, %lld, %lld)",
                         an_ids, an_nodes, an_trees, wv.name, (long long)nw, (long long)nf_attr_ints(n, an_nodes, &wnode),
                         (long long)nf_attr_ints(n, an_trees, &wtree), (long long)wv.n);
        goto out;
    }
    if (nw >= INT32_MAX / 2) {
        rc = nf_node_err(err, NF_EUNSUPPORTED, n, "%lld leaf weights is too many", (long long)nw);
        goto out;
    }
    w = malloc((size_t)(nw + 1) * sizeof(wrec));
    if (w == NULL)
        goto nomem;
    int64_t nkept = 0, last_id = 0, t = -1;
    bool w_sorted = true; /* weights listed leaf by leaf in layout order (exporters do) */
    p->wpos = true;
    for (int64_t k = 0; k < nw; k++) {
        if (t < 0 || wtree[k] != last_id) /* weights come tree by tree */
            t = find_tree(&b, wtree[k]);
        last_id = wtree[k];
        if (t < 0) {
            rc = nf_node_err(err, NF_EMODEL, n, "attribute '%s'[%lld] = %lld: no tree %lld in 'nodes_treeids'", an_trees,
                             (long long)k, (long long)wtree[k], (long long)wtree[k]);
            goto out;
        }
        int64_t i = find_node(&b, t, wnode[k]);
        if (i < 0) {
            rc = nf_node_err(err, NF_EMODEL, n, "attribute '%s'[%lld] = %lld: no node %lld in tree %lld", an_nodes,
                             (long long)k, (long long)wnode[k], (long long)wnode[k], (long long)wtree[k]);
            goto out;
        }
        if (wid[k] < 0 || wid[k] >= n_cols) {
            rc = nf_node_err(err, NF_EMODEL, n, "attribute '%s'[%lld] = %lld: out of range, %s %lld", an_ids, (long long)k,
                             (long long)wid[k], p->classifier ? "the number of class labels is" : "n_targets is",
                             (long long)n_cols);
            goto out;
        }
        double v = dv_at(&wv, k);
        if (v < 0)
            p->wpos = false;
        /* ONNX Runtime ignores weights on branch nodes (old onnxmltools
         * wrote some); so do we, and weights on unreachable leaves */
        if (b.mode[i] != NF_M_LEAF || b.newidx[i] < 0)
            continue;
        w[nkept].node = b.newidx[i];
        w[nkept].col = one_col ? 0 : (int32_t)wid[k];
        w[nkept].k = k;
        w[nkept].v = v;
        if (nkept > 0 && cmp_wrec(&w[nkept - 1], &w[nkept]) > 0)
            w_sorted = false;
        nkept++;
    }
    if (!w_sorted)
        qsort(w, (size_t)nkept, sizeof(wrec), cmp_wrec);

    /* nodes, in layout order */
    int32_t nl = p->n_nodes;
    p->nodes = nf_arena_alloc(&m->arena, (size_t)nl * sizeof(nf_tnode));
    p->flags = nf_arena_alloc(&m->arena, (size_t)nl);
    p->wbeg = nf_arena_alloc(&m->arena, (size_t)(nl + 1) * sizeof(int32_t));
    /* one weight per kept record, plus a 0 for each weightless leaf in the
     * one-column sum case (below) */
    int64_t n_extra = 0;
    if (p->n_acc == 1 && p->agg <= NF_AGG_AVERAGE) {
        int64_t leaves = 0;
        for (int64_t i = 0; i < b.nn; i++)
            leaves += b.newidx[i] >= 0 && b.mode[i] == NF_M_LEAF;
        n_extra = leaves;
        for (int64_t k = 0; k < nkept; k++) /* w is sorted by leaf */
            n_extra -= k == 0 || w[k].node != w[k - 1].node;
    }
    p->wtgt = nf_arena_alloc(&m->arena, (size_t)(nkept + n_extra + 1) * sizeof(int32_t));
    p->wval = nf_arena_alloc(&m->arena, (size_t)(nkept + n_extra + 1) * sizeof(double));
    if (!p->nodes || !p->flags || !p->wbeg || !p->wtgt || !p->wval)
        goto nomem;
    bool need_d = false;
    p->fast = true;
    p->max_feature = -1;
    for (int64_t i = 0; i < b.nn; i++) {
        int32_t j = b.newidx[i];
        if (j < 0)
            continue;
        nf_tnode *nd = &p->nodes[j];
        double thr = dv_at(&b.values, i);
        if (b.mode[i] == NF_M_LEAF) {
            nd->child[0] = nd->child[1] = j;
            p->flags[j] = NF_M_LEAF;
            continue;
        }
        nd->feat = (int32_t)b.featids[i];
        nd->thr = (float)thr;
        if ((double)nd->thr != thr && !isnan(thr))
            need_d = true;
        nd->child[0] = b.newidx[b.tchild[i]];
        nd->child[1] = b.newidx[b.fchild[i]];
        p->flags[j] = b.mode[i] | (b.tracks && b.tracks[i] ? NF_TRACK_TRUE : 0);
        if (b.mode[i] != NF_M_LEQ || (b.tracks && b.tracks[i]))
            p->fast = false;
        if (b.featids[i] > p->max_feature)
            p->max_feature = b.featids[i];
    }
    if (need_d) {
        p->fast = false;
        p->thr_d = nf_arena_alloc(&m->arena, (size_t)nl * sizeof(double));
        if (p->thr_d == NULL)
            goto nomem;
        for (int64_t i = 0; i < b.nn; i++)
            if (b.newidx[i] >= 0)
                p->thr_d[b.newidx[i]] = dv_at(&b.values, i);
    }

    /* weights: CSR by node, repeated (leaf, column) merged as the
     * aggregate would merge them (sum, or min / max) */
    int64_t out_w = 0, k = 0;
    for (int32_t j = 0; j < nl; j++) {
        p->wbeg[j] = (int32_t)out_w;
        while (k < nkept && w[k].node == j) {
            if (out_w > p->wbeg[j] && p->wtgt[out_w - 1] == w[k].col) {
                double *acc = &p->wval[out_w - 1];
                if (p->agg == NF_AGG_MIN)
                    *acc = w[k].v < *acc ? w[k].v : *acc;
                else if (p->agg == NF_AGG_MAX)
                    *acc = w[k].v > *acc ? w[k].v : *acc;
                else
                    *acc += w[k].v;
            } else {
                p->wtgt[out_w] = w[k].col;
                p->wval[out_w] = w[k].v;
                out_w++;
            }
            k++;
        }
        if (p->flags[j] == NF_M_LEAF && p->wbeg[j] == out_w && p->n_acc == 1 && p->agg <= NF_AGG_AVERAGE) {
            /* a leaf without weight adds nothing; with one column and a sum
             * a 0 keeps the one-weight-per-leaf loop (ONNX Runtime 1.30
             * accepts such leaves; older versions refused them) */
            p->wtgt[out_w] = 0;
            p->wval[out_w] = 0.0;
            out_w++;
        }
    }
    p->wbeg[nl] = (int32_t)out_w;
    rc = NF_OK;
    goto out;
nomem:
    rc = nf_err_set(err, NF_ENOMEM, "out of memory preparing node '%s'", n->name);
out:
    free(w);
    build_free(&b);
    return rc;
}

/* base_values (or base_values_as_tensor) as n doubles in the arena, or NULL
 * when absent; any other length fails. */
static int read_base(nf_model *m, nf_node *n, int64_t want, double **out, int64_t *len, nf_err *err)
{
    dvec bv;
    int rc = dvec_get(n, "base_values", "base_values_as_tensor", &bv, err);
    if (rc != NF_OK)
        return rc;
    *len = bv.n;
    *out = NULL;
    if (bv.n == 0)
        return NF_OK;
    if (want >= 0 && bv.n != want)
        return nf_node_err(err, NF_EMODEL, n, "attribute '%s' has %lld values; expected 0 or %lld", bv.name,
                           (long long)bv.n, (long long)want);
    *out = nf_arena_alloc(&m->arena, (size_t)bv.n * sizeof(double));
    if (*out == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    for (int64_t i = 0; i < bv.n; i++)
        (*out)[i] = dv_at(&bv, i);
    return NF_OK;
}

static int check_io(nf_node *n, int max_out, nf_err *err)
{
    if (n->n_in != 1 || n->in[0] < 0)
        return nf_node_err(err, NF_EMODEL, n, "needs exactly one input X");
    if (n->n_out < 1 || n->n_out > max_out)
        return nf_node_err(err, NF_EMODEL, n, "has %d outputs; the specification has %d", n->n_out, max_out);
    return NF_OK;
}

/* ---- TreeEnsembleRegressor ------------------------------------------------- */

int nf_op_tree_regressor_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    int rc = nf__ml_check_attrs(n, reg_spec, err);
    if (rc == NF_OK)
        rc = check_io(n, 1, err);
    if (rc != NF_OK)
        return rc;
    nf_trees *p = nf_arena_alloc(&m->arena, sizeof *p);
    if (p == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    const char *agg = nf_attr_str(n, "aggregate_function", "SUM");
    static const char *aggs[] = {"SUM", "AVERAGE", "MIN", "MAX"};
    p->agg = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(agg, aggs[i]) == 0)
            p->agg = i;
    if (p->agg < 0)
        return nf_node_err(err, NF_EMODEL, n, "attribute 'aggregate_function' = '%s': not one of SUM, AVERAGE, MIN, MAX", agg);
    if ((rc = nf__ml_post_transform(n, &p->post, err)) != NF_OK)
        return rc;
    const nf_attr *nt = nf_attr_get(n, "n_targets");
    if (nt == NULL)
        return nf_node_err(err, NF_EMODEL, n, "attribute 'n_targets' is missing");
    if (nt->i < 1 || nt->i > INT32_MAX / 16)
        return nf_node_err(err, NF_EMODEL, n, "attribute 'n_targets' = %lld: must be >= 1", (long long)nt->i);
    p->n_acc = (int32_t)nt->i;
    int64_t nb;
    if ((rc = read_base(m, n, p->n_acc, &p->base, &nb, err)) != NF_OK)
        return rc;
    if ((rc = build_trees(m, n, p, "target", p->n_acc, false, err)) != NF_OK)
        return rc;
    p->need_has = p->agg == NF_AGG_MIN || p->agg == NF_AGG_MAX;
    n->priv = p;
    return NF_OK;
}

/* rows per block for a batch of rows (infer sizes the scratch with it,
 * run walks with it) */
static int64_t tree_block(const nf_trees *p, int64_t rows)
{
    int64_t per_row = (int64_t)p->n_acc * (int64_t)(sizeof(double) + 1) + (int64_t)sizeof(int32_t);
    int64_t cap = NF_TREE_SCRATCH / per_row;
    int64_t b = NF_TREE_BLOCK;
    if (cap < b)
        b = cap < 64 ? 64 : cap;
    return rows < b ? rows : b;
}

static int tree_infer_x(nf_model *m, nf_node *n, const nf_trees *p, int64_t *rows, nf_err *err)
{
    int64_t f;
    int rc = nf__ml_input(m, n, rows, &f, err);
    if (rc != NF_OK)
        return rc;
    if (p->max_feature >= f)
        return nf_node_err(err, NF_ESHAPE, n, "input '%s' has %lld features, a tree node uses feature %lld "
                           "(attribute 'nodes_featureids')", nf_in(m, n, 0)->name, (long long)f, (long long)p->max_feature);
    int64_t blk = tree_block(p, *rows);
    size_t cols = (size_t)(p->n_acc > 2 ? p->n_acc : 2);
    n->scratch_bytes = (size_t)blk * ((size_t)p->n_acc * (sizeof(double) + (p->need_has ? 1 : 0)) + sizeof(int32_t)) +
                       cols * sizeof(double) + 64;
    return NF_OK;
}

int nf_op_tree_regressor_infer(nf_model *m, nf_node *n, nf_err *err)
{
    const nf_trees *p = n->priv;
    int64_t rows;
    int rc = tree_infer_x(m, n, p, &rows, err);
    if (rc != NF_OK)
        return rc;
    nf_value *y = nf_out(m, n, 0);
    int64_t dims[2] = {rows, p->n_acc};
    return y ? nf_value_set(y, NF_DT_FLOAT, 2, dims, err) : NF_OK;
}

/* ---- walking ----------------------------------------------------------------- */

/* Fast walk: float X, every branch BRANCH_LEQ, no NaN tracking. Leaves loop
 * on themselves, so every row takes depth steps with no test; eight rows go
 * together so their dependent loads overlap. NaN <= t is false: NaN takes
 * the false branch, as the spec's default (tracks_true = 0) wants. */
static void walk_fast(const nf_trees *p, int32_t t, const float *x, int64_t f, int64_t nb, int32_t *leaf)
{
    const nf_tnode *nd = p->nodes;
    const int32_t root = p->root[t], depth = p->depth[t];
    int64_t r = 0;
    for (; r + 8 <= nb; r += 8) {
        const float *x0 = x + r * f;
        int32_t i0 = root, i1 = root, i2 = root, i3 = root, i4 = root, i5 = root, i6 = root, i7 = root;
        for (int32_t s = 0; s < depth; s++) {
            i0 = nd[i0].child[!(x0[nd[i0].feat] <= nd[i0].thr)];
            i1 = nd[i1].child[!(x0[f + nd[i1].feat] <= nd[i1].thr)];
            i2 = nd[i2].child[!(x0[2 * f + nd[i2].feat] <= nd[i2].thr)];
            i3 = nd[i3].child[!(x0[3 * f + nd[i3].feat] <= nd[i3].thr)];
            i4 = nd[i4].child[!(x0[4 * f + nd[i4].feat] <= nd[i4].thr)];
            i5 = nd[i5].child[!(x0[5 * f + nd[i5].feat] <= nd[i5].thr)];
            i6 = nd[i6].child[!(x0[6 * f + nd[i6].feat] <= nd[i6].thr)];
            i7 = nd[i7].child[!(x0[7 * f + nd[i7].feat] <= nd[i7].thr)];
        }
        leaf[r] = i0, leaf[r + 1] = i1, leaf[r + 2] = i2, leaf[r + 3] = i3;
        leaf[r + 4] = i4, leaf[r + 5] = i5, leaf[r + 6] = i6, leaf[r + 7] = i7;
    }
    for (; r < nb; r++) {
        const float *xr = x + r * f;
        int32_t i = root;
        while (nd[i].child[0] != i)
            i = nd[i].child[!(xr[nd[i].feat] <= nd[i].thr)];
        leaf[r] = i;
    }
}

/* General walk: any mode, NaN tracking, thresholds compared as doubles
 * (exact for float and double X against float or double thresholds; int
 * X converts exactly below 2^53). As ONNX Runtime: true when the
 * comparison holds, or when X is NaN and the node tracks NaN to true. */
#define NF_WALK_GENERIC(NAME, T)                                                                      \
    static void NAME(const nf_trees *p, int32_t t, const T *x, int64_t f, int64_t nb, int32_t *leaf)   \
    {                                                                                                  \
        const nf_tnode *nd = p->nodes;                                                                 \
        for (int64_t r = 0; r < nb; r++) {                                                             \
            const T *xr = x + r * f;                                                                   \
            int32_t i = p->root[t];                                                                    \
            while (nd[i].child[0] != i) {                                                              \
                double v = (double)xr[nd[i].feat];                                                     \
                double th = p->thr_d ? p->thr_d[i] : (double)nd[i].thr;                                \
                uint8_t fl = p->flags[i];                                                              \
                bool c;                                                                                \
                switch (fl & 0x0f) {                                                                   \
                case NF_M_LEQ: c = v <= th; break;                                                     \
                case NF_M_LT: c = v < th; break;                                                       \
                case NF_M_GTE: c = v >= th; break;                                                     \
                case NF_M_GT: c = v > th; break;                                                       \
                case NF_M_EQ: c = v == th; break;                                                      \
                default: c = v != th; break;                                                           \
                }                                                                                      \
                if (!c && (fl & NF_TRACK_TRUE) && isnan(v))                                            \
                    c = true;                                                                          \
                i = nd[i].child[!c];                                                                   \
            }                                                                                          \
            leaf[r] = i;                                                                               \
        }                                                                                              \
    }
NF_WALK_GENERIC(walk_f32, float)
NF_WALK_GENERIC(walk_f64, double)
NF_WALK_GENERIC(walk_i64, int64_t)
NF_WALK_GENERIC(walk_i32, int32_t)

static void walk(const nf_trees *p, int32_t t, const nf_value *x, int64_t f, int64_t r0, int64_t nb, int32_t *leaf)
{
    switch (x->dtype) {
    case NF_DT_FLOAT:
        if (p->fast)
            walk_fast(p, t, (const float *)x->data + r0 * f, f, nb, leaf);
        else
            walk_f32(p, t, (const float *)x->data + r0 * f, f, nb, leaf);
        break;
    case NF_DT_DOUBLE: walk_f64(p, t, (const double *)x->data + r0 * f, f, nb, leaf); break;
    case NF_DT_INT64: walk_i64(p, t, (const int64_t *)x->data + r0 * f, f, nb, leaf); break;
    default: walk_i32(p, t, (const int32_t *)x->data + r0 * f, f, nb, leaf); break;
    }
}

/* Runs every tree over rows [r0, r0 + nb) and leaves the aggregated leaf
 * weights in acc[nb][n_acc] (and which columns got one in has[][]). */
static void accumulate(const nf_trees *p, const nf_value *x, int64_t f, int64_t r0, int64_t nb, double *acc, uint8_t *has,
                       int32_t *leaf)
{
    const int64_t c = p->n_acc;
    memset(acc, 0, (size_t)(nb * c) * sizeof(double));
    if (has)
        memset(has, 0, (size_t)(nb * c));
    for (int32_t t = 0; t < p->n_trees; t++) {
        walk(p, t, x, f, r0, nb, leaf);
        if (c == 1 && p->agg <= NF_AGG_AVERAGE) {
            /* one column, sum: every reachable leaf has exactly one weight */
            for (int64_t r = 0; r < nb; r++)
                acc[r] += p->wval[p->wbeg[leaf[r]]];
        } else if (p->agg <= NF_AGG_AVERAGE) {
            for (int64_t r = 0; r < nb; r++)
                for (int32_t k = p->wbeg[leaf[r]]; k < p->wbeg[leaf[r] + 1]; k++) {
                    acc[r * c + p->wtgt[k]] += p->wval[k];
                    if (has)
                        has[r * c + p->wtgt[k]] = 1;
                }
        } else {
            bool mn = p->agg == NF_AGG_MIN;
            for (int64_t r = 0; r < nb; r++)
                for (int32_t k = p->wbeg[leaf[r]]; k < p->wbeg[leaf[r] + 1]; k++) {
                    int64_t j = r * c + p->wtgt[k];
                    double v = p->wval[k];
                    if (!has[j] || (mn ? v < acc[j] : v > acc[j]))
                        acc[j] = v;
                    has[j] = 1;
                }
        }
    }
}

/* carves the run's scratch (sized by tree_infer_x) */
static void scratch_split(const nf_trees *p, nf_node *n, int64_t blk, double **acc, uint8_t **has, int32_t **leaf,
                          double **row)
{
    char *s = n->scratch;
    *acc = (double *)s;
    s += (size_t)blk * (size_t)p->n_acc * sizeof(double);
    *row = (double *)s;
    s += (size_t)(p->n_acc > 2 ? p->n_acc : 2) * sizeof(double);
    *leaf = (int32_t *)s;
    s += (size_t)blk * sizeof(int32_t);
    *has = p->need_has ? (uint8_t *)s : NULL;
}

int nf_op_tree_regressor_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    const nf_trees *p = n->priv;
    const nf_value *x = nf_in(m, n, 0);
    nf_value *y = nf_out(m, n, 0);
    if (y == NULL)
        return NF_OK;
    int64_t rows = x->n_dims == 1 ? 1 : x->dims[0], f = x->dims[x->n_dims - 1];
    int64_t blk = tree_block(p, rows);
    double *acc, *row;
    uint8_t *has;
    int32_t *leaf;
    scratch_split(p, n, blk, &acc, &has, &leaf, &row);
    const int64_t c = p->n_acc;
    float *out = y->data;
    for (int64_t r0 = 0; r0 < rows; r0 += blk) {
        int64_t nb = rows - r0 < blk ? rows - r0 : blk;
        accumulate(p, x, f, r0, nb, acc, has, leaf);
        for (int64_t r = 0; r < nb; r++) {
            for (int64_t k = 0; k < c; k++) {
                double v = acc[r * c + k];
                if (p->agg == NF_AGG_AVERAGE)
                    v /= p->n_trees;
                else if (has && !has[r * c + k])
                    v = 0; /* MIN/MAX with no leaf for this target: base value only */
                row[k] = v + (p->base ? p->base[k] : 0.0);
            }
            /* The spec applies post_transform for any n_targets; ONNX
             * Runtime skips all but PROBIT when n_targets == 1. */
            nf__ml_transform(row, c, p->post);
            for (int64_t k = 0; k < c; k++)
                out[(r0 + r) * c + k] = (float)row[k];
        }
    }
    return NF_OK;
}

/* ---- TreeEnsembleClassifier -------------------------------------------------- */

int nf_op_tree_classifier_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    int rc = nf__ml_check_attrs(n, clf_spec, err);
    if (rc == NF_OK)
        rc = check_io(n, 2, err);
    if (rc != NF_OK)
        return rc;
    nf_trees *p = nf_arena_alloc(&m->arena, sizeof *p);
    if (p == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    p->classifier = true;
    p->agg = NF_AGG_SUM;
    if ((rc = nf__ml_post_transform(n, &p->post, err)) != NF_OK)
        return rc;
    if ((rc = nf__ml_labels(m, n, "classlabels_int64s", &p->n_labels, &p->lab_i, &p->lab_s, err)) != NF_OK)
        return rc;
    const int64_t *ids;
    int64_t nw = nf_attr_ints(n, "class_ids", &ids);
    if (nw == 0)
        return nf_node_err(err, NF_EMODEL, n, "attribute 'class_ids' is missing or empty: no leaf weights");
    bool one_id = true;
    for (int64_t k = 1; k < nw; k++)
        one_id = one_id && ids[k] == ids[0];
    int64_t nb;
    double *base;
    if ((rc = read_base(m, n, -1, &base, &nb, err)) != NF_OK)
        return rc;
    /* The binary cases the spec leaves open: two labels, every weight for
     * one class id. bin1: id 0 and at most one base value (what skl2onnx
     * and onnxmltools write for binary trees; the sum scores the second
     * label), see clf_finish_bin1; bin2: the other single-id layouts, see
     * clf_finish_bin2. Both as ONNX Runtime 1.30 computes them. Any other
     * layout is the plain reading of the spec: score k = base_values[k] +
     * the weights for class k, label = first maximum. */
    p->bin1 = p->n_labels == 2 && one_id && ids[0] == 0 && nb <= 1;
    p->bin2 = p->n_labels == 2 && one_id && !p->bin1 && ids[0] >= 0 && ids[0] < 2;
    if (p->bin1 || p->bin2) {
        if (nb > 2)
            return nf_node_err(err, NF_EMODEL, n, "attribute '%s' has %lld values; expected at most 2 (one per class label)",
                               nf_attr_get(n, "base_values") ? "base_values" : "base_values_as_tensor", (long long)nb);
        p->n_acc = 1;
        p->bin_col = (int)ids[0];
        p->bin_base = p->bin1 ? (nb == 1 ? base[0] : 0.0) : (nb == 2 ? base[p->bin_col] : 0.0);
    } else {
        if (nb != 0 && nb != p->n_labels)
            return nf_node_err(err, NF_EMODEL, n, "attribute '%s' has %lld values; expected 0 or one per class label (%lld)",
                               nf_attr_get(n, "base_values") ? "base_values" : "base_values_as_tensor", (long long)nb,
                               (long long)p->n_labels);
        p->n_acc = (int32_t)p->n_labels;
        p->base = base;
    }
    if ((rc = build_trees(m, n, p, "class", p->n_labels, p->n_acc == 1, err)) != NF_OK)
        return rc;
    if (p->n_acc > 1 && p->base == NULL) {
        /* ONNX Runtime's argmax skips classes no leaf of this row voted
         * for; that matters only if some leaf lacks a weight for some
         * class, so the flags are kept only then. */
        for (int32_t j = 0; j < p->n_nodes && !p->need_has; j++)
            if (p->flags[j] == NF_M_LEAF && p->wbeg[j + 1] - p->wbeg[j] != p->n_acc)
                p->need_has = true;
    }
    n->priv = p;
    return NF_OK;
}

int nf_op_tree_classifier_infer(nf_model *m, nf_node *n, nf_err *err)
{
    const nf_trees *p = n->priv;
    int64_t rows;
    int rc = tree_infer_x(m, n, p, &rows, err);
    if (rc != NF_OK)
        return rc;
    nf_value *y = nf_out(m, n, 0), *z = nf_out(m, n, 1);
    int64_t dims[2] = {rows, p->n_labels};
    if (y != NULL && (rc = nf_value_set(y, p->lab_s ? NF_DT_STRING : NF_DT_INT64, 1, dims, err)) != NF_OK)
        return rc;
    return z ? nf_value_set(z, NF_DT_FLOAT, 2, dims, err) : NF_OK;
}

/* Binary, one score s = sum + base (two labels, all weights for class id
 * 0, at most one base value). As ONNX Runtime 1.30 (the spec is silent):
 *   label: labels[1] if s > 0.5 when every weight is >= 0 (s is a vote
 *          share), if s > 0 otherwise (s is a margin); else labels[0];
 *   scores: p = logistic(s) for LOGISTIC, probit(s) for PROBIT, else s
 *          (SOFTMAX and SOFTMAX_ZERO leave it: softmax of one score means
 *          nothing); then [1 - p, p] for LOGISTIC or when every weight is
 *          >= 0, else [-p, p].
 * Departure: ONNX Runtime writes [probit(s), 0] for PROBIT; we write
 * [-p, p] (probit(1 - s) = -probit(s)). The label is from s, not p, so
 * with LOGISTIC and non-negative weights a score in (0, 0.5] gives
 * labels[0] with p > 0.5, exactly as ONNX Runtime does. */
static int64_t clf_finish_bin1(const nf_trees *p, double s, double *z)
{
    int64_t lab = (p->wpos ? s > 0.5 : s > 0) ? 1 : 0;
    double q = p->post == NF_PT_LOGISTIC ? nf__ml_logistic(s) : p->post == NF_PT_PROBIT ? nf__ml_probit(s) : s;
    z[1] = q;
    z[0] = p->post == NF_PT_PROBIT ? -q : (p->post == NF_PT_LOGISTIC || p->wpos) ? 1.0 - q : -q;
    return lab;
}

/* Binary, weights for one class id c, otherwise (c = 1, or c = 0 with two
 * base values). As ONNX Runtime 1.30: s = sum (+ base_values[c] when there
 * are two); scores = transform of the pair with s in column c and 0 in
 * the other (a class without weights has score 0, its base value is not
 * added); label from s as in clf_finish_bin1. Departure: with c = 1 and
 * two base values ONNX Runtime scores base_values[1] alone, dropping the
 * trees' sum; we add the sum. */
static int64_t clf_finish_bin2(const nf_trees *p, double s, double *z)
{
    int64_t lab = (p->wpos ? s > 0.5 : s > 0) ? 1 : 0;
    z[p->bin_col] = s;
    z[1 - p->bin_col] = 0.0;
    nf__ml_transform(z, 2, p->post);
    return lab;
}

int nf_op_tree_classifier_run(nf_model *m, nf_node *n, nf_err *err)
{
    (void)err;
    const nf_trees *p = n->priv;
    const nf_value *x = nf_in(m, n, 0);
    nf_value *y = nf_out(m, n, 0), *zv = nf_out(m, n, 1);
    int64_t rows = x->n_dims == 1 ? 1 : x->dims[0], f = x->dims[x->n_dims - 1];
    int64_t blk = tree_block(p, rows);
    double *acc, *row;
    uint8_t *has;
    int32_t *leaf;
    scratch_split(p, n, blk, &acc, &has, &leaf, &row);
    const int64_t c = p->n_acc, nl = p->n_labels;
    for (int64_t r0 = 0; r0 < rows; r0 += blk) {
        int64_t nb = rows - r0 < blk ? rows - r0 : blk;
        accumulate(p, x, f, r0, nb, acc, has, leaf);
        for (int64_t r = 0; r < nb; r++) {
            int64_t lab;
            if (p->bin1) {
                lab = clf_finish_bin1(p, acc[r] + p->bin_base, row);
            } else if (p->bin2) {
                lab = clf_finish_bin2(p, acc[r] + p->bin_base, row);
            } else {
                /* label: first maximum of the raw scores (before the
                 * transform, as ONNX Runtime; SOFTMAX_ZERO is not
                 * monotonic), among classes that got a vote or a base */
                lab = -1;
                for (int64_t k = 0; k < c; k++) {
                    row[k] = acc[r * c + k] + (p->base ? p->base[k] : 0.0);
                    if (has && !has[r * c + k])
                        continue;
                    if (lab < 0 || row[k] > row[lab])
                        lab = k;
                }
                if (lab < 0)
                    lab = 0;
                nf__ml_transform(row, c, p->post);
            }
            int64_t i = r0 + r;
            if (zv != NULL)
                for (int64_t k = 0; k < nl; k++)
                    ((float *)zv->data)[i * nl + k] = (float)row[k];
            if (y != NULL) {
                if (p->lab_s)
                    ((char **)y->data)[i] = p->lab_s[lab];
                else
                    ((int64_t *)y->data)[i] = p->lab_i[lab];
            }
        }
    }
    return NF_OK;
}
