/*
 * route.c: one request in, one response out, and the app's life cycle.
 *
 * nf_route maps method and path to a handler, Content-Type to a decoder and
 * Accept to an encoder; status_of() is the one place where codec and core
 * status codes become HTTP statuses. nf_app_init loads the model, resolves
 * its name and version, builds the GET /models answer once and warms up.
 * Invariant: after nf_route, resp->body is app->out and holds a complete
 * answer (JSON error on any failure); nothing is allocated per request
 * beyond json-c's parse tree, every buffer hangs off the app.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "app.h"
#include "codec.h"

static const char CT_JSON[] = "application/json";
static const char CT_CSV[] = "text/csv";

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- errors ------------------------------------------------------------ */

void nf_resp_error(nf_app *app, nf_resp *resp, int status, const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    nf_buf *b = &app->out;
    nf_buf_reset(b);
    /* Out of memory here leaves a short body; the status still tells. */
    if (nf_buf_append(b, "{\"error\":{\"code\":", 17) == 0 && nf_json_str(b, code, strlen(code)) == 0 &&
        nf_buf_append(b, ",\"message\":", 11) == 0 && nf_json_str(b, msg, strlen(msg)) == 0)
        nf_buf_append(b, "}}", 2);
    resp->status = status;
    resp->content_type = CT_JSON;
    resp->body = b;
    resp->rows = 0;
    resp->error_code = code;
}

/* Codec and core status -> HTTP status and error code word. Request-caused
 * codes are 4xx; everything else is our fault or the model's: 500. */
static int status_of(int code, const char **word)
{
    switch (code) {
    case NF_ESYNTAX: *word = "bad_request"; return 400;
    case NF_ELIMIT: *word = "payload_too_large"; return 413;
    case NF_ESHAPE:
    case NF_EINVAL: *word = "invalid_input"; return 422;
    default: *word = "internal"; return 500;
    }
}

static void resp_nf_err(nf_app *app, nf_resp *resp, const char *prefix, const nf_err *e)
{
    const char *word;
    int status = status_of(e->code, &word);
    nf_resp_error(app, resp, status, word, "%s%s", prefix, e->msg);
}

/* ---- media types -------------------------------------------------------- */

static int is_ws(char c)
{
    return c == ' ' || c == '\t';
}

/* Trims s[0..*n) of spaces and tabs; returns the new start. */
static const char *trim(const char *s, size_t *n)
{
    while (*n && is_ws(*s))
        s++, (*n)--;
    while (*n && is_ws(s[*n - 1]))
        (*n)--;
    return s;
}

/* route-local: a Content-Type whose body is sniffed (see body_format) */
#define NF_FMT_FORM 100

static int media_eq(const char *s, size_t n, const char *type)
{
    return strlen(type) == n && strncasecmp(s, type, n) == 0;
}

/* Body format from Content-Type: parameters (charset) ignored, media type
 * compared case-insensitively, missing or empty = JSON. 0 = unsupported. */
static int body_format(const char *ct)
{
    if (!ct)
        return NF_FMT_JSON;
    size_t n = strcspn(ct, ";");
    const char *s = trim(ct, &n);
    if (n == 0 || media_eq(s, n, "application/json"))
        return NF_FMT_JSON;
    if (media_eq(s, n, "text/csv"))
        return NF_FMT_CSV;
    if (media_eq(s, n, "application/jsonlines") || media_eq(s, n, "application/jsonl") ||
        media_eq(s, n, "application/x-jsonlines"))
        return NF_FMT_JSONL;
    /* `curl -d '{...}'` labels every body form-urlencoded; a form body
     * never starts with '{' or '[', so such a body is read as JSON (see
     * body_sniff) rather than refused */
    if (media_eq(s, n, "application/x-www-form-urlencoded"))
        return NF_FMT_FORM;
    return 0;
}

/* For NF_FMT_FORM: JSON when the body's first non-blank byte opens an
 * object or array, else 0 (415). */
static int body_sniff(const char *body, size_t len)
{
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
        i++;
    return (i < len && (body[i] == '{' || body[i] == '[')) ? NF_FMT_JSON : 0;
}

/* Response format from Accept (RFC 9110 12.5.1): each offered type gets the
 * q of its most specific matching range (exact > type/x > x/x); the
 * highest q wins, ties go to the range listed first, then to JSON. Missing
 * or empty = JSON; 0 = nothing we can produce. */
static int accept_format(const char *acc)
{
    static const struct {
        int fmt;
        const char *type, *group;
    } offers[] = {{NF_OUT_JSON, "application/json", "application/*"}, {NF_OUT_CSV, "text/csv", "text/*"}};
    double q[2] = {-1, -1};
    int spec[2] = {-1, -1}, pos[2] = {0, 0};
    if (!acc)
        return NF_OUT_JSON;
    const char *p = acc;
    int item = 0, any = 0;
    while (*p) {
        size_t len = strcspn(p, ",");
        const char *end = p + len;
        size_t tn = strcspn(p, ";,");
        const char *t = trim(p, &tn);
        double iq = 1.0;
        /* parameters: only q matters */
        for (const char *a = p + strcspn(p, ";,"); a < end && *a == ';';) {
            a++;
            size_t pn = strcspn(a, ";,");
            const char *pp = trim(a, &pn);
            if (pn >= 2 && (pp[0] == 'q' || pp[0] == 'Q') && pp[1] == '=') {
                iq = strtod(pp + 2, NULL);
                if (!(iq >= 0))
                    iq = 0;
                if (iq > 1)
                    iq = 1;
            }
            a += strcspn(a, ";,");
        }
        if (tn > 0) {
            any = 1;
            for (int o = 0; o < 2; o++) {
                int s = media_eq(t, tn, offers[o].type) ? 2
                        : media_eq(t, tn, offers[o].group) ? 1
                        : media_eq(t, tn, "*/*")            ? 0
                                                            : -1;
                if (s > spec[o]) {
                    spec[o] = s;
                    q[o] = iq;
                    pos[o] = item;
                }
            }
        }
        item++;
        p = *end ? end + 1 : end;
    }
    if (!any)
        return NF_OUT_JSON;
    int best = 0;
    if (q[1] > q[0] || (q[1] == q[0] && spec[1] >= 0 && pos[1] < pos[0]))
        best = 1;
    return q[best] > 0 ? offers[best].fmt : 0;
}

/* ---- handlers ----------------------------------------------------------- */

static void ok(nf_app *app, nf_resp *resp, const char *ct)
{
    resp->status = 200;
    resp->content_type = ct;
    resp->body = &app->out;
    resp->error_code = NULL;
}

static int only_ws(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
            return 0;
    return 1;
}

static void invoke(nf_app *app, const nf_req *req, nf_resp *resp)
{
    nf_err err = {0};
    int out_fmt = accept_format(req->accept);
    if (!out_fmt) {
        nf_resp_error(app, resp, 406, "not_acceptable", "cannot answer in '%.100s'; accepted: application/json, text/csv",
                      req->accept);
        return;
    }
    int fmt = body_format(req->content_type);
    if (fmt == NF_FMT_FORM)
        fmt = body_sniff(req->body ? req->body : "", req->body_len);
    if (!fmt) {
        nf_resp_error(app, resp, 415, "unsupported_media_type",
                      "content type '%.100s' is not supported; use application/json, text/csv or application/jsonlines",
                      req->content_type);
        return;
    }
    if (!req->body || only_ws(req->body, req->body_len)) {
        nf_resp_error(app, resp, 400, "bad_request", "the request body is empty");
        return;
    }
    int n_in = nf_model_n_inputs(app->model), n_out = nf_model_n_outputs(app->model);
    for (int i = 0; i < n_in; i++) {
        app->inputs[i].t = *nf_model_input(app->model, i);
        app->inputs[i].t.data = NULL;
    }
    int64_t rows = 0;
    long max_rows = app->cfg ? app->cfg->max_rows : 0;
    int rc = nf_decode_body(fmt, req->body, req->body_len, app->inputs, n_in, &app->scratch, max_rows, &rows, &err);
    if (rc) {
        resp_nf_err(app, resp, "", &err);
        return;
    }
    /* nf_model_run wants the tensors side by side; the slots interleave
     * them with their buffers. scratch is free again once decoding is done. */
    nf_buf_reset(&app->scratch);
    if (nf_buf_reserve(&app->scratch, (size_t)n_in * sizeof(nf_tensor)) < 0) {
        nf_resp_error(app, resp, 500, "internal", "out of memory");
        return;
    }
    nf_tensor *in = (nf_tensor *)(void *)app->scratch.p;
    for (int i = 0; i < n_in; i++)
        in[i] = app->inputs[i].t;
    rc = nf_model_run(app->model, in, app->outputs, &err);
    if (rc) {
        if (rc == NF_ESHAPE || rc == NF_EINVAL)
            nf_resp_error(app, resp, 422, "invalid_input", "%s", err.msg);
        else
            nf_resp_error(app, resp, 500, "internal", "inference failed: %s", err.msg);
        return;
    }
    nf_buf_reset(&app->out);
    rc = out_fmt == NF_OUT_CSV ? nf_encode_csv(&app->out, app->outputs, n_out, &app->classes, &err)
                               : nf_encode_json(&app->out, app->outputs, n_out, &app->classes, app->model_version, &err);
    if (rc) {
        nf_resp_error(app, resp, 500, "internal", "encoding the answer: %s", err.msg);
        return;
    }
    ok(app, resp, out_fmt == NF_OUT_CSV ? CT_CSV : CT_JSON);
    resp->rows = (long)rows;
}

static void not_ready(nf_app *app, nf_resp *resp)
{
    nf_resp_error(app, resp, 503, "not_ready", "the model is not loaded yet");
}

static void bad_method(nf_app *app, nf_resp *resp, const char *method, const char *path, const char *allowed)
{
    nf_resp_error(app, resp, 405, "method_not_allowed", "method %.20s is not allowed for %.100s; allowed: %s", method,
                  path, allowed);
}

void nf_route(nf_app *app, const nf_req *req, nf_resp *resp)
{
    const char *method = req->method ? req->method : "";
    const char *path = req->path ? req->path : "";
    int head = strcmp(method, "HEAD") == 0, get = head || strcmp(method, "GET") == 0;
    memset(resp, 0, sizeof *resp);
    resp->body = &app->out;
    nf_buf_reset(&app->out);

    if (strcmp(path, "/invocations") == 0 || strcmp(path, "/predict") == 0) {
        if (strcmp(method, "POST") != 0)
            bad_method(app, resp, method, path, "POST");
        else if (!app->ready || !app->model)
            not_ready(app, resp);
        else
            invoke(app, req, resp);
    } else if (strcmp(path, "/ping") == 0) {
        if (!get)
            bad_method(app, resp, method, path, "GET, HEAD");
        else if (!app->ready)
            not_ready(app, resp);
        else if (nf_buf_append(&app->out, "{\"status\":\"ok\"}", 15) == 0)
            ok(app, resp, CT_JSON);
        else
            nf_resp_error(app, resp, 500, "internal", "out of memory");
    } else if (strcmp(path, "/models") == 0 || strcmp(path, "/metadata") == 0 ||
               strncmp(path, "/models/", 8) == 0) {
        const char *name = strncmp(path, "/models/", 8) == 0 ? path + 8 : NULL;
        if (name && strchr(name, '/'))
            nf_resp_error(app, resp, 404, "not_found", "no route for %.100s", path);
        else if (!get)
            bad_method(app, resp, method, path, "GET, HEAD");
        else if (!app->ready)
            not_ready(app, resp);
        else if (name && *name && strcmp(name, app->model_name) != 0)
            nf_resp_error(app, resp, 404, "not_found", "model '%.100s' not found; this worker serves '%s'", name,
                          app->model_name);
        else if (nf_buf_append(&app->out, app->meta_json.p, app->meta_json.len) == 0)
            ok(app, resp, CT_JSON);
        else
            nf_resp_error(app, resp, 500, "internal", "out of memory");
    } else {
        nf_resp_error(app, resp, 404, "not_found",
                      "no route for %.100s; routes: GET /ping, GET /models, GET /metadata, POST /invocations, "
                      "POST /predict",
                      path);
    }
    /* HEAD: same status and type as GET, no body. */
    if (head)
        nf_buf_reset(&app->out);
}

/* ---- life cycle --------------------------------------------------------- */

static char *dup_str(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int nonempty(const char *s)
{
    return s && *s;
}

/* "models/x.onnx" -> "x". */
static char *file_stem(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot > base ? (size_t)(dot - base) : strlen(base);
    return n ? strndup(base, n) : strdup("model");
}

static int tensor_meta(nf_buf *b, const nf_tensor *t)
{
    const char *name = t->name ? t->name : "";
    const char *dt = nf_dtype_name(t->dtype);
    if (nf_buf_append(b, "{\"name\":", 8) < 0 || nf_json_str(b, name, strlen(name)) < 0 ||
        nf_buf_append(b, ",\"datatype\":", 12) < 0 || nf_json_str(b, dt, strlen(dt)) < 0 ||
        nf_buf_append(b, ",\"shape\":[", 10) < 0)
        return -1;
    for (int d = 0; d < t->n_dims; d++)
        if (nf_buf_printf(b, "%s%lld", d ? "," : "", (long long)t->dims[d]) < 0)
            return -1;
    return nf_buf_append(b, "]}", 2);
}

/* The GET /models answer:
 * {"name":..,"version":..,"platform":"onnx","producer":"skl2onnx 1.16.0"|null,
 *  "inputs":[{"name":..,"datatype":"float32","shape":[-1,10]}],"outputs":[..],
 *  "classes":[..] (classifiers only)} */
static int build_meta(nf_app *app)
{
    nf_buf *b = &app->meta_json;
    const nf_model *m = app->model;
    const char *pn = nf_model_meta(m, "producer_name"), *pv = nf_model_meta(m, "producer_version");
    nf_buf_reset(b);
    if (nf_buf_append(b, "{\"name\":", 8) < 0 || nf_json_str(b, app->model_name, strlen(app->model_name)) < 0 ||
        nf_buf_append(b, ",\"version\":", 11) < 0 ||
        nf_json_str(b, app->model_version, strlen(app->model_version)) < 0 ||
        nf_buf_append(b, ",\"platform\":\"onnx\",\"producer\":", 30) < 0)
        return -1;
    if (nonempty(pn)) {
        char prod[256];
        int n = snprintf(prod, sizeof prod, "%s%s%s", pn, nonempty(pv) ? " " : "", nonempty(pv) ? pv : "");
        if (nf_json_str(b, prod, n < (int)sizeof prod ? (size_t)n : sizeof prod - 1) < 0)
            return -1;
    } else if (nf_buf_append(b, "null", 4) < 0) {
        return -1;
    }
    for (int io = 0; io < 2; io++) {
        int n = io ? nf_model_n_outputs(m) : nf_model_n_inputs(m);
        if (nf_buf_append(b, io ? "],\"outputs\":[" : ",\"inputs\":[", io ? 13 : 11) < 0)
            return -1;
        for (int i = 0; i < n; i++)
            if ((i && nf_buf_append(b, ",", 1) < 0) ||
                tensor_meta(b, io ? nf_model_output(m, i) : nf_model_input(m, i)) < 0)
                return -1;
    }
    if (nf_buf_append(b, "]", 1) < 0)
        return -1;
    if (app->classes.n_labels > 0) {
        if (nf_buf_append(b, ",\"classes\":[", 12) < 0)
            return -1;
        for (int j = 0; j < app->classes.n_labels; j++) {
            if (j && nf_buf_append(b, ",", 1) < 0)
                return -1;
            if (app->classes.strs) {
                const char *s = app->classes.strs[j] ? app->classes.strs[j] : "";
                if (nf_json_str(b, s, strlen(s)) < 0)
                    return -1;
            } else if (nf_buf_printf(b, "%lld", app->classes.ints ? (long long)app->classes.ints[j] : (long long)j) < 0) {
                return -1;
            }
        }
        if (nf_buf_append(b, "]", 1) < 0)
            return -1;
    }
    return nf_buf_append(b, "}", 1);
}

/* One inference on zeros: every dynamic dim is 1, numbers are 0, strings
 * "". Fills the same slot buffers requests use, so their first growth
 * happens here too. */
static int warm_up(nf_app *app, nf_err *err)
{
    static char empty[] = "";
    int n_in = nf_model_n_inputs(app->model);
    for (int i = 0; i < n_in; i++) {
        nf_input_slot *s = &app->inputs[i];
        s->t = *nf_model_input(app->model, i);
        int64_t count = 1;
        for (int d = 0; d < s->t.n_dims; d++) {
            if (s->t.dims[d] < 0)
                s->t.dims[d] = 1;
            if (__builtin_mul_overflow(count, s->t.dims[d], &count))
                return nf_err_set(err, NF_EMODEL, "input '%s' is too large", s->t.name);
        }
        size_t esz = s->t.dtype == NF_DT_FLOAT16 ? 2 : nf_codec_elem_size(s->t.dtype), bytes;
        if (esz == 0 || __builtin_mul_overflow((size_t)count, esz, &bytes))
            return nf_err_set(err, NF_EUNSUPPORTED, "input '%s' of type %s cannot be fed", s->t.name,
                              nf_dtype_name(s->t.dtype));
        nf_buf_reset(&s->buf);
        if (nf_buf_reserve(&s->buf, bytes) < 0)
            return nf_err_set(err, NF_ENOMEM, "out of memory for input '%s'", s->t.name);
        if (s->t.dtype == NF_DT_STRING)
            for (int64_t j = 0; j < count; j++)
                ((char **)(void *)s->buf.p)[j] = empty;
        else
            memset(s->buf.p, 0, bytes);
        s->t.data = s->buf.p;
    }
    nf_buf_reset(&app->scratch);
    if (nf_buf_reserve(&app->scratch, (size_t)n_in * sizeof(nf_tensor)) < 0)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    nf_tensor *in = (nf_tensor *)(void *)app->scratch.p;
    for (int i = 0; i < n_in; i++)
        in[i] = app->inputs[i].t;
    return nf_model_run(app->model, in, app->outputs, err);
}

int nf_app_init(nf_app *app, const nf_config *cfg, nf_err *err)
{
    nf_err e = {0};
    int rc;
    char *path = NULL;
    memset(app, 0, sizeof *app);
    app->cfg = cfg;
    if (!cfg || !nonempty(cfg->model))
        return nf_err_set(err, NF_EINVAL, "%s: no model configured", cfg && cfg->path ? cfg->path : "config");
    path = strdup(nf_app_model_path(cfg));
    if (!path)
        return nf_err_set(err, NF_ENOMEM, "out of memory");

    nf_opts opts = {.n_threads = cfg->threads, .max_plans = 0};
    double t0 = now_ms();
    rc = nf_model_load(path, &opts, &app->model, &e);
    app->load_ms = now_ms() - t0;
    if (rc) {
        app->model = NULL;
        rc = nf_err_set(err, rc, "%s: %s", path, e.msg);
        goto fail;
    }
    const nf_model *m = app->model;

    /* Name: config, then metadata_props model_name, graph name, file stem.
     * Version: config, then model metadata, then "1". A ModelProto
     * model_version of 0 is protobuf's "unset", so it does not count. */
    const char *name = nonempty(cfg->model_name)               ? cfg->model_name
                       : nonempty(nf_model_meta(m, "model_name")) ? nf_model_meta(m, "model_name")
                       : nonempty(nf_model_meta(m, "graph_name")) ? nf_model_meta(m, "graph_name")
                                                                   : NULL;
    const char *ver = nf_model_meta(m, "model_version");
    if (nonempty(cfg->model_version))
        ver = cfg->model_version;
    else if (!nonempty(ver) || strcmp(ver, "0") == 0)
        ver = "1";
    app->model_name = name ? dup_str(name) : file_stem(path);
    app->model_version = dup_str(ver);
    if (!app->model_name || !app->model_version) {
        rc = nf_err_set(err, NF_ENOMEM, "%s: out of memory", path);
        goto fail;
    }

    int n_in = nf_model_n_inputs(m), n_out = nf_model_n_outputs(m);
    if (n_in < 1 || n_out < 1) {
        rc = nf_err_set(err, NF_EUNSUPPORTED, "%s: the model has %d inputs and %d outputs; it needs at least one of each",
                        path, n_in, n_out);
        goto fail;
    }
    const nf_tensor *in0 = nf_model_input(m, 0);
    app->n_features = in0->n_dims == 2 && in0->dims[1] > 0 ? (int)in0->dims[1] : 0;
    nf_model_classes(m, &app->classes);
    app->inputs = calloc((size_t)n_in, sizeof *app->inputs);
    app->outputs = calloc((size_t)n_out, sizeof *app->outputs);
    if (!app->inputs || !app->outputs || build_meta(app) < 0) {
        rc = nf_err_set(err, NF_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    if (cfg->warmup) {
        t0 = now_ms();
        rc = warm_up(app, &e);
        app->warmup_ms = now_ms() - t0;
        if (rc) {
            rc = nf_err_set(err, rc, "%s: warm-up: %s", path, e.msg);
            goto fail;
        }
    }
    app->ready = 1;
    free(path);
    return 0;
fail:
    free(path);
    nf_app_fini(app);
    app->cfg = cfg;
    return rc;
}

void nf_app_fini(nf_app *app)
{
    if (app->inputs) {
        int n_in = app->model ? nf_model_n_inputs(app->model) : 0;
        for (int i = 0; i < n_in; i++)
            nf_buf_free(&app->inputs[i].buf);
    }
    free(app->inputs);
    free(app->outputs);
    if (app->model)
        nf_model_free(app->model);
    free(app->model_name);
    free(app->model_version);
    nf_buf_free(&app->meta_json);
    nf_buf_free(&app->out);
    nf_buf_free(&app->scratch);
    memset(app, 0, sizeof *app);
}
