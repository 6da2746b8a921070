/*
 * log.c: JSON log lines on stderr, each written with one write(2) so lines
 * from several workers sharing the descriptor never interleave (a pipe
 * write up to PIPE_BUF is atomic; longer custom attributes are cut).
 */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "log.h"

static nf_buf line;

static void emit(void)
{
    if (nf_buf_append(&line, "\n", 1) != 0)
        return;
    size_t off = 0;
    while (off < line.len) {
        ssize_t w = write(2, line.p + off, line.len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
}

static void stamp(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[40];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    nf_buf_reset(&line);
    nf_buf_printf(&line, "{\"time\":\"%s.%03ldZ\",\"pid\":%ld", ts, (long)(tv.tv_usec / 1000), (long)getpid());
}

void nf_log_ready(const nf_app *app, const char *event)
{
    stamp();
    nf_buf_printf(&line, ",\"event\":\"%s\",\"model\":", event);
    nf_json_str(&line, app->model_name, strlen(app->model_name));
    nf_buf_printf(&line, ",\"version\":");
    nf_json_str(&line, app->model_version, strlen(app->model_version));
    nf_buf_printf(&line, ",\"load_ms\":%.3f,\"warmup_ms\":%.3f,\"model_setup_ms\":%.3f}", app->load_ms,
                  app->warmup_ms, app->load_ms + app->warmup_ms);
    emit();
}

void nf_log_access(const nf_req *req, const nf_resp *resp, size_t bytes_in, double latency_us)
{
    stamp();
    nf_buf_printf(&line, ",\"method\":");
    nf_json_str(&line, req->method, strlen(req->method));
    nf_buf_printf(&line, ",\"route\":");
    nf_json_str(&line, req->path, strnlen(req->path, 256));
    nf_buf_printf(&line, ",\"status\":%d,\"rows\":%ld,\"bytes_in\":%zu,\"bytes_out\":%zu,\"latency_us\":%.0f",
                  resp->status, resp->rows, bytes_in, resp->body ? resp->body->len : 0, latency_us);
    if (resp->error_code != NULL)
        nf_buf_printf(&line, ",\"error\":\"%s\"", resp->error_code);
    if (req->custom_attrs != NULL) {
        nf_buf_printf(&line, ",\"custom_attributes\":");
        nf_json_str(&line, req->custom_attrs, strnlen(req->custom_attrs, 1024));
    }
    nf_buf_append(&line, "}", 1);
    emit();
}
