/*
 * test_codec.c: tables of request bodies through the decoders (expected
 * elements or expected error code and message fragment with its position),
 * float formatting round trips, JSON/CSV escaping and the response encoders.
 * Needs only fcgi/codec.c, fcgi/buf.c and json-c (no core, no model).
 * Every body is copied into a buffer of exactly its length, so a decoder
 * reading past the end shows up under valgrind.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "../../fcgi/codec.h"
#include "harness.h"

/* Renders n elements of dtype: ',' between elements, ';' every cols. */
static void render(char *out, size_t cap, int dtype, const void *data, int64_t n, int64_t cols)
{
    size_t at = 0;
    out[0] = 0;
    for (int64_t i = 0; i < n && at + 64 < cap; i++) {
        if (i)
            out[at++] = cols > 0 && i % cols == 0 ? ';' : ',';
        switch (dtype) {
        case NF_DT_FLOAT: at += (size_t)snprintf(out + at, cap - at, "%.9g", ((const float *)data)[i]); break;
        case NF_DT_DOUBLE: at += (size_t)snprintf(out + at, cap - at, "%.17g", ((const double *)data)[i]); break;
        case NF_DT_INT64: at += (size_t)snprintf(out + at, cap - at, "%lld", (long long)((const int64_t *)data)[i]); break;
        case NF_DT_INT32: at += (size_t)snprintf(out + at, cap - at, "%d", ((const int32_t *)data)[i]); break;
        case NF_DT_UINT8: case NF_DT_BOOL: at += (size_t)snprintf(out + at, cap - at, "%u", ((const uint8_t *)data)[i]); break;
        case NF_DT_UINT64: at += (size_t)snprintf(out + at, cap - at, "%llu", (unsigned long long)((const uint64_t *)data)[i]); break;
        case NF_DT_STRING: at += (size_t)snprintf(out + at, cap - at, "<%s>", ((char *const *)data)[i]); break;
        default: at += (size_t)snprintf(out + at, cap - at, "?");
        }
    }
}

/* Exact-length copy of a C string body. */
static char *dup_body(const char *s, size_t *len)
{
    *len = strlen(s);
    char *p = malloc(*len ? *len : 1);
    memcpy(p, s, *len);
    return p;
}

static int check_err(const char *name, int rc, const nf_err *err, int want_rc, const char *frag)
{
    int ok = rc == want_rc && (rc == 0 || strstr(err->msg, frag) != NULL);
    T_CHECK(name, ok, "rc %d (want %d), message '%s' (want '%s')", rc, want_rc, rc ? err->msg : "", frag);
    return ok;
}

/* ---- row decoders ------------------------------------------------------ */

enum { CSV, JSONL };
static const struct {
    const char *name;
    int fmt;
    const char *body;
    int dtype;
    int64_t n_cols, max_rows;
    int rc;
    const char *want; /* rendered elements, or a message fragment when rc != 0 */
} row_cases[] = {
    {"csv basic", CSV, "1,2,3\n4,5,6\n", NF_DT_FLOAT, 3, 0, 0, "1,2,3;4,5,6"},
    {"csv crlf no final newline", CSV, "1,2,3\r\n4,5,6", NF_DT_FLOAT, 3, 0, 0, "1,2,3;4,5,6"},
    {"csv empty field is nan", CSV, "1,,3\n,2,", NF_DT_FLOAT, 3, 0, 0, "1,nan,3;nan,2,nan"},
    {"csv spaces trimmed", CSV, " 1.5 , -2e3 ,\t7 \n", NF_DT_FLOAT, 3, 0, 0, "1.5,-2000,7"},
    {"csv quoted numbers", CSV, "\"1\", \"2\" ,3", NF_DT_FLOAT, 3, 0, 0, "1,2,3"},
    {"csv infer width", CSV, "1,2\n3,4\n", NF_DT_FLOAT, 0, 0, 0, "1,2;3,4"},
    {"csv trailing blank lines", CSV, "1,2\n\r\n\n", NF_DT_FLOAT, 2, 0, 0, "1,2"},
    {"csv float32 rounding", CSV, "0.1,16777217", NF_DT_FLOAT, 2, 0, 0, "0.100000001,16777216"},
    {"csv double exact", CSV, "0.1,16777217", NF_DT_DOUBLE, 2, 0, 0, "0.10000000000000001,16777217"},
    {"csv int64 exact", CSV, "1,-2,9007199254740993,3.0", NF_DT_INT64, 4, 0, 0, "1,-2,9007199254740993,3"},
    {"csv int64 min max", CSV, "-9223372036854775808,9223372036854775807", NF_DT_INT64, 2, 0, 0,
     "-9223372036854775808,9223372036854775807"},
    {"csv uint64 max", CSV, "18446744073709551615", NF_DT_UINT64, 1, 0, 0, "18446744073709551615"},
    {"csv bool words", CSV, "true,0,1,FALSE", NF_DT_BOOL, 4, 0, 0, "1,0,1,0"},
    {"csv strings quoted", CSV, "a,\"b,c\",\"d\"\"e\",", NF_DT_STRING, 4, 0, 0, "<a>,<b,c>,<d\"e>,<>"},
    {"csv quoted newline", CSV, "\"x\ny\",z\nu,v", NF_DT_STRING, 2, 0, 0, "<x\ny>,<z>;<u>,<v>"},
    {"csv short row", CSV, "1,2\n3", NF_DT_FLOAT, 2, 0, NF_ESHAPE, "row 2 has 1 features, expected 2"},
    {"csv long row", CSV, "1,2,3", NF_DT_FLOAT, 2, 0, NF_ESHAPE, "row 1 has 3 features, expected 2"},
    {"csv inferred width mismatch", CSV, "1,2\n3,4,5", NF_DT_FLOAT, 0, 0, NF_ESHAPE, "row 2 has 3 features, expected 2"},
    {"csv blank middle line", CSV, "1,2\n\n3,4", NF_DT_FLOAT, 2, 0, NF_ESHAPE, "row 2 has 1 features, expected 2"},
    {"csv not a number", CSV, "1,2\n3,abc", NF_DT_FLOAT, 2, 0, NF_ESYNTAX, "row 2, field 2: 'abc' is not a number"},
    {"csv header row", CSV, "a,b\n1,2", NF_DT_FLOAT, 2, 0, NF_ESYNTAX, "row 1, field 1: 'a' is not a number"},
    {"csv number with junk", CSV, "1.5x", NF_DT_FLOAT, 1, 0, NF_ESYNTAX, "row 1, field 1: '1.5x' is not a number"},
    {"csv unterminated quote", CSV, "1,\"2", NF_DT_FLOAT, 2, 0, NF_ESYNTAX, "row 1, field 2: unterminated quoted field"},
    {"csv junk after quote", CSV, "\"1\"x,2", NF_DT_FLOAT, 2, 0, NF_ESYNTAX, "row 1, field 1: unexpected 'x' after a closing quote"},
    {"csv too many rows", CSV, "1\n2\n3\n", NF_DT_FLOAT, 1, 2, NF_ELIMIT, "more than 2 rows"},
    {"csv rows at the limit", CSV, "1\n2\n", NF_DT_FLOAT, 1, 2, 0, "1;2"},
    {"csv int not integral", CSV, "1.5", NF_DT_INT64, 1, 0, NF_EINVAL, "row 1, field 1: expected an integer, got 1.5"},
    {"csv int empty", CSV, "1,", NF_DT_INT64, 2, 0, NF_EINVAL, "row 1, field 2: empty, expected an integer"},
    {"csv int32 range", CSV, "3000000000", NF_DT_INT32, 1, 0, NF_EINVAL, "3000000000 is out of range for int32"},
    {"csv uint8 negative", CSV, "-1", NF_DT_UINT8, 1, 0, NF_EINVAL, "-1 is out of range for uint8"},
    {"csv int64 overflow", CSV, "99999999999999999999", NF_DT_INT64, 1, 0, NF_EINVAL, "out of range for int64"},
    {"csv bool other", CSV, "2", NF_DT_BOOL, 1, 0, NF_EINVAL, "row 1, field 1: expected a boolean"},
    {"csv float16 input", CSV, "1", NF_DT_FLOAT16, 1, 0, NF_EUNSUPPORTED, "float16"},

    {"jsonl basic", JSONL, "[1,2]\n[3,4]\n", NF_DT_FLOAT, 2, 0, 0, "1,2;3,4"},
    {"jsonl blank lines and features", JSONL, "[1,2]\r\n\r\n  \n{\"features\": [3,null]}", NF_DT_FLOAT, 2, 0, 0, "1,2;3,nan"},
    {"jsonl infer width", JSONL, "[1,2,3]", NF_DT_FLOAT, 0, 0, 0, "1,2,3"},
    {"jsonl truncated", JSONL, "[1,2]\n[3,4", NF_DT_FLOAT, 2, 0, NF_ESYNTAX, "line 2, column 5: unexpected end of data"},
    {"jsonl trailing junk", JSONL, "[1,2]\n  [1,2] x", NF_DT_FLOAT, 2, 0, NF_ESYNTAX, "line 2, column 9: unexpected"},
    {"jsonl two values on a line", JSONL, "[1,2][3,4]", NF_DT_FLOAT, 2, 0, NF_ESYNTAX, "line 1, column 6"},
    {"jsonl short", JSONL, "[1,2]\n\n[3]", NF_DT_FLOAT, 2, 0, NF_ESHAPE, "line 3 has 1 features, expected 2"},
    {"jsonl type", JSONL, "[1,2]\n[3,\"x\"]", NF_DT_FLOAT, 2, 0, NF_EINVAL, "line 2, field 2: expected a number, got a string"},
    {"jsonl object", JSONL, "{\"a\":1}", NF_DT_FLOAT, 2, 0, NF_EINVAL, "line 1: expected a list of features, got an object"},
    {"jsonl too many rows", JSONL, "[1]\n[2]\n[3]", NF_DT_FLOAT, 1, 2, NF_ELIMIT, "more than 2 rows"},
    {"jsonl int", JSONL, "[1, 2.0, -3]", NF_DT_INT64, 3, 0, 0, "1,2,-3"},
};

static void test_rows(void)
{
    nf_buf data = {0}, aux = {0};
    for (size_t i = 0; i < sizeof row_cases / sizeof row_cases[0]; i++) {
        size_t len;
        char *body = dup_body(row_cases[i].body, &len);
        nf_rows r = {.dtype = row_cases[i].dtype,
                     .n_cols = row_cases[i].n_cols,
                     .max_rows = row_cases[i].max_rows,
                     .data = &data,
                     .aux = &aux};
        nf_err err = {0};
        int rc = row_cases[i].fmt == CSV ? nf_decode_csv(body, len, &r, &err) : nf_decode_jsonl(body, len, &r, &err);
        if (check_err(row_cases[i].name, rc, &err, row_cases[i].rc, row_cases[i].want) && rc == 0) {
            char got[1024];
            render(got, sizeof got, r.dtype, r.elems, r.n_rows * r.n_cols, r.n_cols);
            T_CHECK(row_cases[i].name, strcmp(got, row_cases[i].want) == 0, "got '%s', want '%s'", got,
                    row_cases[i].want);
        }
        free(body);
    }
    /* A NUL byte inside a field is not a number, and the decoder must stop
     * at len even when the byte after it would continue the number. */
    {
        nf_rows r = {.dtype = NF_DT_FLOAT, .n_cols = 2, .data = &data, .aux = &aux};
        nf_err err = {0};
        int rc = nf_decode_csv("1,2\0003", 5, &r, &err);
        check_err("csv embedded nul", rc, &err, NF_ESYNTAX, "row 1, field 2");
        rc = nf_decode_csv("1,23", 3, &r, &err);
        T_CHECK("csv stops at len", rc == 0 && ((float *)r.elems)[1] == 2.0f, "rc %d", rc);
    }
    /* Buffers are reused: the same request again does not grow them. */
    {
        nf_rows r = {.dtype = NF_DT_FLOAT, .n_cols = 3, .data = &data, .aux = &aux};
        nf_err err = {0};
        nf_decode_csv("1,2,3\n4,5,6\n", 12, &r, &err);
        size_t cap = data.cap;
        char *p = data.p;
        nf_decode_csv("1,2,3\n4,5,6\n", 12, &r, &err);
        T_CHECK("buffers reused", data.cap == cap && data.p == p && r.n_rows == 2, "cap %zu -> %zu", cap, data.cap);
    }
    nf_buf_free(&data);
    nf_buf_free(&aux);
}

/* ---- whole JSON bodies into model inputs ------------------------------- */

typedef struct decl {
    const char *name;
    int dtype, n_dims;
    int64_t d0, d1;
} decl;

static const decl X3[] = {{"x", NF_DT_FLOAT, 2, -1, 3}};
static const decl XD[] = {{"x", NF_DT_FLOAT, 2, -1, -1}};
static const decl X3B1[] = {{"x", NF_DT_FLOAT, 2, 1, 3}};
static const decl X1D[] = {{"x", NF_DT_FLOAT, 1, -1, 0}};
static const decl XS[] = {{"x", NF_DT_INT64, 2, -1, 2}, {"s", NF_DT_STRING, 1, -1, 0}};
static const decl B[] = {{"b", NF_DT_BOOL, 1, -1, 0}};
static const decl U8[] = {{"u", NF_DT_UINT8, 1, -1, 0}};
static const decl U64[] = {{"u", NF_DT_UINT64, 1, -1, 0}};
static const decl K0[] = {{"k", NF_DT_INT32, 0, 0, 0}};

static const struct {
    const char *name;
    const decl *decls;
    int n_decls;
    int fmt;
    const char *body;
    int64_t max_rows;
    int rc;
    const char *want; /* "input0 | input1" rendered, or a message fragment */
    int64_t rows;
} body_cases[] = {
    {"json instances", X3, 1, NF_FMT_JSON, "{\"instances\": [[1,2,3],[4,5,6]]}", 0, 0, "1,2,3;4,5,6", 2},
    {"json features", X3, 1, NF_FMT_JSON, "{\"features\": [1,2.5,-3e2]}", 0, 0, "1,2.5,-300", 1},
    {"json bare rows", X3, 1, NF_FMT_JSON, " [[1,2,3]] \n", 0, 0, "1,2,3", 1},
    {"json null is nan", X3, 1, NF_FMT_JSON, "{\"instances\": [[1,null,3]]}", 0, 0, "1,nan,3", 1},
    {"json dynamic width", XD, 1, NF_FMT_JSON, "{\"instances\": [[1,2],[3,4]]}", 0, 0, "1,2;3,4", 2},
    {"json single input inputs list", X3, 1, NF_FMT_JSON, "{\"inputs\": [[1,2,3]]}", 0, 0, "1,2,3", 1},
    {"json named inputs", XS, 2, NF_FMT_JSON,
     "{\"inputs\": {\"s\": [\"a\", \"\\u00e9\"], \"x\": [[1,2],[3,4]]}}", 0, 0, "1,2;3,4 | <a>,<\xc3\xa9>", 2},
    {"json bool input", B, 1, NF_FMT_JSON, "{\"inputs\": {\"b\": [true, false, 1, 0]}}", 0, 0, "1,0,1,0", 4},
    {"json uint64 max", U64, 1, NF_FMT_JSON, "{\"inputs\": [18446744073709551615, 0]}", 0, 0,
     "18446744073709551615,0", 2},
    {"json scalar input", K0, 1, NF_FMT_JSON, "{\"inputs\": {\"k\": 5}}", 0, 0, "5", 1},
    {"csv body fills input 0", X3, 1, NF_FMT_CSV, "1,2,3\n", 0, 0, "1,2,3", 1},
    {"jsonl body fills input 0", X3, 1, NF_FMT_JSONL, "[1,2,3]\n", 0, 0, "1,2,3", 1},

    {"json short row", X3, 1, NF_FMT_JSON, "{\"instances\": [[1,2,3],[1,2]]}", 0, NF_ESHAPE,
     "row 2 has 2 features, expected 3", 0},
    {"json string in row", X3, 1, NF_FMT_JSON, "{\"instances\": [[1,2,3],[1,\"a\",3]]}", 0, NF_EINVAL,
     "row 2, field 2: expected a number, got a string", 0},
    {"json bool in float row", X3, 1, NF_FMT_JSON, "{\"features\": [1,true,3]}", 0, NF_EINVAL,
     "row 1, field 2: expected a number, got a boolean", 0},
    {"json row not a list", X3, 1, NF_FMT_JSON, "{\"instances\": [1,2,3]}", 0, NF_EINVAL,
     "row 1: expected a list of features, got a number", 0},
    {"json instances not a list", X3, 1, NF_FMT_JSON, "{\"instances\": 1}", 0, NF_EINVAL,
     "expected a list of rows, got a number", 0},
    {"json no rows", X3, 1, NF_FMT_JSON, "{\"instances\": []}", 0, NF_ESHAPE, "no rows", 0},
    {"json too many rows", X3, 1, NF_FMT_JSON, "{\"instances\": [[1,2,3],[1,2,3],[1,2,3]]}", 2, NF_ELIMIT,
     "more than 2 rows", 0},
    {"json trailing comma", X3, 1, NF_FMT_JSON, "{\"instances\": [\n  [1,2,3],\n  [4,5,6,]\n]}", 0, NF_ESYNTAX,
     "line 3, column 10: unexpected character", 0},
    {"json empty body", X3, 1, NF_FMT_JSON, "", 0, NF_ESYNTAX, "line 1, column 1: unexpected end of data", 0},
    {"json truncated", X3, 1, NF_FMT_JSON, "{\"instances\": [[1,2,3]]", 0, NF_ESYNTAX,
     "line 1, column 24: unexpected end of data", 0},
    {"json trailing data", X3, 1, NF_FMT_JSON, "{\"instances\": [[1,2,3]]}\nx", 0, NF_ESYNTAX,
     "line 2, column 1: unexpected character", 0},
    {"json invalid utf8", X3, 1, NF_FMT_JSON, "{\"instances\": \"\xff\"}", 0, NF_ESYNTAX, "utf-8", 0},
    {"json comment refused", X3, 1, NF_FMT_JSON, "{\"features\": [1,2,3]} /* c */", 0, NF_ESYNTAX, "column 23", 0},
    {"json no known key", X3, 1, NF_FMT_JSON, "{\"foo\": 1}", 0, NF_EINVAL,
     "expected a JSON object with \"instances\", \"features\" or \"inputs\"", 0},
    {"json two keys", X3, 1, NF_FMT_JSON, "{\"instances\": [[1,2,3]], \"features\": [1,2,3]}", 0, NF_EINVAL,
     "only one of", 0},
    {"json inputs null", XS, 2, NF_FMT_JSON, "{\"inputs\": null}", 0, NF_EINVAL, "the model has 2 inputs: name them", 0},
    {"json instances null", X3, 1, NF_FMT_JSON, "{\"instances\": null}", 0, NF_EINVAL,
     "expected a list of rows, got null", 0},
    {"json top number", X3, 1, NF_FMT_JSON, "42", 0, NF_EINVAL, "expected a JSON object or a list of rows, got a number", 0},
    {"json top null", X3, 1, NF_FMT_JSON, "null", 0, NF_EINVAL, "got null", 0},
    {"json fixed batch", X3B1, 1, NF_FMT_JSON, "{\"instances\": [[1,2,3],[4,5,6]]}", 0, NF_ESHAPE,
     "input 'x': dim 0 is 2, expected 1", 0},
    {"json rows need 2-D", X1D, 1, NF_FMT_JSON, "{\"instances\": [[1]]}", 0, NF_ESHAPE,
     "rows need a 2-D input [N, F]", 0},
    {"csv rows need one input", XS, 2, NF_FMT_CSV, "1,2", 0, NF_ESHAPE, "the model has 2 inputs", 0},
    {"json missing input", XS, 2, NF_FMT_JSON, "{\"inputs\": {\"x\": [[1,2]]}}", 0, NF_EINVAL, "missing input 's'", 0},
    {"json unknown input", XS, 2, NF_FMT_JSON, "{\"inputs\": {\"x\": [[1,2]], \"s\": [\"a\"], \"z\": 1}}", 0,
     NF_EINVAL, "unknown input 'z'", 0},
    {"json inputs list for two inputs", XS, 2, NF_FMT_JSON, "{\"inputs\": [[1,2]]}", 0, NF_EINVAL,
     "the model has 2 inputs: name them", 0},
    {"json fixed dim", XS, 2, NF_FMT_JSON, "{\"inputs\": {\"x\": [[1,2,3]], \"s\": [\"a\"]}}", 0, NF_ESHAPE,
     "input 'x': dim 1 is 3, expected 2", 0},
    {"json rank", XS, 2, NF_FMT_JSON, "{\"inputs\": {\"x\": [1,2], \"s\": [\"a\"]}}", 0, NF_ESHAPE,
     "input 'x' has rank 1, expected 2 (shape [-1, 2])", 0},
    {"json ragged", XS, 2, NF_FMT_JSON, "{\"inputs\": {\"x\": [[1,2],[3]], \"s\": [\"a\"]}}", 0, NF_ESHAPE,
     "input 'x' at [1]: 1 elements, expected 2", 0},
    {"json too deep element", XS, 2, NF_FMT_JSON, "{\"inputs\": {\"x\": [[1,2],[3,[4]]], \"s\": [\"a\"]}}", 0,
     NF_EINVAL, "input 'x' at [1][1]: expected an integer, got a list", 0},
    {"json int not integral", XS, 2, NF_FMT_JSON, "{\"inputs\": {\"x\": [[1,2.5]], \"s\": [\"a\"]}}", 0, NF_EINVAL,
     "input 'x' at [0][1]: expected an integer, got 2.5", 0},
    {"json string expected", XS, 2, NF_FMT_JSON, "{\"inputs\": {\"x\": [[1,2]], \"s\": [1]}}", 0, NF_EINVAL,
     "input 's' at [0]: expected a string, got a number", 0},
    {"json string with nul", XS, 2, NF_FMT_JSON, "{\"inputs\": {\"x\": [[1,2]], \"s\": [\"a\\u0000b\"]}}", 0,
     NF_EINVAL, "input 's' at [0]: string contains a NUL character", 0},
    {"json empty input", XS, 2, NF_FMT_JSON, "{\"inputs\": {\"x\": [], \"s\": []}}", 0, NF_ESHAPE,
     "input 'x': dim 0 is 0", 0},
    {"json named too many rows", XS, 2, NF_FMT_JSON, "{\"inputs\": {\"x\": [[1,2],[1,2],[1,2]], \"s\": [\"a\"]}}", 2,
     NF_ELIMIT, "more than 2 rows", 0},
    {"json uint8 range", U8, 1, NF_FMT_JSON, "{\"inputs\": [1, 256]}", 0, NF_EINVAL,
     "input 'u' at [1]: 256 is out of range for uint8", 0},
    {"json bool other", B, 1, NF_FMT_JSON, "{\"inputs\": [2]}", 0, NF_EINVAL, "input 'b' at [0]: expected a boolean", 0},
    {"json scalar given a list", K0, 1, NF_FMT_JSON, "{\"inputs\": [5]}", 0, NF_ESHAPE,
     "input 'k' has rank 1, expected 0", 0},
};

static void set_slots(nf_input_slot *slots, const decl *d, int n)
{
    for (int i = 0; i < n; i++) {
        memset(&slots[i].t, 0, sizeof slots[i].t);
        slots[i].t.name = d[i].name;
        slots[i].t.dtype = d[i].dtype;
        slots[i].t.n_dims = d[i].n_dims;
        slots[i].t.dims[0] = d[i].d0;
        slots[i].t.dims[1] = d[i].d1;
    }
}

static void test_bodies(void)
{
    nf_input_slot slots[2] = {0};
    nf_buf aux = {0};
    for (size_t i = 0; i < sizeof body_cases / sizeof body_cases[0]; i++) {
        size_t len;
        char *body = dup_body(body_cases[i].body, &len);
        nf_err err = {0};
        int64_t rows = -1;
        set_slots(slots, body_cases[i].decls, body_cases[i].n_decls);
        int rc = nf_decode_body(body_cases[i].fmt, body, len, slots, body_cases[i].n_decls, &aux,
                                body_cases[i].max_rows, &rows, &err);
        if (check_err(body_cases[i].name, rc, &err, body_cases[i].rc, body_cases[i].want) && rc == 0) {
            char got[1024], part[512];
            got[0] = 0;
            for (int j = 0; j < body_cases[i].n_decls; j++) {
                const nf_tensor *t = &slots[j].t;
                int64_t n = 1;
                for (int d = 0; d < t->n_dims; d++)
                    n *= t->dims[d];
                render(part, sizeof part, t->dtype, t->data, n, t->n_dims == 2 ? t->dims[1] : 0);
                if (j)
                    strcat(got, " | ");
                strcat(got, part);
            }
            T_CHECK(body_cases[i].name, strcmp(got, body_cases[i].want) == 0 && rows == body_cases[i].rows,
                    "got '%s' rows %lld, want '%s' rows %lld", got, (long long)rows, body_cases[i].want,
                    (long long)body_cases[i].rows);
        }
        free(body);
    }
    /* Nesting deeper than the tokener allows is a 400, not a crash. */
    {
        char deep[2 * 200 + 16];
        size_t at = 0;
        at += (size_t)sprintf(deep, "{\"inputs\":");
        for (int i = 0; i < 200; i++)
            deep[at++] = '[';
        for (int i = 0; i < 200; i++)
            deep[at++] = ']';
        deep[at++] = '}';
        nf_err err = {0};
        int64_t rows;
        set_slots(slots, X3, 1);
        int rc = nf_decode_body(NF_FMT_JSON, deep, at, slots, 1, &aux, 0, &rows, &err);
        check_err("json nesting bounded", rc, &err, NF_ESYNTAX, "nesting too deep");
    }
    for (int j = 0; j < 2; j++)
        nf_buf_free(&slots[j].buf);
    nf_buf_free(&aux);
}

/* ---- formatting and escaping ------------------------------------------- */

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void test_numbers(void)
{
    nf_buf b = {0};
    int bad32 = 0, bad64 = 0;
    char first[128] = "";
    for (int i = 0; i < 200000; i++) {
        uint32_t bits = (uint32_t)next_rand();
        if (i < 6) /* 0, -0, min subnormal, max float, min normal, 1 */
            bits = (uint32_t[]){0, 0x80000000u, 1, 0x7f7fffffu, 0x00800000u, 0x3f800000u}[i];
        float f, g;
        memcpy(&f, &bits, 4);
        if (!isfinite(f))
            continue;
        nf_buf_reset(&b);
        nf_json_f32(&b, f);
        g = strtof(b.p, NULL);
        if (memcmp(&f, &g, 4) != 0 && bad32++ == 0)
            snprintf(first, sizeof first, "%08x -> %s", bits, b.p);
    }
    T_CHECK("float32 round trip %.9g", bad32 == 0, "%d failures, first %s", bad32, first);
    for (int i = 0; i < 200000; i++) {
        uint64_t bits = next_rand();
        double f, g;
        memcpy(&f, &bits, 8);
        if (!isfinite(f))
            continue;
        nf_buf_reset(&b);
        nf_json_f64(&b, f);
        g = strtod(b.p, NULL);
        if (memcmp(&f, &g, 8) != 0 && bad64++ == 0)
            snprintf(first, sizeof first, "%016llx -> %s", (unsigned long long)bits, b.p);
    }
    T_CHECK("float64 round trip %.17g", bad64 == 0, "%d failures, first %s", bad64, first);

    static const struct {
        float x;
        const char *json, *csv;
    } fmt[] = {
        {0.1f, "0.100000001", "0.100000001"}, {1.0f, "1", "1"},      {1e10f, "1e+10", "1e+10"},
        {-2.5f, "-2.5", "-2.5"},              {NAN, "null", ""},     {INFINITY, "null", "inf"},
        {-INFINITY, "null", "-inf"},          {-0.0f, "-0", "-0"},
    };
    for (size_t i = 0; i < sizeof fmt / sizeof fmt[0]; i++) {
        nf_buf_reset(&b);
        nf_json_f32(&b, fmt[i].x);
        T_CHECK("json float text", strcmp(b.p, fmt[i].json) == 0, "got '%s', want '%s'", b.p, fmt[i].json);
        nf_buf_reset(&b);
        nf_buf_append(&b, "", 0);
        nf_csv_elem(&b, NF_DT_FLOAT, &fmt[i].x, 0);
        T_CHECK("csv float text", strcmp(b.p, fmt[i].csv) == 0, "got '%s', want '%s'", b.p, fmt[i].csv);
    }
    nf_buf_free(&b);
}

/* ---- JSON rows: the fast path against the json-c path ------------------ */

/* One number in a shape clients write, or an edge of json-c's reading:
 * integers clamp (strtoll / strtoull), -0 is +0, long mantissas and big
 * exponents go through strtod, null is NaN. */
static int rand_number(char *o, size_t cap)
{
    uint64_t r = next_rand();
    double x = (double)(int64_t)(next_rand() >> 11) / (double)(1ull << 53) * 2.0 - 1.0; /* [-1, 1) */
    double scale = pow(10.0, (double)(int)(next_rand() % 13) - 6.0);
    switch (r % 16) {
    case 0: return snprintf(o, cap, "%.17g", x);
    case 1: return snprintf(o, cap, "%.17g", x * scale);
    case 2: return snprintf(o, cap, "%.16g", x * scale);
    case 3: return snprintf(o, cap, "%.9g", x * scale);
    case 4: return snprintf(o, cap, "%.3f", x * 100);
    case 5: return snprintf(o, cap, "%g", x * scale);
    case 6: return snprintf(o, cap, "%.6e", x * scale);
    case 7: return snprintf(o, cap, "%lld", (long long)(next_rand() % 2000001) - 1000000);
    case 8: { /* any double, bits at random */
        uint64_t b = next_rand();
        double d;
        memcpy(&d, &b, 8);
        return isfinite(d) ? snprintf(o, cap, "%.17g", d) : snprintf(o, cap, "1e400");
    }
    case 9: { /* 17 to 25 digits after "0.", leading zeros, exponent */
        int n = snprintf(o, cap, "%s0.%s", next_rand() % 2 ? "-" : "", next_rand() % 3 ? "" : "000");
        int nd = 17 + (int)(next_rand() % 9);
        for (int i = 0; i < nd; i++)
            o[n++] = (char)('0' + next_rand() % 10);
        return n + snprintf(o + n, cap - (size_t)n, "%s", next_rand() % 2 ? "" : "E-7");
    }
    case 10: {
        static const char *edge[] = {"-0", "0", "-0.0", "0e5", "18446744073709551615", "18446744073709551616",
                                     "99999999999999999999999", "-9223372036854775808", "-9223372036854775809",
                                     "-123456789012345678901234", "9007199254740993", "9007199254740993.0",
                                     "1e-310", "4.9406564584124654e-324", "1.7976931348623157e308", "1e309",
                                     "2.2250738585072011e-308", "1E+2", "1e-22", "1e23", "123456789012345678e-5",
                                     "0.1", "null"};
        return snprintf(o, cap, "%s", edge[next_rand() % (sizeof edge / sizeof edge[0])]);
    }
    case 11: return snprintf(o, cap, "%.20g", x * scale);
    case 12: return snprintf(o, cap, "%.17ge%d", x, (int)(next_rand() % 61) - 30);
    case 13: return snprintf(o, cap, "null");
    default: return snprintf(o, cap, "%.17g", (double)(float)(x * scale));
    }
}

static void test_fast_rows(void)
{
    nf_buf body = {0}, slow = {0}, aux = {0};
    nf_input_slot slot = {0};
    int n_bodies = 0, n_numbers = 0, bad = 0, declined = 0;
    char first[256] = "";
    for (int it = 0; it < 600; it++) {
        int dtype = it % 3 == 2 ? NF_DT_DOUBLE : NF_DT_FLOAT, cols = 1 + (int)(next_rand() % 12);
        int rows = 1 + (int)(next_rand() % 40), features = it % 7 == 0;
        if (features)
            rows = 1;
        nf_buf_reset(&body);
        nf_buf_printf(&body, features ? "{\"features\": " : it % 5 == 0 ? " [" : "{\n  \"instances\" :[ ");
        for (int r = 0; r < rows; r++) {
            nf_buf_printf(&body, "%s[", r ? (it % 2 ? ",\n" : ", ") : "");
            for (int c = 0; c < cols; c++) {
                char num[96];
                rand_number(num, sizeof num);
                nf_buf_printf(&body, "%s%s", c ? (it % 4 ? "," : " ,\t") : "", num);
                n_numbers++;
            }
            nf_buf_printf(&body, "]");
        }
        nf_buf_printf(&body, features ? "}" : it % 5 == 0 ? "] " : "]}\r\n");
        char *copy = malloc(body.len); /* exactly its length */
        memcpy(copy, body.p, body.len);
        /* the fast path */
        memset(&slot.t, 0, sizeof slot.t);
        slot.t.name = "x";
        slot.t.dtype = dtype;
        slot.t.n_dims = 2;
        slot.t.dims[0] = -1;
        slot.t.dims[1] = it % 2 ? cols : -1;
        int64_t n_rows = 0;
        int took = nf_decode_json_fast(copy, body.len, &slot, 1, 0, &n_rows);
        /* the json-c path */
        struct json_object *root = NULL, *list = NULL;
        nf_err err = {0};
        nf_rows rr = {.dtype = dtype, .n_cols = cols, .data = &slow, .aux = &aux};
        int rc = nf_json_parse(copy, body.len, &root, &err);
        if (rc == 0) {
            if (json_object_is_type(root, json_type_array))
                list = root;
            else if (!json_object_object_get_ex(root, features ? "features" : "instances", &list))
                rc = -1;
        }
        if (rc == 0 && features) {
            /* one row: wrap it as the json-c path does (json_rows single) */
            struct json_object *wrap = json_object_new_array();
            json_object_array_add(wrap, json_object_get(list));
            rc = nf_decode_json_rows(wrap, &rr, &err);
            json_object_put(wrap);
        } else if (rc == 0) {
            rc = nf_decode_json_rows(list, &rr, &err);
        }
        json_object_put(root);
        size_t esz = dtype == NF_DT_FLOAT ? 4 : 8;
        if (!took) {
            declined++;
        } else if (rc != 0 || n_rows != rows || slot.t.dims[0] != rows || slot.t.dims[1] != cols ||
                   rr.n_rows != rows || memcmp(slot.t.data, rr.elems, (size_t)(rows * cols) * esz) != 0) {
            if (bad++ == 0)
                snprintf(first, sizeof first, "%.120s (json-c rc %d %.100s)", body.p, rc, err.msg);
        }
        n_bodies++;
        free(copy);
    }
    T_CHECK("json rows fast path equals json-c bit for bit", bad == 0 && n_numbers > 10000,
            "%d of %d bodies differ (%d numbers), first: %s", bad, n_bodies, n_numbers, first);
    /* random bodies hold only what it takes; 1e400, -0 and friends included */
    T_CHECK("json rows fast path takes plain bodies", declined == 0, "%d of %d declined", declined, n_bodies);

    /* everything else is left to the json-c path (which writes the errors) */
    static const char *leave[] = {
        "{\"instances\": [[1,2]], \"x\": 1}", "{\"inst\\u0061nces\": [[1,2]]}", "{\"instances\": [[1,\"2\"]]}",
        "{\"instances\": [[1,true]]}", "{\"instances\": [[01,2]]}", "{\"instances\": [[1.,2]]}",
        "{\"instances\": [[.5,2]]}", "{\"instances\": [[+1,2]]}", "{\"instances\": [[1,2],[3]]}",
        "{\"instances\": []}", "{\"instances\": [[]]}", "{\"instances\": [[1,2]]} x", "{\"instances\": [[1,2]]",
        "{\"instances\": [[1e,2]]}", "{\"instances\": [[-,2]]}", "{\"instances\": [[NaN,2]]}",
        "{\"instances\": [[1,nul]]}", "{\"instances\": [[1,nullx]]}", "{\"features\": 1}", "{\"inputs\": [[1,2]]}",
        "[[1,2],[3,4]] ,", "\xef\xbb\xbf[[1,2]]", "{\"instances\": [[1,2,]]}", "{\"instances\": [[1,2]],}",
        "{\"instances\": [[1,2] [3,4]]}", "{\"instances\": [[1 2]]}", "{\"instances\": [[1,2]]}\f",
        "{\"instances\": [[[1],2]]}", "{\"instances\": [{\"a\": 1}]}", "{\"features\": [1,2], \"features\": [3,4]}",
        "{\"instances\": [[1,-Infinity]]}", "{\"instances\": [[1,2e+]]}",
        "{\"instances\": [[1,0x10]]}", "{}", "", " ", "null", "[]",
    };
    int wrong = 0;
    const char *which = "";
    for (size_t i = 0; i < sizeof leave / sizeof leave[0]; i++) {
        size_t len = strlen(leave[i]);
        char *copy = malloc(len ? len : 1);
        memcpy(copy, leave[i], len);
        memset(&slot.t, 0, sizeof slot.t);
        slot.t.name = "x";
        slot.t.dtype = NF_DT_FLOAT;
        slot.t.n_dims = 2;
        slot.t.dims[0] = -1;
        slot.t.dims[1] = 2;
        int64_t n_rows = 0;
        if (nf_decode_json_fast(copy, len, &slot, 1, 0, &n_rows) != 0 && wrong++ == 0)
            which = leave[i];
        free(copy);
    }
    {
        static const char nul[] = "{\"instances\": [[1,2]]}\0"; /* a NUL byte after the value */
        int64_t n_rows = 0;
        slot.t = (nf_tensor){.name = "x", .dtype = NF_DT_FLOAT, .n_dims = 2, .dims = {-1, 2}};
        if (nf_decode_json_fast(nul, sizeof nul - 1, &slot, 1, 0, &n_rows) != 0 && wrong++ == 0)
            which = "NUL after the value";
    }
    T_CHECK("json rows fast path leaves other bodies to json-c", wrong == 0, "%d taken, first '%s'", wrong, which);
    /* and other models: several inputs, integer input, fixed batch, too many rows */
    {
        const char *b1 = "{\"instances\": [[1,2],[3,4]]}";
        int64_t n_rows = 0;
        nf_input_slot two[2] = {{.t = {.name = "x", .dtype = NF_DT_FLOAT, .n_dims = 2, .dims = {-1, 2}}},
                                {.t = {.name = "y", .dtype = NF_DT_FLOAT, .n_dims = 2, .dims = {-1, 2}}}};
        int taken = nf_decode_json_fast(b1, strlen(b1), two, 2, 0, &n_rows);
        memset(&slot.t, 0, sizeof slot.t);
        slot.t = (nf_tensor){.name = "x", .dtype = NF_DT_INT64, .n_dims = 2, .dims = {-1, 2}};
        taken += nf_decode_json_fast(b1, strlen(b1), &slot, 1, 0, &n_rows);
        slot.t = (nf_tensor){.name = "x", .dtype = NF_DT_FLOAT, .n_dims = 2, .dims = {1, 2}};
        taken += nf_decode_json_fast(b1, strlen(b1), &slot, 1, 0, &n_rows);
        slot.t = (nf_tensor){.name = "x", .dtype = NF_DT_FLOAT, .n_dims = 2, .dims = {-1, 2}};
        taken += nf_decode_json_fast(b1, strlen(b1), &slot, 1, 1, &n_rows);
        slot.t = (nf_tensor){.name = "x", .dtype = NF_DT_FLOAT, .n_dims = 1, .dims = {-1}};
        taken += nf_decode_json_fast(b1, strlen(b1), &slot, 1, 0, &n_rows);
        T_CHECK("json rows fast path only for one [N, F] float input within limits", taken == 0, "%d taken", taken);
        slot.t = (nf_tensor){.name = "x", .dtype = NF_DT_FLOAT, .n_dims = 2, .dims = {-1, 2}};
        taken = nf_decode_json_fast(b1, strlen(b1), &slot, 1, 2, &n_rows);
        T_CHECK("json rows fast path takes the common body", taken == 1 && n_rows == 2 && slot.t.dims[0] == 2,
                "taken %d rows %lld", taken, (long long)n_rows);
    }
    nf_buf_free(&body);
    nf_buf_free(&slow);
    nf_buf_free(&aux);
    nf_buf_free(&slot.buf);
}

/* nf_fmt_f32 is snprintf's "%.9g", byte for byte. */
static void test_fmt_f32(void)
{
    int bad = 0, n = 0;
    char first[128] = "";
    for (int i = 0; i < 400000; i++) {
        uint32_t bits = (uint32_t)next_rand();
        if (i < 12) /* 0, -0, subnormals, extremes, 1, 0.1, 1e9 - a bit, 9.9999999e-5 */
            bits = (uint32_t[]){0, 0x80000000u, 1, 0x807fffffu, 0x7f7fffffu, 0x00800000u, 0x3f800000u, 0x3dcccccdu,
                                0x4e6e6b27u, 0x4e6e6b28u, 0x38d1b716u, 0x38d1b717u}[i];
        else if (i % 2) /* typical outputs: within a few decades of 1 */
            bits = 0x30000000u + (uint32_t)(next_rand() % 0x20000000u) + (bits & 0x80000000u);
        float f;
        memcpy(&f, &bits, 4);
        if (!isfinite(f))
            continue;
        char want[64], got[64];
        snprintf(want, sizeof want, "%.9g", (double)f);
        size_t len = nf_fmt_f32(got, f);
        n++;
        if ((strcmp(want, got) != 0 || len != strlen(want)) && bad++ == 0)
            snprintf(first, sizeof first, "%08x: want %s got %s", bits, want, got);
    }
    T_CHECK("float32 text is %.9g byte for byte", bad == 0, "%d of %d differ, first %s", bad, n, first);
}

static void test_escaping(void)
{
    static const struct {
        const char *in;
        size_t n;
        const char *json, *csv;
    } esc[] = {
        {"abc", 3, "\"abc\"", "abc"},
        {"a\"b\\c", 5, "\"a\\\"b\\\\c\"", "\"a\"\"b\\c\""},
        {"\n\t\x01\x1f", 4, "\"\\n\\t\\u0001\\u001f\"", "\"\n\t\x01\x1f\""},
        {"a,b", 3, "\"a,b\"", "\"a,b\""},
        {" lead", 5, "\" lead\"", "\" lead\""},
        {"\xc3\xa9t\xc3\xa9", 5, "\"\xc3\xa9t\xc3\xa9\"", "\xc3\xa9t\xc3\xa9"},
        {"\xf0\x9f\x98\x80", 4, "\"\xf0\x9f\x98\x80\"", "\xf0\x9f\x98\x80"},
        {"\xff", 1, "\"\\ufffd\"", "\xff"},
        {"a\xc3", 2, "\"a\\ufffd\"", "a\xc3"},
        {"\xe0\x80\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"", "\xe0\x80\x80"},
        {"\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"", "\xed\xa0\x80"},
        {"\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\"", "\xf4\x90\x80\x80"},
        {"a\0b", 3, "\"a\\u0000b\"", NULL},
        {"", 0, "\"\"", ""},
    };
    nf_buf b = {0};
    for (size_t i = 0; i < sizeof esc / sizeof esc[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "json escape %zu", i);
        nf_buf_reset(&b);
        nf_json_str(&b, esc[i].in, esc[i].n);
        T_CHECK(name, strcmp(b.p, esc[i].json) == 0, "got '%s', want '%s'", b.p, esc[i].json);
        if (!esc[i].csv)
            continue;
        snprintf(name, sizeof name, "csv escape %zu", i);
        nf_buf_reset(&b);
        nf_buf_append(&b, "", 0);
        nf_csv_str(&b, esc[i].in, esc[i].n);
        T_CHECK(name, strcmp(b.p, esc[i].csv) == 0, "got '%s', want '%s'", b.p, esc[i].csv);
    }
    nf_buf_free(&b);
}

/* ---- response encoders ------------------------------------------------- */

static nf_tensor tens(const char *name, int dtype, int n_dims, int64_t d0, int64_t d1, void *data)
{
    nf_tensor t = {.name = name, .dtype = dtype, .n_dims = n_dims, .data = data};
    t.dims[0] = d0;
    t.dims[1] = d1;
    return t;
}

static void test_encoders(void)
{
    float reg[] = {1.5f, NAN, -2.0f};
    float m22[] = {1, 2, 3, 4};
    int64_t i64[] = {5, -6};
    const char *slabels[] = {"b", "a,x"};
    float probs[] = {0.25f, 0.75f, 0.5f, 0.5f};
    int64_t ilabels[] = {1, 0};
    int64_t classes_i[] = {0, 1};
    const char *classes_s[] = {"a,x", "b"};
    uint8_t bools[] = {1, 0};
    uint16_t halves[] = {0x3c00, 0xc000}; /* 1.0, -2.0 */
    uint64_t u64[] = {UINT64_MAX};
    nf_classes sc = {.n_labels = 2, .strs = classes_s, .label_output = 0, .score_output = 1};
    nf_classes ic = {.n_labels = 2, .ints = classes_i, .label_output = 1, .score_output = 0};
    nf_classes nolab = {0};
    struct {
        const char *name;
        nf_tensor outs[3];
        int n_outs;
        const nf_classes *cls;
        int csv;
        int rc;
        const char *want;
    } cases[] = {
        {"json regressor [N,1]", {tens("variable", NF_DT_FLOAT, 2, 3, 1, reg)}, 1, &nolab, 0, 0,
         "{\"predictions\":[1.5,null,-2],\"model_version\":\"7\"}"},
        {"json regressor [N]", {tens("y", NF_DT_FLOAT, 1, 3, 0, reg)}, 1, NULL, 0, 0,
         "{\"predictions\":[1.5,null,-2],\"model_version\":\"7\"}"},
        {"json regressor [N,K]", {tens("y", NF_DT_FLOAT, 2, 2, 2, m22)}, 1, NULL, 0, 0,
         "{\"predictions\":[[1,2],[3,4]],\"model_version\":\"7\"}"},
        {"json several outputs",
         {tens("a", NF_DT_FLOAT, 2, 2, 1, m22), tens("b", NF_DT_INT64, 1, 2, 0, i64)}, 2, NULL, 0, 0,
         "{\"predictions\":[1,2],\"outputs\":{\"a\":[[1],[2]],\"b\":[5,-6]},\"model_version\":\"7\"}"},
        {"json classifier strings",
         {tens("label", NF_DT_STRING, 1, 2, 0, slabels), tens("probabilities", NF_DT_FLOAT, 2, 2, 2, probs)}, 2,
         &sc, 0, 0,
         "{\"predictions\":[{\"label\":\"b\",\"probabilities\":{\"a,x\":0.25,\"b\":0.75}},"
         "{\"label\":\"a,x\",\"probabilities\":{\"a,x\":0.5,\"b\":0.5}}],\"model_version\":\"7\"}"},
        {"json classifier ints",
         {tens("probabilities", NF_DT_FLOAT, 2, 2, 2, probs), tens("label", NF_DT_INT64, 1, 2, 0, ilabels)}, 2,
         &ic, 0, 0,
         "{\"predictions\":[{\"label\":1,\"probabilities\":{\"0\":0.25,\"1\":0.75}},"
         "{\"label\":0,\"probabilities\":{\"0\":0.5,\"1\":0.5}}],\"model_version\":\"7\"}"},
        {"json bool, half, uint64",
         {tens("b", NF_DT_BOOL, 1, 2, 0, bools), tens("h", NF_DT_FLOAT16, 1, 2, 0, halves),
          tens("u", NF_DT_UINT64, 1, 1, 0, u64)},
         3, NULL, 0, 0,
         "{\"predictions\":[true,false],\"outputs\":{\"b\":[true,false],\"h\":[1,-2],\"u\":[18446744073709551615]},"
         "\"model_version\":\"7\"}"},
        {"json classifier bad scores",
         {tens("label", NF_DT_STRING, 1, 2, 0, slabels), tens("probabilities", NF_DT_FLOAT, 2, 1, 2, probs)}, 2,
         &sc, 0, NF_EINTERNAL, "score output 'probabilities' has shape [1, 2], expected [2, 2]"},
        {"csv regressor [N,1]", {tens("variable", NF_DT_FLOAT, 2, 3, 1, reg)}, 1, NULL, 1, 0, "1.5\n\n-2\n"},
        {"csv regressor [N,K]", {tens("y", NF_DT_FLOAT, 2, 2, 2, m22)}, 1, NULL, 1, 0, "1,2\n3,4\n"},
        {"csv classifier strings",
         {tens("label", NF_DT_STRING, 1, 2, 0, slabels), tens("probabilities", NF_DT_FLOAT, 2, 2, 2, probs)}, 2,
         &sc, 1, 0, "b,0.25,0.75\n\"a,x\",0.5,0.5\n"},
        {"csv classifier ints",
         {tens("probabilities", NF_DT_FLOAT, 2, 2, 2, probs), tens("label", NF_DT_INT64, 1, 2, 0, ilabels)}, 2,
         &ic, 1, 0, "1,0.25,0.75\n0,0.5,0.5\n"},
    };
    nf_buf b = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nf_err err = {0};
        nf_buf_reset(&b);
        nf_buf_append(&b, "", 0);
        int rc = cases[i].csv ? nf_encode_csv(&b, cases[i].outs, cases[i].n_outs, cases[i].cls, &err)
                              : nf_encode_json(&b, cases[i].outs, cases[i].n_outs, cases[i].cls, "7", &err);
        if (cases[i].rc)
            check_err(cases[i].name, rc, &err, cases[i].rc, cases[i].want);
        else
            T_CHECK(cases[i].name, rc == 0 && strcmp(b.p, cases[i].want) == 0, "rc %d (%s), got '%s', want '%s'", rc,
                    err.msg, b.p, cases[i].want);
    }
    nf_buf_free(&b);
}

static void test_buf(void)
{
    nf_buf b = {0};
    int ok = nf_buf_printf(&b, "%s-%d", "x", 42) == 0 && strcmp(b.p, "x-42") == 0 && b.len == 4;
    char big[1000];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = 0;
    ok = ok && nf_buf_printf(&b, "%s", big) == 0 && b.len == 4 + 999 && b.p[b.len] == 0 && b.p[4] == 'y';
    ok = ok && nf_buf_reserve(&b, SIZE_MAX) == -1;
    nf_buf_reset(&b);
    ok = ok && nf_buf_append(&b, "ab", 2) == 0 && strcmp(b.p, "ab") == 0;
    T_CHECK("nf_buf append/printf/reserve", ok, "len %zu", b.len);
    nf_buf_free(&b);
    T_CHECK("nf_buf free", b.p == NULL && b.cap == 0, "not cleared");
}

int main(void)
{
    test_buf();
    test_rows();
    test_bodies();
    test_numbers();
    test_fast_rows();
    test_fmt_f32();
    test_escaping();
    test_encoders();
    return T_DONE();
}
