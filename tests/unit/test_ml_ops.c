/*
 * test_ml_ops.c: the ai.onnx.ml kernels (core/ops/ml_trees.c, ml_linear.c)
 * against hostile and tiny hand-checked models. The models are written by
 * tests/models/bad/make.py (run it after changing it); every bad_*.onnx
 * must fail to load with the code and message parts listed here, every
 * ok_*.onnx must give the outputs computed by hand in the comments.
 * Run from the repository root.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "nf.h"

#define DIR "tests/models/bad/"

/* from ml_common.c (cross-file internals) */
#include "ops/ml_common.h"

static const struct bad_case {
    const char *file;
    int code;
    const char *part1, *part2; /* both must occur in the message */
} bad_cases[] = {
    {"bad_true_id", NF_EMODEL, "'nodes_truenodeids'[2] = 99", "no node 99 in tree 0"},
    {"bad_false_other_tree", NF_EMODEL, "'nodes_falsenodeids'[0] = 7", "no node 7 in tree 0"},
    {"bad_self_child", NF_EMODEL, "'nodes_truenodeids'[2] = 2", "its own child"},
    {"bad_no_root", NF_EMODEL, "'nodes_falsenodeids'", "a cycle in tree 0"},
    {"bad_all_parents", NF_EMODEL, "tree 0 has no root", "cycle"},
    {"bad_cycle", NF_EMODEL, "'nodes_truenodeids'[5] = 2", "a cycle in tree 0"},
    {"bad_lengths", NF_EMODEL, "'nodes_featureids' has 5 values", "'nodes_treeids' has 6"},
    {"bad_values_len", NF_EMODEL, "'nodes_values' has 2 values", "'nodes_treeids' has 6"},
    {"bad_mode", NF_EMODEL, "'nodes_modes'[0] = 'BRANCH_FOO'", "BRANCH_LEQ"},
    {"bad_neg_feature", NF_EMODEL, "'nodes_featureids'[0] = -1", ">= 0"},
    {"bad_dup_node", NF_EMODEL, "'nodes_nodeids'[4] = 3", "already defined"},
    {"bad_tracks", NF_EMODEL, "'nodes_missing_value_tracks_true'[2] = 2", "0 or 1"},
    {"bad_target_tree", NF_EMODEL, "'target_treeids'[3] = 7", "no tree 7"},
    {"bad_target_node", NF_EMODEL, "'target_nodeids'[3] = 9", "no node 9 in tree 1"},
    {"bad_target_id", NF_EMODEL, "'target_ids'[2] = 1", "n_targets is 1"},
    {"bad_target_lengths", NF_EMODEL, "'target_weights'", "same length"},
    {"bad_n_targets", NF_EMODEL, "'n_targets' = 0", ">= 1"},
    {"bad_base_len", NF_EMODEL, "'base_values' has 2 values", "expected 0 or 1"},
    {"bad_agg", NF_EMODEL, "'aggregate_function' = 'MEDIAN'", "SUM"},
    {"bad_post", NF_EMODEL, "'post_transform' = 'SIGMOID'", "LOGISTIC"},
    {"bad_unknown_attr", NF_EMODEL, "unknown attribute 'nodes_valuez'", "TreeEnsembleRegressor"},
    {"bad_attr_type", NF_EMODEL, "'n_targets' has type INTS", "INT"},
    {"bad_both_values", NF_EMODEL, "'nodes_values'", "'nodes_values_as_tensor'"},
    {"bad_as_tensor_opset1", NF_EMODEL, "'nodes_values_as_tensor'", "opset 3"},
    {"bad_no_trees", NF_EMODEL, "'nodes_treeids'", "no trees"},
    {"bad_class_id", NF_EMODEL, "'class_ids'[2] = 5", "class labels is 3"},
    {"bad_no_labels", NF_EMODEL, "no class labels", "classlabels_int64s"},
    {"bad_two_label_kinds", NF_EMODEL, "'classlabels_int64s'", "'classlabels_strings'"},
    {"bad_one_label", NF_EUNSUPPORTED, "'classlabels_int64s' has one label", "at least two"},
    {"bad_clf_base_len", NF_EMODEL, "'base_values' has 2 values", "class label (3)"},
    {"bad_linclf_intercepts", NF_EMODEL, "'intercepts' has 2 values", "3 class labels"},
    {"bad_linclf_coef", NF_EMODEL, "'coefficients' has 8 values", "3 rows"},
    {"bad_linclf_nolabels", NF_EMODEL, "no class labels", "classlabels_ints"},
    {"bad_linreg_targets", NF_EMODEL, "'coefficients' has 3 values", "2 rows"},
    {"bad_scaler_len", NF_EMODEL, "'offset' has 2 values", "'scale' 3"},
    {"bad_normalizer", NF_EMODEL, "'norm' = 'L3'", "MAX"},
};

static void test_bad_models(void)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        char path[256], name[128];
        snprintf(path, sizeof path, DIR "%s.onnx", c->file);
        snprintf(name, sizeof name, "ml_ops load %s", c->file);
        nf_model *m = NULL;
        nf_err e = {0};
        int rc = nf_model_load(path, NULL, &m, &e);
        T_CHECK(name, rc == c->code && strstr(e.msg, "node 'n0'") && strstr(e.msg, c->part1) && strstr(e.msg, c->part2),
                "rc %d (want %d), message \"%s\" (want \"%s\" and \"%s\")", rc, c->code, e.msg, c->part1, c->part2);
        if (rc == NF_OK)
            nf_model_free(m);
    }
}

static nf_model *load_ok(const char *file)
{
    char path[256], name[128];
    snprintf(path, sizeof path, DIR "%s.onnx", file);
    snprintf(name, sizeof name, "ml_ops load %s", file);
    nf_model *m = NULL;
    nf_err e = {0};
    int rc = nf_model_load(path, NULL, &m, &e);
    T_CHECK(name, rc == NF_OK, "rc %d: %s", rc, e.msg);
    return rc == NF_OK ? m : NULL;
}

/* Runs m on X (rows x 3 of dtype) and returns the status; out gets the outputs. */
static int run3(nf_model *m, int dtype, const void *x, int64_t rows, nf_tensor *out, nf_err *e)
{
    nf_tensor in = {.name = "X", .dtype = dtype, .n_dims = 2, .dims = {rows, 3}, .data = (void *)x};
    memset(e, 0, sizeof *e);
    return nf_model_run(m, &in, out, e);
}

static int near(double a, double b, double tol) { return fabs(a - b) <= tol * (1 + fabs(b)); }

static int floats_are(const nf_tensor *t, const double *want, int64_t n)
{
    if (t->dtype != NF_DT_FLOAT || nf_tensor_count(t) != n)
        return 0;
    for (int64_t i = 0; i < n; i++)
        if (!near(((const float *)t->data)[i], want[i], 1e-6))
            return 0;
    return 1;
}

static void print_floats(const nf_tensor *t)
{
    int64_t n = nf_tensor_count(t);
    printf("[");
    for (int64_t i = 0; i < n && i < 16; i++)
        printf("%s%g", i ? ", " : "", ((const float *)t->data)[i]);
    printf("] dtype %d", t->dtype);
}

/* ok_reg: tree 0: x0 <= 0.5 ? 1.0 : (x1 <= 0, NaN tracks true ? 2.0 : 4.0);
 * tree 1: 0.5; base 0.25. */
static void test_regressor(void)
{
    nf_model *m = load_ok("ok_reg");
    if (m == NULL)
        return;
    nf_tensor out[1];
    nf_err e;
    const float xf[] = {0, 0, 0, 1, -1, 0, 1, 1, 0, 1, NAN, 0, NAN, 5, 0};
    const double want[] = {1.75, 2.75, 4.75, 2.75, 4.75};
    int rc = run3(m, NF_DT_FLOAT, xf, 5, out, &e);
    T_CHECK("ml_ops regressor float + NaN tracking", rc == NF_OK && floats_are(&out[0], want, 5) && out[0].n_dims == 2 &&
            out[0].dims[1] == 1, "rc %d %s", rc, e.msg);
    if (rc == NF_OK && !floats_are(&out[0], want, 5))
        print_floats(&out[0]), printf("\n");

    /* a smaller batch after a larger one (plans cached by shape) */
    rc = run3(m, NF_DT_FLOAT, xf + 3, 1, out, &e);
    T_CHECK("ml_ops regressor second shape", rc == NF_OK && floats_are(&out[0], want + 1, 1), "rc %d %s", rc, e.msg);
    nf_model_free(m);

    /* the same model with double, int64, int32 X */
    const double xd[] = {0, 0, 0, 1, -1, 0, 1, 1, 0, 1, NAN, 0};
    const int64_t xl[] = {0, 0, 0, 1, -1, 0, 1, 1, 0};
    const int32_t xi[] = {0, 0, 0, 1, -1, 0, 1, 1, 0};
    const struct { const char *file, *name; int dtype; const void *x; int64_t rows; } dt[] = {
        {"ok_reg_f64", "ml_ops regressor double input + NaN", NF_DT_DOUBLE, xd, 4},
        {"ok_reg_i64", "ml_ops regressor int64 input", NF_DT_INT64, xl, 3},
        {"ok_reg_i32", "ml_ops regressor int32 input", NF_DT_INT32, xi, 3},
    };
    for (size_t i = 0; i < sizeof dt / sizeof dt[0]; i++) {
        if ((m = load_ok(dt[i].file)) == NULL)
            continue;
        rc = run3(m, dt[i].dtype, dt[i].x, dt[i].rows, out, &e);
        T_CHECK(dt[i].name, rc == NF_OK && floats_are(&out[0], want, dt[i].rows), "rc %d %s", rc, e.msg);
        nf_model_free(m);
    }

    /* features not declared: the kernel refuses too few */
    if ((m = load_ok("ok_reg_dynf")) != NULL) {
        nf_tensor narrow = {.name = "X", .dtype = NF_DT_FLOAT, .n_dims = 2, .dims = {1, 1}, .data = (void *)xf};
        memset(&e, 0, sizeof e);
        rc = nf_model_run(m, &narrow, out, &e);
        T_CHECK("ml_ops regressor too few features", rc == NF_ESHAPE && strstr(e.msg, "1 features") &&
                strstr(e.msg, "feature 1") && strstr(e.msg, "node 'n0'"), "rc %d: %s", rc, e.msg);
        nf_tensor wide = {.name = "X", .dtype = NF_DT_FLOAT, .n_dims = 2, .dims = {1, 5}, .data = (void *)xf};
        rc = nf_model_run(m, &wide, out, &e);
        const double w5[] = {1.75};
        T_CHECK("ml_ops regressor extra features", rc == NF_OK && floats_are(&out[0], w5, 1), "rc %d: %s", rc, e.msg);
        nf_model_free(m);
    }

    /* double thresholds: 0.1 is not a float, 0.1f > 0.1 goes right */
    m = load_ok("ok_as_tensor");
    if (m != NULL) {
        const float xa[] = {0.1f, 0, 0, 0.0999f, 0, 0};
        const double wa[] = {2.5, 1.5};
        rc = run3(m, NF_DT_FLOAT, xa, 2, out, &e);
        T_CHECK("ml_ops as_tensor double thresholds (float X)", rc == NF_OK && floats_are(&out[0], wa, 2), "rc %d %s", rc,
                e.msg);
        nf_model_free(m);
    }
    if ((m = load_ok("ok_as_tensor_f64")) != NULL) {
        const double xad[] = {0.1, 0, 0};
        const double wad[] = {1.5};
        rc = run3(m, NF_DT_DOUBLE, xad, 1, out, &e);
        T_CHECK("ml_ops as_tensor double thresholds (double X)", rc == NF_OK && floats_are(&out[0], wad, 1), "rc %d %s", rc,
                e.msg);
        /* past the root, node 2 reads feature 1: x1 = 1 -> leaf 4, x1 = -1 -> leaf 3 (a layout that kept
         * the fast walk's byte offsets for features would read row 1's x1 for row 0) */
        const double xb[] = {0.2, 1, 0, 0.2, -1, 0};
        const double wb[] = {4.5, 2.5};
        rc = run3(m, NF_DT_DOUBLE, xb, 2, out, &e);
        T_CHECK("ml_ops as_tensor double thresholds, second feature", rc == NF_OK && floats_are(&out[0], wb, 2),
                "rc %d %s", rc, e.msg);
        nf_model_free(m);
    }

    /* node 2's branches share leaf 3; leaf 4 unreachable */
    m = load_ok("ok_shared_leaf");
    if (m != NULL) {
        const float xs[] = {1, 1, 0, 0, 0, 0};
        const double ws[] = {2.5, 1.5};
        rc = run3(m, NF_DT_FLOAT, xs, 2, out, &e);
        T_CHECK("ml_ops shared leaf", rc == NF_OK && floats_are(&out[0], ws, 2), "rc %d %s", rc, e.msg);
        nf_model_free(m);
    }

    /* MIN over two targets, base [10, 20]; target 1 only on leaf 1 */
    m = load_ok("ok_reg_min");
    if (m != NULL) {
        const float xm[] = {0, 0, 0, 1, 1, 0};
        const double wm[] = {10.5, 17, 10.5, 20};
        rc = run3(m, NF_DT_FLOAT, xm, 2, out, &e);
        T_CHECK("ml_ops MIN with base values", rc == NF_OK && floats_are(&out[0], wm, 4), "rc %d %s", rc, e.msg);
        if (rc == NF_OK && !floats_are(&out[0], wm, 4))
            print_floats(&out[0]), printf("\n");
        nf_model_free(m);
    }
}

static void test_classifiers(void)
{
    nf_tensor out[2];
    nf_err e;
    int rc;
    /* three classes, no base values: tree 0 votes 1.0 for class 0/1/2 at
     * leaves 1/3/4, tree 1 0.25 for class 0 */
    nf_model *m = load_ok("ok_clf");
    if (m != NULL) {
        const float x[] = {0, 0, 0, 1, -1, 0, 1, 1, 0};
        const double z[] = {1.25, 0, 0, 0.25, 1, 0, 0.25, 0, 1};
        rc = run3(m, NF_DT_FLOAT, x, 3, out, &e);
        const int64_t *y = rc == NF_OK ? out[0].data : NULL;
        T_CHECK("ml_ops classifier 3 classes", rc == NF_OK && out[0].dtype == NF_DT_INT64 && y[0] == 10 && y[1] == 20 &&
                y[2] == 30 && floats_are(&out[1], z, 9), "rc %d %s", rc, e.msg);
        nf_classes c;
        nf_model_classes(m, &c);
        T_CHECK("ml_ops classifier classes", c.n_labels == 3 && c.ints && c.ints[2] == 30 && !c.strs &&
                c.label_output == 0 && c.score_output == 1, "n_labels %d label_output %d score_output %d", c.n_labels,
                c.label_output, c.score_output);
        nf_model_free(m);
    }
    /* binary, all weights for class id 0 (one score s = P(yes)), NONE:
     * label "yes" iff s > 0.5, scores [1 - s, s] */
    m = load_ok("ok_clf_bin");
    if (m != NULL) {
        const float x[] = {0, 0, 0, 1, 1, 0, 1, -1, 0};
        const double z[] = {0.7, 0.3, 0, 1, 0.6, 0.4};
        rc = run3(m, NF_DT_FLOAT, x, 3, out, &e);
        char **y = rc == NF_OK ? out[0].data : NULL;
        T_CHECK("ml_ops classifier binary one score", rc == NF_OK && out[0].dtype == NF_DT_STRING &&
                strcmp(y[0], "no") == 0 && strcmp(y[1], "yes") == 0 && strcmp(y[2], "no") == 0 &&
                floats_are(&out[1], z, 6), "rc %d %s", rc, e.msg);
        nf_classes c;
        nf_model_classes(m, &c);
        T_CHECK("ml_ops classifier string classes", c.n_labels == 2 && c.strs && strcmp(c.strs[1], "yes") == 0 && !c.ints,
                "n_labels %d", c.n_labels);
        nf_model_free(m);
    }
    /* LinearClassifier, one row for two labels, LOGISTIC: s = x0 - x1 + 0.5 */
    m = load_ok("ok_linclf_bin");
    if (m != NULL) {
        const float x[] = {0, 0, 0, 0, 2, 0};
        double p0 = nf__ml_logistic(0.5), p1 = nf__ml_logistic(-1.5);
        const double z[] = {1 - p0, p0, 1 - p1, p1};
        rc = run3(m, NF_DT_FLOAT, x, 2, out, &e);
        const int64_t *y = rc == NF_OK ? out[0].data : NULL;
        T_CHECK("ml_ops linear classifier binary", rc == NF_OK && y[0] == 1 && y[1] == 0 && floats_are(&out[1], z, 4),
                "rc %d %s", rc, e.msg);
        nf_model_free(m);
    }
}

/* The fast walks: a row in a batch of N (eight rows at a time from
 * transposed groups, from N = 8; twelve trees at a time below) gives the
 * bytes it gives alone (twelve trees at a time), NaN included, for the
 * one-weight leaves added from the nodes (ok_clf_bin, the default forest)
 * and the general leaf weights (ok_clf, ok_reg_min). */
static void test_batches(void)
{
    static const struct { const char *path; int f; } models[] = {
        {DIR "ok_clf.onnx", 3}, {DIR "ok_clf_bin.onnx", 3}, {DIR "ok_reg_min.onnx", 3}, {"models/default.onnx", 10},
    };
    static float x[70 * 10];
    uint64_t st = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) {
        st ^= st << 13, st ^= st >> 7, st ^= st << 17;
        x[i] = (st % 61 == 0) ? NAN : (float)((double)(st >> 11) / 9007199254740992.0 * 0.4 - 0.2) * (i % 10 < 3 ? 8 : 1);
    }
    for (size_t mi = 0; mi < sizeof models / sizeof models[0]; mi++) {
        nf_model *m = NULL;
        nf_err e = {0};
        int rc = nf_model_load(models[mi].path, NULL, &m, &e);
        T_CHECK("ml_ops batches: load", rc == NF_OK, "%s: %s", models[mi].path, e.msg);
        if (rc != NF_OK)
            continue;
        const char *in_name = nf_model_input(m, 0)->name;
        int n_out = nf_model_n_outputs(m), ok = 1;
        char why[200] = "";
        static const int64_t sizes[] = {1, 2, 7, 8, 9, 15, 16, 17, 64, 70};
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0] && ok; si++) {
            int64_t nb = sizes[si];
            nf_tensor in = {.name = in_name, .dtype = NF_DT_FLOAT, .n_dims = 2, .dims = {nb, models[mi].f}, .data = x};
            nf_tensor out[2], one[2];
            static char keep[2][70 * 3 * 8];
            if (nf_model_run(m, &in, out, &e) != NF_OK) {
                ok = 0, snprintf(why, sizeof why, "batch %lld: %.150s", (long long)nb, e.msg);
                break;
            }
            size_t row_bytes[2];
            for (int k = 0; k < n_out; k++) {
                row_bytes[k] = (size_t)(nf_tensor_count(&out[k]) / nb) * nf_dtype_size(out[k].dtype);
                if (out[k].dtype != NF_DT_STRING)
                    memcpy(keep[k], out[k].data, row_bytes[k] * (size_t)nb);
                else
                    for (int64_t r = 0; r < nb; r++) /* labels: keep the first byte, enough for "no"/"yes" */
                        keep[k][r] = ((char **)out[k].data)[r][0];
            }
            for (int64_t r = 0; r < nb && ok; r++) {
                nf_tensor in1 = in;
                in1.dims[0] = 1;
                in1.data = x + r * models[mi].f;
                if (nf_model_run(m, &in1, one, &e) != NF_OK) {
                    ok = 0, snprintf(why, sizeof why, "row %lld: %.150s", (long long)r, e.msg);
                    break;
                }
                for (int k = 0; k < n_out && ok; k++) {
                    int same = one[k].dtype != NF_DT_STRING
                                   ? memcmp(keep[k] + (size_t)r * row_bytes[k], one[k].data, row_bytes[k]) == 0
                                   : keep[k][r] == ((char **)one[k].data)[0][0];
                    if (!same)
                        ok = 0, snprintf(why, sizeof why, "batch %lld row %lld output %d differs alone", (long long)nb,
                                         (long long)r, k);
                }
            }
        }
        char name[160];
        snprintf(name, sizeof name, "ml_ops batches agree with single rows (%s)", models[mi].path);
        T_CHECK(name, ok, "%s", why);
        nf_model_free(m);
    }
}

/* The fast walks compare integer keys of the floats (ml_trees.c f32_key):
 * thresholds met exactly, -0 against a 0 threshold, infinities, NaN and
 * -NaN, the smallest denormals, through twelve trees at a time (7 rows)
 * and eight rows at a time (14). ok_clf: x0 <= 0.5 ? 10 : x1 <= 0 ? 20 : 30. */
static void test_fast_edges(void)
{
    nf_model *m = load_ok("ok_clf");
    if (m == NULL)
        return;
    const float dn = 1.4e-45f; /* the smallest denormal */
    float x[14 * 3];
    const float rows[7][3] = {{0.5f, 0, 0}, {0.50000006f, -0.0f, 0}, {INFINITY, 0.0f, 0}, {-INFINITY, 5, 0},
                              {NAN, -NAN, 0}, {1, dn, 0}, {-0.0f, -dn, 0}};
    const int64_t want[7] = {10, 20, 20, 10, 30, 30, 10};
    for (int r = 0; r < 14; r++)
        memcpy(x + r * 3, rows[r % 7], sizeof rows[0]);
    for (int64_t nb = 7; nb <= 14; nb += 7) {
        nf_tensor out[2];
        nf_err e;
        int rc = run3(m, NF_DT_FLOAT, x, nb, out, &e);
        int ok = rc == NF_OK && out[0].dtype == NF_DT_INT64;
        for (int64_t r = 0; r < nb && ok; r++)
            ok = ((const int64_t *)out[0].data)[r] == want[r % 7];
        char name[80];
        snprintf(name, sizeof name, "ml_ops fast walk edge values, %lld rows", (long long)nb);
        T_CHECK(name, ok, "rc %d %s", rc, e.msg);
    }
    nf_model_free(m);
}

static void test_transforms(void)
{
    /* reference values of the standard normal quantile */
    static const double pq[][2] = {{0.5, 0.0}, {0.975, 1.959963984540054}, {0.3, -0.5244005127080407},
                                   {1e-10, -6.361340902404056}, {0.999, 3.090232306167813}};
    int ok = 1;
    for (size_t i = 0; i < sizeof pq / sizeof pq[0]; i++)
        ok = ok && near(nf__ml_probit(pq[i][0]), pq[i][1], 1e-12);
    T_CHECK("ml_ops probit (AS 241)", ok, "probit(0.975) = %.17g", nf__ml_probit(0.975));
    T_CHECK("ml_ops probit edges", isinf(nf__ml_probit(0.0)) && nf__ml_probit(0.0) < 0 && isinf(nf__ml_probit(1.0)) &&
            isnan(nf__ml_probit(-0.1)) && isnan(nf__ml_probit(NAN)), "probit(0) = %g", nf__ml_probit(0.0));
    T_CHECK("ml_ops logistic extremes", nf__ml_logistic(-800) == 0.0 && nf__ml_logistic(800) == 1.0 &&
            near(nf__ml_logistic(-40), 4.248354255291589e-18, 1e-12), "logistic(-40) = %g", nf__ml_logistic(-40));
    /* SOFTMAX_ZERO (4): zeros stay zero, the rest is a softmax */
    double s[3] = {1.0, 0.0, 2.0};
    nf__ml_transform(s, 3, 3);
    double e1 = exp(-1.0);
    T_CHECK("ml_ops softmax_zero", near(s[0], e1 / (1 + e1), 1e-12) && s[1] == 0.0 && near(s[2], 1 / (1 + e1), 1e-12),
            "%g %g %g", s[0], s[1], s[2]);
    double zz[2] = {0.0, 0.0};
    nf__ml_transform(zz, 2, 3);
    T_CHECK("ml_ops softmax_zero all zero", zz[0] == 0.0 && zz[1] == 0.0, "%g %g", zz[0], zz[1]);
}

int main(void)
{
    test_bad_models();
    test_regressor();
    test_classifiers();
    test_batches();
    test_fast_edges();
    test_transforms();
    return T_DONE();
}
