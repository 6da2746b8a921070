/*
 * main.c: the nginfer worker: configuration, model load and warm-up, then
 * the FastCGI loop (fcgi/conn.h: kept connections, never pinned) on fd 0,
 * the socket spawn-fcgi hands us.
 *
 * The model is loaded and warmed before the first accept, so a worker that
 * answers at all is ready. SIGTERM/SIGINT: stop accepting, finish the
 * request in flight and those already sent on its connections, exit 0.
 * Per request: read params and body into reused buffers, nf_route(), write
 * the answer, one access-log line (batched); a successful request goes
 * through no printf (see put_response and fcgi/log.c).
 */
#include <errno.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "conn.h"
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
    fprintf(f, "usage: nginfer-worker [-c CONFIG] [-m MODEL] [--check | [--run-dir DIR] --get KEY...]\n"
               "  run under spawn-fcgi: fd 0 is the FastCGI listening socket\n"
               "  --check    load and warm the model, print one line, exit 0 or 1\n"
               "  --get KEY  print a resolved configuration value (model, workers, listen,\n"
               "             max_body_bytes, max_rows, threads) and exit; repeatable\n"
               "             (one value per line, in the order asked)\n"
               "  --run-dir DIR  with --get: check DIR as tools/nginfer-serve's run directory\n"
               "             (made when missing) before printing; exit 3 with the reason\n");
}

/*
 * Start-up report to tools/nginfer-serve. When NGINFER_READY_FD names an
 * inherited pipe, a worker started to serve writes "loading PID" before it
 * reads the configuration and the model, then "ready PID" or "error
 * MESSAGE" (its start-up error, which then does not go to stderr: the
 * script prints the first one as its one line and exits 1), and closes
 * the fd. Each line is one write(2) shorter than PIPE_BUF, so lines of
 * workers starting together never interleave. Non-blocking, SIGPIPE
 * ignored: a full or closed pipe loses the report (the error goes to
 * stderr instead), never blocks or kills the worker. This lets the script
 * start nginx and the workers at once and learn of a bad model from the
 * workers, instead of loading the model once more beforehand.
 */
static int report_fd = -1;

static void report_open(void)
{
    const char *s = getenv("NGINFER_READY_FD");
    if (s == NULL || s[0] == '\0')
        return;
    char *end;
    long fd = strtol(s, &end, 10);
    if (*end != '\0' || fd < 3 || fd > 1023)
        return;
    int fl = fcntl((int)fd, F_GETFL);
    if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY)
        return;
    signal(SIGPIPE, SIG_IGN);
    fcntl((int)fd, F_SETFL, fl | O_NONBLOCK);
    fcntl((int)fd, F_SETFD, FD_CLOEXEC);
    report_fd = (int)fd;
}

/* One line "KIND TEXT\n" (newlines in TEXT become spaces); 0 if written. */
static int report(const char *kind, const char *text)
{
    if (report_fd < 0)
        return -1;
    char line[512];
    int n = snprintf(line, sizeof line, "%s %s\n", kind, text);
    if (n < 0)
        return -1;
    if ((size_t)n >= sizeof line) {
        n = (int)sizeof line - 1;
        line[n - 1] = '\n';
    }
    for (int i = 0; i < n - 1; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    return write(report_fd, line, (size_t)n) == n ? 0 : -1;
}

static void report_close(void)
{
    if (report_fd >= 0)
        close(report_fd);
    report_fd = -1;
}

/* A start-up error: to the script's pipe if it takes it, else stderr.
 * Taken, the worker waits up to 0.5 s before it exits (SIGTERM ends the
 * wait), so the script stops multiwatch before it forks a replacement that
 * would fail and log the same way. */
/*
 * --run-dir DIR (with --get): tools/nginfer-serve's run directory, checked
 * and made here instead of with stat and mkdir from the script (each exec
 * costs milliseconds at start). As root, every directory above DIR must
 * let others through (nginx's workers run as nobody and must reach the
 * socket); DIR itself, when it exists, must not be writable by its group
 * or others (the default lives in a shared /tmp under a predictable name:
 * never write into a directory someone else controls); a missing DIR is
 * made 0755 (its parents too), then checked again; in the end it must be
 * a directory, not a link, owned by us. Messages as the script printed
 * them; 0 when DIR is ready.
 */
static int run_dir_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run_dir_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("nginfer-serve: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return -1;
}

/* the checks on the existing parts of dir (see above) */
static int run_dir_check(const char *dir, int am_root)
{
    struct stat st;
    if (stat(dir, &st) == 0 && (st.st_mode & 022) != 0)
        return run_dir_fail("%s: writable by others (mode %o); pass a private directory with -r", dir,
                            (unsigned)(st.st_mode & 07777));
    if (!am_root)
        return 0;
    char up[PATH_MAX];
    snprintf(up, sizeof up, "%s", dir);
    for (;;) {
        char *slash = strrchr(up, '/');
        if (slash == NULL)
            break;
        if (slash == up)
            slash[1] = '\0'; /* "/" */
        else
            *slash = '\0';
        if (stat(up, &st) == 0 && (st.st_mode & 01) == 0)
            return run_dir_fail("%s: nobody cannot traverse %s (mode %o); pick a run dir under /tmp with -r", dir, up,
                                (unsigned)(st.st_mode & 07777));
        if (strcmp(up, "/") == 0)
            break;
    }
    return 0;
}

static int run_dir_prepare(const char *dir)
{
    int am_root = geteuid() == 0;
    if (dir[0] != '/' || strlen(dir) >= PATH_MAX - 1)
        return run_dir_fail("run dir '%s': not an absolute path", dir);
    if (run_dir_check(dir, am_root) != 0)
        return -1;
    struct stat st;
    if (lstat(dir, &st) != 0) {
        if (errno != ENOENT)
            return run_dir_fail("%s: %s", dir, strerror(errno));
        /* mkdir -p: each missing level, 0755 (umask permitting, as mkdir(1)) */
        char part[PATH_MAX];
        snprintf(part, sizeof part, "%s", dir);
        for (char *q = part + 1;; q++) {
            if (*q == '/' || *q == '\0') {
                char c = *q;
                *q = '\0';
                if (mkdir(part, 0755) != 0 && errno != EEXIST)
                    return run_dir_fail("cannot create run dir %s: %s", dir, strerror(errno));
                *q = c;
                if (c == '\0')
                    break;
            }
        }
        if (chmod(dir, 0755) != 0) /* the mode the script gave it (mkdir -m 0755), umask aside */
            return run_dir_fail("cannot create run dir %s: %s", dir, strerror(errno));
        if (run_dir_check(dir, am_root) != 0)
            return -1;
        if (lstat(dir, &st) != 0)
            return run_dir_fail("cannot create run dir %s: %s", dir, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
        struct passwd *pw = getpwuid(geteuid());
        return run_dir_fail("%s: not a directory owned by %s; remove it or pass another -r", dir,
                            pw ? pw->pw_name : "us");
    }
    return 0;
}

static void startup_error(const char *msg)
{
    if (report("error", msg) != 0) {
        fprintf(stderr, "nginfer-worker: %s\n", msg);
        report_close();
        return;
    }
    report_close();
    struct timespec pause = {0, 500 * 1000 * 1000};
    nanosleep(&pause, NULL);
}

/* The FastCGI parameters the worker reads, found in one pass over envp
 * (nginx/nginfer.conf.in passes these and hardly any others). As
 * FCGX_GetParam, the first of two equal names wins. Values point into
 * req's params: valid until FCGX_Finish_r. */
typedef struct params {
    const char *method, *uri, *script, *clen, *ctype, *accept, *attrs;
} params;

#define PARAM(e, name, dst)                                                 \
    do {                                                                    \
        if ((dst) == NULL && strncmp((e), name "=", sizeof(name)) == 0)     \
            (dst) = (e) + sizeof(name);                                     \
    } while (0)

static void read_params(char **envp, params *p)
{
    memset(p, 0, sizeof *p);
    for (; envp != NULL && *envp != NULL; envp++) {
        const char *e = *envp;
        switch (e[0]) {
        case 'R': PARAM(e, "REQUEST_METHOD", p->method); break;
        case 'D': PARAM(e, "DOCUMENT_URI", p->uri); break;
        case 'S': PARAM(e, "SCRIPT_NAME", p->script); break;
        case 'C':
            PARAM(e, "CONTENT_LENGTH", p->clen);
            PARAM(e, "CONTENT_TYPE", p->ctype);
            break;
        case 'H':
            PARAM(e, "HTTP_ACCEPT", p->accept);
            PARAM(e, "HTTP_X_AMZN_SAGEMAKER_CUSTOM_ATTRIBUTES", p->attrs);
            break;
        }
    }
}

/* s copied into dst[cap] (cut to cap - 1 bytes); returns dst. */
static const char *keep(char *dst, size_t cap, const char *s)
{
    size_t n = strnlen(s, cap - 1);
    memcpy(dst, s, n);
    dst[n] = 0;
    return dst;
}

/* The CGI response head (RFC 3875 6.3: Status, Content-Type, then the
 * Content-Length nginx passes on) and the body, in one buffer and one
 * FCGX_PutStr when they fit in 4 KB (every 1-row and 64-row answer), else
 * the head and then the body. Built with memcpy: snprintf cost ~1,600
 * instructions here. libfcgi sends it all with FCGI_END_REQUEST in one
 * write(2) at FCGX_Finish_r when it fits its 8 KB stream buffer. */
static void put_response(FCGX_Stream *out, const nf_resp *resp)
{
    char buf[4096];
    size_t n = 0, body_len = resp->body ? resp->body->len : 0;
    const char *rs = reason(resp->status), *ct = resp->content_type ? resp->content_type : "application/json";
    size_t rs_len = strlen(rs), ct_len = strlen(ct);
    /* 8 + 3 + 1 + reason (<= 40) + 16 + type + 18 + 20 + 4 */
    if (rs_len > 64 || ct_len > 128)
        return; /* cannot happen: both are our own literals */
    memcpy(buf, "Status: ", 8);
    n = 8;
    int st = resp->status >= 100 && resp->status <= 999 ? resp->status : 500;
    buf[n++] = (char)('0' + st / 100);
    buf[n++] = (char)('0' + st / 10 % 10);
    buf[n++] = (char)('0' + st % 10);
    buf[n++] = ' ';
    memcpy(buf + n, rs, rs_len);
    n += rs_len;
    memcpy(buf + n, "\r\nContent-Type: ", 16);
    n += 16;
    memcpy(buf + n, ct, ct_len);
    n += ct_len;
    memcpy(buf + n, "\r\nContent-Length: ", 18);
    n += 18;
    n += nf_fmt_u64(buf + n, body_len);
    memcpy(buf + n, "\r\n\r\n", 4);
    n += 4;
    if (body_len <= sizeof buf - n) {
        if (body_len)
            memcpy(buf + n, resp->body->p, body_len);
        FCGX_PutStr(buf, (int)(n + body_len), out);
    } else {
        FCGX_PutStr(buf, (int)n, out);
        FCGX_PutStr(resp->body->p, (int)body_len, out);
    }
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

/* What the request handler needs, for nf_conn_run. */
typedef struct worker {
    nf_app *app;
    const nf_config *cfg;
    nf_buf body; /* request body, reused */
} worker;

/* One request (nf_conn_handler): parameters, body, nf_route, the answer in
 * one FCGX_PutStr, FCGX_Finish_r, then the access line (after the answer
 * has gone, so it adds nothing to the request's latency). */
static void serve_one(FCGX_Request *req, void *ctx)
{
    worker *w = ctx;
    double t0 = now_us();
    params pm;
    read_params(req->envp, &pm);
    const char *path = pm.uri ? pm.uri : pm.script;
    long content_length = pm.clen ? strtol(pm.clen, NULL, 10) : 0;
    int have_length = pm.clen != NULL && pm.clen[0] != '\0';
    nf_req r = {
        .method = pm.method ? pm.method : "GET",
        .path = path ? path : "/",
        .content_type = pm.ctype,
        .accept = pm.accept,
        .custom_attrs = pm.attrs,
    };
    nf_resp resp = {0};
    size_t n_in = 0;
    int rb = read_body(req, &w->body, w->cfg->max_body_bytes, content_length, &n_in);
    if (rb == 413) {
        nf_resp_error(w->app, &resp, 413, "payload_too_large",
                      "request body of %zu bytes is over the limit of %ld bytes (max_body_bytes)", n_in,
                      w->cfg->max_body_bytes);
    } else if (rb < 0) {
        nf_resp_error(w->app, &resp, 500, "internal", "out of memory reading the request body");
    } else if (have_length && (content_length < 0 || (size_t)content_length != n_in)) {
        /* nginx sends whole bodies only; anything else talking to the
         * socket gets no half-read request run */
        nf_resp_error(w->app, &resp, 400, "bad_request", "request body of %zu bytes, but CONTENT_LENGTH is %ld", n_in,
                      content_length);
    } else {
        r.body = w->body.p ? w->body.p : "";
        r.body_len = w->body.len;
        nf_route(w->app, &r, &resp);
    }
    put_response(req->out, &resp);
    /* r's strings point into req's params, which FCGX_Finish_r frees */
    char m_buf[16], p_buf[256], a_buf[1024];
    if (w->cfg->access_log) {
        r.method = keep(m_buf, sizeof m_buf, r.method);
        r.path = keep(p_buf, sizeof p_buf, r.path);
        if (r.custom_attrs != NULL)
            r.custom_attrs = keep(a_buf, sizeof a_buf, r.custom_attrs);
    }
    FCGX_Finish_r(req);
    if (w->cfg->access_log)
        nf_log_access(&r, &resp, n_in, now_us() - t0);
}

int main(int argc, char **argv)
{
    const char *cfg_path = NULL, *model = getenv("NGINFER_MODEL"), *gets[8], *run_dir = NULL;
    int check = 0, n_get = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            cfg_path = argv[++i];
        else if (strcmp(argv[i], "-m") == 0 && i + 1 < argc)
            model = argv[++i];
        else if (strcmp(argv[i], "--check") == 0)
            check = 1;
        else if (strcmp(argv[i], "--run-dir") == 0 && i + 1 < argc)
            run_dir = argv[++i];
        else if (strcmp(argv[i], "--get") == 0 && i + 1 < argc) {
            if (n_get == (int)(sizeof gets / sizeof gets[0])) {
                fprintf(stderr, "nginfer-worker: --get: at most %d keys\n", n_get);
                return 2;
            }
            gets[n_get++] = argv[++i];
        }
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "nginfer-worker: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }

    if (n_get == 0 && !check) {
        report_open();
        char pid[32];
        snprintf(pid, sizeof pid, "%ld", (long)getpid());
        report("loading", pid);
    }

    nf_config cfg;
    nf_err err = {0};
    if (nf_config_load(&cfg, cfg_path, &err) != NF_OK) {
        startup_error(err.msg);
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
    if (run_dir != NULL && run_dir_prepare(run_dir) != 0) {
        nf_config_free(&cfg);
        return 3; /* the script prints nothing more */
    }
    for (int k = 0; k < n_get; k++) {
        const char *get = gets[k];
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
    }
    if (n_get > 0) {
        nf_config_free(&cfg);
        return fflush(stdout) == 0 ? 0 : 1;
    }

    static nf_app app;
    if (nf_app_init(&app, &cfg, &err) != NF_OK) {
        startup_error(err.msg);
        nf_config_free(&cfg);
        return 1;
    }
    nf_log_ready(&app, check ? "checked" : "ready");
    {
        char pid[32];
        snprintf(pid, sizeof pid, "%ld", (long)getpid());
        report("ready", pid);
        report_close();
    }
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
    sa.sa_flags = 0; /* no SA_RESTART: epoll_wait (fcgi/conn.h) must return EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    static nf_conn_loop loop;
    worker w = {.app = &app, .cfg = &cfg};
    if (nf_conn_init(&loop, 0, &stop_requested) != 0)
        return 1;
    if (cfg.access_log) {
        /* access lines in batches, written whenever the worker would wait
         * (fcgi/log.h) */
        nf_log_batch(1);
        loop.idle = nf_log_flush;
    }
    int rc = nf_conn_run(&loop, serve_one, &w) == 0 ? 0 : 1;
    nf_log_flush();
    nf_buf_free(&w.body);
    nf_app_fini(&app);
    nf_config_free(&cfg);
    return rc;
}
