/*
 * core_bench.c: in-process timing of nf_model_run (the nginfer core, no
 * HTTP, no JSON): the time of one call, median over many calls after a
 * warm-up. Built and run by bench/run.sh:
 *
 *   gcc -O2 -Icore -o bench/work/core_bench bench/core_bench.c \
 *       build/libnfcore.a -lprotobuf-c -lopenblas -lm -pthread
 *   bench/work/core_bench [-t SECONDS] KEY MODEL.onnx SPEC [SPEC...]
 *
 * SPEC is a file written by bench/prep.py: first line the number of inputs,
 * then one line per input: "dtype_code n_dims d0 d1 ... raw_file name"
 * (raw little-endian elements). Prints one JSON object per SPEC on stdout:
 * {"engine":"nginfer","model":KEY,"batch":N,"calls":..,"median_us":..,
 *  "p10_us":..,"p90_us":..,"mean_us":..,"load_ms":..,"gemm":..,"blas_core":..}
 * One thread (nf_opts.n_threads = 1), as each worker runs. "gemm" says
 * which float32 GEMM ran: "avx512" (the core's own kernel) or "openblas";
 * "blas_core" is the kernel set OpenBLAS chose (or was told to use by
 * OPENBLAS_CORETYPE), which still serves float64 and CPUs without AVX-512.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>
#include <stdbool.h>

#include "nf.h"

/* core internal (core/ops/ops_dense.h): the AVX-512 float GEMM runs here */
bool nf__sgemm_fast(void);

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void *read_file(const char *path, size_t want)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return NULL;
    }
    void *buf = malloc(want ? want : 1);
    size_t got = buf ? fread(buf, 1, want, f) : 0;
    fclose(f);
    if (got != want) {
        fprintf(stderr, "%s: expected %zu bytes, read %zu\n", path, want, got);
        free(buf);
        return NULL;
    }
    return buf;
}

/* Reads SPEC into inputs[]; returns the input count, -1 on error. *batch
 * gets dim 0 of the first input. */
static int read_spec(const char *spec, nf_tensor *inputs, int max_inputs, int64_t *batch)
{
    FILE *f = fopen(spec, "r");
    if (!f) {
        perror(spec);
        return -1;
    }
    int n = 0;
    if (fscanf(f, "%d", &n) != 1 || n < 1 || n > max_inputs) {
        fprintf(stderr, "%s: bad input count\n", spec);
        fclose(f);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        nf_tensor *t = &inputs[i];
        char raw[4096], name[256];
        memset(t, 0, sizeof *t);
        if (fscanf(f, "%d %d", &t->dtype, &t->n_dims) != 2 || t->n_dims < 1 || t->n_dims > NF_MAX_DIMS) {
            fprintf(stderr, "%s: bad line %d\n", spec, i + 2);
            fclose(f);
            return -1;
        }
        int64_t count = 1;
        for (int d = 0; d < t->n_dims; d++) {
            long long v;
            if (fscanf(f, "%lld", &v) != 1) {
                fclose(f);
                return -1;
            }
            t->dims[d] = v;
            count *= v;
        }
        if (fscanf(f, "%4095s %255s", raw, name) != 2) {
            fclose(f);
            return -1;
        }
        t->name = strdup(name);
        t->data = read_file(raw, (size_t)count * nf_dtype_size(t->dtype));
        if (!t->data) {
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    *batch = inputs[0].dims[0];
    return n;
}

int main(int argc, char **argv)
{
    double budget_s = 1.0;
    int a = 1;
    if (a + 1 < argc && strcmp(argv[a], "-t") == 0) {
        budget_s = atof(argv[a + 1]);
        a += 2;
    }
    if (argc - a < 3) {
        fprintf(stderr, "usage: %s [-t SECONDS] KEY MODEL.onnx SPEC [SPEC...]\n", argv[0]);
        return 2;
    }
    const char *key = argv[a], *path = argv[a + 1];
    nf_opts opts = {.n_threads = 1};
    nf_model *m = NULL;
    nf_err err = {0};
    double t0 = now_us();
    if (nf_model_load(path, &opts, &m, &err) != NF_OK) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
        return 1;
    }
    double load_ms = (now_us() - t0) / 1e3;
    int n_out = nf_model_n_outputs(m);
    nf_tensor outputs[16];
    if (n_out > 16)
        return 1;

    enum { MAX_CALLS = 200000 };
    double *times = malloc(sizeof(double) * MAX_CALLS);
    for (int s = a + 2; s < argc; s++) {
        nf_tensor inputs[8];
        int64_t batch = 0;
        int n_in = read_spec(argv[s], inputs, 8, &batch);
        if (n_in < 0)
            return 1;
        if (n_in != nf_model_n_inputs(m)) {
            fprintf(stderr, "%s: %d inputs, model has %d\n", argv[s], n_in, nf_model_n_inputs(m));
            return 1;
        }
        /* warm-up: 0.2 of the budget, at least 20 calls */
        double end = now_us() + budget_s * 0.2e6;
        for (int i = 0; i < 20 || now_us() < end; i++) {
            if (nf_model_run(m, inputs, outputs, &err) != NF_OK) {
                fprintf(stderr, "%s: run: %s\n", argv[s], err.msg);
                return 1;
            }
            if (i > MAX_CALLS)
                break;
        }
        int n = 0;
        end = now_us() + budget_s * 1e6;
        while (n < MAX_CALLS && (n < 30 || now_us() < end)) {
            double c0 = now_us();
            int rc = nf_model_run(m, inputs, outputs, &err);
            double c1 = now_us();
            if (rc != NF_OK) {
                fprintf(stderr, "%s: run: %s\n", argv[s], err.msg);
                return 1;
            }
            times[n++] = c1 - c0;
        }
        double sum = 0;
        for (int i = 0; i < n; i++)
            sum += times[i];
        qsort(times, (size_t)n, sizeof(double), cmp_d);
        printf("{\"engine\":\"nginfer\",\"model\":\"%s\",\"batch\":%lld,\"calls\":%d,\"median_us\":%.3f,"
               "\"p10_us\":%.3f,\"p90_us\":%.3f,\"mean_us\":%.3f,\"load_ms\":%.3f,\"gemm\":\"%s\","
               "\"blas_core\":\"%s\"}\n",
               key, (long long)batch, n, times[n / 2], times[n / 10], times[n * 9 / 10], sum / n, load_ms,
               nf__sgemm_fast() ? "avx512" : "openblas", openblas_get_corename());
        fflush(stdout);
        for (int i = 0; i < n_in; i++) {
            free(inputs[i].data);
            free((void *)inputs[i].name);
        }
    }
    free(times);
    nf_model_free(m);
    return 0;
}
