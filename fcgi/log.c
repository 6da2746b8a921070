/*
 * log.c: JSON log lines on stderr, whole lines per write(2) so lines from
 * several workers sharing the descriptor never interleave (a pipe write up
 * to PIPE_BUF is atomic; longer custom attributes are cut).
 *
 * The access line is on every request's path, so it is put together with
 * memcpy and a small integer formatter, not printf (which cost ~11,000
 * instructions a line, a fifth of a 1-row request): the date part of the
 * time stamp is formatted once a second and the pid once. The FastCGI
 * worker batches access lines (nf_log_batch, log.h): one write(2) per ~20
 * requests under load instead of one each.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "log.h"

static nf_buf line;  /* the line being put together */
static nf_buf batch; /* access lines not written yet (batching on) */
static int batching;

static void write_all(const char *p, size_t n)
{
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(2, p + off, n - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
}

void nf_log_flush(void)
{
    if (batch.len) {
        write_all(batch.p, batch.len);
        nf_buf_reset(&batch);
    }
}

void nf_log_batch(int on)
{
    if (!on)
        nf_log_flush();
    batching = on;
}

/* Ends the line and writes it, or, for an access line while batching,
 * adds it to the batch (writing the batch first if the line would not
 * fit). */
static void emit(int access)
{
    if (nf_buf_append(&line, "\n", 1) != 0)
        return;
    if (!access || !batching || line.len > NF_LOG_BATCH) {
        nf_log_flush(); /* keep the order */
        write_all(line.p, line.len);
        return;
    }
    if (batch.len + line.len > NF_LOG_BATCH)
        nf_log_flush();
    if (nf_buf_append(&batch, line.p, line.len) != 0) {
        nf_log_flush();
        write_all(line.p, line.len);
    }
}

/* Decimal digits of v into o (at least 20 bytes); returns the count. */
size_t nf_fmt_u64(char *o, uint64_t v)
{
    char t[20];
    size_t n = 0;
    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        o[i] = t[n - 1 - i];
    return n;
}

/* Append s[0..n), or v's digits, with no bounds check: every caller
 * reserved the room first (stamp() 128 bytes, nf_log_access the rest). */
static void put_lit(const char *s, size_t n)
{
    memcpy(line.p + line.len, s, n);
    line.len += n;
}
#define PUT_LIT(s) put_lit(s, sizeof(s) - 1)

static void put_u64(uint64_t v)
{
    line.len += nf_fmt_u64(line.p + line.len, v);
}

/* "{"time":"2026-01-02T03:04:05.678Z","pid":123" into line (reset). The
 * second-resolution part and the pid are cached: the pid is read again by
 * nf_log_ready (start-up), never per request. */
static pid_t my_pid;
static time_t stamp_sec = -1;
static char stamp_txt[32];
static size_t stamp_len;

static int stamp(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (my_pid == 0)
        my_pid = getpid();
    if (ts.tv_sec != stamp_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        stamp_len = strftime(stamp_txt, sizeof stamp_txt, "%Y-%m-%dT%H:%M:%S", &tm);
        stamp_sec = ts.tv_sec;
    }
    nf_buf_reset(&line);
    if (nf_buf_reserve(&line, 128) < 0)
        return -1;
    PUT_LIT("{\"time\":\"");
    put_lit(stamp_txt, stamp_len);
    unsigned ms = (unsigned)(ts.tv_nsec / 1000000);
    char frac[5] = {'.', (char)('0' + ms / 100), (char)('0' + ms / 10 % 10), (char)('0' + ms % 10), 'Z'};
    put_lit(frac, sizeof frac);
    PUT_LIT("\",\"pid\":");
    put_u64((uint64_t)my_pid);
    line.p[line.len] = 0;
    return 0;
}

void nf_log_ready(const nf_app *app, const char *event)
{
    my_pid = getpid();
    if (stamp() < 0)
        return;
    nf_buf_printf(&line, ",\"event\":\"%s\",\"model\":", event);
    nf_json_str(&line, app->model_name, strlen(app->model_name));
    nf_buf_printf(&line, ",\"version\":");
    nf_json_str(&line, app->model_version, strlen(app->model_version));
    nf_buf_printf(&line, ",\"load_ms\":%.3f,\"warmup_ms\":%.3f,\"model_setup_ms\":%.3f}", app->load_ms,
                  app->warmup_ms, app->load_ms + app->warmup_ms);
    emit(0);
}

/* The same text as printf's "%.0f" for a latency: rounded to nearest, ties
 * to even (the default rounding mode, as printf), never negative. */
static uint64_t latency_int(double us)
{
    if (!(us > 0))
        return 0;
    if (us >= 1e18)
        return (uint64_t)1e18;
    return (uint64_t)nearbyint(us);
}

void nf_log_access(const nf_req *req, const nf_resp *resp, size_t bytes_in, double latency_us)
{
    if (stamp() < 0)
        return;
    PUT_LIT(",\"method\":"); /* fits in stamp()'s reserve */
    if (nf_json_str(&line, req->method, strlen(req->method)) < 0 || nf_buf_append(&line, ",\"route\":", 9) < 0 ||
        nf_json_str(&line, req->path, strnlen(req->path, 256)) < 0)
        return;
    /* the fixed part below: 5 numbers of at most 20 digits and 64 bytes of
     * names, plus the error word (a short literal of route.c/main.c) */
    const char *ec = resp->error_code;
    size_t ec_len = ec != NULL ? strlen(ec) : 0;
    if (nf_buf_reserve(&line, 192 + ec_len) < 0)
        return;
    PUT_LIT(",\"status\":");
    put_u64((uint64_t)(resp->status > 0 ? resp->status : 0));
    PUT_LIT(",\"rows\":");
    if (resp->rows < 0) {
        PUT_LIT("-");
        put_u64((uint64_t)0 - (uint64_t)resp->rows);
    } else {
        put_u64((uint64_t)resp->rows);
    }
    PUT_LIT(",\"bytes_in\":");
    put_u64(bytes_in);
    PUT_LIT(",\"bytes_out\":");
    put_u64(resp->body ? resp->body->len : 0);
    PUT_LIT(",\"latency_us\":");
    put_u64(latency_int(latency_us));
    if (ec != NULL) {
        PUT_LIT(",\"error\":\"");
        put_lit(ec, ec_len);
        PUT_LIT("\"");
    }
    line.p[line.len] = 0;
    if (req->custom_attrs != NULL) {
        if (nf_buf_append(&line, ",\"custom_attributes\":", 21) < 0 ||
            nf_json_str(&line, req->custom_attrs, strnlen(req->custom_attrs, 1024)) < 0)
            return;
    }
    if (nf_buf_append(&line, "}", 1) < 0)
        return;
    emit(1);
}
