/*
 * app.h: the worker's request-handling layer, independent of FastCGI.
 *
 * Bytes and a content type go in, a status, a content type and bytes come
 * out. main.c (libfcgi loop), the unit tests and the fuzz targets all call
 * nf_route(); nothing here reads a socket or the model file.
 * Memory: every buffer hangs off nf_app and is reused request after
 * request; it grows only when a request is larger than any before it.
 */
#ifndef NF_APP_H
#define NF_APP_H

#include <stddef.h>
#include <stdint.h>

#include "../core/nf.h"

/* A growable byte buffer, reused across requests (never shrinks). */
typedef struct nf_buf {
    char *p;
    size_t len;
    size_t cap;
} nf_buf;

int nf_buf_reserve(nf_buf *b, size_t extra); /* 0 ok, -1 out of memory */
int nf_buf_append(nf_buf *b, const void *p, size_t n);
int nf_buf_printf(nf_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void nf_buf_free(nf_buf *b);
static inline void nf_buf_reset(nf_buf *b) { b->len = 0; }

/* Configuration (conf/nginfer.cfg); see config.c for every key's meaning and
 * default. Strings are owned by the config. */
typedef struct nf_config {
    char *path;          /* the file read, for messages */
    char *model;         /* model file, absolute or relative to the config file's directory */
    char *model_name;    /* "" = graph name, then file stem */
    char *model_version; /* "" = the model's metadata, then "1" */
    int workers;         /* worker processes (carried out by spawn-fcgi + multiwatch) */
    char *listen;        /* nginx listen address, "127.0.0.1:8080" */
    long max_body_bytes; /* 413 above this (6 MB as SageMaker) */
    long max_rows;       /* 413 above this many rows in one request */
    int threads;         /* intra-op threads of the core */
    int warmup;          /* run one inference before accepting */
    int access_log;      /* one JSON line per request on stderr */
} nf_config;

/* Defaults, then the file (if path is not NULL). Errors name file and line. */
int nf_config_load(nf_config *cfg, const char *path, nf_err *err);
void nf_config_free(nf_config *cfg);
/* cfg->model resolved: absolute as is, else relative to the directory of
 * cfg->path (or the current directory without a config file). Returns a
 * static buffer overwritten by the next call. */
const char *nf_app_model_path(const nf_config *cfg);

typedef struct nf_req {
    const char *method;       /* "GET", "POST", ... */
    const char *path;         /* "/invocations" (no query string) */
    const char *content_type; /* may be NULL */
    const char *accept;       /* may be NULL */
    const char *custom_attrs; /* X-Amzn-SageMaker-Custom-Attributes, may be NULL */
    const char *body;         /* not NUL-terminated */
    size_t body_len;
} nf_req;

typedef struct nf_resp {
    int status;               /* HTTP status */
    const char *content_type; /* static string */
    nf_buf *body;             /* points to the app's output buffer */
    long rows;                /* rows predicted (access log), 0 if none */
    const char *error_code;   /* for the access log, NULL on success */
} nf_resp;

/* One decoded model input: a reusable tensor whose data lives in buf. */
typedef struct nf_input_slot {
    nf_tensor t;
    nf_buf buf;
} nf_input_slot;

typedef struct nf_app {
    const nf_config *cfg;
    nf_model *model;
    int ready;              /* model loaded and warmed: /ping says 200 */
    char *model_name;       /* resolved */
    char *model_version;    /* resolved */
    int n_features;         /* columns of input 0 if it is [N, F] with F fixed, else 0 */
    nf_classes classes;     /* n_labels = 0 if not a classifier */
    nf_buf meta_json;       /* GET /models answer, built once at load */
    nf_input_slot *inputs;  /* one per model input */
    nf_tensor *outputs;     /* one per model output */
    nf_buf out;             /* response body */
    nf_buf scratch;         /* codec scratch (e.g. error text, CSV fields) */
    double load_ms, warmup_ms;
} nf_app;

/* Loads the model named by cfg, builds the metadata answer, runs a warm-up
 * inference when cfg->warmup. On failure err says which file and why. */
int nf_app_init(nf_app *app, const nf_config *cfg, nf_err *err);
void nf_app_fini(nf_app *app);

/* Handles one request. Never fails: errors become a JSON error response
 * {"error": {"code": "...", "message": "..."}} with the right status. */
void nf_route(nf_app *app, const nf_req *req, nf_resp *resp);

/* Fills resp with a JSON error (used by nf_route and by main.c for errors
 * found before routing, such as 413). code is a short snake_case word. */
void nf_resp_error(nf_app *app, nf_resp *resp, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif
