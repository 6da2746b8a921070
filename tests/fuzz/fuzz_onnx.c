/*
 * fuzz_onnx.c: the ONNX loader on arbitrary bytes (nf_model_load_buffer,
 * dir NULL: external data refused), then, when the model loads, two runs
 * (the planning run and the planned one) on zeros of batch 1 for every
 * input (declared dims, -1 -> 1), and both answer encoders on the outputs,
 * as a worker's warm-up and first request would. Inputs over FZ_MAX_ELEMS
 * elements are not run and outputs over it not encoded (a declared
 * [2^31, ...] is refused at load anyway; this only bounds the time of one
 * execution: text for a 3M-element Tile output takes seconds under ASan).
 * Oracles: every failure has a status and a message, and NF_EINTERNAL (our
 * own broken invariant) is a crash; outputs are readable to their end.
 */
#include <stdlib.h>

#include "fuzz.h"

#define FZ_MAX_ELEMS (1 << 16)

static char empty[] = "";

/* Feeds zeros; returns 0 when the inputs are too large to run. */
static int make_inputs(nf_model *m, nf_tensor *in, void **bufs)
{
    int n_in = nf_model_n_inputs(m);
    int64_t total = 0;
    for (int i = 0; i < n_in; i++) {
        in[i] = *nf_model_input(m, i);
        int64_t count = 1;
        for (int d = 0; d < in[i].n_dims; d++) {
            if (in[i].dims[d] < 0)
                in[i].dims[d] = 1;
            if (__builtin_mul_overflow(count, in[i].dims[d], &count) || count > FZ_MAX_ELEMS)
                return 0;
        }
        total += count;
        if (total > FZ_MAX_ELEMS)
            return 0;
        size_t esz = nf_dtype_size(in[i].dtype);
        FZ_ASSERT(esz > 0); /* the loader refuses inputs of unknown type */
        bufs[i] = calloc((size_t)count + 1, esz);
        if (bufs[i] == NULL)
            return 0;
        if (in[i].dtype == NF_DT_STRING)
            for (int64_t j = 0; j < count; j++)
                ((char **)bufs[i])[j] = empty;
        in[i].data = bufs[i];
    }
    return 1;
}

static void read_outputs(const nf_tensor *out, int n_out)
{
    unsigned acc = 0;
    for (int i = 0; i < n_out; i++) {
        int64_t count = nf_tensor_count(&out[i]);
        size_t esz = nf_dtype_size(out[i].dtype);
        FZ_ASSERT(count >= 0 && esz > 0 && (count == 0 || out[i].data != NULL));
        const unsigned char *p = out[i].data;
        for (size_t j = 0; j < (size_t)count * esz; j++)
            acc += p[j];
        if (out[i].dtype == NF_DT_STRING)
            for (int64_t j = 0; j < count; j++) {
                const char *s = ((char *const *)out[i].data)[j];
                acc += s ? (unsigned)strlen(s) : 0;
            }
    }
    fz_sink += acc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nf_model *m = NULL;
    nf_err err = {0};
    nf_opts opts = {.n_threads = 1, .max_plans = 2};
    int rc = nf_model_load_buffer(data, size, NULL, &opts, &m, &err);
    if (rc != 0) {
        FZ_ASSERT(m == NULL && rc < 0 && err.code == rc && err.msg[0] != '\0');
        FZ_ASSERT(rc != NF_EINTERNAL);
        return 0;
    }
    int n_in = nf_model_n_inputs(m), n_out = nf_model_n_outputs(m);
    FZ_ASSERT(n_in >= 0 && n_out >= 1);
    (void)nf_model_meta(m, "model_version");
    (void)nf_model_meta(m, "graph_name");
    nf_classes cls;
    nf_model_classes(m, &cls);
    nf_tensor *in = calloc((size_t)n_in + 1, sizeof *in);
    nf_tensor *out = calloc((size_t)n_out, sizeof *out);
    void **bufs = calloc((size_t)n_in + 1, sizeof *bufs);
    FZ_ASSERT(in && out && bufs);
    if (make_inputs(m, in, bufs)) {
        for (int pass = 0; pass < 2; pass++) {
            memset(&err, 0, sizeof err);
            rc = nf_model_run(m, in, out, &err);
            if (rc != 0) {
                FZ_ASSERT(rc < 0 && err.code == rc && err.msg[0] != '\0');
                FZ_ASSERT(rc != NF_EINTERNAL);
                break;
            }
            read_outputs(out, n_out);
        }
        int64_t n_elems = 0;
        for (int i = 0; rc == 0 && i < n_out; i++)
            n_elems += nf_tensor_count(&out[i]);
        if (rc == 0 && n_elems <= FZ_MAX_ELEMS) {
            nf_buf b = {0};
            (void)nf_encode_json(&b, out, n_out, &cls, "1", &err);
            nf_buf_reset(&b);
            (void)nf_encode_csv(&b, out, n_out, &cls, &err);
            nf_buf_free(&b);
        }
    }
    for (int i = 0; i < n_in; i++)
        free(bufs[i]);
    free(bufs);
    free(in);
    free(out);
    nf_model_free(m);
    return 0;
}
