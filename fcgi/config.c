/*
 * config.c: the worker's configuration, read with libconfig.
 *
 * Every key, its type, default and meaning is in the table below and in
 * conf/nginfer.cfg. An unknown key, a value of the wrong type or out of
 * range stops start-up with "file:line: what" (libconfig gives the line).
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"

enum { K_STR, K_INT, K_BOOL };

typedef struct key_def {
    const char *name;
    int type;
    long min, max; /* K_INT range */
    const char *doc;
} key_def;

static const key_def keys[] = {
    {"model", K_STR, 0, 0, "ONNX model file, relative to this file's directory"},
    {"model_name", K_STR, 0, 0, "name in answers and /models (\"\" = from the model)"},
    {"model_version", K_STR, 0, 0, "version in answers (\"\" = from the model, else \"1\")"},
    {"workers", K_INT, 1, 1024, "worker processes"},
    {"listen", K_STR, 0, 0, "nginx listen address host:port"},
    {"max_body_bytes", K_INT, 1, 1L << 30, "largest request body, 413 above"},
    {"max_rows", K_INT, 1, 100000000, "most rows in one request, 413 above"},
    {"threads", K_INT, 1, 256, "intra-op threads per worker"},
    {"warmup", K_BOOL, 0, 0, "run one inference before accepting"},
    {"access_log", K_BOOL, 0, 0, "one JSON line per request on stderr"},
};

static int set_str(char **dst, const char *v)
{
    char *c = strdup(v);
    if (c == NULL)
        return -1;
    free(*dst);
    *dst = c;
    return 0;
}

void nf_config_free(nf_config *cfg)
{
    free(cfg->path);
    free(cfg->model);
    free(cfg->model_name);
    free(cfg->model_version);
    free(cfg->listen);
    memset(cfg, 0, sizeof *cfg);
}

/* libconfig's @include directive is refused before libconfig reads the
 * file: the configuration is one file, and libconfig 1.5's scanner calls
 * exit() when an included path cannot be read as a file (`@include "."`,
 * found by tests/fuzz/fuzz_config.c). Any "@include" in the text is
 * refused, with its line (NF_EINVAL in err). */
static int refuse_include(const char *path, nf_err *err)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0; /* config_read_file reports it */
    char *text = NULL;
    size_t cap = 0;
    ssize_t len;
    int line = 0, found = 0;
    while (!found && (len = getline(&text, &cap, f)) >= 0) {
        line++;
        /* memmem, not strstr: an embedded NUL must not hide the rest */
        found = memmem(text, (size_t)len, "@include", 8) != NULL;
    }
    free(text);
    fclose(f);
    if (found)
        return nf_err_set(err, NF_EINVAL, "%s:%d: @include is not supported: put every setting in this one file",
                          path, line);
    return NF_OK;
}

int nf_config_load(nf_config *cfg, const char *path, nf_err *err)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->workers = 2;
    cfg->max_body_bytes = 6L * 1024 * 1024; /* SageMaker's invocation payload limit */
    cfg->max_rows = 100000;
    cfg->threads = 1;
    cfg->warmup = 1;
    cfg->access_log = 1;
    if (set_str(&cfg->model, "models/default.onnx") || set_str(&cfg->model_name, "") ||
        set_str(&cfg->model_version, "") || set_str(&cfg->listen, "127.0.0.1:8080") ||
        set_str(&cfg->path, path ? path : ""))
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    if (path == NULL)
        return NF_OK;

    int irc = refuse_include(path, err);
    if (irc != NF_OK) {
        nf_config_free(cfg);
        return irc;
    }
    config_t c;
    config_init(&c);
    int rc = NF_OK;
    if (config_read_file(&c, path) != CONFIG_TRUE) {
        if (config_error_type(&c) == CONFIG_ERR_FILE_IO)
            rc = nf_err_set(err, NF_EIO, "%s: cannot read: %s", path, strerror(errno));
        else
            rc = nf_err_set(err, NF_EINVAL, "%s:%d: %s", config_error_file(&c) ? config_error_file(&c) : path,
                            config_error_line(&c), config_error_text(&c));
        goto out;
    }
    config_setting_t *root = config_root_setting(&c);
    for (int i = 0; i < config_setting_length(root); i++) {
        config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        const char *name = config_setting_name(s);
        int line = config_setting_source_line(s);
        const key_def *k = NULL;
        for (size_t j = 0; j < sizeof keys / sizeof keys[0]; j++)
            if (name && strcmp(keys[j].name, name) == 0)
                k = &keys[j];
        if (k == NULL) {
            char known[512] = "";
            for (size_t j = 0; j < sizeof keys / sizeof keys[0]; j++)
                snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", j ? ", " : "", keys[j].name);
            rc = nf_err_set(err, NF_EINVAL, "%s:%d: unknown key '%s' (known keys: %s)", path, line,
                            name ? name : "?", known);
            goto out;
        }
        int t = config_setting_type(s);
        if (k->type == K_STR) {
            if (t != CONFIG_TYPE_STRING) {
                rc = nf_err_set(err, NF_EINVAL, "%s:%d: '%s' must be a string in double quotes", path, line, name);
                goto out;
            }
            const char *v = config_setting_get_string(s);
            char **dst = strcmp(name, "model") == 0        ? &cfg->model
                         : strcmp(name, "model_name") == 0 ? &cfg->model_name
                         : strcmp(name, "listen") == 0     ? &cfg->listen
                                                           : &cfg->model_version;
            if (strcmp(name, "model") == 0 && v[0] == '\0') {
                rc = nf_err_set(err, NF_EINVAL, "%s:%d: 'model' must name a file", path, line);
                goto out;
            }
            if (strcmp(name, "listen") == 0) {
                const char *colon = strrchr(v, ':');
                char *end = NULL;
                long port = colon ? strtol(colon + 1, &end, 10) : strtol(v, &end, 10);
                if (end == NULL || *end != '\0' || port < 1 || port > 65535) {
                    rc = nf_err_set(err, NF_EINVAL, "%s:%d: 'listen' must be host:port or port (1-65535), got \"%s\"",
                                    path, line, v);
                    goto out;
                }
            }
            if (set_str(dst, v)) {
                rc = nf_err_set(err, NF_ENOMEM, "out of memory");
                goto out;
            }
        } else if (k->type == K_INT) {
            if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
                rc = nf_err_set(err, NF_EINVAL, "%s:%d: '%s' must be an integer (%ld to %ld)", path, line, name,
                                k->min, k->max);
                goto out;
            }
            long long v = config_setting_get_int64(s);
            if (v < k->min || v > k->max) {
                rc = nf_err_set(err, NF_EINVAL, "%s:%d: '%s' = %lld is out of range (%ld to %ld)", path, line, name,
                                v, k->min, k->max);
                goto out;
            }
            if (strcmp(name, "workers") == 0)
                cfg->workers = (int)v;
            else if (strcmp(name, "max_body_bytes") == 0)
                cfg->max_body_bytes = (long)v;
            else if (strcmp(name, "max_rows") == 0)
                cfg->max_rows = (long)v;
            else
                cfg->threads = (int)v;
        } else {
            if (t != CONFIG_TYPE_BOOL) {
                rc = nf_err_set(err, NF_EINVAL, "%s:%d: '%s' must be true or false", path, line, name);
                goto out;
            }
            int v = config_setting_get_bool(s);
            if (strcmp(name, "warmup") == 0)
                cfg->warmup = v;
            else
                cfg->access_log = v;
        }
    }
out:
    config_destroy(&c);
    if (rc != NF_OK)
        nf_config_free(cfg);
    return rc;
}

const char *nf_app_model_path(const nf_config *cfg)
{
    static char buf[4096];
    const char *slash = cfg->path ? strrchr(cfg->path, '/') : NULL;
    if (cfg->model[0] == '/' || cfg->path == NULL || cfg->path[0] == '\0')
        snprintf(buf, sizeof buf, "%s", cfg->model);
    else if (slash == NULL)
        snprintf(buf, sizeof buf, "%s", cfg->model);
    else
        snprintf(buf, sizeof buf, "%.*s/%s", (int)(slash - cfg->path), cfg->path, cfg->model);
    return buf;
}
