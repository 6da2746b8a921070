/*
 * event.h: Lambda invocation events to nf_req, and nf_resp back to what
 * Lambda expects, with no sockets and no model (the fuzz targets call
 * nf_event_decode on arbitrary bytes).
 *
 * Event kinds: a direct invocation (the event is the request body, as
 * {"features": [...]}, {"instances": [...]}, {"inputs": ...}); API Gateway
 * REST API proxy events (payload format 1.0: httpMethod, path, headers,
 * multiValueHeaders, body, isBase64Encoded); HTTP API payload 2.0 and Lambda
 * Function URL events (requestContext.http.method, rawPath, headers, body,
 * isBase64Encoded). HTTP events are answered {"statusCode", "headers",
 * "body", "isBase64Encoded"}; direct ones with the body itself, or an error
 * for the Runtime API's /error.
 * Memory: every buffer hangs off nf_event and is reused; the only
 * per-event allocations are json-c's parse tree, freed before return.
 */
#ifndef NF_LAMBDA_EVENT_H
#define NF_LAMBDA_EVENT_H

#include <stddef.h>

#include "../app.h"

enum {
    NF_EV_DIRECT = 1, /* direct invocation (also anything not an HTTP event) */
    NF_EV_HTTP_V1,    /* API Gateway REST API, payload format 1.0 */
    NF_EV_HTTP_V2     /* HTTP API payload format 2.0, Function URL */
};

typedef struct nf_event {
    int kind;   /* NF_EV_*, set even when decoding fails (0 only before the first call) */
    int single; /* direct {"features": [...]}: answer "prediction" for the one row */
    nf_req req; /* for nf_route: strings point into the buffers below, except
                 * a direct event's body, which points into the event bytes */
    nf_buf method, path, content_type, accept, body; /* reused; NUL-terminated */
} nf_event;

/* Decodes one event (len bytes, need not be NUL-terminated) into ev->req.
 * Routing: an HTTP event's method and path (rawPath without a named
 * stage's "/<stage>" prefix for 2.0), Content-Type and Accept from its
 * headers (names case-insensitive; 1.0's multiValueHeaders too), its body
 * (base64-decoded when isBase64Encoded); a direct event is POST
 * /invocations with Content-Type application/json and the event as body.
 * Returns 0, or NF_ESYNTAX / NF_EINVAL / NF_ELIMIT / NF_ENOMEM with err
 * naming the field ("body: not valid base64 at byte 17"); ev->kind says
 * whether the failure is answered as HTTP 400 or as an /error. On any
 * return ev->req is safe to log (method and path never NULL). */
int nf_event_decode(nf_event *ev, const char *bytes, size_t len, nf_err *err);
void nf_event_free(nf_event *ev);

/* Appends the HTTP event answer for resp to out:
 * {"statusCode":S,"headers":{"Content-Type":T},"body":"...","isBase64Encoded":false}.
 * Returns 0 or -1 (out of memory). */
int nf_event_http_answer(nf_buf *out, const nf_resp *resp);

/* The answer to a direct invocation, appended to out. On success (status
 * 200) it returns 0 and out is resp's body, with "predictions": [x]
 * rewritten to "prediction": x when single. On failure it returns 1, out
 * is an /error body ({"errorMessage", "errorType", "stackTrace": []}) and
 * *error_type its type: "InvalidInput" (4xx) or "InternalError" (5xx).
 * -1 = out of memory. */
int nf_event_direct_answer(nf_buf *out, const nf_resp *resp, int single, const char **error_type);

/* Appends {"errorMessage": msg, "errorType": type, "stackTrace": []}. */
int nf_event_error_body(nf_buf *out, const char *type, const char *msg);

#endif
