/*
 * nf.h: the one public header of the nginfer inference core.
 *
 * A model is loaded once (parsed, checked, planned, constants folded) and
 * then run many times. The core knows nothing of HTTP or FastCGI. Every call
 * that can fail returns an int status (NF_OK or a negative NF_E*) and fills
 * an nf_err whose message says what went wrong and where (node, tensor,
 * attribute, input).
 *
 * Threading: one nf_model is used by one thread at a time (nginfer runs one
 * model per worker process).
 */
#ifndef NF_H
#define NF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NF_MAX_DIMS 8

/* Status codes. Request-caused errors are NF_EINVAL and NF_ESHAPE; model
 * problems found at load are NF_EMODEL and NF_EUNSUPPORTED. */
enum {
    NF_OK = 0,
    NF_EINVAL = -1,       /* bad input data (a value out of range, NaN where not allowed, ...) */
    NF_ESHAPE = -2,       /* input shape or dtype does not match the model */
    NF_EMODEL = -3,       /* model file is malformed or inconsistent */
    NF_EUNSUPPORTED = -4, /* model uses an operator, attribute or dtype we lack */
    NF_ENOMEM = -5,       /* allocation failed */
    NF_EIO = -6,          /* a file could not be read */
    NF_EINTERNAL = -7     /* our own invariant broke: a bug */
};

typedef struct nf_err {
    int code;
    char msg[512];
} nf_err;

/* Element types; the values are ONNX's TensorProto.DataType numbers. */
enum {
    NF_DT_UNDEFINED = 0,
    NF_DT_FLOAT = 1,
    NF_DT_UINT8 = 2,
    NF_DT_INT8 = 3,
    NF_DT_UINT16 = 4,
    NF_DT_INT16 = 5,
    NF_DT_INT32 = 6,
    NF_DT_INT64 = 7,
    NF_DT_STRING = 8, /* data is an array of NUL-terminated char * */
    NF_DT_BOOL = 9,   /* one byte, 0 or 1 */
    NF_DT_FLOAT16 = 10,
    NF_DT_DOUBLE = 11,
    NF_DT_UINT32 = 12,
    NF_DT_UINT64 = 13
};

/* A tensor as the caller sees it. For model inputs/outputs metadata
 * (nf_model_input/nf_model_output) a dimension of -1 is dynamic. */
typedef struct nf_tensor {
    const char *name;
    int dtype;
    int n_dims;
    int64_t dims[NF_MAX_DIMS];
    void *data;
} nf_tensor;

typedef struct nf_opts {
    int n_threads;     /* intra-op threads for dense math; 0 or 1 = one */
    size_t max_plans;  /* input-shape plans cached; 0 = default (16) */
} nf_opts;

typedef struct nf_model nf_model;

/* Loads an ONNX model file. On success *out owns everything; the file is not
 * touched again. path is used in messages and to resolve external data. */
int nf_model_load(const char *path, const nf_opts *opts, nf_model **out, nf_err *err);

/* Same from memory (fuzzing, tests); dir resolves external data or is NULL
 * (then external data is refused). The buffer is not kept. */
int nf_model_load_buffer(const void *buf, size_t len, const char *dir, const nf_opts *opts,
                         nf_model **out, nf_err *err);

void nf_model_free(nf_model *m);

int nf_model_n_inputs(const nf_model *m);
int nf_model_n_outputs(const nf_model *m);
/* Declared inputs/outputs (name, dtype, dims with -1 where dynamic).
 * Owned by the model. */
const nf_tensor *nf_model_input(const nf_model *m, int i);
const nf_tensor *nf_model_output(const nf_model *m, int i);

/* Metadata: "producer_name", "producer_version", "graph_name", "doc_string",
 * "model_version" (metadata_props first, then ModelProto.model_version) and
 * any metadata_props key. NULL when absent. Owned by the model. */
const char *nf_model_meta(const nf_model *m, const char *key);

/* Class labels of a classifier model (the ai.onnx.ml classifier node whose
 * label output is a graph output). Returns 0 and n_labels = 0 when the model
 * is not a classifier. Exactly one of *ints / *strs is set. label_output and
 * score_output are graph output indices (-1 if not a graph output). */
typedef struct nf_classes {
    int n_labels;
    const int64_t *ints;
    const char *const *strs;
    int label_output;
    int score_output;
} nf_classes;
void nf_model_classes(const nf_model *m, nf_classes *out);

/* Runs the model. inputs[i] binds nf_model_input(m, i) (name is ignored);
 * its data must stay valid during the call. On success outputs[0..n_outputs)
 * are filled; their data is owned by the model and valid until the next
 * nf_model_run or nf_model_free. A request that does not match the model
 * fails with NF_ESHAPE or NF_EINVAL and a message naming input and dim. */
int nf_model_run(nf_model *m, const nf_tensor *inputs, nf_tensor *outputs, nf_err *err);

/* Bytes of the arena used by runs (planned activations), for metrics. */
size_t nf_model_run_bytes(const nf_model *m);

const char *nf_dtype_name(int dtype); /* "float32", "int64", ... */
size_t nf_dtype_size(int dtype);      /* 0 for unknown */
int nf_dtype_from_name(const char *name);
int64_t nf_tensor_count(const nf_tensor *t); /* product of dims */

/* Fills err (always returns code, so `return nf_err_set(...)` works). */
int nf_err_set(nf_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif
#endif
