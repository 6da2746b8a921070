/*
 * runner.c: runs ONNX backend-test directories (model.onnx plus
 * test_data_set_N/input_K.pb and output_K.pb, the layout of ONNX's own
 * node/, pytorch-converted/, pytorch-operator/ and simple/ tests, and of
 * our fixtures under tests/models/) and compares with the expected outputs.
 *
 * Prints "PASS name", "FAIL name: why", "SKIP name: why" (a model whose
 * operator, type or feature we do not support; the operator is named) and
 * a summary. Tolerance: ONNX's backend default rtol 1e-3, atol 1e-7, or the
 * directory's `tolerance` file ("rtol X atol Y"). Exit 1 if anything failed.
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nf_impl.h"

static int n_pass, n_fail, n_skip, verbose;

/* unsupported-operator tally for the summary */
#define MAX_OPS 512
static char *skip_ops[MAX_OPS];
static int skip_counts[MAX_OPS], n_skip_ops;

static void tally_skip(const char *msg)
{
    /* messages look like "... unsupported operators: Foo (node ..., ...), Bar (...)" */
    const char *p = strstr(msg, "unsupported operators: ");
    char key[128];
    if (p != NULL) {
        p += strlen("unsupported operators: ");
        size_t n = strcspn(p, " (");
        snprintf(key, sizeof key, "%.*s", (int)n, p);
    } else {
        snprintf(key, sizeof key, "(other: %.60s)", msg);
    }
    for (int i = 0; i < n_skip_ops; i++)
        if (strcmp(skip_ops[i], key) == 0) {
            skip_counts[i]++;
            return;
        }
    if (n_skip_ops < MAX_OPS) {
        skip_ops[n_skip_ops] = strdup(key);
        skip_counts[n_skip_ops++] = 1;
    }
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf != NULL && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = n > 0 ? (size_t)n : 0;
    return buf;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int read_pb(const char *path, nf_arena *a, nf_value *v, nf_err *err)
{
    size_t len;
    char *buf = read_file(path, &len);
    if (buf == NULL)
        return nf_err_set(err, NF_EIO, "%s: cannot read", path);
    int rc = nf__tensor_read_pb(buf, len, a, v, err);
    free(buf);
    return rc;
}

/* Compares one output; fills why on mismatch. */
static int compare(const nf_tensor *got, const nf_value *exp, double rtol, double atol, char *why, size_t cap)
{
    if (got->dtype != exp->dtype) {
        snprintf(why, cap, "output '%s': type %s, expected %s", exp->name, nf_dtype_name(got->dtype),
                 nf_dtype_name(exp->dtype));
        return 0;
    }
    int same_shape = got->n_dims == exp->n_dims;
    for (int d = 0; same_shape && d < got->n_dims; d++)
        same_shape = got->dims[d] == exp->dims[d];
    if (!same_shape) {
        char a[128] = "", b[128] = "";
        for (int d = 0; d < got->n_dims; d++)
            snprintf(a + strlen(a), sizeof a - strlen(a), "%s%lld", d ? "," : "", (long long)got->dims[d]);
        for (int d = 0; d < exp->n_dims; d++)
            snprintf(b + strlen(b), sizeof b - strlen(b), "%s%lld", d ? "," : "", (long long)exp->dims[d]);
        snprintf(why, cap, "output '%s': shape [%s], expected [%s]", exp->name, a, b);
        return 0;
    }
    for (int64_t i = 0; i < exp->size; i++) {
        if (exp->dtype == NF_DT_STRING) {
            const char *x = ((char **)got->data)[i], *y = ((char **)exp->data)[i];
            if (strcmp(x ? x : "", y) != 0) {
                snprintf(why, cap, "output '%s'[%lld]: \"%s\", expected \"%s\"", exp->name, (long long)i, x, y);
                return 0;
            }
            continue;
        }
        if (exp->dtype == NF_DT_INT64) {
            int64_t x = ((int64_t *)got->data)[i], y = ((int64_t *)exp->data)[i];
            if (x != y) {
                snprintf(why, cap, "output '%s'[%lld]: %lld, expected %lld", exp->name, (long long)i, (long long)x,
                         (long long)y);
                return 0;
            }
            continue;
        }
        double x, y;
        if (exp->dtype == NF_DT_FLOAT16) {
            x = nf_half_to_float(((uint16_t *)got->data)[i]);
            y = nf_half_to_float(((uint16_t *)exp->data)[i]);
        } else {
            x = nf_get_f64(got->data, exp->dtype, i);
            y = nf_get_f64(exp->data, exp->dtype, i);
        }
        if (isnan(y) && isnan(x))
            continue;
        if (isinf(y) && x == y)
            continue;
        if (!(fabs(x - y) <= atol + rtol * fabs(y))) {
            snprintf(why, cap, "output '%s'[%lld]: %.9g, expected %.9g (rtol %g, atol %g)", exp->name, (long long)i, x,
                     y, rtol, atol);
            return 0;
        }
    }
    return 1;
}

static void run_test(const char *dir, const char *name)
{
    char path[8192], why[700];
    double rtol = 1e-3, atol = 1e-7;
    snprintf(path, sizeof path, "%s/tolerance", dir);
    FILE *tf = fopen(path, "r");
    if (tf != NULL) {
        if (fscanf(tf, "rtol %lf atol %lf", &rtol, &atol) != 2) {
            rtol = 1e-3;
            atol = 1e-7;
        }
        fclose(tf);
    }
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    nf_model *m = NULL;
    nf_err err = {0};
    nf_opts opts = {0};
    int rc = nf_model_load(path, &opts, &m, &err);
    if (rc == NF_EUNSUPPORTED) {
        n_skip++;
        tally_skip(err.msg);
        printf("SKIP %s: %s\n", name, err.msg);
        return;
    }
    if (rc != NF_OK) {
        n_fail++;
        printf("FAIL %s: load: %s\n", name, err.msg);
        return;
    }
    int ok = 1, n_sets = 0;
    for (int set = 0; ok; set++) {
        char sdir[4096];
        snprintf(sdir, sizeof sdir, "%s/test_data_set_%d", dir, set);
        if (!exists(sdir))
            break;
        n_sets++;
        nf_arena a = {0};
        int ni = nf_model_n_inputs(m), no = nf_model_n_outputs(m);
        nf_tensor *in = calloc((size_t)ni + 1, sizeof(nf_tensor));
        nf_tensor *out = calloc((size_t)no + 1, sizeof(nf_tensor));
        for (int i = 0; i < ni && ok; i++) {
            nf_value v;
            snprintf(path, sizeof path, "%s/input_%d.pb", sdir, i);
            if (read_pb(path, &a, &v, &err) != NF_OK) {
                snprintf(why, sizeof why, "%s", err.msg);
                ok = 0;
                break;
            }
            in[i].name = v.name;
            in[i].dtype = v.dtype;
            in[i].n_dims = v.n_dims;
            memcpy(in[i].dims, v.dims, sizeof v.dims);
            in[i].data = v.data;
        }
        /* twice: the first run plans, the second runs on the plan */
        for (int rep = 0; rep < 2 && ok; rep++) {
        if (ok) {
            rc = nf_model_run(m, in, out, &err);
            if (rc == NF_EUNSUPPORTED) {
                free(in);
                free(out);
                nf_arena_fini(&a);
                nf_model_free(m);
                n_skip++;
                tally_skip(err.msg);
                printf("SKIP %s: %s\n", name, err.msg);
                return;
            }
            if (rc != NF_OK) {
                snprintf(why, sizeof why, "run: %s", err.msg);
                ok = 0;
            }
        }
        for (int i = 0; i < no && ok; i++) {
            nf_value v;
            snprintf(path, sizeof path, "%s/output_%d.pb", sdir, i);
            if (read_pb(path, &a, &v, &err) != NF_OK) {
                snprintf(why, sizeof why, "%s", err.msg);
                ok = 0;
                break;
            }
            ok = compare(&out[i], &v, rtol, atol, why, sizeof why);
            if (!ok && rep == 1)
                strncat(why, " (second, planned run)", sizeof why - strlen(why) - 1);
        }
        }
        free(in);
        free(out);
        nf_arena_fini(&a);
    }
    nf_model_free(m);
    if (ok && n_sets == 0) {
        ok = 0;
        snprintf(why, sizeof why, "no test_data_set_0");
    }
    if (ok) {
        n_pass++;
        printf("PASS %s\n", name);
    } else {
        n_fail++;
        printf("FAIL %s: %s\n", name, why);
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A directory with model.onnx is a test; otherwise its subdirectories are. */
static void walk(const char *dir, const char *label)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    if (exists(path)) {
        run_test(dir, label);
        return;
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        n_fail++;
        printf("FAIL %s: cannot open directory\n", label);
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            names = realloc(names, cap * sizeof *names);
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n > 0)
        qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        char sub[4096], sublabel[4096];
        snprintf(sub, sizeof sub, "%s/%s", dir, names[i]);
        snprintf(sublabel, sizeof sublabel, "%s/%s", label, names[i]);
        struct stat st;
        /* lstat: never follow a link out of the tree (tests/models/hostile
         * holds a symlink to /etc on purpose) */
        if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
            walk(sub, sublabel);
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: nf-conformance [-v] [-l LABEL] DIR...\n");
        return 2;
    }
    const char *label = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0) {
            verbose = 1;
            continue;
        }
        if (strcmp(argv[i], "-l") == 0 && i + 1 < argc) {
            label = argv[++i];
            continue;
        }
        const char *base = strrchr(argv[i], '/');
        walk(argv[i], label ? label : (base ? base + 1 : argv[i]));
    }
    for (int i = 0; i < n_skip_ops; i++) {
        printf("# skipped (%s): %d\n", skip_ops[i], skip_counts[i]);
        free(skip_ops[i]);
    }
    printf("# conformance: %d passed, %d failed, %d skipped\n", n_pass, n_fail, n_skip);
    return n_fail != 0;
}
