/*
 * codec.h: request body decoders (JSON, CSV, JSON lines) and response
 * encoders, with no knowledge of nf_app, HTTP or the model object.
 *
 * Decoders write elements of the model input's dtype straight into a
 * caller-owned nf_buf (reused across requests); the only per-call heap
 * allocations are json-c's parse tree and tokener, freed before return.
 * They never trust the body: nesting depth, row count and every size
 * product are bounded, and errors say where (line/column, row/field, index).
 * codec.c uses only libc and json-c, so fuzz targets and unit tests link it
 * without the core.
 */
#ifndef NF_CODEC_H
#define NF_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "app.h"

struct json_object;

/* Codec status codes, beyond the core's (route.c maps all to HTTP):
 * NF_ESYNTAX 400 (body not well-formed), NF_ELIMIT 413 (too many rows),
 * NF_ESHAPE / NF_EINVAL 422 (well-formed but wrong count, shape or type),
 * NF_EUNSUPPORTED 500 (input dtype we cannot decode), NF_ENOMEM 500. */
enum {
    NF_ESYNTAX = -100,
    NF_ELIMIT = -101
};

/* json-c's tokener nesting limit: a request is at most [rows][dims...]
 * deep plus the wrapping object, so 64 is generous and bounds recursion. */
#define NF_JSON_MAX_DEPTH 64

/* Body formats (from the request's Content-Type). */
enum { NF_FMT_JSON = 1, NF_FMT_CSV, NF_FMT_JSONL };

/* Response formats (from Accept). */
enum { NF_OUT_JSON = 1, NF_OUT_CSV };

/* Bytes per element the decoders write for dtype (char * for strings), 0
 * for dtypes they cannot produce (float16, undefined). */
size_t nf_codec_elem_size(int dtype);

/* A batch of rows of n_cols values each, all of one dtype.
 * Caller sets dtype, n_cols (0 = take it from the first row, then every row
 * must match), max_rows (0 = no limit), data and, for NF_DT_STRING only, aux
 * (scratch for string offsets). Decoders reset data, then set n_rows and
 * elems = n_rows * n_cols elements (row-major) inside data; for strings the
 * elems are char * into data. elems is valid until data is next changed. */
typedef struct nf_rows {
    int dtype;
    int64_t n_cols;
    int64_t max_rows;
    nf_buf *data;
    nf_buf *aux;
    int64_t n_rows; /* out */
    void *elems;    /* out */
} nf_rows;

/* Parses a whole JSON document (strict: no trailing commas, comments or
 * trailing data; UTF-8 validated; depth <= NF_JSON_MAX_DEPTH). On success
 * *out owns the tree (json_object_put it). On NF_ESYNTAX the message is
 * "line L, column C: <what>" with L and C 1-based (C counts bytes). */
int nf_json_parse(const char *s, size_t len, struct json_object **out, nf_err *err);

/* Decodes a JSON array of rows ([[v, ...], ...]) into r. Rows and fields in
 * messages are 1-based: "row 3 has 9 features, expected 10" (NF_ESHAPE),
 * "row 2, field 4: expected a number, got a string" (NF_EINVAL). More than
 * max_rows rows is NF_ELIMIT. Values: numbers (null = NaN for float
 * dtypes), true/false for bool, strings for string; integer dtypes take only
 * integral numbers in range. */
int nf_decode_json_rows(struct json_object *rows, nf_rows *r, nf_err *err);

/* Decodes CSV: one row per record, comma-separated, no header, CRLF or LF,
 * trailing newlines optional, spaces around fields ignored, RFC 4180 quotes
 * accepted. An empty field is NaN for float dtypes (422 for others).
 * A field that is not a number is NF_ESYNTAX "row R, field F: 'abc' is not
 * a number"; a wrong field count NF_ESHAPE "row R has 9 features, expected
 * 10". Rows are 1-based records (= lines unless a quoted field spans lines). */
int nf_decode_csv(const char *body, size_t len, nf_rows *r, nf_err *err);

/* Decodes JSON lines: each non-blank line is a JSON array (one row) or an
 * object {"features": [...]}. Errors name the 1-based line: NF_ESYNTAX
 * "line L, column C: <what>", NF_ESHAPE "line L has 9 features, expected
 * 10", NF_EINVAL "line L, field F: expected a number, got a string". */
int nf_decode_jsonl(const char *body, size_t len, nf_rows *r, nf_err *err);

/* Decodes one named input from nested JSON lists (a bare value for rank 0).
 * On entry slot->t is the model's declared input (name, dtype, n_dims, dims
 * with -1 where dynamic); the nested lists must have exactly that rank and
 * match every fixed dim ("input 'x': dim 1 is 5, expected 4", NF_ESHAPE);
 * dynamic dims take the request's size. dims[0] > max_rows (when > 0) is
 * NF_ELIMIT. On success slot->t.dims are the request's and slot->t.data
 * points into slot->buf. Element errors name the 0-based index:
 * "input 'x' at [1][2]: expected a number, got a string". */
int nf_decode_json_tensor(struct json_object *v, nf_input_slot *slot, nf_buf *aux,
                          int64_t max_rows, nf_err *err);

/* The fast path of nf_decode_body for JSON rows: {"instances": [[n, ...],
 * ...]}, {"features": [n, ...]} or a bare [[n, ...], ...] of numbers and
 * nulls into a single [N, F] float32 or float64 input, scanned once with
 * no parse tree. Returns 1 when it decoded the body (slots[0] and *n_rows
 * set exactly as the json-c path would set them), 0 for anything else
 * (other keys or shapes, escapes, non-ASCII, any error: then the caller
 * runs the json-c path, which also writes every error message). */
int nf_decode_json_fast(const char *body, size_t len, nf_input_slot *slots, int n_slots, int64_t max_rows,
                        int64_t *n_rows);

/* One JSON number at s (RFC 8259 syntax, before end) as the json-c path
 * reads it (see codec.c); returns its length, or 0 if s holds none. */
size_t nf_json_number(const char *s, const char *end, double *out);

/* Decodes a whole request body of format fmt into the model's inputs.
 * On entry slots[i].t is the declared input i (as above). JSON bodies are
 * {"instances": [[...], ...]}, {"features": [...]} (one row), a bare list
 * of rows, {"inputs": {"<name>": nested, ...}} (every input, no unknown
 * names) or {"inputs": nested} (single-input models). Rows (and all CSV and
 * JSON lines bodies) fill input 0, which must be 2-D [N, F], and need a
 * single-input model. aux is scratch. On success every slots[i].t has its
 * request dims and data, and *n_rows is the batch size (dim 0 of input 0,
 * 1 for a scalar). Zero rows is NF_ESHAPE. */
int nf_decode_body(int fmt, const char *body, size_t len, nf_input_slot *slots, int n_slots,
                   nf_buf *aux, int64_t max_rows, int64_t *n_rows, nf_err *err);

/* Appends s[0..n) as a JSON string literal with quotes. Control characters
 * are escaped; invalid UTF-8 bytes become U+FFFD so the output is always
 * valid JSON. Returns 0 or -1 (out of memory), as all appenders below. */
int nf_json_str(nf_buf *b, const char *s, size_t n);

/* Appends a float32 / float64 with enough digits to round-trip ("%.9g",
 * "%.17g"); NaN and +-Inf become null (JSON has neither). */
int nf_json_f32(nf_buf *b, float x);
/* The text nf_json_f32 appends for a finite x, written to o (32 bytes),
 * NUL-terminated; returns its length. Byte for byte snprintf's "%.9g". */
size_t nf_fmt_f32(char *o, float x);
int nf_json_f64(nf_buf *b, double x);

/* Appends element i of data (of dtype) as a JSON value: numbers, true/false,
 * strings (NULL string = null); float16 is widened to float32. */
int nf_json_elem(nf_buf *b, int dtype, const void *data, int64_t i);

/* Appends tensor t as nested JSON lists following its dims (a bare value
 * for rank 0). */
int nf_json_tensor(nf_buf *b, const nf_tensor *t);

/* Appends s[0..n) as one CSV field, quoted (RFC 4180) only when it holds a
 * comma, quote, CR or LF. */
int nf_csv_str(nf_buf *b, const char *s, size_t n);

/* Appends element i as a CSV field: NaN = empty field, +-Inf = inf/-inf,
 * bool = 1/0, other numbers as in JSON. */
int nf_csv_elem(nf_buf *b, int dtype, const void *data, int64_t i);

/* Encodes the model outputs as the /invocations answer into b (appended).
 * JSON: {"predictions": [...], "outputs": {...}, "model_version": "v"}
 *   regressor (cls NULL or n_labels 0): predictions from output 0, flat when
 *   it is [N] or [N, 1], nested lists otherwise; "outputs" (every output,
 *   nested by dims) only when there are several outputs.
 *   classifier: one {"label": l, "probabilities": {"<label>": p, ...}} per
 *   row, labels in class order ("probabilities" absent without a score
 *   output).
 * CSV: one line per row; regressor: output 0's values of that row; classifier:
 *   label, then the probabilities in class order.
 * Errors: NF_EINTERNAL when the outputs do not fit the classes (a bug or a
 * model we misread), NF_ENOMEM. */
int nf_encode_json(nf_buf *b, const nf_tensor *outs, int n_outs, const nf_classes *cls,
                   const char *version, nf_err *err);
int nf_encode_csv(nf_buf *b, const nf_tensor *outs, int n_outs, const nf_classes *cls,
                  nf_err *err);

#endif
