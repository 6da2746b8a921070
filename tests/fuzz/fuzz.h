/*
 * fuzz.h: what the libFuzzer targets share: input declarations the request
 * decoders are fuzzed against, and oracles beyond ASan/UBSan. A decoder
 * that succeeds must hand back dims that match every fixed declared dim and
 * data that can be read to the last element (ASan catches data outside its
 * buffer); one that fails must say why. A broken promise is __builtin_trap,
 * which libFuzzer reports as a crash.
 */
#ifndef NF_FUZZ_H
#define NF_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"

#define FZ_ASSERT(c)                                                                                    \
    do {                                                                                                \
        if (!(c)) {                                                                                     \
            fprintf(stderr, "fuzz oracle failed: %s (%s:%d)\n", #c, __FILE__, __LINE__);                 \
            __builtin_trap();                                                                           \
        }                                                                                               \
    } while (0)

/* One set of model inputs a body is decoded against. */
typedef struct fz_decl {
    const char *what;
    int n;
    nf_tensor in[4];
    int64_t max_rows;
} fz_decl;

/* models/default.onnx (README): input "input", float32 [-1, 10]; max_rows
 * as conf/nginfer.cfg. */
#define FZ_DEFAULT                                                                                      \
    {"default", 1, {{.name = "input", .dtype = NF_DT_FLOAT, .n_dims = 2, .dims = {-1, 10}}}, 100000}
/* Rows of strings, any width; a small max_rows so 413 is reachable. */
#define FZ_STRINGS                                                                                      \
    {"strings", 1, {{.name = "s", .dtype = NF_DT_STRING, .n_dims = 2, .dims = {-1, -1}}}, 8}
#define FZ_INTS(dt)                                                                                     \
    {#dt, 1, {{.name = "i", .dtype = (dt), .n_dims = 2, .dims = {-1, -1}}}, 8}
/* Named inputs of several ranks and dtypes ({"inputs": {...}}), as a
 * BERT-style export has (ids and mask) plus a scalar. */
#define FZ_NAMED                                                                                        \
    {"named", 4,                                                                                        \
     {{.name = "input_ids", .dtype = NF_DT_INT64, .n_dims = 2, .dims = {-1, 4}},                        \
      {.name = "attention_mask", .dtype = NF_DT_BOOL, .n_dims = 3, .dims = {-1, 2, -1}},                \
      {.name = "t", .dtype = NF_DT_DOUBLE, .n_dims = 0},                                                \
      {.name = "u", .dtype = NF_DT_UINT8, .n_dims = 1, .dims = {-1}}},                                  \
     16}

static volatile unsigned fz_sink;

/* Reads every element the decoder produced for declared input decl. */
static inline void fz_check_tensor(const nf_tensor *decl, const nf_tensor *t, const nf_buf *buf)
{
    FZ_ASSERT(t->n_dims == decl->n_dims && t->dtype == decl->dtype);
    int64_t count = 1;
    for (int d = 0; d < t->n_dims; d++) {
        FZ_ASSERT(t->dims[d] >= 0);
        FZ_ASSERT(decl->dims[d] < 0 || t->dims[d] == decl->dims[d]);
        FZ_ASSERT(!__builtin_mul_overflow(count, t->dims[d], &count));
    }
    FZ_ASSERT(count == 0 || t->data != NULL);
    size_t esz = nf_codec_elem_size(t->dtype);
    const unsigned char *p = t->data;
    FZ_ASSERT(p == NULL || (p >= (const unsigned char *)buf->p && p + (size_t)count * esz <= (const unsigned char *)buf->p + buf->cap));
    unsigned acc = 0;
    for (size_t i = 0; i < (size_t)count * esz; i++)
        acc += p[i];
    if (t->dtype == NF_DT_STRING)
        for (int64_t i = 0; i < count; i++)
            acc += (unsigned)strlen(((char *const *)t->data)[i]);
    fz_sink += acc;
}

/* Decodes a body of format fmt against d with slots reused across calls
 * (as the worker reuses them) and checks the result. */
static inline int fz_decode(int fmt, const uint8_t *data, size_t size, const fz_decl *d, nf_input_slot *slots, nf_buf *aux)
{
    for (int i = 0; i < d->n; i++) {
        slots[i].t = d->in[i];
        slots[i].t.data = NULL;
    }
    nf_err err = {0};
    int64_t rows = -1;
    int rc = nf_decode_body(fmt, (const char *)data, size, slots, d->n, aux, d->max_rows, &rows, &err);
    if (rc == 0) {
        for (int i = 0; i < d->n; i++)
            fz_check_tensor(&d->in[i], &slots[i].t, &slots[i].buf);
        FZ_ASSERT(rows == (slots[0].t.n_dims > 0 ? slots[0].t.dims[0] : 1));
        FZ_ASSERT(d->max_rows <= 0 || rows <= d->max_rows);
    } else {
        FZ_ASSERT(rc == NF_ESYNTAX || rc == NF_ELIMIT || rc == NF_ESHAPE || rc == NF_EINVAL || rc == NF_ENOMEM);
        FZ_ASSERT(err.code == rc && err.msg[0] != '\0');
    }
    return rc;
}

#endif
