/*
 * fuzz_lambda_event.c: nf_event_decode on arbitrary bytes, then what
 * nginfer-lambda does with the event (fcgi/lambda/main.c, handle): nf_route
 * on the default model (loaded and warmed once), and the HTTP or direct
 * answer. Oracles: ev->req is always safe to route and log, every answer
 * is valid JSON.
 */
#include <json-c/json.h>
#include <stdlib.h>

#include "fuzz.h"
#include "lambda/event.h"

static nf_config cfg;
static nf_app app;
static nf_event ev;
static nf_buf answer;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    nf_err err = {0};
    if (nf_config_load(&cfg, NULL, &err) != 0)
        abort();
    free(cfg.model);
    cfg.model = strdup(NF_FUZZ_ROOT "/models/default.onnx");
    cfg.access_log = 0;
    if (nf_app_init(&app, &cfg, &err) != 0) {
        fprintf(stderr, "fuzz_lambda_event: %s\n", err.msg);
        abort();
    }
    return 0;
}

static void check_json(const nf_buf *b)
{
    struct json_object *o = NULL;
    nf_err err = {0};
    int rc = nf_json_parse(b->p ? b->p : "", b->len, &o, &err);
    if (rc != 0)
        fprintf(stderr, "answer is not JSON (%s): %.*s\n", err.msg, (int)(b->len > 400 ? 400 : b->len), b->p);
    FZ_ASSERT(rc == 0);
    json_object_put(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nf_err err = {0};
    nf_resp resp;
    memset(&resp, 0, sizeof resp);
    int rc = nf_event_decode(&ev, (const char *)data, size, &err);
    FZ_ASSERT(ev.kind == NF_EV_DIRECT || ev.kind == NF_EV_HTTP_V1 || ev.kind == NF_EV_HTTP_V2);
    FZ_ASSERT(ev.req.method != NULL && ev.req.path != NULL);
    (void)strlen(ev.req.method);
    (void)strlen(ev.req.path);
    if (rc == NF_ENOMEM)
        nf_resp_error(&app, &resp, 500, "internal", "%s", err.msg);
    else if (rc) {
        FZ_ASSERT(err.msg[0] != '\0');
        nf_resp_error(&app, &resp, 400, "bad_request", "%s", err.msg);
    } else if (ev.req.body_len > (size_t)cfg.max_body_bytes)
        nf_resp_error(&app, &resp, 413, "payload_too_large", "request body of %zu bytes is over the limit",
                      ev.req.body_len);
    else
        nf_route(&app, &ev.req, &resp);
    FZ_ASSERT(resp.status >= 200 && resp.status < 600 && resp.body == &app.out);
    nf_buf_reset(&answer);
    if (ev.kind == NF_EV_DIRECT) {
        const char *type = NULL;
        rc = nf_event_direct_answer(&answer, &resp, ev.single, &type);
        FZ_ASSERT(rc == 0 || (rc == 1 && type != NULL));
        /* a direct event has no Accept: a 200 body is JSON */
        check_json(&answer);
    } else {
        FZ_ASSERT(nf_event_http_answer(&answer, &resp) == 0);
        check_json(&answer);
    }
    return 0;
}
