/*
 * main.c: nginfer-lambda, a custom AWS Lambda runtime (provided.al2023)
 * around the same core and nf_route as the FastCGI worker.
 *
 * Init (outside any invocation, as AWS advises): find the model
 * (NGINFER_MODEL, $LAMBDA_TASK_ROOT/model.onnx, /opt/model.onnx,
 * /opt/models/default.onnx), load and warm it, log one JSON line; a failure
 * is posted to /runtime/init/error and the process exits 1. Then the Runtime
 * API loop: GET /next, decode the event (event.c), nf_route, POST the answer
 * to /response or /error. Every buffer is reused, so after the largest
 * event so far an invocation allocates nothing that outlives it.
 * SIGTERM/SIGINT: finish the invocation in flight, exit 0.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../app.h"
#include "../log.h"
#include "event.h"
#include "http.h"

#define API_NEXT "/2018-06-01/runtime/invocation/next"
#define API_INVOCATION "/2018-06-01/runtime/invocation/"
#define API_INIT_ERROR "/2018-06-01/runtime/init/error"
#define CT_JSON_HDR "Content-Type: application/json\r\n"
#define MAX_REQUEST_ID 200

static volatile sig_atomic_t stop_requested;

static void on_term(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: nginfer-lambda [--event FILE]\n"
               "  as a Lambda bootstrap: serves AWS_LAMBDA_RUNTIME_API (host:port)\n"
               "  --event FILE  handle the event in FILE once and print the answer (exit 0),\n"
               "                or the /error body (exit 4); init failures exit 1\n"
               "  model: NGINFER_MODEL, else $LAMBDA_TASK_ROOT/model.onnx, else /opt/model.onnx,\n"
               "         else /opt/models/default.onnx (a layer)\n"
               "  NGINFER_ACCESS_LOG=0 turns off the per-invocation log line\n");
}

/* The runtime's state, one per process. */
typedef struct lambda {
    nf_app app;
    nf_config cfg;
    nf_event ev;
    nf_buf answer; /* what is posted to /response or /error */
    nf_http http;  /* large (read-ahead and head buffers): static storage */
    size_t max_event;
} lambda;

static lambda L;

/* ---- init --------------------------------------------------------------- */

static int is_file(const char *p)
{
    return access(p, R_OK) == 0;
}

/* The model file, in lookup order (see the file header). An explicitly
 * named NGINFER_MODEL is taken as is, so a wrong one fails the load with
 * its own name in the message. 0, or NF_EIO naming every path tried. */
static int find_model(char *out, size_t n, nf_err *err)
{
    const char *env = getenv("NGINFER_MODEL");
    if (env && *env) {
        char abs[PATH_MAX];
        snprintf(out, n, "%s", env[0] != '/' && realpath(env, abs) ? abs : env);
        return 0;
    }
    const char *root = getenv("LAMBDA_TASK_ROOT");
    char task[PATH_MAX];
    snprintf(task, sizeof task, "%s/model.onnx", root && *root ? root : "/var/task");
    const char *tries[] = {task, "/opt/model.onnx", "/opt/models/default.onnx"};
    for (size_t i = 0; i < sizeof tries / sizeof *tries; i++)
        if (is_file(tries[i])) {
            snprintf(out, n, "%s", tries[i]);
            return 0;
        }
    return nf_err_set(err, NF_EIO,
                      "no model: NGINFER_MODEL is not set and none of %s, %s, %s is a readable file "
                      "(put model.onnx in the function package or add the nginfer model layer)",
                      tries[0], tries[1], tries[2]);
}

static int init_app(nf_err *err)
{
    char path[PATH_MAX];
    int rc;
    if ((rc = nf_config_load(&L.cfg, NULL, err)) != 0)
        return rc;
    if ((rc = find_model(path, sizeof path, err)) != 0)
        return rc;
    free(L.cfg.model);
    L.cfg.model = strdup(path);
    if (!L.cfg.model)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    const char *al = getenv("NGINFER_ACCESS_LOG");
    if (al && strcmp(al, "0") == 0)
        L.cfg.access_log = 0;
    /* room for a max_body_bytes body base64-encoded inside an HTTP event */
    L.max_event = (size_t)L.cfg.max_body_bytes * 2 + (1u << 20);
    return nf_app_init(&L.app, &L.cfg, err);
}

/* ---- one invocation ----------------------------------------------------- */

/* Handles one event into L.answer. Returns 0 (post to /response) or 1
 * (post to /error with *error_type). resp is filled for the access log. */
static int handle(const char *bytes, size_t len, nf_resp *resp, const char **error_type)
{
    nf_err err = {0};
    nf_app *app = &L.app;
    nf_event *ev = &L.ev;
    nf_buf_reset(&L.answer);
    *error_type = NULL;
    int rc = nf_event_decode(ev, bytes, len, &err);
    if (rc == NF_ENOMEM)
        nf_resp_error(app, resp, 500, "internal", "%s", err.msg);
    else if (rc)
        nf_resp_error(app, resp, 400, "bad_request", "%s", err.msg);
    else if (ev->req.body_len > (size_t)L.cfg.max_body_bytes)
        nf_resp_error(app, resp, 413, "payload_too_large",
                      "request body of %zu bytes is over the limit of %ld bytes (max_body_bytes)", ev->req.body_len,
                      L.cfg.max_body_bytes);
    else
        nf_route(app, &ev->req, resp);
    if (ev->kind == NF_EV_DIRECT)
        rc = nf_event_direct_answer(&L.answer, resp, ev->single, error_type);
    else
        rc = nf_event_http_answer(&L.answer, resp);
    if (rc < 0) {
        static const char oom[] = "{\"errorMessage\":\"out of memory\",\"errorType\":\"InternalError\",\"stackTrace\":[]}";
        nf_buf_reset(&L.answer);
        *error_type = "InternalError";
        nf_buf_append(&L.answer, oom, sizeof oom - 1);
        return 1;
    }
    return rc;
}

/* ---- the Runtime API loop ----------------------------------------------- */

static void log_err(const char *what, const nf_err *err)
{
    fprintf(stderr, "nginfer-lambda: %s: %s\n", what, err->msg);
}

/* Posts an init failure (best effort: the process exits 1 either way). */
static void post_init_error(const char *msg)
{
    nf_err err = {0};
    nf_buf b = {0};
    if (nf_event_error_body(&b, "Runtime.InitError", msg) == 0 &&
        nf_http_request(&L.http, "POST", API_INIT_ERROR,
                        "Lambda-Runtime-Function-Error-Type: Runtime.InitError\r\n" CT_JSON_HDR, b.p, b.len, 65536,
                        &err) != 0)
        log_err("posting the init error", &err);
    else if (L.http.status != 202)
        fprintf(stderr, "nginfer-lambda: posting the init error: HTTP %d: %.200s\n", L.http.status,
                L.http.body.p ? L.http.body.p : "");
    nf_buf_free(&b);
}

/* Posts the answer of request id; 0, or -1 when the runtime must exit. */
static int post_answer(const char *id, int is_error, const char *error_type)
{
    char path[sizeof API_INVOCATION + MAX_REQUEST_ID + 16], hdrs[160];
    nf_err err = {0};
    snprintf(path, sizeof path, API_INVOCATION "%s/%s", id, is_error ? "error" : "response");
    if (is_error)
        snprintf(hdrs, sizeof hdrs, "Lambda-Runtime-Function-Error-Type: %s\r\n" CT_JSON_HDR, error_type);
    else
        snprintf(hdrs, sizeof hdrs, CT_JSON_HDR);
    if (nf_http_request(&L.http, "POST", path, hdrs, L.answer.p, L.answer.len, 65536, &err) != 0) {
        log_err(is_error ? "posting an error" : "posting a response", &err);
        return -1;
    }
    int st = L.http.status;
    if (st == 202)
        return 0;
    fprintf(stderr, "nginfer-lambda: request %s: %s: HTTP %d: %.300s\n", id, is_error ? "/error" : "/response", st,
            L.http.body.p ? L.http.body.p : "");
    if (st == 413 && !is_error) {
        /* over Lambda's response payload limit: say so instead */
        char msg[200];
        snprintf(msg, sizeof msg, "the answer of %zu bytes is over Lambda's response size limit", L.answer.len);
        nf_buf_reset(&L.answer);
        if (nf_event_error_body(&L.answer, "ResponseSizeTooLarge", msg) == 0)
            return post_answer(id, 1, "ResponseSizeTooLarge");
    }
    /* 500 is "Container error. Non-recoverable state." (Runtime API) */
    return st >= 500 ? -1 : 0;
}

/* X-Ray: the Runtime API's trace header goes to _X_AMZN_TRACE_ID for any
 * SDK in the process. putenv on our own static buffer: rewriting it in
 * place allocates nothing per invocation (setenv would). */
static void set_trace_id(const char *v)
{
    static char buf[512];
    static int put;
    if (!v || strlen(v) + sizeof "_X_AMZN_TRACE_ID=" > sizeof buf) {
        if (put)
            unsetenv("_X_AMZN_TRACE_ID");
        put = 0;
        return;
    }
    snprintf(buf, sizeof buf, "_X_AMZN_TRACE_ID=%s", v);
    if (!put)
        put = putenv(buf) == 0;
}

static int serve(void)
{
    nf_err err = {0};
    char id[MAX_REQUEST_ID + 1];
    while (!stop_requested) {
        /* Only the wait for an event is cut short by SIGTERM; an event in
         * hand is answered first. */
        L.http.stop = &stop_requested;
        int rc = nf_http_request(&L.http, "GET", API_NEXT, NULL, NULL, 0, L.max_event, &err);
        L.http.stop = NULL;
        if (rc == NF_ESTOPPED)
            break;
        if (rc) {
            log_err("waiting for the next event", &err);
            return 1;
        }
        double t0 = now_us();
        if (L.http.status != 200) {
            fprintf(stderr, "nginfer-lambda: /next: HTTP %d: %.300s\n", L.http.status,
                    L.http.body.p ? L.http.body.p : "");
            return 1;
        }
        const char *rid = nf_http_header(&L.http, "Lambda-Runtime-Aws-Request-Id");
        if (!rid || !*rid || strlen(rid) > MAX_REQUEST_ID) {
            fprintf(stderr, "nginfer-lambda: /next: %s Lambda-Runtime-Aws-Request-Id; event skipped\n",
                    rid && *rid ? "over-long" : "no");
            continue;
        }
        memcpy(id, rid, strlen(rid) + 1);
        set_trace_id(nf_http_header(&L.http, "Lambda-Runtime-Trace-Id"));

        nf_resp resp = {0};
        const char *etype = NULL;
        int is_error;
        size_t n_in = L.http.body_dropped ? 0 : L.http.body.len;
        if (L.http.body_dropped) {
            char msg[160];
            snprintf(msg, sizeof msg, "the event is over %zu bytes", L.max_event);
            nf_buf_reset(&L.answer);
            etype = "PayloadTooLarge";
            nf_event_error_body(&L.answer, etype, msg);
            nf_resp_error(&L.app, &resp, 413, "payload_too_large", "%s", msg);
            L.ev.req = (nf_req){.method = "POST", .path = "/invocations"};
            is_error = 1;
        } else {
            is_error = handle(L.http.body.p, L.http.body.len, &resp, &etype);
        }
        if (post_answer(id, is_error, etype) < 0)
            return 1;
        if (L.cfg.access_log)
            nf_log_access(&L.ev.req, &resp, n_in, now_us() - t0);
    }
    return 0;
}

/* --event FILE: one event, the answer on stdout. */
static int run_file(const char *file)
{
    FILE *f = fopen(file, "rb");
    if (!f) {
        fprintf(stderr, "nginfer-lambda: %s: cannot open: %s\n", file, strerror(errno));
        return 1;
    }
    nf_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (nf_buf_append(&b, chunk, n) < 0) {
            fclose(f);
            nf_buf_free(&b);
            fprintf(stderr, "nginfer-lambda: %s: out of memory\n", file);
            return 1;
        }
    fclose(f);
    nf_resp resp = {0};
    const char *etype;
    int is_error = handle(b.p ? b.p : "", b.len, &resp, &etype);
    if (is_error)
        fprintf(stderr, "nginfer-lambda: /error (%s)\n", etype);
    fwrite(L.answer.p, 1, L.answer.len, stdout);
    fputc('\n', stdout);
    nf_buf_free(&b);
    return is_error ? 4 : 0;
}

int main(int argc, char **argv)
{
    const char *event_file = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--event") == 0 && i + 1 < argc)
            event_file = argv[++i];
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "nginfer-lambda: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a blocked GET /next must return EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    nf_err err = {0};
    L.http.fd = -1; /* nf_http_fini is safe without nf_http_init */
    const char *api = getenv("AWS_LAMBDA_RUNTIME_API");
    if (!event_file) {
        if (!api || !*api) {
            fprintf(stderr, "nginfer-lambda: AWS_LAMBDA_RUNTIME_API is not set (run as a Lambda bootstrap, "
                            "or use --event FILE)\n");
            return 1;
        }
        if (nf_http_init(&L.http, api, &err) != 0) {
            log_err("init", &err);
            return 1;
        }
    }

    int rc = init_app(&err);
    if (rc) {
        fprintf(stderr, "nginfer-lambda: %s\n", err.msg);
        if (!event_file)
            post_init_error(err.msg);
        rc = 1;
    } else {
        nf_log_ready(&L.app, event_file ? "checked" : "ready");
        rc = event_file ? run_file(event_file) : serve();
    }
    nf_app_fini(&L.app);
    nf_config_free(&L.cfg);
    nf_event_free(&L.ev);
    nf_buf_free(&L.answer);
    nf_http_fini(&L.http);
    return rc;
}
