/*
 * main.c: the nginfer worker: configuration, model load and warm-up, then
 * the libfcgi accept loop on fd 0 (the socket spawn-fcgi hands us).
 *
 * The model is loaded and warmed before the first accept, so a worker that
 * answers at all is ready. SIGTERM/SIGINT: stop accepting, finish the
 * request in flight, exit 0. Per request: read params and body into reused
 * buffers, nf_route(), write the answer, one access-log line.
 */
#include <errno.h>
#include <fcgiapp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "log.h"

static volatile sig_atomic_t stop_requested;

static void on_term(int sig)
{
    (void)sig;
    stop_requested = 1;
    FCGX_ShutdownPending();
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
    }
}

/* libfcgi waits on its sockets with select(), whose fd_set holds fds below
 * FD_SETSIZE only: a larger fd would write past it. Capping the soft
 * open-file limit there makes such an fd impossible (a worker needs a
 * handful). The hard limit stays: valgrind refuses to change it. */
static void cap_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur <= FD_SETSIZE)
        return;
    rl.rlim_cur = FD_SETSIZE;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        fprintf(stderr, "nginfer-worker: setrlimit(RLIMIT_NOFILE, %d): %s\n", FD_SETSIZE, strerror(errno));
}

static void usage(FILE *f)
{
    fprintf(f, "usage: nginfer-worker [-c CONFIG] [-m MODEL] [--check | --get KEY]\n"
               "  run under spawn-fcgi: fd 0 is the FastCGI listening socket\n"
               "  --check    load and warm the model, print one line, exit 0 or 1\n"
               "  --get KEY  print a resolved configuration value (model, workers, listen,\n"
               "             max_body_bytes, max_rows, threads) and exit\n");
}

/* Reads the request body into body (reused). Returns 0, or 413 when it is
 * larger than max (the rest is read and dropped so the connection stays in
 * step), or -1 on a read error. */
static int read_body(FCGX_Request *req, nf_buf *body, long max, long content_length, size_t *n_read)
{
    nf_buf_reset(body);
    *n_read = 0;
    int too_big = content_length > max;
    if (!too_big && content_length > 0 && nf_buf_reserve(body, (size_t)content_length + 1) != 0)
        return -1;
    char drop[16384];
    for (;;) {
        char *dst;
        int want;
        if (too_big) {
            dst = drop;
            want = (int)sizeof drop;
        } else {
            if (nf_buf_reserve(body, 16384) != 0)
                return -1;
            dst = body->p + body->len;
            want = (int)(body->cap - body->len > INT_MAX ? INT_MAX : body->cap - body->len);
        }
        int got = FCGX_GetStr(dst, want, req->in);
        if (got <= 0)
            break;
        *n_read += (size_t)got;
        if (!too_big) {
            body->len += (size_t)got;
            if ((long)body->len > max)
                too_big = 1;
        }
    }
    return too_big ? 413 : 0;
}

int main(int argc, char **argv)
{
    const char *cfg_path = NULL, *model = getenv("NGINFER_MODEL"), *get = NULL;
    int check = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            cfg_path = argv[++i];
        else if (strcmp(argv[i], "-m") == 0 && i + 1 < argc)
            model = argv[++i];
        else if (strcmp(argv[i], "--check") == 0)
            check = 1;
        else if (strcmp(argv[i], "--get") == 0 && i + 1 < argc)
            get = argv[++i];
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "nginfer-worker: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }

    nf_config cfg;
    nf_err err = {0};
    if (nf_config_load(&cfg, cfg_path, &err) != NF_OK) {
        fprintf(stderr, "nginfer-worker: %s\n", err.msg);
        return 1;
    }
    if (model != NULL && model[0]) {
        /* a model named on the command line is relative to the current
         * directory, not to the configuration file */
        char abs[PATH_MAX];
        const char *p = model;
        if (model[0] != '/' && realpath(model, abs) != NULL)
            p = abs;
        free(cfg.model);
        cfg.model = strdup(p);
        if (cfg.model == NULL)
            return 1;
        if (model[0] != '/' && p == model) {
            /* realpath failed: keep it relative to cwd for the message */
            char cwd[PATH_MAX];
            if (getcwd(cwd, sizeof cwd) != NULL) {
                char *full = malloc(strlen(cwd) + strlen(model) + 2);
                if (full != NULL) {
                    sprintf(full, "%s/%s", cwd, model);
                    free(cfg.model);
                    cfg.model = full;
                }
            }
        }
    }
    if (get != NULL) {
        if (strcmp(get, "model") == 0)
            printf("%s\n", nf_app_model_path(&cfg));
        else if (strcmp(get, "workers") == 0)
            printf("%d\n", cfg.workers);
        else if (strcmp(get, "listen") == 0)
            printf("%s\n", cfg.listen);
        else if (strcmp(get, "max_body_bytes") == 0)
            printf("%ld\n", cfg.max_body_bytes);
        else if (strcmp(get, "max_rows") == 0)
            printf("%ld\n", cfg.max_rows);
        else if (strcmp(get, "threads") == 0)
            printf("%d\n", cfg.threads);
        else {
            fprintf(stderr, "nginfer-worker: --get: unknown key '%s'\n", get);
            nf_config_free(&cfg);
            return 2;
        }
        nf_config_free(&cfg);
        return 0;
    }

    static nf_app app;
    if (nf_app_init(&app, &cfg, &err) != NF_OK) {
        fprintf(stderr, "nginfer-worker: %s\n", err.msg);
        nf_config_free(&cfg);
        return 1;
    }
    nf_log_ready(&app, check ? "checked" : "ready");
    if (check) {
        nf_app_fini(&app);
        nf_config_free(&cfg);
        return 0;
    }

    cap_nofile();
    if (FCGX_Init() != 0) {
        fprintf(stderr, "nginfer-worker: FCGX_Init failed\n");
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: accept() must return EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    FCGX_Request req;
    if (FCGX_InitRequest(&req, 0, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
        fprintf(stderr, "nginfer-worker: FCGX_InitRequest failed\n");
        return 1;
    }
    nf_buf body = {0};
    while (!stop_requested) {
        if (FCGX_Accept_r(&req) < 0)
            break;
        double t0 = now_us();
        const char *method = FCGX_GetParam("REQUEST_METHOD", req.envp);
        const char *path = FCGX_GetParam("DOCUMENT_URI", req.envp);
        if (path == NULL)
            path = FCGX_GetParam("SCRIPT_NAME", req.envp);
        const char *cl = FCGX_GetParam("CONTENT_LENGTH", req.envp);
        long content_length = cl ? strtol(cl, NULL, 10) : 0;
        int have_length = cl != NULL && cl[0] != '\0';
        nf_req r = {
            .method = method ? method : "GET",
            .path = path ? path : "/",
            .content_type = FCGX_GetParam("CONTENT_TYPE", req.envp),
            .accept = FCGX_GetParam("HTTP_ACCEPT", req.envp),
            .custom_attrs = FCGX_GetParam("HTTP_X_AMZN_SAGEMAKER_CUSTOM_ATTRIBUTES", req.envp),
        };
        nf_resp resp = {0};
        size_t n_in = 0;
        int rb = read_body(&req, &body, cfg.max_body_bytes, content_length, &n_in);
        if (rb == 413) {
            nf_resp_error(&app, &resp, 413, "payload_too_large",
                          "request body of %zu bytes is over the limit of %ld bytes (max_body_bytes)", n_in,
                          cfg.max_body_bytes);
        } else if (rb < 0) {
            nf_resp_error(&app, &resp, 500, "internal", "out of memory reading the request body");
        } else if (have_length && (content_length < 0 || (size_t)content_length != n_in)) {
            /* nginx sends whole bodies only; anything else talking to the
             * socket gets no half-read request run */
            nf_resp_error(&app, &resp, 400, "bad_request", "request body of %zu bytes, but CONTENT_LENGTH is %ld", n_in,
                          content_length);
        } else {
            r.body = body.p ? body.p : "";
            r.body_len = body.len;
            nf_route(&app, &r, &resp);
        }
        /* formatted here: libfcgi's own FCGX_FPrintF knows no %zu */
        char head[256];
        int hn = snprintf(head, sizeof head, "Status: %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n",
                          resp.status, reason(resp.status), resp.content_type, resp.body ? resp.body->len : 0);
        FCGX_PutStr(head, hn, req.out);
        if (resp.body && resp.body->len)
            FCGX_PutStr(resp.body->p, (int)resp.body->len, req.out);
        /* r's strings point into req's params, which FCGX_Finish_r frees */
        char m_buf[16], p_buf[256], a_buf[1024];
        if (cfg.access_log) {
            snprintf(m_buf, sizeof m_buf, "%s", r.method);
            snprintf(p_buf, sizeof p_buf, "%s", r.path);
            r.method = m_buf;
            r.path = p_buf;
            if (r.custom_attrs != NULL) {
                snprintf(a_buf, sizeof a_buf, "%s", r.custom_attrs);
                r.custom_attrs = a_buf;
            }
        }
        FCGX_Finish_r(&req);
        if (cfg.access_log)
            nf_log_access(&r, &resp, n_in, now_us() - t0);
    }
    FCGX_Free(&req, 1);
    nf_buf_free(&body);
    nf_app_fini(&app);
    nf_config_free(&cfg);
    return 0;
}
