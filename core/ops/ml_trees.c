/*
 * ml_trees.c: TreeEnsembleRegressor and TreeEnsembleClassifier (ai.onnx.ml
 * opsets 1 and 3); the helpers they share with ml_linear.c are in
 * ml_common.c.
 *
 * prepare validates every attribute and flattens the ensemble into one node
 * array in the model arena (each tree contiguous, pre-order, the true child
 * right after its parent); run walks it tree by tree over blocks of rows
 * (for fewer than eight rows, twelve trees at a time over each row) and
 * allocates nothing. Invariants after prepare: every walk from a root ends
 * at a leaf (the trees were checked to be acyclic), no sooner than
 * mdepth[tree] steps; each row sums its trees in tree order.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ml_common.h"

/* ---- the flattened ensemble ------------------------------------------------ */

/* One node, 16 bytes (four to a cache line). Children are byte offsets
 * into the node array (index * 16), so a walk adds them to the base with
 * no scaling. A leaf's false child is itself and its threshold compares
 * false with everything, so a walk can take more steps than its path
 * without testing for leaves; its feat is 0, a valid column whenever the
 * ensemble has a branch. Its true child is itself too, or with p->leafv
 * the bits of its weight as a float (leaf_w). With p->fast the fast walks
 * read the node differently: key instead of thr (f32_key), feat is the
 * byte offset of the feature in a row (index * 4), which they use
 * unscaled or times 8 (see transpose8), and the true child of a branch
 * is the next node (they step to it by adding 16). */
typedef struct nf_tnode {
    union {
        float thr;     /* a leaf: NaN */
        int32_t key;   /* with p->fast: f32_key(thr); a leaf or a NaN thr: INT32_MIN */
    };
    uint32_t feat;     /* feature index; with p->fast, index * 4 */
    uint32_t child[2]; /* byte offsets; [0]: comparison true, [1]: false */
} nf_tnode;

/* Floats as int32 keys in the same order: x <= t iff f32_key(x) <=
 * f32_key(t) (an integer compare in the fast walks: one cycle, comiss
 * takes more). -0 is +0 first, so that -0 <= +0 <= -0 stays true; a NaN
 * is the largest key (0x7FC00000), above +inf, so NaN <= t is false; and
 * INT32_MIN is below every key, so t = INT32_MIN is false for every x. */
static inline int32_t f32_key(float v)
{
    if (v == 0)
        v = 0;
    if (v != v)
        v = NAN;
    int32_t k;
    memcpy(&k, &v, sizeof k);
    return k ^ (int32_t)((uint32_t)(k >> 31) >> 1); /* negatives: flip the magnitude */
}

/* the threshold of a fast ensemble's branch node, from its key */
static inline float key_f32(int32_t k)
{
    k ^= (int32_t)((uint32_t)(k >> 31) >> 1);
    float v;
    memcpy(&v, &k, sizeof v);
    return v;
}

#define NF_TNODE(base, off) ((const nf_tnode *)((const char *)(base) + (off)))
#define NF_TNODE_IX(off) ((int32_t)((off) / sizeof(nf_tnode)))
#define NF_TNODE_MAX ((int64_t)(UINT32_MAX / sizeof(nf_tnode))) /* offsets fit in 32 bits */

/* a leaf's weight with p->leafv */
static inline double leaf_w(const nf_tnode *nd)
{
    float w;
    memcpy(&w, &nd->child[0], sizeof w);
    return w;
}

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

/* rows walked side by side through one tree (see walk_fast) */
#define NF_TREE_LANES 8

typedef struct nf_trees {
    bool classifier;
    int32_t n_trees;
    int32_t n_nodes;       /* reachable nodes, laid out */
    uint32_t *root;        /* per tree: byte offset of its root in nodes */
    int32_t *mdepth;       /* per tree: shortest root-to-leaf path, in edges */
    nf_tnode *nodes;
    uint8_t *flags;        /* per node: NF_M_* | NF_TRACK_TRUE */
    double *thr_d;         /* per node, when a double threshold is not a float; else NULL */
    int32_t *wbeg;         /* n_nodes + 1: node i's weights are [wbeg[i], wbeg[i+1]) */
    int32_t *wtgt;         /* weight -> accumulator column */
    double *wval;          /* leaf weights, one per (leaf, column): repeated columns merged */
    int32_t n_acc;         /* accumulator columns per row */
    int64_t block;         /* rows per block (see block_rows) */
    int agg;               /* NF_AGG_*; classifiers sum */
    int post;              /* NF_PT_* */
    bool fast;             /* all BRANCH_LEQ, no NaN tracking, float thresholds, a branch
                            * somewhere, every child after its parent, features below
                            * 2^29 (see walk_fast); then node feat is index * 4 */
    bool leafv;            /* one column, SUM or AVERAGE, and every leaf's one weight is a
                            * float: it is also in the leaf node (leaf_w, read by the fast walks) */
    bool need_has;         /* track which columns got a weight (MIN/MAX, classifier argmax) */
    int64_t max_feature;   /* largest feature a reachable branch reads; -1 if none */
    double *base;          /* n_acc base values, or NULL */
    /* classifier */
    nf_ml_labels lab;      /* classlabels_int64s or classlabels_strings */
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
    int32_t *mdep;              /* per node: shortest path down to a leaf */
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
    free(b->mdep);
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

/* Mode of a nodes_modes string: the loader keeps one copy of a repeated
 * string, so a pointer seen before has the same mode. */
typedef struct mode_cache {
    const char *s[2];
    int m[2];
} mode_cache;

static inline int mode_of(mode_cache *c, const char *s)
{
    if (s == c->s[0])
        return c->m[0];
    if (s == c->s[1])
        return c->m[1];
    int md = parse_mode(s);
    c->s[1] = c->s[0], c->m[1] = c->m[0];
    c->s[0] = s, c->m[0] = md;
    return md;
}

#define NEED_LEN(attr, len)                                                                                      \
    do {                                                                                                         \
        if ((len) != b->nn)                                                                                      \
            return nf_node_err(err, NF_EMODEL, n, "attribute '%s' has %lld values, 'nodes_treeids' has %lld", \
                               (attr), (long long)(len), (long long)b->nn);                                      \
    } while (0)

/* Reads the nodes_* attributes into b and checks their lengths. */
static int read_nodes(build *b, const nf_node *n, nf_err *err)
{
    b->n = n;
    b->nn = nf_attr_ints(n, "nodes_treeids", &b->treeids);
    if (b->nn == 0)
        return nf_node_err(err, NF_EMODEL, n, "attribute 'nodes_treeids' is missing or empty: no trees");
    if (b->nn >= NF_TNODE_MAX)
        return nf_node_err(err, NF_EUNSUPPORTED, n, "%lld nodes is too many (at most %lld)", (long long)b->nn,
                           (long long)NF_TNODE_MAX - 1);
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
    return NF_OK;
}

/* After read_nodes: checks the nodes, resolves children, finds each
 * tree's root and checks that every tree is a tree (no cycle reachable from
 * the root). Fills b; allocations are freed by build_free. */
static int build_nodes(build *b, const nf_node *n, nf_err *err)
{
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
    b->mdep = calloc((size_t)nn, sizeof(int32_t));
    if (!b->mdep || !b->ord || !b->tix || !b->mode || !b->tchild || !b->fchild || !b->newidx || !b->color || !b->stack || !b->it)
        return nf_err_set(err, NF_ENOMEM, "out of memory preparing node '%s'", n->name);

    mode_cache mc = {{NULL, NULL}, {0, 0}};
    bool sorted = true; /* by (tree id, node id), as exporters write them */
    for (int64_t i = 0; i < nn; i++) {
        int md = mode_of(&mc, b->modes[i]);
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
 * shortest root-to-leaf path in *mdepth. The walk is bounded by the tree's node count:
 * each node is pushed at most once. With next == NULL it only looks for a
 * cycle (from a node the root does not reach). */
static int walk_tree(build *b, int64_t t, int64_t root, int32_t *next, int32_t *mdepth, nf_err *err)
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
             * cycle), so the shortest path is exact even where subtrees
             * are shared */
            if (b->mode[u] != NF_M_LEAF) {
                int32_t dt = b->mdep[b->tchild[u]], df = b->mdep[b->fchild[u]];
                b->mdep[u] = 1 + (dt < df ? dt : df);
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
    if (mdepth)
        *mdepth = b->mdep[root];
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

/* ---- the exporters' layout ---------------------------------------------- */

/* sklearn-onnx (and most hand-written models) list each tree's nodes in
 * pre-order, true child first, with consecutive ids, trees in ascending id
 * order, and the leaf weights leaf by leaf in that order. Then the layout
 * is the attribute order itself (node i is nodes[i]) and build_fast makes
 * the same nf_trees as the general path in three passes over the
 * attributes, without sorting, without lookups and without per-node
 * scratch (the general path mallocs ~30 bytes per node and 24 per weight,
 * and on this VM every first touch of a page costs 5-15 us: rf500, 867k
 * nodes, loaded in 183 ms, now 141, medians). Anything else returns 1
 * before it allocates in the arena: any error, nodes out of pre-order,
 * weights on branches or repeated (leaf, column) pairs, double thresholds
 * a float does not hold. The general path then builds the model (or
 * reports the error) from scratch. */

typedef struct fast_frame {
    int32_t f, d; /* false child (attribute index) and its depth */
} fast_frame;

/* Tree index of tree id id, tried at t and t + 1 first (weights come tree
 * by tree), or -1. */
static inline int64_t fast_tree(const build *b, int64_t t, int64_t id)
{
    if (b->tree_ids[t] == id)
        return t;
    if (t + 1 < b->n_trees && b->tree_ids[t + 1] == id)
        return t + 1;
    return find_tree(b, id);
}

/* Attribute index of the leaf weight k is for (checked by build_fast);
 * *t: its tree index (a hint on entry). */
static inline int64_t fast_wnode(const build *b, const int64_t *wtree, const int64_t *wnode, int64_t k, int64_t *t)
{
    *t = fast_tree(b, *t, wtree[k]);
    int64_t lo = b->tree_lo[*t];
    return lo + (int64_t)((uint64_t)wnode[k] - (uint64_t)b->nodeids[lo]);
}

static int build_fast(nf_model *m, nf_node *n, nf_trees *p, build *b, const char *const an[5], int64_t n_cols,
                      bool one_col)
{
    const int64_t nn = b->nn;
    mode_cache mc = {{NULL, NULL}, {0, 0}};
    int64_t cap = 64, ntr = 0;
    int32_t *tmd = malloc((size_t)cap * sizeof(int32_t));
    int64_t cap_stk = 64; /* frames: as deep as the trees */
    fast_frame *stk = malloc((size_t)cap_stk * sizeof(fast_frame));
    b->tree_lo = malloc((size_t)(cap + 1) * sizeof(int64_t));
    b->tree_ids = malloc((size_t)cap * sizeof(int64_t));
    int rc = 1;
    if (!tmd || !stk || !b->tree_lo || !b->tree_ids)
        goto out;

    /* nodes: check, and walk each tree in pre-order as it is listed */
    bool leq = true, track = false;
    int64_t maxf = -1, leaves = 0;
    int64_t expect = -1; /* the next node of the tree in pre-order; -1: the tree is complete */
    int64_t sp = 0;
    int32_t d = 0, md = INT32_MAX;
    for (int64_t i = 0; i < nn; i++) {
        if (i == 0 || b->treeids[i] != b->treeids[i - 1]) {
            if (expect >= 0 || (i > 0 && b->treeids[i] < b->treeids[i - 1]))
                goto out;
            if (ntr == cap) {
                cap *= 2;
                int32_t *t1 = realloc(tmd, (size_t)cap * sizeof(int32_t));
                if (t1)
                    tmd = t1;
                int64_t *t2 = realloc(b->tree_lo, (size_t)(cap + 1) * sizeof(int64_t));
                if (t2)
                    b->tree_lo = t2;
                int64_t *t3 = realloc(b->tree_ids, (size_t)cap * sizeof(int64_t));
                if (t3)
                    b->tree_ids = t3;
                if (!t1 || !t2 || !t3)
                    goto out;
            }
            b->tree_lo[ntr] = i;
            b->tree_ids[ntr] = b->treeids[i];
            ntr++;
            expect = i, d = 0, md = INT32_MAX;
        } else if ((uint64_t)b->nodeids[i] - (uint64_t)b->nodeids[i - 1] != 1 || i != expect) {
            goto out;
        }
        int mo = mode_of(&mc, b->modes[i]);
        if (mo < 0 || (b->tracks && (uint64_t)b->tracks[i] > 1))
            goto out;
        if (mo == NF_M_LEAF) {
            leaves++;
            md = d < md ? d : md;
            if (sp == 0) {
                expect = -1;
                tmd[ntr - 1] = md;
            } else {
                sp--;
                expect = stk[sp].f, d = stk[sp].d;
            }
            continue;
        }
        int64_t fe = b->featids[i];
        uint64_t off = (uint64_t)b->fids[i] - (uint64_t)b->nodeids[i]; /* false child: i + off */
        if (fe < 0 || fe >= INT32_MAX || (uint64_t)b->tids[i] - (uint64_t)b->nodeids[i] != 1 || off < 2 ||
            off >= (uint64_t)(nn - i))
            goto out;
        if (sp == cap_stk) {
            cap_stk *= 2;
            fast_frame *s1 = realloc(stk, (size_t)cap_stk * sizeof(fast_frame));
            if (s1 == NULL)
                goto out;
            stk = s1;
        }
        stk[sp].f = (int32_t)(i + (int64_t)off), stk[sp].d = d + 1;
        sp++;
        expect = i + 1, d++;
        leq = leq && mo == NF_M_LEQ;
        track = track || (b->tracks && b->tracks[i]);
        maxf = fe > maxf ? fe : maxf;
        if (b->values.d) { /* a threshold a float does not hold: the general path */
            double thr = b->values.d[i];
            if ((double)(float)thr != thr && !isnan(thr))
                goto out;
        }
    }
    if (expect >= 0)
        goto out;
    b->n_trees = ntr;
    b->tree_lo[ntr] = nn;

    /* leaf weights: check, count, and that they come leaf by leaf in order */
    const int64_t *wid, *wnode, *wtree;
    dvec wv;
    int64_t nw = nf_attr_ints(n, an[0], &wid);
    if (dvec_get(n, an[3], an[4], &wv, NULL) != NF_OK || nf_attr_ints(n, an[1], &wnode) != nw ||
        nf_attr_ints(n, an[2], &wtree) != nw || wv.n != nw || nw >= INT32_MAX / 2)
        goto out;
    const bool one = p->n_acc == 1 && p->agg <= NF_AGG_AVERAGE; /* a 0 for each weightless leaf */
    bool leafv = one, wpos = true;
    int64_t nkept = 0, nleafw = 0, pj = -1, t = 0;
    int32_t pc = -1;
    for (int64_t k = 0; k < nw; k++) {
        t = fast_tree(b, t, wtree[k]);
        if (t < 0)
            goto out;
        int64_t lo = b->tree_lo[t];
        uint64_t ix = (uint64_t)wnode[k] - (uint64_t)b->nodeids[lo];
        if (ix >= (uint64_t)(b->tree_lo[t + 1] - lo) || wid[k] < 0 || wid[k] >= n_cols)
            goto out;
        double v = dv_at(&wv, k);
        if (v < 0)
            wpos = false;
        int64_t i = lo + (int64_t)ix;
        if (mode_of(&mc, b->modes[i]) != NF_M_LEAF)
            goto out; /* a weight on a branch (old onnxmltools): ignored by the general path */
        int32_t col = one_col ? 0 : (int32_t)wid[k];
        if (i < pj || (i == pj && col <= pc))
            goto out; /* out of order, or a repeated (leaf, column) to merge */
        nleafw += i != pj;
        pj = i, pc = col;
        nkept++;
        if ((double)(float)v != v)
            leafv = false;
    }
    int64_t n_extra = one ? leaves - nleafw : 0;

    /* the layout is the attribute order: write it */
    rc = NF_ENOMEM;
    p->n_trees = (int32_t)ntr;
    p->n_nodes = (int32_t)nn;
    p->root = nf_arena_alloc(&m->arena, (size_t)ntr * sizeof(uint32_t));
    p->mdepth = nf_arena_alloc(&m->arena, (size_t)ntr * sizeof(int32_t));
    p->nodes = nf_arena_alloc(&m->arena, (size_t)nn * sizeof(nf_tnode));
    p->flags = nf_arena_alloc(&m->arena, (size_t)nn);
    p->wbeg = nf_arena_alloc(&m->arena, (size_t)(nn + 1) * sizeof(int32_t));
    p->wtgt = nf_arena_alloc(&m->arena, (size_t)(nkept + n_extra + 1) * sizeof(int32_t));
    p->wval = nf_arena_alloc(&m->arena, (size_t)(nkept + n_extra + 1) * sizeof(double));
    if (!p->root || !p->mdepth || !p->nodes || !p->flags || !p->wbeg || !p->wtgt || !p->wval)
        goto out;
    for (int64_t u = 0; u < ntr; u++) {
        p->root[u] = (uint32_t)b->tree_lo[u] * (uint32_t)sizeof(nf_tnode);
        p->mdepth[u] = tmd[u];
    }
    p->wpos = wpos;
    p->max_feature = maxf;
    p->fast = leq && !track && maxf >= 0 && maxf < ((int64_t)1 << 29);
    p->leafv = leafv;
    const bool fast = p->fast;
    const float *vf = b->values.f;
    const double *vd = b->values.d;
    int64_t k = 0, wt = 0, out_w = 0;
    int64_t wj = nw > 0 ? fast_wnode(b, wtree, wnode, 0, &wt) : nn; /* the node of weight k */
    for (int64_t i = 0; i < nn; i++) {
        nf_tnode *nd = &p->nodes[i];
        const uint32_t off = (uint32_t)i * (uint32_t)sizeof(nf_tnode);
        p->wbeg[i] = (int32_t)out_w;
        int mo = mode_of(&mc, b->modes[i]);
        if (mo == NF_M_LEAF) {
            p->flags[i] = NF_M_LEAF;
            nd->child[0] = nd->child[1] = off;
            if (fast)
                nd->key = INT32_MIN; /* false for every x */
            else
                nd->thr = NAN;
            while (wj == i) {
                p->wtgt[out_w] = one_col ? 0 : (int32_t)wid[k];
                p->wval[out_w] = dv_at(&wv, k);
                out_w++;
                k++;
                if (k < nw && wtree[k] == b->tree_ids[wt]) /* the same tree */
                    wj = b->tree_lo[wt] + (int64_t)((uint64_t)wnode[k] - (uint64_t)b->nodeids[b->tree_lo[wt]]);
                else
                    wj = k < nw ? fast_wnode(b, wtree, wnode, k, &wt) : nn;
            }
            if (one && p->wbeg[i] == out_w) { /* see the general path */
                p->wtgt[out_w] = 0;
                p->wval[out_w] = 0.0;
                out_w++;
            }
            if (leafv) {
                float v = (float)p->wval[p->wbeg[i]];
                memcpy(&nd->child[0], &v, sizeof v);
            }
            continue;
        }
        float thr = vf ? vf[i] : (float)vd[i];
        nd->feat = (uint32_t)b->featids[i] * (fast ? (uint32_t)sizeof(float) : 1u);
        if (fast)
            nd->key = isnan(thr) ? INT32_MIN : f32_key(thr);
        else
            nd->thr = thr;
        nd->child[0] = off + (uint32_t)sizeof(nf_tnode);
        nd->child[1] = (uint32_t)(i + (int64_t)((uint64_t)b->fids[i] - (uint64_t)b->nodeids[i])) * (uint32_t)sizeof(nf_tnode);
        p->flags[i] = (uint8_t)(mo | (b->tracks && b->tracks[i] ? NF_TRACK_TRUE : 0));
    }
    p->wbeg[nn] = (int32_t)out_w;
    rc = NF_OK;
out:
    free(tmd);
    free(stk);
    if (rc == 1) { /* the general path starts over */
        free(b->tree_lo);
        free(b->tree_ids);
        b->tree_lo = NULL;
        b->tree_ids = NULL;
        b->n_trees = 0;
    }
    return rc;
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
    char an_ids[32], an_nodes[32], an_trees[32], an_w[32], an_wt[40];
    snprintf(an_ids, sizeof an_ids, "%s_ids", pfx);
    snprintf(an_nodes, sizeof an_nodes, "%s_nodeids", pfx);
    snprintf(an_trees, sizeof an_trees, "%s_treeids", pfx);
    snprintf(an_w, sizeof an_w, "%s_weights", pfx);
    snprintf(an_wt, sizeof an_wt, "%s_weights_as_tensor", pfx);
    int rc = read_nodes(&b, n, err);
    if (rc != NF_OK)
        goto out;
    const char *const an[5] = {an_ids, an_nodes, an_trees, an_w, an_wt};
    if ((rc = build_fast(m, n, p, &b, an, n_cols, one_col)) != 1) {
        if (rc == NF_ENOMEM)
            goto nomem;
        goto out;
    }
    if ((rc = build_nodes(&b, n, err)) != NF_OK)
        goto out;

    /* layout: trees in ascending id order, each pre-order from its root */
    p->n_trees = (int32_t)b.n_trees;
    p->root = nf_arena_alloc(&m->arena, (size_t)b.n_trees * sizeof(uint32_t));
    p->mdepth = nf_arena_alloc(&m->arena, (size_t)b.n_trees * sizeof(int32_t));
    if (!p->root || !p->mdepth)
        goto nomem;
    int32_t *roots = b.stack; /* not in use yet: remember roots before clearing colors */
    for (int64_t t = 0; t < b.n_trees; t++) {
        int64_t r = 0;
        if ((rc = find_root(&b, t, &r, err)) != NF_OK)
            goto out;
        roots[t] = (int32_t)r;
    }
    for (int64_t t = 0; t < b.n_trees; t++)
        p->root[t] = (uint32_t)roots[t];
    memset(b.color, 0, (size_t)b.nn);
    int32_t next = 0;
    for (int64_t t = 0; t < b.n_trees; t++) {
        int64_t r = p->root[t];
        if (b.color[r] != 0) { /* cannot happen: roots have no parent */
            rc = nf_node_err(err, NF_EINTERNAL, n, "tree %lld: root reached twice", (long long)b.tree_ids[t]);
            goto out;
        }
        if ((rc = walk_tree(&b, t, r, &next, &p->mdepth[t], err)) != NF_OK)
            goto out;
        p->root[t] = (uint32_t)b.newidx[r] * (uint32_t)sizeof(nf_tnode);
        /* nodes the root does not reach are never evaluated (ONNX Runtime
         * ignores them too), but a cycle among them means the tree is
         * not a tree: refuse it */
        for (int64_t k = b.tree_lo[t]; k < b.tree_lo[t + 1]; k++)
            if (b.color[b.ord[k]] == 0 && (rc = walk_tree(&b, t, b.ord[k], NULL, NULL, err)) != NF_OK)
                goto out;
    }
    p->n_nodes = next;

    /* leaf weights */
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
            nd->child[0] = nd->child[1] = (uint32_t)j * (uint32_t)sizeof(nf_tnode);
            nd->thr = NAN;
            p->flags[j] = NF_M_LEAF;
            continue;
        }
        nd->feat = (uint32_t)b.featids[i];
        nd->thr = (float)thr;
        if ((double)nd->thr != thr && !isnan(thr))
            need_d = true;
        int32_t jt = b.newidx[b.tchild[i]], jf = b.newidx[b.fchild[i]];
        nd->child[0] = (uint32_t)jt * (uint32_t)sizeof(nf_tnode);
        nd->child[1] = (uint32_t)jf * (uint32_t)sizeof(nf_tnode);
        p->flags[j] = b.mode[i] | (b.tracks && b.tracks[i] ? NF_TRACK_TRUE : 0);
        /* a child laid out before its parent (a subtree shared by two
         * parents) breaks walk_fast's stopping test; walk_fast steps to
         * the true child by adding 16 (pre-order makes it the next node
         * unless shared) */
        if (b.mode[i] != NF_M_LEQ || (b.tracks && b.tracks[i]) || jt != j + 1 || jf <= j)
            p->fast = false;
        if (b.featids[i] > p->max_feature)
            p->max_feature = b.featids[i];
    }
    if (p->max_feature < 0) /* leaves only: walk_fast would read X[0], and X may have no column */
        p->fast = false;
    if (p->max_feature >= ((int64_t)1 << 29)) /* feat * 4 (and * 32 in walk_fast) must fit */
        p->fast = false;
    if (need_d) /* before the fast layout below: the general walk reads feat as an index */
        p->fast = false;
    if (p->fast)
        for (int32_t j = 0; j < nl; j++) {
            nf_tnode *nd = &p->nodes[j];
            nd->feat *= (uint32_t)sizeof(float);
            /* leaves and NaN thresholds: false for every x */
            nd->key = p->flags[j] == NF_M_LEAF || isnan(nd->thr) ? INT32_MIN : f32_key(nd->thr);
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
    /* leaf weights in the leaves' true child (leaf_w), when a float holds
     * them exactly (float attributes do; a merged sum or a double may
     * not): the fast walks then add (double)leaf_w, the very value of wval */
    p->leafv = p->n_acc == 1 && p->agg <= NF_AGG_AVERAGE;
    for (int32_t j = 0; j < nl && p->leafv; j++)
        if (p->flags[j] == NF_M_LEAF) {
            double v = p->wval[p->wbeg[j]];
            if (p->wbeg[j + 1] - p->wbeg[j] != 1 || (double)(float)v != v)
                p->leafv = false;
        }
    for (int32_t j = 0; j < nl && p->leafv; j++)
        if (p->flags[j] == NF_M_LEAF) {
            float v = (float)p->wval[p->wbeg[j]];
            memcpy(&p->nodes[j].child[0], &v, sizeof v);
        }
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

/* Rows per block: NF_TREE_BLOCK, fewer when the accumulators of that
 * many rows would pass NF_TREE_SCRATCH. Set once by prepare (n_acc is
 * known), so a run does not divide. */
static int64_t block_rows(const nf_trees *p)
{
    int64_t per_row = (int64_t)p->n_acc * (int64_t)(sizeof(double) + 1) + (int64_t)sizeof(int32_t);
    int64_t cap = NF_TREE_SCRATCH / per_row;
    int64_t b = NF_TREE_BLOCK;
    if (cap < b)
        b = cap < 64 ? 64 : cap;
    return b;
}

/* ---- TreeEnsembleRegressor ------------------------------------------------- */

int nf_op_tree_regressor_prepare(nf_model *m, nf_node *n, nf_err *err)
{
    int rc = nf__ml_check_attrs(n, reg_spec, err);
    if (rc == NF_OK)
        rc = nf__ml_check_io(n, 1, err);
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
    p->block = block_rows(p);
    n->priv = p;
    return NF_OK;
}

/* rows per block for a batch of rows of f features (infer sizes the
 * scratch with it, run walks with it): p->block, fewer when transpose8's
 * copy of the block would pass NF_TREE_SCRATCH (thousands of features) */
static inline int64_t tree_block(const nf_trees *p, int64_t rows, int64_t f)
{
    int64_t b = p->block;
    if (p->fast && f > 0 && b > NF_TREE_SCRATCH / (f * (int64_t)sizeof(float))) {
        b = NF_TREE_SCRATCH / (f * (int64_t)sizeof(float)) / NF_TREE_LANES * NF_TREE_LANES;
        b = b < 64 ? 64 : b;
    }
    return rows < b ? rows : b;
}

/* bytes of transpose8's buffer for a block of blk rows of f features
 * (p->fast only) */
static inline size_t xt_bytes(const nf_trees *p, int64_t blk, int64_t f)
{
    return p->fast ? (size_t)((blk + NF_TREE_LANES - 1) / NF_TREE_LANES * NF_TREE_LANES) * (size_t)f * sizeof(float) : 0;
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
    int64_t blk = tree_block(p, *rows, f);
    size_t cols = (size_t)(p->n_acc > 2 ? p->n_acc : 2);
    n->scratch_bytes = (size_t)blk * ((size_t)p->n_acc * (sizeof(double) + (p->need_has ? 1 : 0)) + sizeof(int32_t)) +
                       cols * sizeof(double) + xt_bytes(p, blk, f) + 64;
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

/* Fast walks: float X, every branch BRANCH_LEQ, no NaN tracking. NaN <= t
 * is false: NaN takes the false branch, as the spec's default
 * (tracks_true = 0) wants.
 *
 * One walk is a chain of dependent loads (node, X[feat], next node), so a
 * lone walk waits on memory at every level; several walks ("lanes") go
 * together so their loads overlap: eight rows through one tree
 * (walk_fast), or, for fewer than eight rows, one row through twelve
 * trees (walk_fast_trees). Every lane steps each round; leaves loop on
 * themselves, so a lane that is done stays put. The walk stops after the
 * first round in which no lane moved: every child lies after its parent
 * (p->fast), so lane offsets only grow and "no lane moved" is "the sum of
 * the offsets did not change". Measured on the 100-tree diabetes forest
 * (depth 14-24, paths about 10): batch 1 went from 4.7 us (one tree at a
 * time) to 1.45 us; stopping early takes a third fewer rounds than
 * stepping to the group's depth. Then (core_bench medians, EPYC Zen 4)
 * transposed groups of keys, a five-instruction step without spills and
 * one-weight leaves added straight from the node took rf100 at batch 64
 * from 89 to 57 us, rf500 from 780 to 520 us, batch 1 from 1.35 to 1.11
 * and 6.3 to 4.9 us. The rounds are latency-bound now: a group takes
 * its deepest lane's path (15 rounds for a mean path of 10 on rf100). */

/* One step of a fast walk, a statement: lane L (a node offset from base)
 * reads its feature's key at byte xb + lo + feat * sc (sc 1 or 8, lo a
 * literal; feat is index * 4) and goes to L + 16 (the true child) when
 * key(x) <= key(thr), else to child[1] (a leaf: false, itself). Without
 * a branch: whether a row goes left is a coin toss to the branch
 * predictor, and GCC 12 compiles the plain select to jumps in some loops
 * (measured: rf500 at batch 64 went 1.8x slower). Five instructions: in
 * C, GCC added the base to every offset and loaded both children (seven,
 * and spills). Integer keys instead of comiss on floats: 8-10% faster
 * (rf100 and rf500 at batch 64). */
#if defined(__GNUC__) && defined(__x86_64__)
#define NF_LANE_ASM(sc, lo)                                                                               \
    "movl 4(%[b],%[i]), %k[ft]\n\t"                 /* feat */                                           \
    "movl (%[b],%[i]), %k[th]\n\t"                  /* key */                                            \
    "addl $16, %k[i]\n\t"                           /* the true child, the next node */                  \
    "cmpl " #lo "(%[x],%[ft]," #sc "), %k[th]\n\t" /* key - key(x): less when key(x) > key */           \
    "cmovll -4(%[b],%[i]), %k[i]"                    /* child[1] of the node */
#define NF_LANE_STEP(L, xb, sc, lo)                                                                       \
    do {                                                                                                  \
        uint64_t ft_, th_;                                                                                \
        __asm__(NF_LANE_ASM(sc, lo)                                                                       \
                : [i] "+r"(L), [ft] "=&r"(ft_), [th] "=&r"(th_)                                           \
                : [b] "r"(base), [x] "r"(xb)                                                              \
                : "cc", "memory");                                                                        \
    } while (0)
/* the same, and adds the new offset to tot (the stopping test); in the
 * asm, as GCC 12 spilled lanes around a sum in C */
#define NF_LANE_STEP_SUM(L, xb, sc, lo, tot)                                                              \
    do {                                                                                                  \
        uint64_t ft_, th_;                                                                                \
        __asm__(NF_LANE_ASM(sc, lo) "\n\t"                                                               \
                "addq %[i], %[t]"                                                                         \
                : [i] "+r"(L), [t] "+r"(tot), [ft] "=&r"(ft_), [th] "=&r"(th_)                            \
                : [b] "r"(base), [x] "r"(xb)                                                              \
                : "cc", "memory");                                                                        \
    } while (0)
#else
#define NF_LANE_STEP(L, xb, sc, lo)                                                                       \
    do {                                                                                                  \
        const nf_tnode *nd_ = NF_TNODE(base, L);                                                          \
        int32_t x_;                                                                                       \
        memcpy(&x_, (const char *)(xb) + (lo) + (size_t)nd_->feat * (sc), sizeof x_);                     \
        (L) = x_ <= nd_->key ? (L) + sizeof(nf_tnode) : nd_->child[1];                                    \
    } while (0)
#define NF_LANE_STEP_SUM(L, xb, sc, lo, tot)                                                              \
    do {                                                                                                  \
        NF_LANE_STEP(L, xb, sc, lo);                                                                      \
        (tot) += (L);                                                                                     \
    } while (0)
#endif

/* Transposes rows [0, nb) of x (f floats each) into groups of eight rows
 * of keys, feature-major: xt[g][j][k] = f32_key(x[8g + k][j]), the last
 * group repeating the last row in its spare lanes. A lane then reads its
 * feature at xt + 32 * f * g + 8 * feat + 4 * k, one base register for
 * all eight lanes (with feat = index * 4, x86 scales by 8 for free): row
 * pointers per lane took sixteen registers, more than x86 has. */
static void transpose8(const float *x, int64_t f, int64_t nb, int32_t *xt)
{
    for (int64_t r = 0; r < nb; r += NF_TREE_LANES) {
        int32_t *g = xt + r * f;
        for (int k = 0; k < NF_TREE_LANES; k++) {
            const float *xr = x + (r + k < nb ? r + k : nb - 1) * f;
            for (int64_t j = 0; j < f; j++)
                g[j * NF_TREE_LANES + k] = f32_key(xr[j]);
        }
    }
}

/* Eight rows of xg (one group of transpose8) from the root at offset
 * root, no leaf sooner than md steps; out[k]: lane k's leaf offset. Not
 * inlined: in walk_fast's loop GCC 12 kept the lanes on the stack (two
 * spills a step) to keep walk_fast's own values in registers. */
static __attribute__((noinline)) void walk_group8(const nf_tnode *base, const char *xg, uint64_t root, int32_t md,
                                                  uint32_t *out)
{
    uint64_t i0 = root, i1 = root, i2 = root, i3 = root, i4 = root, i5 = root, i6 = root, i7 = root;
#define ROUND(S)                                                                                       \
    do {                                                                                               \
        S(i0, xg, 8, 0);                                                                               \
        S(i1, xg, 8, 4);                                                                               \
        S(i2, xg, 8, 8);                                                                               \
        S(i3, xg, 8, 12);                                                                              \
        S(i4, xg, 8, 16);                                                                              \
        S(i5, xg, 8, 20);                                                                              \
        S(i6, xg, 8, 24);                                                                              \
        S(i7, xg, 8, 28);                                                                              \
    } while (0)
#define STEP_SUM(L, xb, sc, lo) NF_LANE_STEP_SUM(L, xb, sc, lo, sum)
    /* no lane is on a leaf before mdepth rounds: no test until then */
    for (int32_t s = 0; s < md; s++)
        ROUND(NF_LANE_STEP);
    /* ends: offsets grow until every lane is on a leaf */
    for (uint64_t prev = i0 + i1 + i2 + i3 + i4 + i5 + i6 + i7;;) {
        uint64_t sum = 0;
        ROUND(STEP_SUM);
        if (sum == prev)
            break;
        prev = sum;
    }
#undef STEP_SUM
#undef ROUND
    out[0] = (uint32_t)i0, out[1] = (uint32_t)i1, out[2] = (uint32_t)i2, out[3] = (uint32_t)i3;
    out[4] = (uint32_t)i4, out[5] = (uint32_t)i5, out[6] = (uint32_t)i6, out[7] = (uint32_t)i7;
}

/* Rows [0, nb) through tree t, eight rows at a time, from xt (see
 * transpose8). With acc (p->leafv) adds each row's leaf weight into
 * acc[r]; else leaf[r] gets row r's leaf index. */
static void walk_fast(const nf_trees *p, int32_t t, const int32_t *xt, int64_t f, int64_t nb, double *acc, int32_t *leaf)
{
    const nf_tnode *base = p->nodes;
    const uint32_t root = p->root[t];
    const int32_t md = p->mdepth[t];
    uint32_t i[NF_TREE_LANES];
    for (int64_t r = 0; r < nb; r += NF_TREE_LANES) {
        walk_group8(base, (const char *)(xt + r * f), root, md, i);
        int k = 0;
        if (acc) /* each row adds its trees in tree order: leaf_w is wval */
            for (; k < NF_TREE_LANES && r + k < nb; k++)
                acc[r + k] += leaf_w(NF_TNODE(base, i[k]));
        else
            for (; k < NF_TREE_LANES && r + k < nb; k++)
                leaf[r + k] = NF_TNODE_IX(i[k]);
    }
}

/* One row x (f32_key of each feature) through trees [t, t + nt),
 * nt <= NF_TREE_LANES_1; spare lanes repeat tree t + nt - 1. leaf[k]:
 * tree t + k's leaf (byte offset). Twelve lanes: with x shared they
 * nearly fit the registers, and beat eight by 8-10% (rf100 and rf500 at
 * batch 1; sixteen spill and lose it again). */
#define NF_TREE_LANES_1 12
static void walk_fast_trees(const nf_trees *p, int32_t t, int32_t nt, const int32_t *x, uint32_t *leaf)
{
    const nf_tnode *base = p->nodes;
    const char *xb = (const char *)x;
    uint32_t i[NF_TREE_LANES_1];
    int32_t md = INT32_MAX;
    for (int k = 0; k < NF_TREE_LANES_1; k++) {
        int32_t tk = t + (k < nt ? k : nt - 1);
        i[k] = p->root[tk];
        md = p->mdepth[tk] < md ? p->mdepth[tk] : md;
    }
    uint64_t i0 = i[0], i1 = i[1], i2 = i[2], i3 = i[3], i4 = i[4], i5 = i[5];
    uint64_t i6 = i[6], i7 = i[7], i8 = i[8], i9 = i[9], i10 = i[10], i11 = i[11];
#define ROUND(S)                                                                                     \
    do {                                                                                             \
        S(i0, xb, 1, 0); S(i1, xb, 1, 0); S(i2, xb, 1, 0); S(i3, xb, 1, 0);                          \
        S(i4, xb, 1, 0); S(i5, xb, 1, 0); S(i6, xb, 1, 0); S(i7, xb, 1, 0);                          \
        S(i8, xb, 1, 0); S(i9, xb, 1, 0); S(i10, xb, 1, 0); S(i11, xb, 1, 0);                        \
    } while (0)
#define STEP_SUM(L, xb, sc, lo) NF_LANE_STEP_SUM(L, xb, sc, lo, sum)
    for (int32_t s = 0; s < md; s++)
        ROUND(NF_LANE_STEP);
    for (uint64_t prev = i0 + i1 + i2 + i3 + i4 + i5 + i6 + i7 + i8 + i9 + i10 + i11;;) {
        uint64_t sum = 0;
        ROUND(STEP_SUM);
        if (sum == prev)
            break;
        prev = sum;
    }
#undef STEP_SUM
#undef ROUND
    i[0] = i0, i[1] = i1, i[2] = i2, i[3] = i3, i[4] = i4, i[5] = i5;
    i[6] = i6, i[7] = i7, i[8] = i8, i[9] = i9, i[10] = i10, i[11] = i11;
    for (int k = 0; k < nt; k++)
        leaf[k] = i[k];
}

/* General walk: any mode, NaN tracking, thresholds compared as doubles
 * (exact for float and double X against float or double thresholds; int
 * X converts exactly below 2^53). As ONNX Runtime: true when the
 * comparison holds, or when X is NaN and the node tracks NaN to true. */
#define NF_WALK_GENERIC(NAME, T)                                                                      \
    static void NAME(const nf_trees *p, int32_t t, const T *x, int64_t f, int64_t nb, int32_t *leaf)   \
    {                                                                                                  \
        const nf_tnode *nd = p->nodes;                                                                 \
        const int fs = p->fast ? 2 : 0; /* feat is a byte offset in a float row */                     \
        for (int64_t r = 0; r < nb; r++) {                                                             \
            const T *xr = x + r * f;                                                                   \
            int32_t i = NF_TNODE_IX(p->root[t]);                                                       \
            while (p->flags[i] != NF_M_LEAF) {                                                         \
                double v = (double)xr[nd[i].feat >> fs];                                               \
                double th = p->thr_d ? p->thr_d[i] : p->fast ? key_f32(nd[i].key) : nd[i].thr;         \
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
                i = NF_TNODE_IX(nd[i].child[!c]);                                                      \
            }                                                                                          \
            leaf[r] = i;                                                                               \
        }                                                                                              \
    }
NF_WALK_GENERIC(walk_f32, float)
NF_WALK_GENERIC(walk_f64, double)
NF_WALK_GENERIC(walk_i64, int64_t)
NF_WALK_GENERIC(walk_i32, int32_t)

/* Rows [r0, r0 + nb) of x through the trees not walked by walk_fast (any
 * dtype; float only when the ensemble is not p->fast). */
static void walk(const nf_trees *p, int32_t t, const nf_value *x, int64_t f, int64_t r0, int64_t nb, int32_t *leaf)
{
    switch (x->dtype) {
    case NF_DT_FLOAT: walk_f32(p, t, (const float *)x->data + r0 * f, f, nb, leaf); break;
    case NF_DT_DOUBLE: walk_f64(p, t, (const double *)x->data + r0 * f, f, nb, leaf); break;
    case NF_DT_INT64: walk_i64(p, t, (const int64_t *)x->data + r0 * f, f, nb, leaf); break;
    default: walk_i32(p, t, (const int32_t *)x->data + r0 * f, f, nb, leaf); break;
    }
}

/* Adds the weights of one tree's leaves leaf[0..nb) (leaf[r] for row r)
 * into acc[nb][n_acc] / has[nb][n_acc]. */
static inline void add_tree(const nf_trees *p, const int32_t *leaf, int64_t nb, double *acc, uint8_t *has)
{
    const int64_t c = p->n_acc;
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

/* Runs every tree over rows [r0, r0 + nb) and leaves the aggregated leaf
 * weights in acc[nb][n_acc] (and which columns got one in has[][]). Each
 * row sums its trees in tree order, whichever walk is used. xt: scratch
 * for transpose8 (p->fast). */
static void accumulate(const nf_trees *p, const nf_value *x, int64_t f, int64_t r0, int64_t nb, double *acc, uint8_t *has,
                       int32_t *leaf, int32_t *xt)
{
    const int64_t c = p->n_acc;
    memset(acc, 0, (size_t)(nb * c) * sizeof(double));
    if (has)
        memset(has, 0, (size_t)(nb * c));
    if (p->fast && x->dtype == NF_DT_FLOAT && nb < NF_TREE_LANES) {
        /* too few rows to fill the lanes with rows: walk trees side by
         * side (measured for 2, 4 and 7 rows: 2-4x faster than rows
         * side by side with spare lanes; at 8-15 rows about even) */
        const nf_tnode *base = p->nodes;
        uint32_t lv[NF_TREE_LANES_1];
        for (int64_t r = 0; r < nb; r++) {
            const float *xr = (const float *)x->data + (r0 + r) * f;
            for (int64_t j = 0; j < f; j++) /* the row's keys */
                xt[j] = f32_key(xr[j]);
            for (int32_t t = 0; t < p->n_trees; t += NF_TREE_LANES_1) {
                int32_t nt = p->n_trees - t < NF_TREE_LANES_1 ? p->n_trees - t : NF_TREE_LANES_1;
                walk_fast_trees(p, t, nt, xt, lv);
                if (p->leafv) {
                    double a = acc[r];
                    for (int32_t k = 0; k < nt; k++)
                        a += leaf_w(NF_TNODE(base, lv[k]));
                    acc[r] = a;
                } else {
                    for (int32_t k = 0; k < nt; k++) {
                        int32_t li = NF_TNODE_IX(lv[k]);
                        add_tree(p, &li, 1, acc + r * c, has ? has + r * c : NULL);
                    }
                }
            }
        }
        return;
    }
    if (p->fast && x->dtype == NF_DT_FLOAT) {
        transpose8((const float *)x->data + r0 * f, f, nb, xt);
        for (int32_t t = 0; t < p->n_trees; t++) {
            if (p->leafv) {
                walk_fast(p, t, xt, f, nb, acc, NULL);
            } else {
                walk_fast(p, t, xt, f, nb, NULL, leaf);
                add_tree(p, leaf, nb, acc, has);
            }
        }
        return;
    }
    for (int32_t t = 0; t < p->n_trees; t++) {
        walk(p, t, x, f, r0, nb, leaf);
        add_tree(p, leaf, nb, acc, has);
    }
}

/* carves the run's scratch (sized by tree_infer_x): xt first, so that a
 * group's feature (eight floats) stays in one cache line */
static void scratch_split(const nf_trees *p, nf_node *n, int64_t blk, int64_t f, double **acc, uint8_t **has,
                          int32_t **leaf, double **row, int32_t **xt)
{
    char *s = (char *)(((uintptr_t)n->scratch + 63) & ~(uintptr_t)63);
    *xt = (int32_t *)s;
    s += xt_bytes(p, blk, f);
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
    int64_t blk = tree_block(p, rows, f);
    double *acc, *row;
    uint8_t *has;
    int32_t *leaf;
    int32_t *xt;
    scratch_split(p, n, blk, f, &acc, &has, &leaf, &row, &xt);
    const int64_t c = p->n_acc;
    float *out = y->data;
    for (int64_t r0 = 0; r0 < rows; r0 += blk) {
        int64_t nb = rows - r0 < blk ? rows - r0 : blk;
        accumulate(p, x, f, r0, nb, acc, has, leaf, xt);
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
        rc = nf__ml_check_io(n, 2, err);
    if (rc != NF_OK)
        return rc;
    nf_trees *p = nf_arena_alloc(&m->arena, sizeof *p);
    if (p == NULL)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    p->classifier = true;
    p->agg = NF_AGG_SUM;
    if ((rc = nf__ml_post_transform(n, &p->post, err)) != NF_OK)
        return rc;
    if ((rc = nf__ml_labels(m, n, "classlabels_int64s", &p->lab, err)) != NF_OK)
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
    p->bin1 = p->lab.n == 2 && one_id && ids[0] == 0 && nb <= 1;
    p->bin2 = p->lab.n == 2 && one_id && !p->bin1 && ids[0] >= 0 && ids[0] < 2;
    if (p->bin1 || p->bin2) {
        if (nb > 2)
            return nf_node_err(err, NF_EMODEL, n, "attribute '%s' has %lld values; expected at most 2 (one per class label)",
                               nf_attr_get(n, "base_values") ? "base_values" : "base_values_as_tensor", (long long)nb);
        p->n_acc = 1;
        p->bin_col = (int)ids[0];
        p->bin_base = p->bin1 ? (nb == 1 ? base[0] : 0.0) : (nb == 2 ? base[p->bin_col] : 0.0);
    } else {
        if (nb != 0 && nb != p->lab.n)
            return nf_node_err(err, NF_EMODEL, n, "attribute '%s' has %lld values; expected 0 or one per class label (%lld)",
                               nf_attr_get(n, "base_values") ? "base_values" : "base_values_as_tensor", (long long)nb,
                               (long long)p->lab.n);
        p->n_acc = (int32_t)p->lab.n;
        p->base = base;
    }
    if ((rc = build_trees(m, n, p, "class", p->lab.n, p->n_acc == 1, err)) != NF_OK)
        return rc;
    if (p->n_acc > 1 && p->base == NULL) {
        /* ONNX Runtime's argmax skips classes no leaf of this row voted
         * for; that matters only if some leaf lacks a weight for some
         * class, so the flags are kept only then. */
        for (int32_t j = 0; j < p->n_nodes && !p->need_has; j++)
            if (p->flags[j] == NF_M_LEAF && p->wbeg[j + 1] - p->wbeg[j] != p->n_acc)
                p->need_has = true;
    }
    p->block = block_rows(p);
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
    return nf__ml_clf_infer(m, n, rows, &p->lab, err);
}

/* Binary, one score s = sum + base (two labels, all weights for class id
 * 0, at most one base value): nf__ml_binary, with the label at s > 0.5
 * when every weight is >= 0 (s is a vote share), at s > 0 otherwise (s is
 * a margin), and scores [1 - q, q] for LOGISTIC or when every weight is
 * >= 0, else [-q, q]: as ONNX Runtime 1.30 (the spec is silent).
 * Departure: ONNX Runtime writes [probit(s), 0] for PROBIT; we write
 * [-q, q]. The label is from s, not q, so with LOGISTIC and non-negative
 * weights a score in (0, 0.5] gives labels[0] with q > 0.5, exactly as
 * ONNX Runtime does. */
static int64_t clf_finish_bin1(const nf_trees *p, double s, double *z)
{
    return nf__ml_binary(s, p->post, p->wpos ? 0.5 : 0.0, p->post == NF_PT_LOGISTIC || p->wpos, z);
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
    int64_t blk = tree_block(p, rows, f);
    double *acc, *row;
    uint8_t *has;
    int32_t *leaf;
    int32_t *xt;
    scratch_split(p, n, blk, f, &acc, &has, &leaf, &row, &xt);
    const int64_t c = p->n_acc;
    for (int64_t r0 = 0; r0 < rows; r0 += blk) {
        int64_t nb = rows - r0 < blk ? rows - r0 : blk;
        accumulate(p, x, f, r0, nb, acc, has, leaf, xt);
        for (int64_t r = 0; r < nb; r++) {
            int64_t lab;
            if (p->bin1) {
                lab = clf_finish_bin1(p, acc[r] + p->bin_base, row);
            } else if (p->bin2) {
                lab = clf_finish_bin2(p, acc[r] + p->bin_base, row);
            } else {
                /* among the classes that got a vote or a base */
                for (int64_t k = 0; k < c; k++)
                    row[k] = acc[r * c + k] + (p->base ? p->base[k] : 0.0);
                lab = nf__ml_argmax(row, has ? has + r * c : NULL, c);
                nf__ml_transform(row, c, p->post);
            }
            nf__ml_clf_write(y, zv, r0 + r, lab, row, &p->lab);
        }
    }
    return NF_OK;
}
