/*
 * codec.c: request bodies (JSON, CSV, JSON lines) in, model input elements
 * out; model outputs in, JSON or CSV text out.
 *
 * Owns nothing between calls: elements go to the caller's nf_bufs, json-c
 * trees and tokeners are freed before return. Invariant: every failure path
 * sets nf_err with a position a client can find (line/column, row/field or
 * tensor index) and never reads past body[len) (bodies are not
 * NUL-terminated). Only libc and json-c: no core symbols, so the fuzz
 * targets and tests/unit/test_codec.c link this file alone. The common
 * bodies (JSON rows of numbers) skip json-c: nf_decode_json_fast reads
 * them in one pass and gives up, to the json-c path, on anything else.
 */
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "codec.h"

/* ---- errors and dtype names ------------------------------------------- */

static int fail(nf_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(nf_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Same names as the core's nf_dtype_name; repeated here so this file does
 * not link the core. */
static const char *dt_name(int dt)
{
    switch (dt) {
    case NF_DT_FLOAT: return "float32";
    case NF_DT_UINT8: return "uint8";
    case NF_DT_INT8: return "int8";
    case NF_DT_UINT16: return "uint16";
    case NF_DT_INT16: return "int16";
    case NF_DT_INT32: return "int32";
    case NF_DT_INT64: return "int64";
    case NF_DT_STRING: return "string";
    case NF_DT_BOOL: return "bool";
    case NF_DT_FLOAT16: return "float16";
    case NF_DT_DOUBLE: return "float64";
    case NF_DT_UINT32: return "uint32";
    case NF_DT_UINT64: return "uint64";
    default: return "undefined";
    }
}

size_t nf_codec_elem_size(int dtype)
{
    switch (dtype) {
    case NF_DT_UINT8: case NF_DT_INT8: case NF_DT_BOOL: return 1;
    case NF_DT_UINT16: case NF_DT_INT16: return 2;
    case NF_DT_FLOAT: case NF_DT_INT32: case NF_DT_UINT32: return 4;
    case NF_DT_DOUBLE: case NF_DT_INT64: case NF_DT_UINT64: return 8;
    case NF_DT_STRING: return sizeof(char *);
    default: return 0; /* float16: no request format carries half floats */
    }
}

static int is_int_dtype(int dt)
{
    return dt == NF_DT_INT8 || dt == NF_DT_UINT8 || dt == NF_DT_INT16 || dt == NF_DT_UINT16 ||
           dt == NF_DT_INT32 || dt == NF_DT_UINT32 || dt == NF_DT_INT64 || dt == NF_DT_UINT64;
}

/* "[-1, 10]" for messages. */
static const char *fmt_shape(char *s, size_t cap, int n_dims, const int64_t *dims)
{
    size_t at = 0;
    at += (size_t)snprintf(s + at, cap - at, "[");
    for (int d = 0; d < n_dims && at < cap; d++)
        at += (size_t)snprintf(s + at, cap - at, "%s%lld", d ? ", " : "", (long long)dims[d]);
    if (at < cap)
        snprintf(s + at, cap - at, "]");
    return s;
}

/* ---- values and the element sink -------------------------------------- */

/* One scalar from the body, before conversion to the input's dtype. */
enum { V_NULL, V_BOOL, V_INT, V_UINT, V_NUM, V_STR, V_LIST, V_OBJ };
typedef struct val {
    int kind;
    int b;         /* V_BOOL */
    int64_t i;     /* V_INT */
    uint64_t u;    /* V_UINT: only values above INT64_MAX */
    double d;      /* V_NUM */
    const char *s; /* V_STR, not NUL-terminated */
    size_t n;
    int dq;        /* V_STR from a quoted CSV field: "" stands for " */
} val;

static const char *kind_name(int kind)
{
    switch (kind) {
    case V_NULL: return "null";
    case V_BOOL: return "a boolean";
    case V_INT: case V_UINT: case V_NUM: return "a number";
    case V_STR: return "a string";
    case V_LIST: return "a list";
    default: return "an object";
    }
}

static void jval(struct json_object *o, val *v)
{
    memset(v, 0, sizeof *v);
    switch (json_object_get_type(o)) {
    case json_type_null: v->kind = V_NULL; break;
    case json_type_boolean: v->kind = V_BOOL; v->b = json_object_get_boolean(o); break;
    case json_type_double: v->kind = V_NUM; v->d = json_object_get_double(o); break;
    case json_type_int:
        /* json-c keeps integers above INT64_MAX as uint64 and clamps
         * get_int64 to INT64_MAX for them. */
        v->kind = V_INT;
        v->i = json_object_get_int64(o);
        if (v->i == INT64_MAX && json_object_get_uint64(o) > (uint64_t)INT64_MAX) {
            v->kind = V_UINT;
            v->u = json_object_get_uint64(o);
        }
        break;
    case json_type_string:
        v->kind = V_STR;
        v->s = json_object_get_string(o);
        v->n = (size_t)json_object_get_string_len(o);
        break;
    case json_type_array: v->kind = V_LIST; break;
    default: v->kind = V_OBJ; break;
    }
}

/* Appends converted elements to data. Strings: the bytes (NUL-terminated)
 * go to data and their offsets to aux, because data may move while it
 * grows; sink_finish turns offsets into a char * array at the end. */
typedef struct sink {
    int dtype;
    size_t esz;
    nf_buf *data, *aux;
    int64_t n;
} sink;

static int sink_start(sink *k, int dtype, nf_buf *data, nf_buf *aux, int64_t hint, nf_err *err)
{
    k->dtype = dtype;
    k->esz = nf_codec_elem_size(dtype);
    k->data = data;
    k->aux = aux;
    k->n = 0;
    if (k->esz == 0)
        return fail(err, NF_EUNSUPPORTED, "inputs of type %s cannot be sent in a request", dt_name(dtype));
    if (dtype == NF_DT_STRING && !aux)
        return fail(err, NF_EINTERNAL, "string input decoded without scratch buffer");
    nf_buf_reset(data);
    if (aux)
        nf_buf_reset(aux);
    size_t bytes;
    if (hint < 0 || __builtin_mul_overflow((size_t)hint, dtype == NF_DT_STRING ? sizeof(size_t) : k->esz, &bytes))
        bytes = 0;
    if (nf_buf_reserve(dtype == NF_DT_STRING ? aux : data, bytes) < 0 || nf_buf_reserve(data, 0) < 0)
        return fail(err, NF_ENOMEM, "out of memory for %lld elements", (long long)hint);
    return 0;
}

static void *sink_finish(sink *k)
{
    if (k->dtype != NF_DT_STRING)
        return k->data->p;
    size_t pad = (8 - (k->data->len & 7)) & 7, bytes;
    if (__builtin_mul_overflow((size_t)k->n, sizeof(char *), &bytes) ||
        __builtin_add_overflow(bytes, pad, &bytes) || nf_buf_reserve(k->data, bytes) < 0)
        return NULL;
    size_t at = k->data->len + pad;
    char **ptrs = (char **)(void *)(k->data->p + at);
    const size_t *offs = (const size_t *)(void *)k->aux->p;
    for (int64_t i = 0; i < k->n; i++)
        ptrs[i] = k->data->p + offs[i];
    k->data->len = at + (size_t)k->n * sizeof(char *);
    return ptrs;
}

/* Range of an integer dtype. */
static void int_range(int dt, int64_t *lo, uint64_t *hi)
{
    switch (dt) {
    case NF_DT_INT8: *lo = INT8_MIN; *hi = INT8_MAX; break;
    case NF_DT_UINT8: *lo = 0; *hi = UINT8_MAX; break;
    case NF_DT_INT16: *lo = INT16_MIN; *hi = INT16_MAX; break;
    case NF_DT_UINT16: *lo = 0; *hi = UINT16_MAX; break;
    case NF_DT_INT32: *lo = INT32_MIN; *hi = INT32_MAX; break;
    case NF_DT_UINT32: *lo = 0; *hi = UINT32_MAX; break;
    case NF_DT_INT64: *lo = INT64_MIN; *hi = INT64_MAX; break;
    default: *lo = 0; *hi = UINT64_MAX; break;
    }
}

static int push(sink *k, const void *x)
{
    if (nf_buf_reserve(k->data, k->esz) < 0)
        return NF_ENOMEM;
    memcpy(k->data->p + k->data->len, x, k->esz);
    k->data->len += k->esz;
    k->n++;
    return 0;
}

/* Converts v to the sink's dtype and appends it. Returns 0, NF_ENOMEM, or
 * NF_EINVAL with why[] saying what was wrong (callers add the position). */
static int sink_put(sink *k, const val *v, char *why, size_t why_cap)
{
    int dt = k->dtype;
    if (dt == NF_DT_FLOAT || dt == NF_DT_DOUBLE) {
        double d;
        switch (v->kind) {
        case V_NUM: d = v->d; break;
        case V_INT: d = (double)v->i; break;
        case V_UINT: d = (double)v->u; break;
        case V_NULL: d = NAN; break; /* missing value: trees route NaN */
        default:
            snprintf(why, why_cap, "expected a number, got %s", kind_name(v->kind));
            return NF_EINVAL;
        }
        if (dt == NF_DT_FLOAT) {
            float f = (float)d;
            return push(k, &f);
        }
        return push(k, &d);
    }
    if (is_int_dtype(dt)) {
        int neg;
        uint64_t mag; /* |value| */
        int64_t lo;
        uint64_t hi;
        switch (v->kind) {
        case V_INT: neg = v->i < 0; mag = neg ? (uint64_t)0 - (uint64_t)v->i : (uint64_t)v->i; break;
        case V_UINT: neg = 0; mag = v->u; break;
        case V_NUM:
            if (!isfinite(v->d) || v->d != floor(v->d)) {
                snprintf(why, why_cap, "expected an integer, got %.17g", v->d);
                return NF_EINVAL;
            }
            if (fabs(v->d) >= 18446744073709551616.0) {
                snprintf(why, why_cap, "%.17g is out of range for %s", v->d, dt_name(dt));
                return NF_EINVAL;
            }
            neg = v->d < 0;
            mag = (uint64_t)fabs(v->d);
            break;
        default:
            snprintf(why, why_cap, "expected an integer, got %s", kind_name(v->kind));
            return NF_EINVAL;
        }
        int_range(dt, &lo, &hi);
        if (neg ? mag > (uint64_t)0 - (uint64_t)lo : mag > hi) {
            snprintf(why, why_cap, "%s%llu is out of range for %s", neg ? "-" : "",
                     (unsigned long long)mag, dt_name(dt));
            return NF_EINVAL;
        }
        /* In range, so the two's complement cast is exact. */
        int64_t i = neg ? (int64_t)((uint64_t)0 - mag) : (int64_t)mag;
        switch (dt) {
        case NF_DT_INT8: { int8_t x = (int8_t)i; return push(k, &x); }
        case NF_DT_UINT8: { uint8_t x = (uint8_t)mag; return push(k, &x); }
        case NF_DT_INT16: { int16_t x = (int16_t)i; return push(k, &x); }
        case NF_DT_UINT16: { uint16_t x = (uint16_t)mag; return push(k, &x); }
        case NF_DT_INT32: { int32_t x = (int32_t)i; return push(k, &x); }
        case NF_DT_UINT32: { uint32_t x = (uint32_t)mag; return push(k, &x); }
        case NF_DT_INT64: return push(k, &i);
        default: return push(k, &mag);
        }
    }
    if (dt == NF_DT_BOOL) {
        int b = -1;
        if (v->kind == V_BOOL)
            b = v->b != 0;
        else if (v->kind == V_INT && (v->i == 0 || v->i == 1))
            b = (int)v->i;
        else if (v->kind == V_NUM && (v->d == 0.0 || v->d == 1.0))
            b = v->d == 1.0;
        if (b < 0) {
            snprintf(why, why_cap, "expected a boolean (true, false, 0 or 1), got %s", kind_name(v->kind));
            return NF_EINVAL;
        }
        uint8_t x = (uint8_t)b;
        return push(k, &x);
    }
    /* NF_DT_STRING */
    if (v->kind != V_STR) {
        snprintf(why, why_cap, "expected a string, got %s", kind_name(v->kind));
        return NF_EINVAL;
    }
    if (memchr(v->s, 0, v->n)) {
        snprintf(why, why_cap, "string contains a NUL character");
        return NF_EINVAL;
    }
    size_t off = k->data->len;
    if (nf_buf_append(k->aux, &off, sizeof off) < 0 || nf_buf_reserve(k->data, v->n) < 0)
        return NF_ENOMEM;
    char *o = k->data->p + k->data->len;
    for (size_t i = 0; i < v->n; i++) {
        *o++ = v->s[i];
        if (v->dq && v->s[i] == '"' && i + 1 < v->n && v->s[i + 1] == '"')
            i++;
    }
    *o++ = 0;
    k->data->len = (size_t)(o - k->data->p);
    k->n++;
    return 0;
}

/* ---- JSON parsing ------------------------------------------------------ */

/* "line L, column C" of byte offset off (both 1-based; columns in bytes). */
static void line_col(const char *s, size_t off, long long *line, long long *col)
{
    long long l = 1;
    size_t start = 0;
    for (size_t i = 0; i < off; i++)
        if (s[i] == '\n') {
            l++;
            start = i + 1;
        }
    *line = l;
    *col = (long long)(off - start) + 1;
}

static struct json_tokener *new_tokener(void)
{
    struct json_tokener *tok = json_tokener_new_ex(NF_JSON_MAX_DEPTH);
    if (tok)
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    return tok;
}

/* Parses s[0..n) as one JSON value. On failure returns NULL with *off the
 * offset of the offending byte (n at end of data) and *what json-c's
 * description. json-c reports "continue" when the text may go on (a bare
 * number, an unclosed list): feeding the NUL terminator settles it. */
static struct json_object *parse_slice(struct json_tokener *tok, const char *s, size_t n,
                                       size_t *off, const char **what)
{
    json_tokener_reset(tok);
    struct json_object *o = json_tokener_parse_ex(tok, s, (int)n);
    enum json_tokener_error e = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    if (!o && e == json_tokener_continue) {
        o = json_tokener_parse_ex(tok, "", 1);
        e = json_tokener_get_error(tok);
        end = n;
    }
    if (!o && e != json_tokener_success) {
        *off = end < n ? end : n;
        *what = json_tokener_error_desc(e);
        return NULL;
    }
    /* A JSON null parses to NULL with success; callers treat a NULL object
     * as null (json-c's own accessors do). Bytes after the value other
     * than whitespace are an error (strict mode catches most, but json-c
     * stops quietly at a NUL byte). */
    for (size_t i = end; i < n; i++)
        if (!(s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) {
            json_object_put(o);
            *off = i;
            *what = "unexpected data after the JSON value";
            return NULL;
        }
    *what = NULL;
    return o;
}

int nf_json_parse(const char *s, size_t len, struct json_object **out, nf_err *err)
{
    *out = NULL;
    if (len > INT_MAX)
        return fail(err, NF_ELIMIT, "body of %zu bytes is too large to parse", len);
    struct json_tokener *tok = new_tokener();
    if (!tok)
        return fail(err, NF_ENOMEM, "out of memory for the JSON parser");
    size_t off = 0;
    const char *what = NULL;
    struct json_object *o = parse_slice(tok, s, len, &off, &what);
    json_tokener_free(tok);
    if (what) {
        long long l, c;
        line_col(s, off, &l, &c);
        return fail(err, NF_ESYNTAX, "line %lld, column %lld: %s", l, c, what);
    }
    *out = o;
    return 0;
}

/* ---- rows (JSON, CSV, JSON lines) -------------------------------------- */

static int too_many_rows(nf_err *err, int64_t max_rows)
{
    return fail(err, NF_ELIMIT, "more than %lld rows (the limit per request)", (long long)max_rows);
}

/* Reserves room for rows more rows once n_cols is known, so a batch grows
 * its buffer at most once. The hint is capped by max_rows. */
static int reserve_rows(sink *k, const nf_rows *r, int64_t rows, nf_err *err)
{
    if (r->max_rows > 0 && rows > r->max_rows)
        rows = r->max_rows;
    size_t bytes;
    nf_buf *b = k->dtype == NF_DT_STRING ? k->aux : k->data;
    size_t esz = k->dtype == NF_DT_STRING ? sizeof(size_t) : k->esz;
    if (rows <= 0 || r->n_cols <= 0)
        return 0;
    if (__builtin_mul_overflow((size_t)rows, (size_t)r->n_cols, &bytes) ||
        __builtin_mul_overflow(bytes, esz, &bytes))
        return fail(err, NF_ELIMIT, "%lld rows of %lld values are too many", (long long)rows, (long long)r->n_cols);
    if (nf_buf_reserve(b, bytes) < 0)
        return fail(err, NF_ENOMEM, "out of memory for %lld rows", (long long)rows);
    return 0;
}

/* Decodes one JSON row (a list) as row no (1-based) of r; unit is "row"
 * or "line" for messages. Sets r->n_cols from the first row when 0. */
static int json_row(struct json_object *row, const char *unit, int64_t no, nf_rows *r, sink *k,
                    int64_t rows_hint, nf_err *err)
{
    if (!json_object_is_type(row, json_type_array)) {
        val v;
        jval(row, &v);
        return fail(err, NF_EINVAL, "%s %lld: expected a list of features, got %s", unit, (long long)no,
                    kind_name(v.kind));
    }
    int64_t n = (int64_t)json_object_array_length(row);
    if (r->n_cols == 0) {
        if (n == 0)
            return fail(err, NF_ESHAPE, "%s %lld has no features", unit, (long long)no);
        r->n_cols = n;
        int rc = reserve_rows(k, r, rows_hint, err);
        if (rc)
            return rc;
    }
    if (n != r->n_cols)
        return fail(err, NF_ESHAPE, "%s %lld has %lld features, expected %lld", unit, (long long)no,
                    (long long)n, (long long)r->n_cols);
    for (int64_t j = 0; j < n; j++) {
        val v;
        char why[160];
        jval(json_object_array_get_idx(row, (size_t)j), &v);
        int rc = sink_put(k, &v, why, sizeof why);
        if (rc == NF_ENOMEM)
            return fail(err, rc, "out of memory");
        if (rc)
            return fail(err, rc, "%s %lld, field %lld: %s", unit, (long long)no, (long long)j + 1, why);
    }
    return 0;
}

static int rows_done(nf_rows *r, sink *k, int64_t n_rows, nf_err *err)
{
    r->n_rows = n_rows;
    r->elems = sink_finish(k);
    if (!r->elems)
        return fail(err, NF_ENOMEM, "out of memory");
    return 0;
}

/* rows is a list of rows, or (single) one row. */
static int json_rows(struct json_object *rows, int single, nf_rows *r, nf_err *err)
{
    sink k;
    r->n_rows = 0;
    r->elems = NULL;
    if (!single && !json_object_is_type(rows, json_type_array)) {
        val v;
        jval(rows, &v);
        return fail(err, NF_EINVAL, "expected a list of rows, got %s", kind_name(v.kind));
    }
    int64_t n = single ? 1 : (int64_t)json_object_array_length(rows);
    if (r->max_rows > 0 && n > r->max_rows)
        return too_many_rows(err, r->max_rows);
    int rc = sink_start(&k, r->dtype, r->data, r->aux, 0, err);
    if (rc == 0)
        rc = reserve_rows(&k, r, n, err);
    for (int64_t i = 0; rc == 0 && i < n; i++)
        rc = json_row(single ? rows : json_object_array_get_idx(rows, (size_t)i), "row", i + 1, r, &k, n, err);
    return rc ? rc : rows_done(r, &k, n, err);
}

int nf_decode_json_rows(struct json_object *rows, nf_rows *r, nf_err *err)
{
    return json_rows(rows, 0, r, err);
}

/* Parses a CSV field's text as a number (or bool word for bool inputs).
 * Integers stay exact (strtoll/strtoull) so int64 ids above 2^53 survive. */
static int csv_number(const char *s, size_t n, int dtype, val *v)
{
    char tmp[128];
    memset(v, 0, sizeof *v);
    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    if (dtype == NF_DT_BOOL && (strcasecmp(tmp, "true") == 0 || strcasecmp(tmp, "false") == 0)) {
        v->kind = V_BOOL;
        v->b = tmp[0] == 't' || tmp[0] == 'T';
        return 0;
    }
    size_t i = tmp[0] == '-' || tmp[0] == '+';
    size_t digits = strspn(tmp + i, "0123456789");
    char *e;
    errno = 0;
    if (digits > 0 && i + digits == n) {
        if (tmp[0] == '-') {
            long long x = strtoll(tmp, &e, 10);
            if (errno == 0) {
                v->kind = V_INT;
                v->i = x;
                return 0;
            }
        } else {
            unsigned long long x = strtoull(tmp, &e, 10);
            if (errno == 0) {
                v->kind = x > (unsigned long long)INT64_MAX ? V_UINT : V_INT;
                v->u = x;
                v->i = (int64_t)(x > (unsigned long long)INT64_MAX ? 0 : x);
                return 0;
            }
        }
        errno = 0; /* too large for 64 bits: fall through as a float */
    }
    if (isspace((unsigned char)tmp[0]))
        return -1;
    double d = strtod(tmp, &e);
    if (e != tmp + n)
        return -1;
    v->kind = V_NUM;
    v->d = d;
    return 0;
}

static int csv_field(sink *k, const char *s, size_t n, int quoted, int64_t row, int64_t field, nf_err *err)
{
    val v;
    char why[160];
    if (k->dtype == NF_DT_STRING) {
        memset(&v, 0, sizeof v);
        v.kind = V_STR;
        v.s = s;
        v.n = n;
        v.dq = quoted;
    } else if (n == 0) {
        if (k->dtype != NF_DT_FLOAT && k->dtype != NF_DT_DOUBLE)
            return fail(err, NF_EINVAL, "row %lld, field %lld: empty, expected %s", (long long)row,
                        (long long)field, k->dtype == NF_DT_BOOL ? "a boolean" : "an integer");
        memset(&v, 0, sizeof v);
        v.kind = V_NULL;
    } else if (csv_number(s, n, k->dtype, &v) < 0) {
        return fail(err, NF_ESYNTAX, "row %lld, field %lld: '%.*s%s' is not a number", (long long)row,
                    (long long)field, (int)(n > 40 ? 40 : n), s, n > 40 ? "..." : "");
    }
    int rc = sink_put(k, &v, why, sizeof why);
    if (rc == NF_ENOMEM)
        return fail(err, rc, "out of memory");
    if (rc)
        return fail(err, rc, "row %lld, field %lld: %s", (long long)row, (long long)field, why);
    return 0;
}

static int64_t count_lines(const char *s, size_t n)
{
    int64_t c = 1;
    for (const char *p = s, *e = s + n; (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
        c++;
    return c;
}

int nf_decode_csv(const char *body, size_t len, nf_rows *r, nf_err *err)
{
    sink k;
    r->n_rows = 0;
    r->elems = NULL;
    /* Trailing newlines end the last row, they do not start new ones. */
    size_t end = len;
    while (end > 0 && (body[end - 1] == '\n' || body[end - 1] == '\r'))
        end--;
    int64_t lines = end ? count_lines(body, end) : 0;
    int rc = sink_start(&k, r->dtype, r->data, r->aux, 0, err);
    if (rc == 0)
        rc = reserve_rows(&k, r, lines, err);
    if (rc)
        return rc;
    int64_t row = 0;
    size_t p = 0;
    while (end > 0) {
        row++;
        if (r->max_rows > 0 && row > r->max_rows)
            return too_many_rows(err, r->max_rows);
        int64_t field = 0;
        for (;;) {
            field++;
            while (p < end && (body[p] == ' ' || body[p] == '\t'))
                p++;
            const char *fs;
            size_t fn;
            int quoted = 0;
            if (p < end && body[p] == '"') {
                size_t a = ++p;
                quoted = 1;
                for (;;) {
                    if (p >= end)
                        return fail(err, NF_ESYNTAX, "row %lld, field %lld: unterminated quoted field",
                                    (long long)row, (long long)field);
                    if (body[p] == '"') {
                        if (p + 1 < end && body[p + 1] == '"') {
                            p += 2;
                            continue;
                        }
                        break;
                    }
                    p++;
                }
                fs = body + a;
                fn = p - a;
                p++;
                while (p < end && (body[p] == ' ' || body[p] == '\t'))
                    p++;
                if (p < end && body[p] != ',' && body[p] != '\n' && body[p] != '\r')
                    return fail(err, NF_ESYNTAX, "row %lld, field %lld: unexpected '%c' after a closing quote",
                                (long long)row, (long long)field, body[p] >= 0x20 && body[p] < 0x7f ? body[p] : '?');
            } else {
                size_t a = p;
                while (p < end && body[p] != ',' && body[p] != '\n' &&
                       !(body[p] == '\r' && (p + 1 == end || body[p + 1] == '\n')))
                    p++;
                fs = body + a;
                fn = p - a;
                while (fn > 0 && (fs[fn - 1] == ' ' || fs[fn - 1] == '\t'))
                    fn--;
            }
            /* Past the expected width, only count (for the message). */
            if (r->n_cols == 0 || field <= r->n_cols) {
                rc = csv_field(&k, fs, fn, quoted, row, field, err);
                if (rc)
                    return rc;
            }
            if (p < end && body[p] == ',') {
                p++;
                continue;
            }
            break;
        }
        if (r->n_cols == 0) {
            r->n_cols = field;
            rc = reserve_rows(&k, r, lines, err);
            if (rc)
                return rc;
        } else if (field != r->n_cols) {
            return fail(err, NF_ESHAPE, "row %lld has %lld features, expected %lld", (long long)row,
                        (long long)field, (long long)r->n_cols);
        }
        if (p < end && body[p] == '\r')
            p++;
        if (p < end && body[p] == '\n')
            p++;
        else
            break; /* end of the body */
    }
    return rows_done(r, &k, row, err);
}

int nf_decode_jsonl(const char *body, size_t len, nf_rows *r, nf_err *err)
{
    sink k;
    r->n_rows = 0;
    r->elems = NULL;
    if (len > INT_MAX)
        return fail(err, NF_ELIMIT, "body of %zu bytes is too large to parse", len);
    int64_t lines = len ? count_lines(body, len) : 0;
    int rc = sink_start(&k, r->dtype, r->data, r->aux, 0, err);
    if (rc == 0)
        rc = reserve_rows(&k, r, lines, err);
    if (rc)
        return rc;
    struct json_tokener *tok = new_tokener();
    if (!tok)
        return fail(err, NF_ENOMEM, "out of memory for the JSON parser");
    int64_t line = 0, rows = 0;
    size_t p = 0;
    while (rc == 0 && p < len) {
        line++;
        const char *nl = memchr(body + p, '\n', len - p);
        size_t e = nl ? (size_t)(nl - body) : len, q = e;
        if (q > p && body[q - 1] == '\r')
            q--;
        size_t ls = p, a = p;
        p = e + 1;
        while (a < q && (body[a] == ' ' || body[a] == '\t'))
            a++;
        if (a == q)
            continue; /* blank line */
        if (r->max_rows > 0 && rows + 1 > r->max_rows) {
            rc = too_many_rows(err, r->max_rows);
            break;
        }
        size_t off;
        const char *what;
        struct json_object *o = parse_slice(tok, body + a, q - a, &off, &what);
        if (what) {
            rc = fail(err, NF_ESYNTAX, "line %lld, column %lld: %s", (long long)line,
                      (long long)(a - ls + off + 1), what);
            break;
        }
        struct json_object *row = o, *f;
        if (json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, "features", &f))
            row = f;
        rows++;
        rc = json_row(row, "line", line, r, &k, lines, err);
        json_object_put(o);
    }
    json_tokener_free(tok);
    return rc ? rc : rows_done(r, &k, rows, err);
}

/* ---- named tensors ----------------------------------------------------- */

static void fmt_index(char *s, size_t cap, const int64_t *idx, int n)
{
    size_t at = 0;
    s[0] = 0;
    for (int d = 0; d < n && at < cap; d++)
        at += (size_t)snprintf(s + at, cap - at, "[%lld]", (long long)idx[d]);
}

static int fill(struct json_object *a, int d, const nf_tensor *t, const int64_t *dims, int64_t *idx,
                sink *k, nf_err *err)
{
    char where[NF_MAX_DIMS * 24 + 1];
    if (d == t->n_dims) {
        val v;
        char why[160];
        jval(a, &v);
        int rc = sink_put(k, &v, why, sizeof why);
        if (rc == NF_ENOMEM)
            return fail(err, rc, "out of memory");
        if (rc) {
            fmt_index(where, sizeof where, idx, d);
            return fail(err, rc, "input '%s'%s%s: %s", t->name, d ? " at " : "", where, why);
        }
        return 0;
    }
    if (!json_object_is_type(a, json_type_array)) {
        val v;
        jval(a, &v);
        fmt_index(where, sizeof where, idx, d);
        return fail(err, NF_ESHAPE, "input '%s'%s%s: expected a list of %lld, got %s", t->name,
                    d ? " at " : "", where, (long long)dims[d], kind_name(v.kind));
    }
    int64_t n = (int64_t)json_object_array_length(a);
    if (n != dims[d]) {
        fmt_index(where, sizeof where, idx, d);
        return fail(err, NF_ESHAPE, "input '%s'%s%s: %lld elements, expected %lld (ragged list)", t->name,
                    d ? " at " : "", where, (long long)n, (long long)dims[d]);
    }
    for (int64_t i = 0; i < n; i++) {
        idx[d] = i;
        int rc = fill(json_object_array_get_idx(a, (size_t)i), d + 1, t, dims, idx, k, err);
        if (rc)
            return rc;
    }
    return 0;
}

int nf_decode_json_tensor(struct json_object *v, nf_input_slot *slot, nf_buf *aux, int64_t max_rows,
                          nf_err *err)
{
    nf_tensor *t = &slot->t;
    int rank = t->n_dims;
    int64_t dims[NF_MAX_DIMS] = {0}, idx[NF_MAX_DIMS] = {0};
    char shape[NF_MAX_DIMS * 24 + 4];
    if (!t->name)
        t->name = "?";
    if (rank < 0 || rank > NF_MAX_DIMS)
        return fail(err, NF_EINTERNAL, "input '%s' has %d dims", t->name, rank);
    /* The request's rank: follow first elements down (depth is bounded by
     * the tokener). An empty list ends the walk. */
    int rr = 0;
    struct json_object *c = v;
    while (json_object_is_type(c, json_type_array)) {
        int64_t n = (int64_t)json_object_array_length(c);
        if (rr < NF_MAX_DIMS)
            dims[rr] = n;
        rr++;
        if (n == 0) {
            if (rr <= rank)
                return fail(err, NF_ESHAPE, "input '%s': dim %d is 0 (an empty list)", t->name, rr - 1);
            break;
        }
        c = json_object_array_get_idx(c, 0);
    }
    if (rr != rank)
        return fail(err, NF_ESHAPE, "input '%s' has rank %d, expected %d (shape %s)", t->name, rr, rank,
                    fmt_shape(shape, sizeof shape, rank, t->dims));
    for (int d = 0; d < rank; d++)
        if (t->dims[d] >= 0 && dims[d] != t->dims[d])
            return fail(err, NF_ESHAPE, "input '%s': dim %d is %lld, expected %lld", t->name, d,
                        (long long)dims[d], (long long)t->dims[d]);
    if (rank > 0 && max_rows > 0 && dims[0] > max_rows)
        return too_many_rows(err, max_rows);
    int64_t count = 1;
    for (int d = 0; d < rank; d++)
        if (__builtin_mul_overflow(count, dims[d], &count))
            return fail(err, NF_ELIMIT, "input '%s' has too many elements", t->name);
    sink k;
    int rc = sink_start(&k, t->dtype, &slot->buf, aux, count, err);
    if (rc == 0)
        rc = fill(v, 0, t, dims, idx, &k, err);
    if (rc)
        return rc;
    void *data = sink_finish(&k);
    if (!data)
        return fail(err, NF_ENOMEM, "out of memory");
    memcpy(t->dims, dims, sizeof dims);
    t->data = data;
    return 0;
}

/* ---- JSON rows without a parse tree ------------------------------------ */

/* 10^0 .. 10^22: every one exact in a double */
static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                       1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static inline int is_digit(char c)
{
    return (unsigned char)(c - '0') < 10;
}

typedef unsigned __int128 u128;

static const uint64_t pow10_u64[20] = {1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull,
                                       10000000ull, 100000000ull, 1000000000ull, 10000000000ull,
                                       100000000000ull, 1000000000000ull, 10000000000000ull,
                                       100000000000000ull, 1000000000000000ull, 10000000000000000ull,
                                       100000000000000000ull, 1000000000000000000ull,
                                       10000000000000000000ull};

/* 10^k, k <= 38 */
static inline u128 pow10_u128(int k)
{
    return k <= 19 ? (u128)pow10_u64[k] : (u128)pow10_u64[19] * pow10_u64[k - 19];
}

/* The value of 8 ASCII digits at p, or -1 if they are not all digits:
 * bytes to digit pairs, pairs to one number, in three multiplies (SWAR;
 * little-endian loads). */
static inline int64_t eight_digits(const char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    if (((v & 0xF0F0F0F0F0F0F0F0ull) | (((v + 0x0606060606060606ull) & 0xF0F0F0F0F0F0F0F0ull) >> 4)) !=
        0x3333333333333333ull)
        return -1;
    v -= 0x3030303030303030ull;
    v = v * 10 + (v >> 8); /* bytes 0, 2, 4, 6: two-digit numbers */
    v = (((v & 0x000000FF000000FFull) * (100 + (1000000ull << 32))) +
         (((v >> 16) & 0x000000FF000000FFull) * (1 + (10000ull << 32)))) >> 32;
    return (int64_t)(uint32_t)v;
}

/* mag = mag * 10 + d, or ovf = 1 when that passes UINT64_MAX */
#define ACC_DIGIT(mag, ovf, c)                                                       \
    do {                                                                             \
        unsigned d_ = (unsigned)((c) - '0');                                         \
        if ((mag) < 1844674407370955161ull || ((mag) == 1844674407370955161ull && d_ <= 5)) \
            (mag) = (mag) * 10 + d_;                                                 \
        else                                                                         \
            (ovf) = 1;                                                               \
    } while (0)

/* significant bits of x > 0 */
static int bits128(u128 x)
{
    uint64_t hi = (uint64_t)(x >> 64);
    return hi ? 128 - __builtin_clzll(hi) : 64 - __builtin_clzll((uint64_t)x);
}

/* The double nearest to q / 2^s where q has the exact value of the scaled
 * quotient (or product) in its bits and sticky says whether anything was
 * cut below them; ties to even. q has more than 53 bits, and the result is
 * a normal double (callers keep to such ranges). */
static double round_bits(u128 q, int sticky, int s)
{
    int drop = bits128(q) - 53;
    uint64_t mant = (uint64_t)(q >> drop);
    u128 rest = q & (((u128)1 << drop) - 1), half = (u128)1 << (drop - 1);
    if (rest > half || (rest == half && (sticky || (mant & 1)))) {
        if (++mant == (uint64_t)1 << 53) {
            mant >>= 1;
            drop++;
        }
    }
    /* mant * 2^(drop - s), mant in [2^52, 2^53): the IEEE fields directly */
    uint64_t u = (uint64_t)(drop - s + 52 + 1023) << 52 | (mant & (((uint64_t)1 << 52) - 1));
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* strtod of the token s[0..len) (see json_number) */
static __attribute__((noinline)) size_t json_number_slow(const char *s, size_t len, double *out)
{
    char tmp[64];
    if (len >= sizeof tmp)
        return 0;
    memcpy(tmp, s, len);
    tmp[len] = 0;
    *out = strtod(tmp, NULL);
    return len;
}

/* Reads the JSON number at s (before end) in RFC 8259 syntax and gives the
 * double the json-c path turns it into: integer literals as json-c reads
 * them (strtoll for negatives, strtoull otherwise, both clamping on
 * overflow, then widened: so -0 is +0), other numbers as strtod reads the
 * token (glibc's strtod: correctly rounded, ties to even). Returns the
 * token's length, 0 when it is not such a number. The digits are one
 * integer W (exact below 2^64) and the value W * 10^E; strtod, ~1000
 * instructions, is left only for more than 19 digits or |E| beyond the
 * ranges below: W <= 2^53 and |E| <= 22 are two exact doubles and one
 * correctly rounded operation (Clinger, "How to read floating point
 * numbers accurately", PLDI 1990); a larger W with -21 <= E < 0 (16-19
 * digits: what %.17g and Python's repr write) is an exact 128-bit
 * division whose quotient and remainder round once (round_bits), and
 * with 0 <= E <= 19 an exact 128-bit product. Inlined in
 * nf_decode_json_fast's loop: the call and its saved registers were a
 * tenth of a number's cost. */
static inline __attribute__((always_inline)) size_t json_number(const char *s, const char *end, double *out)
{
    const char *p = s;
    int neg = 0, ovf = 0, is_double = 0;
    uint64_t mag = 0; /* every digit, integer and fraction, as one integer */
    int64_t frac = 0, e10 = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p == end || !is_digit(*p))
        return 0;
    if (*p == '0') {
        p++;
    } else {
        for (; p < end && is_digit(*p); p++)
            ACC_DIGIT(mag, ovf, *p);
    }
    if (p < end && *p == '.') {
        is_double = 1;
        if (++p == end || !is_digit(*p))
            return 0;
        const char *f0 = p;
        int64_t x8;
        /* %.17g and repr write 16-19 digits: eight at a time while
         * mag * 10^8 + x8 cannot pass 2^64 */
        while (end - p >= 8 && mag < 100000000000ull && (x8 = eight_digits(p)) >= 0) {
            mag = mag * 100000000u + (uint64_t)x8;
            p += 8;
        }
        for (; p < end && is_digit(*p); p++)
            ACC_DIGIT(mag, ovf, *p);
        frac = p - f0;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        int eneg = 0;
        is_double = 1;
        if (++p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p == end || !is_digit(*p))
            return 0;
        for (; p < end && is_digit(*p); p++)
            if (e10 < 100000) /* far past any double: strtod settles it */
                e10 = e10 * 10 + (*p - '0');
        if (eneg)
            e10 = -e10;
    }
    size_t len = (size_t)(p - s);
    if (!is_double) {
        if (neg) {
            /* strtoll: below INT64_MIN clamps to it */
            int64_t v = ovf || mag >= (uint64_t)1 << 63 ? INT64_MIN : -(int64_t)mag;
            *out = (double)v;
        } else {
            *out = (double)(ovf ? UINT64_MAX : mag); /* strtoull clamps to UINT64_MAX */
        }
        return len;
    }
    int64_t e = e10 - frac;
    if (!ovf) {
        double v;
        if (mag == 0) {
            v = 0.0;
#if FLT_EVAL_METHOD == 0
        } else if (mag <= (uint64_t)1 << 53 && e >= -22 && e <= 22) {
            v = e >= 0 ? (double)mag * pow10_exact[e] : (double)mag / pow10_exact[-e];
#endif
        } else if (mag > (uint64_t)1 << 53 && e < 0 && e >= -21) {
            /* 16-19 significant digits, what %.17g and Python's repr
             * write: W / 10^k by exact 128-bit division, scaled so the
             * quotient has 55 or 56 bits (n << sh fits: 55 + 70 bits) */
            u128 d = pow10_u128((int)-e);
            int sh = 55 + bits128(d) - bits128(mag);
            u128 n = sh >= 0 ? (u128)mag << sh : (u128)mag, dd = sh >= 0 ? d : d << -sh;
            v = round_bits(n / dd, n % dd != 0, sh);
        } else if (mag > (uint64_t)1 << 53 && e >= 0 && e <= 19) {
            v = round_bits((u128)mag * pow10_u64[e], 0, 0); /* < 2^64 * 10^19 < 2^128: exact */
        } else {
            goto slow;
        }
        *out = neg ? -v : v;
        return len;
    }
slow:
    return json_number_slow(s, len, out);
}

size_t nf_json_number(const char *s, const char *end, double *out)
{
    return json_number(s, end, out);
}

static inline const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

int nf_decode_json_fast(const char *body, size_t len, nf_input_slot *slots, int n_slots, int64_t max_rows,
                        int64_t *n_rows)
{
    nf_tensor *t = &slots[0].t;
    if (n_slots != 1 || t->n_dims != 2 || (t->dtype != NF_DT_FLOAT && t->dtype != NF_DT_DOUBLE) || len > INT_MAX)
        return 0;
    const char *p = skip_ws(body, body + len), *end = body + len;
    int wrapped = 0, single = 0;
    if (p < end && *p == '{') {
        wrapped = 1;
        p = skip_ws(p + 1, end);
        if (end - p >= 11 && memcmp(p, "\"instances\"", 11) == 0)
            p += 11;
        else if (end - p >= 10 && memcmp(p, "\"features\"", 10) == 0)
            p += 10, single = 1;
        else
            return 0;
        p = skip_ws(p, end);
        if (p == end || *p != ':')
            return 0;
        p = skip_ws(p + 1, end);
    }
    if (!single) { /* the list of rows */
        if (p == end || *p != '[')
            return 0;
        p = skip_ws(p + 1, end);
    }
    nf_buf *b = &slots[0].buf;
    const size_t esz = t->dtype == NF_DT_FLOAT ? sizeof(float) : sizeof(double);
    int64_t cols = t->dims[1] > 0 ? t->dims[1] : 0, rows = 0;
    nf_buf_reset(b);
    for (;;) {
        if (p == end || *p != '[')
            return 0; /* also an empty list of rows: the json-c path says why */
        p = skip_ws(p + 1, end);
        int64_t n = 0;
        for (;;) {
            double d;
            if (end - p >= 4 && memcmp(p, "null", 4) == 0) {
                d = NAN; /* missing value, as sink_put */
                p += 4;
            } else {
                size_t k = json_number(p, end, &d);
                if (k == 0)
                    return 0;
                p += k;
            }
            if (b->cap - b->len <= esz && nf_buf_reserve(b, esz) < 0)
                return 0;
            if (esz == sizeof(float)) {
                float f = (float)d;
                memcpy(b->p + b->len, &f, sizeof f);
            } else {
                memcpy(b->p + b->len, &d, sizeof d);
            }
            b->len += esz;
            n++;
            p = skip_ws(p, end);
            if (p < end && *p == ',') {
                p = skip_ws(p + 1, end);
                continue;
            }
            if (p < end && *p == ']')
                break;
            return 0;
        }
        if (cols == 0)
            cols = n;
        if (n != cols || (max_rows > 0 && rows + 1 > max_rows))
            return 0;
        rows++;
        p = skip_ws(p + 1, end);
        if (single)
            break;
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == ']') {
            p = skip_ws(p + 1, end);
            break;
        }
        return 0;
    }
    if (wrapped) {
        if (p == end || *p != '}')
            return 0;
        p = skip_ws(p + 1, end);
    }
    if (p != end || (t->dims[0] >= 0 && t->dims[0] != rows))
        return 0;
    t->dims[0] = rows;
    t->dims[1] = cols;
    t->data = b->p;
    *n_rows = rows;
    return 1;
}

/* ---- whole bodies ------------------------------------------------------ */

/* Rows (CSV, JSON lines, instances, features) need one input of shape
 * [N, F]; F may be dynamic, then the first row fixes it. */
static int rows_input(nf_input_slot *slots, int n_slots, nf_err *err)
{
    char shape[NF_MAX_DIMS * 24 + 4];
    const nf_tensor *t = &slots[0].t;
    if (n_slots != 1)
        return fail(err, NF_ESHAPE,
                    "the model has %d inputs; rows fill only one: send JSON {\"inputs\": {\"%s\": ..., ...}}",
                    n_slots, t->name);
    if (t->n_dims != 2)
        return fail(err, NF_ESHAPE, "input '%s' has shape %s: rows need a 2-D input [N, F]; send JSON {\"inputs\": ...}",
                    t->name, fmt_shape(shape, sizeof shape, t->n_dims, t->dims));
    return 0;
}

static int rows_bind(nf_input_slot *slot, const nf_rows *r, int64_t *n_rows, nf_err *err)
{
    nf_tensor *t = &slot->t;
    if (r->n_rows == 0)
        return fail(err, NF_ESHAPE, "the request has no rows");
    if (t->dims[0] >= 0 && t->dims[0] != r->n_rows)
        return fail(err, NF_ESHAPE, "input '%s': dim 0 is %lld, expected %lld (the model takes a fixed batch)",
                    t->name, (long long)r->n_rows, (long long)t->dims[0]);
    t->dims[0] = r->n_rows;
    t->dims[1] = r->n_cols;
    t->data = r->elems;
    *n_rows = r->n_rows;
    return 0;
}

static int json_body(struct json_object *root, nf_input_slot *slots, int n_slots, nf_buf *aux,
                     int64_t max_rows, int64_t *n_rows, nf_err *err)
{
    /* Which key was given, not whether its value is non-NULL: json-c
     * represents a JSON null as NULL. */
    struct json_object *inst = NULL, *feat = NULL, *inp = NULL;
    int has_inst = 0, has_inp = 0, rc;
    if (json_object_is_type(root, json_type_object)) {
        has_inst = json_object_object_get_ex(root, "instances", &inst);
        has_inp = json_object_object_get_ex(root, "inputs", &inp);
        int n = has_inst + has_inp + json_object_object_get_ex(root, "features", &feat);
        if (n == 0)
            return fail(err, NF_EINVAL, "expected a JSON object with \"instances\", \"features\" or \"inputs\"");
        if (n > 1)
            return fail(err, NF_EINVAL, "give only one of \"instances\", \"features\" and \"inputs\"");
    } else if (json_object_is_type(root, json_type_array)) {
        inst = root; /* a bare list of rows */
        has_inst = 1;
    } else {
        val v;
        jval(root, &v);
        return fail(err, NF_EINVAL, "expected a JSON object or a list of rows, got %s", kind_name(v.kind));
    }
    if (has_inp) {
        if (json_object_is_type(inp, json_type_object)) {
            /* Every input by name, and no name the model lacks. */
            json_object_object_foreach(inp, key, unused) {
                (void)unused;
                int i = 0;
                while (i < n_slots && strcmp(slots[i].t.name, key) != 0)
                    i++;
                if (i == n_slots)
                    return fail(err, NF_EINVAL, "unknown input '%.64s'; the model's first input is '%s'", key,
                                slots[0].t.name);
            }
            for (int i = 0; i < n_slots; i++) {
                struct json_object *v;
                if (!json_object_object_get_ex(inp, slots[i].t.name, &v))
                    return fail(err, NF_EINVAL, "missing input '%s'", slots[i].t.name);
                if ((rc = nf_decode_json_tensor(v, &slots[i], aux, max_rows, err)) != 0)
                    return rc;
            }
        } else {
            if (n_slots != 1)
                return fail(err, NF_EINVAL,
                            "the model has %d inputs: name them, {\"inputs\": {\"%s\": ..., ...}}", n_slots,
                            slots[0].t.name);
            if ((rc = nf_decode_json_tensor(inp, &slots[0], aux, max_rows, err)) != 0)
                return rc;
        }
        const nf_tensor *t = &slots[0].t;
        *n_rows = t->n_dims > 0 ? t->dims[0] : 1;
        return 0;
    }
    if ((rc = rows_input(slots, n_slots, err)) != 0)
        return rc;
    nf_rows r = {.dtype = slots[0].t.dtype,
                 .n_cols = slots[0].t.dims[1] > 0 ? slots[0].t.dims[1] : 0,
                 .max_rows = max_rows,
                 .data = &slots[0].buf,
                 .aux = aux};
    rc = has_inst ? json_rows(inst, 0, &r, err) : json_rows(feat, 1, &r, err);
    return rc ? rc : rows_bind(&slots[0], &r, n_rows, err);
}

int nf_decode_body(int fmt, const char *body, size_t len, nf_input_slot *slots, int n_slots, nf_buf *aux,
                   int64_t max_rows, int64_t *n_rows, nf_err *err)
{
    int rc;
    *n_rows = 0;
    if (n_slots < 1)
        return fail(err, NF_EINTERNAL, "the model has no inputs");
    if (fmt == NF_FMT_JSON) {
        struct json_object *root;
        if (nf_decode_json_fast(body, len, slots, n_slots, max_rows, n_rows) == 1)
            return 0;
        if ((rc = nf_json_parse(body, len, &root, err)) != 0)
            return rc;
        rc = json_body(root, slots, n_slots, aux, max_rows, n_rows, err);
        json_object_put(root);
        return rc;
    }
    if ((rc = rows_input(slots, n_slots, err)) != 0)
        return rc;
    nf_rows r = {.dtype = slots[0].t.dtype,
                 .n_cols = slots[0].t.dims[1] > 0 ? slots[0].t.dims[1] : 0,
                 .max_rows = max_rows,
                 .data = &slots[0].buf,
                 .aux = aux};
    if (fmt == NF_FMT_CSV)
        rc = nf_decode_csv(body, len, &r, err);
    else if (fmt == NF_FMT_JSONL)
        rc = nf_decode_jsonl(body, len, &r, err);
    else
        rc = fail(err, NF_EINTERNAL, "unknown body format %d", fmt);
    return rc ? rc : rows_bind(&slots[0], &r, n_rows, err);
}

/* ---- encoders ---------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, at most U+10FFFF), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t len;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

int nf_json_str(nf_buf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    if (nf_buf_reserve(b, n + 2) < 0)
        return -1;
    /* Fast path (names, routes, labels): printable ASCII needing no
     * escape goes in with one memcpy into the room just reserved. */
    size_t i = 0;
    while (i < n && u[i] >= 0x20 && u[i] < 0x80 && u[i] != '"' && u[i] != '\\')
        i++;
    if (i == n) {
        char *o = b->p + b->len;
        o[0] = '"';
        memcpy(o + 1, s, n);
        o[n + 1] = '"';
        b->len += n + 2;
        b->p[b->len] = 0;
        return 0;
    }
    if (nf_buf_append(b, "\"", 1) < 0)
        return -1;
    size_t run = 0;
    i = 0;
    while (i < n) {
        unsigned char c = u[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            size_t l = c < 0x80 ? 1 : utf8_seq(u + i, n - i);
            if (l) {
                i += l;
                continue;
            }
        }
        if (nf_buf_append(b, s + run, i - run) < 0)
            return -1;
        char esc[8];
        const char *e = esc;
        switch (c) {
        case '"': e = "\\\""; break;
        case '\\': e = "\\\\"; break;
        case '\n': e = "\\n"; break;
        case '\r': e = "\\r"; break;
        case '\t': e = "\\t"; break;
        case '\b': e = "\\b"; break;
        case '\f': e = "\\f"; break;
        default:
            if (c < 0x20)
                snprintf(esc, sizeof esc, "\\u%04x", c);
            else
                e = "\\ufffd"; /* invalid UTF-8 byte */
        }
        if (nf_buf_append(b, e, strlen(e)) < 0)
            return -1;
        run = ++i;
    }
    if (nf_buf_append(b, s + run, n - run) < 0 || nf_buf_append(b, "\"", 1) < 0)
        return -1;
    return 0;
}

/* Writes with snprintf straight into the buffer's free space. */
static int put_num(nf_buf *b, const char *fmt, double x)
{
    if (nf_buf_reserve(b, 32) < 0)
        return -1;
    b->len += (size_t)snprintf(b->p + b->len, 33, fmt, x);
    return 0;
}

/* "%.9g" of a finite float into o (at least 32 bytes), as glibc's printf
 * writes it (C11 7.21.6.1: nine significant digits, rounded to nearest,
 * ties to even, on the exact binary value; style e when the decimal
 * exponent X is below -4 or above 8; trailing zeros dropped). snprintf
 * costs ~3000 instructions a number, this ~150. The float is m * 2^e2
 * with m < 2^24, so the nine digits floor(|x| * 10^(8 - X)) and the
 * rounding remainder are exact in 128-bit integers for X >= -23; tinier
 * values go to snprintf. Returns the length. */
size_t nf_fmt_f32(char *o, float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    int exp_bits = (int)(u >> 23 & 0xff);
    uint32_t m = u & 0x7fffff;
    size_t len = 0;
    if (u >> 31)
        o[len++] = '-';
    if (exp_bits == 0 && m == 0) {
        o[len++] = '0';
        o[len] = 0;
        return len;
    }
    int e2 = exp_bits ? exp_bits - 150 : -149;
    if (exp_bits)
        m |= 0x800000;
    /* X: the decimal exponent, from log10(2) ~ 0.30103; off by one at
     * most, fixed below */
    int bits = 32 - __builtin_clz(m);
    int X = (int)floor((double)(e2 + bits - 1) * 0.30102999566398120);
    uint64_t digits = 0;
    for (int tries = 0;; tries++) {
        int k = 8 - X;
        if (X < -23 || tries > 2)
            return (size_t)snprintf(o, 32, "%.9g", (double)x);
        u128 q, rem, den; /* value * 10^k = q + rem / den */
        if (k >= 0) {
            u128 p10 = pow10_u128(k);
            u128 num = (u128)m * p10; /* < 2^24 * 10^31 < 2^128 */
            if (e2 >= 0) {
                q = num << e2; /* X <= 8 here: value < 10^9 */
                rem = 0;
                den = 1;
            } else if (-e2 >= 128) {
                q = 0;
                rem = num;
                den = 0; /* 2^-e2 does not fit: q is 0, X was too big */
            } else {
                q = num >> -e2;
                rem = num & (((u128)1 << -e2) - 1);
                den = (u128)1 << -e2;
            }
        } else {
            if (e2 < 0) /* value >= 10^8 has e2 >= 3: cannot happen */
                return (size_t)snprintf(o, 32, "%.9g", (double)x);
            u128 p10 = pow10_u128(-k);
            u128 num = (u128)m << e2; /* e2 <= 104 for a float: < 2^128 */
            q = num / p10;
            rem = num % p10;
            den = p10;
        }
        if (q < 100000000u) {
            X--;
            continue;
        }
        if (q >= 1000000000u) {
            X++;
            continue;
        }
        digits = (uint64_t)q;
        /* den == 0 cannot reach here (q would be 0) */
        if (rem != 0 && (rem > den - rem || (rem == den - rem && (digits & 1))))
            digits++;
        if (digits == 1000000000u) {
            digits = 100000000u;
            X++;
        }
        break;
    }
    char d[9];
    for (int i = 8; i >= 0; i--, digits /= 10)
        d[i] = (char)('0' + digits % 10);
    int nd = 9;
    while (nd > 1 && d[nd - 1] == '0')
        nd--;
    if (X < -4 || X >= 9) {
        o[len++] = d[0];
        if (nd > 1) {
            o[len++] = '.';
            memcpy(o + len, d + 1, (size_t)nd - 1);
            len += (size_t)nd - 1;
        }
        o[len++] = 'e';
        o[len++] = X < 0 ? '-' : '+';
        int ax = X < 0 ? -X : X;
        if (ax >= 100)
            o[len++] = (char)('0' + ax / 100);
        o[len++] = (char)('0' + ax / 10 % 10);
        o[len++] = (char)('0' + ax % 10);
    } else if (X >= 0) {
        /* X + 1 integer digits, then what is left of the nine */
        memcpy(o + len, d, (size_t)X + 1);
        len += (size_t)X + 1;
        if (nd > X + 1) {
            o[len++] = '.';
            memcpy(o + len, d + X + 1, (size_t)(nd - X - 1));
            len += (size_t)(nd - X - 1);
        }
    } else {
        o[len++] = '0';
        o[len++] = '.';
        for (int i = 0; i < -X - 1; i++)
            o[len++] = '0';
        memcpy(o + len, d, (size_t)nd);
        len += (size_t)nd;
    }
    o[len] = 0;
    return len;
}

int nf_json_f32(nf_buf *b, float x)
{
    if (!isfinite(x))
        return nf_buf_append(b, "null", 4);
    if (nf_buf_reserve(b, 32) < 0)
        return -1;
    b->len += nf_fmt_f32(b->p + b->len, x);
    return 0;
}

int nf_json_f64(nf_buf *b, double x)
{
    return isfinite(x) ? put_num(b, "%.17g", x) : nf_buf_append(b, "null", 4);
}

/* IEEE half to float: value = (1024 + m) * 2^(e - 25), subnormal m * 2^-24. */
static float half_to_float(uint16_t h)
{
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    float f;
    if (e == 0)
        f = ldexpf((float)m, -24);
    else if (e == 31)
        f = m ? NAN : INFINITY;
    else
        f = ldexpf((float)(m | 0x400), e - 25);
    return (h & 0x8000) ? -f : f;
}

/* Integer element i of an integer or bool dtype, widened. */
static int get_int(int dt, const void *data, int64_t i, long long *sv, unsigned long long *uv)
{
    switch (dt) {
    case NF_DT_INT8: *sv = ((const int8_t *)data)[i]; return 1;
    case NF_DT_INT16: *sv = ((const int16_t *)data)[i]; return 1;
    case NF_DT_INT32: *sv = ((const int32_t *)data)[i]; return 1;
    case NF_DT_INT64: *sv = ((const int64_t *)data)[i]; return 1;
    case NF_DT_UINT8: case NF_DT_BOOL: *uv = ((const uint8_t *)data)[i]; return 2;
    case NF_DT_UINT16: *uv = ((const uint16_t *)data)[i]; return 2;
    case NF_DT_UINT32: *uv = ((const uint32_t *)data)[i]; return 2;
    case NF_DT_UINT64: *uv = ((const uint64_t *)data)[i]; return 2;
    default: return 0;
    }
}

int nf_json_elem(nf_buf *b, int dtype, const void *data, int64_t i)
{
    long long sv;
    unsigned long long uv;
    switch (dtype) {
    case NF_DT_FLOAT: return nf_json_f32(b, ((const float *)data)[i]);
    case NF_DT_DOUBLE: return nf_json_f64(b, ((const double *)data)[i]);
    case NF_DT_FLOAT16: return nf_json_f32(b, half_to_float(((const uint16_t *)data)[i]));
    case NF_DT_BOOL: return ((const uint8_t *)data)[i] ? nf_buf_append(b, "true", 4) : nf_buf_append(b, "false", 5);
    case NF_DT_STRING: {
        const char *s = ((const char *const *)data)[i];
        return s ? nf_json_str(b, s, strlen(s)) : nf_buf_append(b, "null", 4);
    }
    default:
        switch (get_int(dtype, data, i, &sv, &uv)) {
        case 1: return nf_buf_printf(b, "%lld", sv);
        case 2: return nf_buf_printf(b, "%llu", uv);
        default: return nf_buf_append(b, "null", 4);
        }
    }
}

static int json_nested(nf_buf *b, const nf_tensor *t, int d, int64_t *at)
{
    if (d == t->n_dims)
        return nf_json_elem(b, t->dtype, t->data, (*at)++);
    if (nf_buf_append(b, "[", 1) < 0)
        return -1;
    for (int64_t i = 0; i < t->dims[d]; i++)
        if ((i && nf_buf_append(b, ",", 1) < 0) || json_nested(b, t, d + 1, at) < 0)
            return -1;
    return nf_buf_append(b, "]", 1);
}

int nf_json_tensor(nf_buf *b, const nf_tensor *t)
{
    int64_t at = 0;
    return json_nested(b, t, 0, &at);
}

int nf_csv_str(nf_buf *b, const char *s, size_t n)
{
    int quote = n > 0 && (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t');
    for (size_t i = 0; i < n && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
    if (!quote)
        return nf_buf_append(b, s, n);
    if (nf_buf_append(b, "\"", 1) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((s[i] == '"' && nf_buf_append(b, "\"", 1) < 0) || nf_buf_append(b, s + i, 1) < 0)
            return -1;
    return nf_buf_append(b, "\"", 1);
}

static int csv_float(nf_buf *b, double x, const char *fmt)
{
    if (isnan(x))
        return 0; /* empty field: what the decoder reads back as NaN */
    if (isinf(x))
        return x > 0 ? nf_buf_append(b, "inf", 3) : nf_buf_append(b, "-inf", 4);
    if (fmt == NULL) /* a float32 */
        return nf_json_f32(b, (float)x);
    return put_num(b, fmt, x);
}

int nf_csv_elem(nf_buf *b, int dtype, const void *data, int64_t i)
{
    switch (dtype) {
    case NF_DT_FLOAT: return csv_float(b, ((const float *)data)[i], NULL);
    case NF_DT_FLOAT16: return csv_float(b, half_to_float(((const uint16_t *)data)[i]), NULL);
    case NF_DT_DOUBLE: return csv_float(b, ((const double *)data)[i], "%.17g");
    case NF_DT_BOOL: return nf_buf_append(b, ((const uint8_t *)data)[i] ? "1" : "0", 1);
    case NF_DT_STRING: {
        const char *s = ((const char *const *)data)[i];
        return s ? nf_csv_str(b, s, strlen(s)) : 0;
    }
    default: return nf_json_elem(b, dtype, data, i); /* integers: same text */
    }
}

/* Checks an output the encoders will walk: known dtype, sane dims, data
 * present; *count = product of dims. */
static int check_out(const nf_tensor *t, int64_t *count, nf_err *err)
{
    int64_t c = 1;
    if (t->n_dims < 0 || t->n_dims > NF_MAX_DIMS)
        return fail(err, NF_EINTERNAL, "output '%s' has %d dims", t->name ? t->name : "?", t->n_dims);
    for (int d = 0; d < t->n_dims; d++)
        if (t->dims[d] < 0 || __builtin_mul_overflow(c, t->dims[d], &c))
            return fail(err, NF_EINTERNAL, "output '%s' has a bad dim %d", t->name ? t->name : "?", d);
    if (c > 0 && !t->data)
        return fail(err, NF_EINTERNAL, "output '%s' has no data", t->name ? t->name : "?");
    if (!nf_codec_elem_size(t->dtype) && t->dtype != NF_DT_FLOAT16)
        return fail(err, NF_EINTERNAL, "output '%s' has type %s", t->name ? t->name : "?", dt_name(t->dtype));
    *count = c;
    return 0;
}

/* The classifier's label and score outputs, checked against the classes:
 * labels N values, scores N x n_labels. Returns 1 when the outputs are a
 * classifier's, 0 for a regressor, <0 on error. */
static int classifier(const nf_tensor *outs, int n_outs, const nf_classes *cls, const nf_tensor **lab,
                      const nf_tensor **sc, int64_t *n, nf_err *err)
{
    int64_t c;
    int rc;
    char shape[NF_MAX_DIMS * 24 + 4];
    if (!cls || cls->n_labels <= 0)
        return 0;
    if (cls->label_output < 0 || cls->label_output >= n_outs)
        return fail(err, NF_EINTERNAL, "label output %d of %d", cls->label_output, n_outs);
    *lab = &outs[cls->label_output];
    if ((rc = check_out(*lab, &c, err)) != 0)
        return rc;
    *n = (*lab)->n_dims > 0 ? (*lab)->dims[0] : 1;
    if (c != *n)
        return fail(err, NF_EINTERNAL, "label output '%s' has shape %s, expected one label per row", (*lab)->name,
                    fmt_shape(shape, sizeof shape, (*lab)->n_dims, (*lab)->dims));
    *sc = NULL;
    if (cls->score_output >= 0 && cls->score_output < n_outs) {
        int64_t want;
        *sc = &outs[cls->score_output];
        if ((rc = check_out(*sc, &c, err)) != 0)
            return rc;
        if (__builtin_mul_overflow(*n, (int64_t)cls->n_labels, &want) || c != want)
            return fail(err, NF_EINTERNAL, "score output '%s' has shape %s, expected [%lld, %d]", (*sc)->name,
                        fmt_shape(shape, sizeof shape, (*sc)->n_dims, (*sc)->dims), (long long)*n, cls->n_labels);
    }
    return 1;
}

static int label_key(nf_buf *b, const nf_classes *cls, int j)
{
    if (cls->strs)
        return nf_json_str(b, cls->strs[j] ? cls->strs[j] : "", cls->strs[j] ? strlen(cls->strs[j]) : 0);
    return nf_buf_printf(b, "\"%lld\"", cls->ints ? (long long)cls->ints[j] : (long long)j);
}

static int oom(nf_err *err)
{
    return fail(err, NF_ENOMEM, "out of memory for the response");
}

int nf_encode_json(nf_buf *b, const nf_tensor *outs, int n_outs, const nf_classes *cls, const char *version,
                   nf_err *err)
{
    const nf_tensor *lab = NULL, *sc = NULL;
    int64_t n = 0, c;
    if (n_outs < 1)
        return fail(err, NF_EINTERNAL, "the model has no outputs");
    int is_clf = classifier(outs, n_outs, cls, &lab, &sc, &n, err);
    if (is_clf < 0)
        return is_clf;
    if (nf_buf_append(b, "{\"predictions\":", 15) < 0)
        return oom(err);
    if (is_clf) {
        int K = cls->n_labels;
        if (nf_buf_append(b, "[", 1) < 0)
            return oom(err);
        for (int64_t r = 0; r < n; r++) {
            if ((r && nf_buf_append(b, ",", 1) < 0) || nf_buf_append(b, "{\"label\":", 9) < 0 ||
                nf_json_elem(b, lab->dtype, lab->data, r) < 0)
                return oom(err);
            if (sc) {
                if (nf_buf_append(b, ",\"probabilities\":{", 18) < 0)
                    return oom(err);
                for (int j = 0; j < K; j++)
                    if ((j && nf_buf_append(b, ",", 1) < 0) || label_key(b, cls, j) < 0 ||
                        nf_buf_append(b, ":", 1) < 0 || nf_json_elem(b, sc->dtype, sc->data, r * K + j) < 0)
                        return oom(err);
                if (nf_buf_append(b, "}", 1) < 0)
                    return oom(err);
            }
            if (nf_buf_append(b, "}", 1) < 0)
                return oom(err);
        }
        if (nf_buf_append(b, "]", 1) < 0)
            return oom(err);
    } else {
        const nf_tensor *t = &outs[0];
        int rc = check_out(t, &c, err);
        if (rc)
            return rc;
        if (t->n_dims == 2 && t->dims[1] == 1) {
            /* [N, 1]: one number per row, as every regressor client expects. */
            if (nf_buf_append(b, "[", 1) < 0)
                return oom(err);
            for (int64_t r = 0; r < c; r++)
                if ((r && nf_buf_append(b, ",", 1) < 0) || nf_json_elem(b, t->dtype, t->data, r) < 0)
                    return oom(err);
            if (nf_buf_append(b, "]", 1) < 0)
                return oom(err);
        } else if (nf_json_tensor(b, t) < 0) {
            return oom(err);
        }
        if (n_outs > 1) {
            if (nf_buf_append(b, ",\"outputs\":{", 12) < 0)
                return oom(err);
            for (int i = 0; i < n_outs; i++) {
                const char *name = outs[i].name ? outs[i].name : "";
                if ((rc = check_out(&outs[i], &c, err)) != 0)
                    return rc;
                if ((i && nf_buf_append(b, ",", 1) < 0) || nf_json_str(b, name, strlen(name)) < 0 ||
                    nf_buf_append(b, ":", 1) < 0 || nf_json_tensor(b, &outs[i]) < 0)
                    return oom(err);
            }
            if (nf_buf_append(b, "}", 1) < 0)
                return oom(err);
        }
    }
    if (!version)
        version = "";
    if (nf_buf_append(b, ",\"model_version\":", 17) < 0 || nf_json_str(b, version, strlen(version)) < 0 ||
        nf_buf_append(b, "}", 1) < 0)
        return oom(err);
    return 0;
}

int nf_encode_csv(nf_buf *b, const nf_tensor *outs, int n_outs, const nf_classes *cls, nf_err *err)
{
    const nf_tensor *lab = NULL, *sc = NULL;
    int64_t n = 0, c;
    if (n_outs < 1)
        return fail(err, NF_EINTERNAL, "the model has no outputs");
    int is_clf = classifier(outs, n_outs, cls, &lab, &sc, &n, err);
    if (is_clf < 0)
        return is_clf;
    if (is_clf) {
        int K = cls->n_labels;
        for (int64_t r = 0; r < n; r++) {
            if (nf_csv_elem(b, lab->dtype, lab->data, r) < 0)
                return oom(err);
            for (int j = 0; sc && j < K; j++)
                if (nf_buf_append(b, ",", 1) < 0 || nf_csv_elem(b, sc->dtype, sc->data, r * K + j) < 0)
                    return oom(err);
            if (nf_buf_append(b, "\n", 1) < 0)
                return oom(err);
        }
        return 0;
    }
    const nf_tensor *t = &outs[0];
    int rc = check_out(t, &c, err);
    if (rc)
        return rc;
    int64_t rows = t->n_dims > 0 ? t->dims[0] : 1, per = rows > 0 ? c / rows : 0;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t j = 0; j < per; j++)
            if ((j && nf_buf_append(b, ",", 1) < 0) || nf_csv_elem(b, t->dtype, t->data, r * per + j) < 0)
                return oom(err);
        if (nf_buf_append(b, "\n", 1) < 0)
            return oom(err);
    }
    return 0;
}
