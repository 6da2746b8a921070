/*
 * test_route.c: every route, content type, Accept and error status through
 * nf_route on two real models: models/default.onnx (RandomForestRegressor,
 * input "input" float32 [N, 10], output "variable" float32 [N, 1]) and
 * tests/models/sk_rf_clf_str/model.onnx (iris classifier, string labels).
 * Run from the repository root. Every JSON body must parse; the expected
 * numbers come from tools/onnx_ml_ref.py on the same rows.
 */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "../../fcgi/app.h"
#include "../../fcgi/codec.h"
#include "harness.h"

#define ZERO10 "0,0,0,0,0,0,0,0,0,0"
/* load_diabetes() row 0 (as float32): reference prediction 175.48 */
#define ROW0 "0.0380759053,0.0506801195,0.0616962053,0.0218723863,-0.0442234986,-0.0348207615,-0.0434008464,-0.00259226211,0.0199074857,-0.0176461246"
#define SETOSA "5.1,3.5,1.4,0.2"
#define VIRGINICA "6.7,3.0,5.2,2.3"

enum { REG, CLF };

/* Counting allocator hook: every malloc-family call of the process (json-c
 * and the core included) goes through these and on to glibc's __libc_*
 * (which valgrind still intercepts). Not under ASan, which owns malloc. */
#ifndef __SANITIZE_ADDRESS__
#define NF_COUNT_ALLOCS 1
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);
static long n_allocs, n_live; /* calls that allocated; blocks outstanding */

void *malloc(size_t n)
{
    void *p = __libc_malloc(n);
    if (p)
        n_allocs++, n_live++;
    return p;
}

void *calloc(size_t a, size_t b)
{
    void *p = __libc_calloc(a, b);
    if (p)
        n_allocs++, n_live++;
    return p;
}

void *realloc(void *q, size_t n)
{
    void *p = __libc_realloc(q, n);
    if (p)
        n_allocs++;
    if (!q && p)
        n_live++;
    else if (q && n == 0 && !p)
        n_live--;
    return p;
}

int posix_memalign(void **out, size_t align, size_t n)
{
    void *p = __libc_memalign(align, n);
    if (!p)
        return 12; /* ENOMEM */
    n_allocs++, n_live++;
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t n)
{
    void *p = __libc_memalign(align, n);
    if (p)
        n_allocs++, n_live++;
    return p;
}

void free(void *p)
{
    if (p)
        n_live--;
    __libc_free(p);
}
#endif

static const struct rcase {
    const char *name;
    int app;
    const char *method, *path, *ctype, *accept, *body;
    int status;
    const char *want_ct;
    const char *frag[4]; /* must all appear in the body */
    const char *absent;  /* must not appear */
    long rows;
    const char *error_code;
} cases[] = {
    {"GET /ping", REG, "GET", "/ping", NULL, NULL, NULL, 200, "application/json", {"{\"status\":\"ok\"}"}, NULL, 0, NULL},
    {"HEAD /ping", REG, "HEAD", "/ping", NULL, NULL, NULL, 200, "application/json", {NULL}, "status", 0, NULL},
    {"POST /ping", REG, "POST", "/ping", NULL, NULL, "{}", 405, "application/json",
     {"\"code\":\"method_not_allowed\"", "method POST is not allowed for /ping; allowed: GET, HEAD"}, NULL, 0,
     "method_not_allowed"},
    {"GET /models", REG, "GET", "/models", NULL, NULL, NULL, 200, "application/json",
     {"{\"name\":\"diabetes-rf\",\"version\":\"1\",\"platform\":\"onnx\",\"producer\":\"nginfer-sk2onnx 1\"",
      "\"inputs\":[{\"name\":\"input\",\"datatype\":\"float32\",\"shape\":[-1,10]}]",
      "\"outputs\":[{\"name\":\"variable\",\"datatype\":\"float32\",\"shape\":[-1,1]}]"},
     "classes", 0, NULL},
    {"GET /models/<name>", REG, "GET", "/models/diabetes-rf", NULL, NULL, NULL, 200, "application/json",
     {"\"name\":\"diabetes-rf\""}, NULL, 0, NULL},
    {"GET /metadata", REG, "GET", "/metadata", NULL, NULL, NULL, 200, "application/json", {"\"platform\":\"onnx\""},
     NULL, 0, NULL},
    {"HEAD /models", REG, "HEAD", "/models", NULL, NULL, NULL, 200, "application/json", {NULL}, "name", 0, NULL},
    {"GET /models/<other>", REG, "GET", "/models/other", NULL, NULL, NULL, 404, "application/json",
     {"model 'other' not found", "'diabetes-rf'"}, NULL, 0, "not_found"},
    {"GET /models/<name>/x", REG, "GET", "/models/diabetes-rf/x", NULL, NULL, NULL, 404, "application/json",
     {"no route for /models/diabetes-rf/x"}, NULL, 0, "not_found"},
    {"DELETE /models", REG, "DELETE", "/models", NULL, NULL, NULL, 405, "application/json", {"allowed: GET, HEAD"},
     NULL, 0, "method_not_allowed"},
    {"GET /nope", REG, "GET", "/nope", NULL, NULL, NULL, 404, "application/json",
     {"\"code\":\"not_found\"", "no route for /nope"}, NULL, 0, "not_found"},
    {"GET /invocations", REG, "GET", "/invocations", NULL, NULL, NULL, 405, "application/json",
     {"method GET is not allowed for /invocations; allowed: POST"}, NULL, 0, "method_not_allowed"},

    {"json instances", REG, "POST", "/invocations", "application/json", NULL,
     "{\"instances\": [[" ZERO10 "], [" ROW0 "]]}", 200, "application/json",
     {"{\"predictions\":[132.5", ",175.4", "],\"model_version\":\"1\"}"}, "outputs", 2, NULL},
    {"json features on /predict", REG, "POST", "/predict", "application/json", NULL,
     "{\"features\": [" ROW0 "]}", 200, "application/json", {"{\"predictions\":[175.4"}, NULL, 1, NULL},
    {"json charset and case", REG, "POST", "/invocations", "Application/JSON; charset=utf-8", NULL,
     "{\"features\": [" ZERO10 "]}", 200, "application/json", {"[132.5"}, NULL, 1, NULL},
    {"json no content type", REG, "POST", "/invocations", NULL, NULL, "{\"features\": [" ZERO10 "]}", 200,
     "application/json", {"[132.5"}, NULL, 1, NULL},
    {"json named inputs", REG, "POST", "/invocations", "application/json", NULL,
     "{\"inputs\": {\"input\": [[" ROW0 "], [" ZERO10 "]]}}", 200, "application/json", {"[175.4", ",132.5"}, NULL, 2,
     NULL},
    {"json inputs list", REG, "POST", "/invocations", "application/json", NULL, "{\"inputs\": [[" ZERO10 "]]}", 200,
     "application/json", {"[132.5"}, NULL, 1, NULL},
    {"json null is NaN", REG, "POST", "/invocations", "application/json", NULL,
     "{\"features\": [null,0,0,0,0,0,0,0,0,0]}", 200, "application/json", {"{\"predictions\":["}, NULL, 1, NULL},
    {"csv body", REG, "POST", "/invocations", "text/csv", NULL, ZERO10 "\r\n" ROW0, 200, "application/json",
     {"{\"predictions\":[132.5", ",175.4"}, NULL, 2, NULL},
    {"csv body, csv answer", REG, "POST", "/invocations", "text/csv", "text/csv", ROW0 "\n" ZERO10 "\n", 200,
     "text/csv", {"175.4", "\n132.5"}, "{", 2, NULL},
    {"jsonlines", REG, "POST", "/invocations", "application/jsonlines", NULL, "[" ZERO10 "]\n\n[" ROW0 "]\n", 200,
     "application/json", {"[132.5", ",175.4"}, NULL, 2, NULL},
    {"jsonl", REG, "POST", "/invocations", "application/jsonl", NULL, "[" ZERO10 "]", 200, "application/json",
     {"[132.5"}, NULL, 1, NULL},
    {"x-jsonlines", REG, "POST", "/invocations", "application/x-jsonlines", NULL, "{\"features\": [" ZERO10 "]}", 200,
     "application/json", {"[132.5"}, NULL, 1, NULL},
    {"accept */*", REG, "POST", "/invocations", "text/csv", "*/*", ZERO10, 200, "application/json", {"[132.5"}, NULL,
     1, NULL},
    {"accept text/*", REG, "POST", "/invocations", "text/csv", "text/*", ZERO10, 200, "text/csv", {"132.5"}, "[", 1,
     NULL},
    {"accept q-values", REG, "POST", "/invocations", "text/csv", "text/csv;q=0.5, application/json", ZERO10, 200,
     "application/json", {"[132.5"}, NULL, 1, NULL},
    {"accept order", REG, "POST", "/invocations", "text/csv", "text/csv, */*", ZERO10, 200, "text/csv", {"132.5"},
     NULL, 1, NULL},
    {"accept empty", REG, "POST", "/invocations", "text/csv", "", ZERO10, 200, "application/json", {"[132.5"}, NULL, 1,
     NULL},

    {"406 accept xml", REG, "POST", "/invocations", "text/csv", "application/xml", ZERO10, 406, "application/json",
     {"\"code\":\"not_acceptable\"", "application/xml", "text/csv"}, NULL, 0, "not_acceptable"},
    {"406 accept q=0", REG, "POST", "/invocations", "text/csv", "text/csv;q=0", ZERO10, 406, "application/json",
     {"not_acceptable"}, NULL, 0, "not_acceptable"},
    {"415 text/plain", REG, "POST", "/invocations", "text/plain", NULL, ZERO10, 415, "application/json",
     {"\"code\":\"unsupported_media_type\"", "'text/plain'", "application/json, text/csv or application/jsonlines"},
     NULL, 0, "unsupported_media_type"},
    {"form-urlencoded JSON body (curl -d)", REG, "POST", "/invocations", "application/x-www-form-urlencoded", NULL,
     " {\"features\": [" ZERO10 "]}", 200, "application/json", {"\"predictions\":["}, NULL, 1, NULL},
    {"415 form-urlencoded form body", REG, "POST", "/invocations", "application/x-www-form-urlencoded", NULL,
     "a=1&b=2", 415, "application/json", {"\"code\":\"unsupported_media_type\""}, NULL, 0,
     "unsupported_media_type"},
    {"400 empty body", REG, "POST", "/invocations", "application/json", NULL, " \n", 400, "application/json",
     {"\"code\":\"bad_request\"", "empty"}, NULL, 0, "bad_request"},
    {"400 json syntax", REG, "POST", "/invocations", "application/json", NULL, "{\"features\": [1,\n 2,,3]}", 400,
     "application/json", {"line 2, column 4"}, NULL, 0, "bad_request"},
    {"400 csv field", REG, "POST", "/invocations", "text/csv", NULL, ZERO10 "\n0,0,x,0,0,0,0,0,0,0\n", 400,
     "application/json", {"row 2, field 3: 'x' is not a number"}, NULL, 0, "bad_request"},
    {"400 jsonl line", REG, "POST", "/invocations", "application/jsonlines", NULL, "[" ZERO10 "]\n[1,2", 400,
     "application/json", {"line 2, column"}, NULL, 0, "bad_request"},
    {"422 feature count", REG, "POST", "/invocations", "application/json", NULL,
     "{\"instances\": [[" ZERO10 "], [1,2,3,4,5,6,7,8,9]]}", 422, "application/json",
     {"\"code\":\"invalid_input\"", "row 2 has 9 features, expected 10"}, NULL, 0, "invalid_input"},
    {"422 string feature", REG, "POST", "/invocations", "application/json", NULL,
     "{\"features\": [0,\"a\",0,0,0,0,0,0,0,0]}", 422, "application/json",
     {"row 1, field 2: expected a number, got a string"}, NULL, 0, "invalid_input"},
    {"422 csv feature count", REG, "POST", "/invocations", "text/csv", NULL, "1,2,3", 422, "application/json",
     {"row 1 has 3 features, expected 10"}, NULL, 0, "invalid_input"},
    {"422 named dim", REG, "POST", "/invocations", "application/json", NULL, "{\"inputs\": {\"input\": [[1,2,3,4]]}}",
     422, "application/json", {"input 'input': dim 1 is 4, expected 10"}, NULL, 0, "invalid_input"},
    {"422 unknown input", REG, "POST", "/invocations", "application/json", NULL,
     "{\"inputs\": {\"input\": [[" ZERO10 "]], \"x\": [1]}}", 422, "application/json", {"unknown input 'x'"}, NULL, 0,
     "invalid_input"},
    {"422 no known key", REG, "POST", "/invocations", "application/json", NULL, "{\"data\": [1]}", 422,
     "application/json", {"\\\"instances\\\""}, NULL, 0, "invalid_input"},
    {"413 rows", REG, "POST", "/invocations", "text/csv", NULL,
     ZERO10 "\n" ZERO10 "\n" ZERO10 "\n" ZERO10 "\n" ZERO10 "\n" ZERO10 "\n", 413, "application/json",
     {"\"code\":\"payload_too_large\"", "more than 5 rows"}, NULL, 0, "payload_too_large"},
    {"413 json rows", REG, "POST", "/invocations", "application/json", NULL,
     "[[" ZERO10 "],[" ZERO10 "],[" ZERO10 "],[" ZERO10 "],[" ZERO10 "],[" ZERO10 "]]", 413, "application/json",
     {"more than 5 rows"}, NULL, 0, "payload_too_large"},
    {"rows at the limit", REG, "POST", "/invocations", "text/csv", "text/csv",
     ZERO10 "\n" ZERO10 "\n" ZERO10 "\n" ZERO10 "\n" ZERO10 "\n", 200, "text/csv", {"132.5"}, NULL, 5, NULL},

    {"clf GET /models", CLF, "GET", "/models", NULL, NULL, NULL, 200, "application/json",
     {"\"name\":\"sk_rf_clf_str\"", "\"outputs\":[{\"name\":\"label\",\"datatype\":\"string\",\"shape\":[-1]},"
                                    "{\"name\":\"probabilities\",\"datatype\":\"float32\",\"shape\":[-1,3]}]",
      "\"classes\":[\"setosa\",\"versicolor\",\"virginica\"]}"},
     NULL, 0, NULL},
    {"clf json", CLF, "POST", "/invocations", "application/json", NULL,
     "{\"instances\": [[" SETOSA "], [" VIRGINICA "]]}", 200, "application/json",
     {"{\"predictions\":[{\"label\":\"setosa\",\"probabilities\":{\"setosa\":",
      "{\"label\":\"virginica\",\"probabilities\":{\"setosa\":0,\"versicolor\":0.1",
      "}}],\"model_version\":\"1\"}"},
     "outputs", 2, NULL},
    {"clf csv", CLF, "POST", "/invocations", "text/csv", "text/csv", SETOSA "\n" VIRGINICA "\n", 200, "text/csv",
     {"setosa,", "\nvirginica,0,0.1"}, "{", 2, NULL},
    {"clf 422 width", CLF, "POST", "/invocations", "text/csv", NULL, ZERO10, 422, "application/json",
     {"row 1 has 10 features, expected 4"}, NULL, 0, "invalid_input"},
};

static int init_app(nf_app *app, nf_config *cfg, const char *model, const char *cfg_path)
{
    static char empty[] = "";
    memset(cfg, 0, sizeof *cfg);
    cfg->path = (char *)cfg_path;
    cfg->model = (char *)model;
    cfg->model_name = empty;
    cfg->model_version = empty;
    cfg->max_rows = 5;
    cfg->max_body_bytes = 1 << 20;
    cfg->threads = 1;
    cfg->warmup = 1;
    nf_err err = {0};
    int rc = nf_app_init(app, cfg, &err);
    T_CHECK(model, rc == 0 && app->ready, "nf_app_init: %d %s", rc, err.msg);
    return rc;
}

/* The body as a C string (copied: the next request reuses app->out). */
static char *route(nf_app *app, const char *method, const char *path, const char *ct, const char *acc,
                   const char *body, nf_resp *resp)
{
    nf_req req = {.method = method, .path = path, .content_type = ct, .accept = acc, .body = body,
                  .body_len = body ? strlen(body) : 0};
    nf_route(app, &req, resp);
    char *s = malloc(resp->body->len + 1);
    memcpy(s, resp->body->p ? resp->body->p : "", resp->body->len);
    s[resp->body->len] = 0;
    return s;
}

static int valid_json(const char *s)
{
    json_object *o = json_tokener_parse(s);
    int ok = o != NULL;
    json_object_put(o);
    return ok;
}

static void run_cases(nf_app *apps)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct rcase *c = &cases[i];
        nf_app *app = &apps[c->app];
        if (!app->ready) {
            printf("FAIL %s: model not loaded\n", c->name);
            nf_t_failed++;
            continue;
        }
        nf_resp resp;
        char *body = route(app, c->method, c->path, c->ctype, c->accept, c->body, &resp);
        int ok = resp.status == c->status && resp.content_type && strcmp(resp.content_type, c->want_ct) == 0;
        const char *missing = NULL;
        for (int f = 0; f < 4 && c->frag[f]; f++)
            if (!strstr(body, c->frag[f]) && !missing)
                missing = c->frag[f];
        int absent_ok = !c->absent || !strstr(body, c->absent);
        int json_ok = strcmp(c->want_ct, "application/json") != 0 || strcmp(c->method, "HEAD") == 0 || valid_json(body);
        int meta_ok = resp.rows == c->rows && ((!resp.error_code && !c->error_code) ||
                                               (resp.error_code && c->error_code && !strcmp(resp.error_code, c->error_code)));
        T_CHECK(c->name, ok && !missing && absent_ok && json_ok && meta_ok,
                "status %d (want %d), type %s, missing '%s', absent %s, json %d, rows %ld, code %s; body: %.600s",
                resp.status, c->status, resp.content_type ? resp.content_type : "(null)", missing ? missing : "",
                absent_ok ? "ok" : c->absent, json_ok, resp.rows, resp.error_code ? resp.error_code : "-", body);
        free(body);
    }
}

/* The same row alone and inside a batch gives the same number, in JSON
 * and in CSV: rows are one batch, not confused with each other. */
static void check_batch_consistency(nf_app *app)
{
    nf_resp resp;
    char *one = route(app, "POST", "/invocations", "text/csv", "text/csv", ROW0, &resp);
    char *many = route(app, "POST", "/invocations", "text/csv", "text/csv", ZERO10 "\n" ROW0 "\n" ZERO10, &resp);
    char *second = strchr(many, '\n');
    T_CHECK("batch row equals single row", second && strncmp(second + 1, one, strlen(one)) == 0, "'%s' vs '%s'", one,
            many);
    char *js = route(app, "POST", "/invocations", NULL, NULL, "{\"features\": [" ROW0 "]}", &resp);
    char want[64];
    snprintf(want, sizeof want, "[%.*s]", (int)strcspn(one, "\n"), one);
    T_CHECK("json number equals csv number", strstr(js, want) != NULL, "'%s' lacks '%s'", js, want);
    free(one);
    free(many);
    free(js);
}

/* A steady stream of the same request allocates nothing that outlives it
 * and the reused buffers stop growing; CSV and JSON rows (no json-c tree:
 * codec.c's fast path) allocate nothing at all once the first request of
 * their shape has been served. */
static void check_steady_heap(nf_app *app)
{
#ifdef NF_COUNT_ALLOCS
    nf_resp resp;
    const char *json = "{\"instances\": [[" ZERO10 "], [" ROW0 "]]}", *csv = ZERO10 "\n" ROW0 "\n";
    const char *tree = "{\"inputs\": [[" ZERO10 "], [" ROW0 "]]}"; /* the json-c path */
    nf_req jreq = {.method = "POST", .path = "/invocations", .body = json, .body_len = strlen(json)};
    nf_req treq = {.method = "POST", .path = "/invocations", .body = tree, .body_len = strlen(tree)};
    nf_req creq = {.method = "POST", .path = "/invocations", .content_type = "text/csv", .accept = "text/csv",
                   .body = csv, .body_len = strlen(csv)};
    nf_route(app, &jreq, &resp);
    nf_route(app, &creq, &resp);
    size_t cap = app->out.cap, in_cap = app->inputs[0].buf.cap;
    long live = n_live, allocs = n_allocs;
    for (int i = 0; i < 50; i++)
        nf_route(app, &jreq, &resp);
    T_CHECK("json requests leak nothing", n_live == live && app->out.cap == cap && app->inputs[0].buf.cap == in_cap &&
                                              resp.status == 200,
            "blocks outstanding %ld -> %ld, out cap %zu -> %zu", live, n_live, cap, app->out.cap);
    T_CHECK("json rows requests allocate nothing", n_allocs == allocs, "%ld allocations in 50 requests",
            n_allocs - allocs);
    live = n_live;
    for (int i = 0; i < 50; i++)
        nf_route(app, &treq, &resp);
    T_CHECK("json inputs requests leak nothing", n_live == live && resp.status == 200,
            "blocks outstanding %ld -> %ld", live, n_live);
    /* json-c's tree is the one per-request allocation: proves the hook sees calls. */
    T_CHECK("allocation hook counts", n_allocs > allocs, "no allocation seen in 50 JSON requests");
    allocs = n_allocs;
    for (int i = 0; i < 50; i++)
        nf_route(app, &creq, &resp);
    T_CHECK("csv requests allocate nothing", n_allocs == allocs && resp.status == 200,
            "%ld allocations in 50 requests", n_allocs - allocs);
#else
    (void)app;
    printf("SKIP allocation counts: the sanitizer owns malloc\n");
#endif
}

/* Classifier probabilities as numbers (reference: setosa row 1, 0, 0;
 * virginica row 0, 0.1, 0.9). */
static void check_probabilities(nf_app *app)
{
    static const double want[2][3] = {{1, 0, 0}, {0, 0.1, 0.9}};
    static const char *names[3] = {"setosa", "versicolor", "virginica"};
    nf_resp resp;
    char *b = route(app, "POST", "/invocations", NULL, NULL, "{\"instances\": [[" SETOSA "], [" VIRGINICA "]]}", &resp);
    json_object *o = json_tokener_parse(b), *preds;
    int ok = o && json_object_object_get_ex(o, "predictions", &preds) && json_object_array_length(preds) == 2;
    for (int r = 0; ok && r < 2; r++) {
        json_object *p, *pr;
        ok = json_object_object_get_ex(json_object_array_get_idx(preds, (size_t)r), "probabilities", &pr);
        for (int j = 0; ok && j < 3; j++) {
            ok = json_object_object_get_ex(pr, names[j], &p);
            double d = ok ? json_object_get_double(p) : -1, diff = d - want[r][j];
            ok = ok && diff < 1e-5 && diff > -1e-5;
        }
    }
    T_CHECK("classifier probabilities", ok, "body %s", b);
    json_object_put(o);
    free(b);
}

static void check_errors(nf_app *app)
{
    nf_resp resp;
    nf_resp_error(app, &resp, 400, "bad_request", "quote \" backslash \\ newline \n tab \t byte \xff end");
    json_object *o = json_tokener_parse(app->out.p), *e, *m;
    const char *msg = o && json_object_object_get_ex(o, "error", &e) && json_object_object_get_ex(e, "message", &m)
                          ? json_object_get_string(m)
                          : NULL;
    T_CHECK("error message escaped", msg && strcmp(msg, "quote \" backslash \\ newline \n tab \t byte \xef\xbf\xbd end") == 0 &&
                                         resp.status == 400 && strcmp(resp.error_code, "bad_request") == 0,
            "body %s", app->out.p);
    json_object_put(o);

    /* Not ready: /ping and /invocations say 503, nothing is run. */
    app->ready = 0;
    char *b1 = route(app, "GET", "/ping", NULL, NULL, NULL, &resp);
    int s1 = resp.status;
    char *b2 = route(app, "POST", "/invocations", NULL, NULL, "{\"features\": [" ZERO10 "]}", &resp);
    T_CHECK("503 when not ready", s1 == 503 && resp.status == 503 && strstr(b1, "\"code\":\"not_ready\"") != NULL &&
                                      strcmp(resp.error_code, "not_ready") == 0,
            "status %d %d: %s", s1, resp.status, b2);
    free(b1);
    free(b2);
    app->ready = 1;
}

static void check_init(void)
{
    nf_app app;
    nf_config cfg = {0};
    nf_err err = {0};
    static char empty[] = "", custom[] = "custom", v7[] = "7";
    cfg.model = (char *)"models/nope.onnx";
    cfg.model_name = empty;
    cfg.model_version = empty;
    int rc = nf_app_init(&app, &cfg, &err);
    T_CHECK("init names the missing file", rc != 0 && strncmp(err.msg, "models/nope.onnx: ", 18) == 0 && !app.ready,
            "rc %d: %s", rc, err.msg);

    /* A relative model is relative to the config file's directory; names
     * and versions from the config win over the model's. */
    cfg.path = (char *)"conf/nginfer.cfg";
    cfg.model = (char *)"../models/default.onnx";
    cfg.model_name = custom;
    cfg.model_version = v7;
    cfg.warmup = 0;
    rc = nf_app_init(&app, &cfg, &err);
    T_CHECK("init relative to config", rc == 0 && app.ready && strcmp(app.model_name, "custom") == 0 &&
                                           strcmp(app.model_version, "7") == 0 && app.n_features == 10 &&
                                           app.classes.n_labels == 0,
            "rc %d: %s", rc, err.msg);
    if (rc == 0) {
        nf_resp resp;
        char *b = route(&app, "GET", "/models/custom", NULL, NULL, NULL, &resp);
        T_CHECK("configured name served", resp.status == 200 && strstr(b, "\"name\":\"custom\",\"version\":\"7\""),
                "%d %s", resp.status, b);
        free(b);
        nf_app_fini(&app);
    }
}

int main(void)
{
    static nf_app apps[2];
    static nf_config cfgs[2];
    check_init();
    int r0 = init_app(&apps[REG], &cfgs[REG], "models/default.onnx", NULL);
    int r1 = init_app(&apps[CLF], &cfgs[CLF], "tests/models/sk_rf_clf_str/model.onnx", NULL);
    if (r0 == 0) {
        T_CHECK("regressor facts", apps[REG].n_features == 10 && apps[REG].classes.n_labels == 0 &&
                                       strcmp(apps[REG].model_name, "diabetes-rf") == 0 && apps[REG].load_ms >= 0 &&
                                       apps[REG].warmup_ms >= 0,
                "n_features %d, name %s", apps[REG].n_features, apps[REG].model_name);
    }
    if (r1 == 0)
        T_CHECK("classifier facts", apps[CLF].n_features == 4 && apps[CLF].classes.n_labels == 3,
                "n_features %d, labels %d", apps[CLF].n_features, apps[CLF].classes.n_labels);
    run_cases(apps);
    if (r1 == 0)
        check_probabilities(&apps[CLF]);
    if (r0 == 0) {
        check_batch_consistency(&apps[REG]);
        check_steady_heap(&apps[REG]);
        check_errors(&apps[REG]);
    }
    nf_app_fini(&apps[REG]);
    nf_app_fini(&apps[CLF]);
    return T_DONE();
}
