/*
 * event.c: Lambda event decoding and answer encoding (see event.h).
 *
 * The event is parsed once with nf_json_parse (strict, depth-bounded);
 * what routing needs is copied into the event's reused buffers and the
 * tree is freed before return. A direct event is not copied: nf_route
 * decodes the event bytes themselves as the request body.
 * Event formats: AWS API Gateway developer guide, "Lambda proxy
 * integrations" (REST, payload 1.0) and "payload format version 2.0" (HTTP
 * API); Lambda developer guide, "Invoking Lambda function URLs" (2.0).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "../codec.h"
#include "event.h"

static const char CT_JSON[] = "application/json";

/* Sets b to s[0..n) plus a NUL; b->len = n. */
static int set_str(nf_buf *b, const char *s, size_t n)
{
    nf_buf_reset(b);
    return nf_buf_append(b, s, n);
}

static struct json_object *get(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;
    if (o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, key, &v))
        return v;
    return NULL;
}

/* String member key of o, or NULL when absent, null or not a string. */
static const char *get_str(struct json_object *o, const char *key, size_t *len)
{
    struct json_object *v = get(o, key);
    if (!v || !json_object_is_type(v, json_type_string))
        return NULL;
    if (len)
        *len = (size_t)json_object_get_string_len(v);
    return json_object_get_string(v);
}

/* Header name (case-insensitive) from a {"name": "value"} object and, for
 * payload 1.0, a {"name": ["v1", "v2"]} multiValueHeaders object (values
 * joined by ", "). Copies it into b; returns 1 if found, 0 if not, -1 out
 * of memory. */
static int find_header(struct json_object *headers, struct json_object *multi, const char *name, nf_buf *b)
{
    if (headers && json_object_is_type(headers, json_type_object)) {
        json_object_object_foreach(headers, key, val)
        {
            if (strcasecmp(key, name) == 0 && val && json_object_is_type(val, json_type_string))
                return set_str(b, json_object_get_string(val), (size_t)json_object_get_string_len(val)) < 0 ? -1 : 1;
        }
    }
    if (multi && json_object_is_type(multi, json_type_object)) {
        json_object_object_foreach(multi, key, val)
        {
            if (strcasecmp(key, name) != 0 || !val || !json_object_is_type(val, json_type_array))
                continue;
            nf_buf_reset(b);
            if (nf_buf_reserve(b, 0) < 0)
                return -1;
            b->p[0] = 0;
            size_t n = json_object_array_length(val), used = 0;
            for (size_t i = 0; i < n; i++) {
                struct json_object *e = json_object_array_get_idx(val, i);
                if (!e || !json_object_is_type(e, json_type_string))
                    continue;
                if ((used++ && nf_buf_append(b, ", ", 2) < 0) ||
                    nf_buf_append(b, json_object_get_string(e), (size_t)json_object_get_string_len(e)) < 0)
                    return -1;
            }
            return used ? 1 : 0;
        }
    }
    return 0;
}

/* Standard base64 (RFC 4648 section 4; the URL-safe alphabet of section 5
 * is accepted too), padding optional, ASCII whitespace skipped. Writes the
 * bytes into out; returns 0, or -1 - offset of the first bad byte, or
 * -2 - len when out of memory. */
static long long base64_decode(const char *s, size_t n, nf_buf *out)
{
    nf_buf_reset(out);
    if (nf_buf_reserve(out, n / 4 * 3 + 3) < 0)
        return -2 - (long long)n;
    unsigned char *o = (unsigned char *)out->p;
    size_t k = 0;
    unsigned acc = 0;
    int bits = 0, pad = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '+' || c == '-')
            v = 62;
        else if (c == '/' || c == '_')
            v = 63;
        else if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        else if (c == '=') {
            pad++;
            continue;
        } else
            return -1 - (long long)i;
        if (pad)
            return -1 - (long long)i; /* data after padding */
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[k++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* 6 leftover bits cannot end a valid encoding (one lone character) */
    if (bits >= 6 || pad > 2)
        return -1 - (long long)n;
    out->len = k;
    out->p[k] = 0;
    return 0;
}

static int set_body(nf_event *ev, struct json_object *o, nf_err *err)
{
    struct json_object *b = get(o, "body"), *b64 = get(o, "isBase64Encoded");
    int is_b64 = 0;
    if (b64) {
        if (!json_object_is_type(b64, json_type_boolean))
            return nf_err_set(err, NF_EINVAL, "isBase64Encoded: expected true or false");
        is_b64 = json_object_get_boolean(b64);
    }
    nf_buf_reset(&ev->body);
    if (nf_buf_reserve(&ev->body, 0) < 0)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    ev->body.p[0] = 0;
    if (b && !json_object_is_type(b, json_type_string))
        return nf_err_set(err, NF_EINVAL, "body: expected a string or null, got a JSON %s",
                          json_type_to_name(json_object_get_type(b)));
    if (b) {
        const char *s = json_object_get_string(b);
        size_t n = (size_t)json_object_get_string_len(b);
        if (is_b64) {
            long long rc = base64_decode(s, n, &ev->body);
            if (rc <= -2 - (long long)n)
                return nf_err_set(err, NF_ENOMEM, "out of memory for a %zu-byte body", n);
            if (rc < 0)
                return nf_err_set(err, NF_ESYNTAX, "body: isBase64Encoded is true but the body is not base64 (byte %lld)",
                                  -rc);
        } else if (set_str(&ev->body, s, n) < 0) {
            return nf_err_set(err, NF_ENOMEM, "out of memory for a %zu-byte body", n);
        }
    }
    ev->req.body = ev->body.p;
    ev->req.body_len = ev->body.len;
    return 0;
}

/* Strips a named stage: HTTP API's rawPath starts with "/<stage>" unless
 * the stage is $default (Function URLs always are). */
static void strip_stage(const char *path, size_t *off, size_t n, const char *stage)
{
    *off = 0;
    if (!stage || !*stage || strcmp(stage, "$default") == 0)
        return;
    size_t sl = strlen(stage);
    if (n > sl && path[0] == '/' && strncmp(path + 1, stage, sl) == 0 && (path[1 + sl] == '/' || 1 + sl == n))
        *off = 1 + sl;
}

static int decode_http(nf_event *ev, struct json_object *root, nf_err *err)
{
    struct json_object *ctx = get(root, "requestContext"), *http = get(ctx, "http");
    const char *method, *path;
    size_t mlen = 0, plen = 0, off = 0;
    if (ev->kind == NF_EV_HTTP_V2) {
        method = get_str(http, "method", &mlen);
        path = get_str(root, "rawPath", &plen);
        if (!path)
            path = get_str(http, "path", &plen);
        if (path)
            strip_stage(path, &off, plen, get_str(ctx, "stage", NULL));
    } else {
        method = get_str(root, "httpMethod", &mlen);
        path = get_str(root, "path", &plen);
    }
    if (!path || !plen)
        path = "/", plen = 1, off = 0;
    if (off == plen) /* "/stage" alone is the root */
        path = "/", plen = 1, off = 0;
    if (set_str(&ev->method, method, mlen) < 0 || set_str(&ev->path, path + off, plen - off) < 0)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    ev->req.method = ev->method.p;
    ev->req.path = ev->path.p;

    struct json_object *hdrs = get(root, "headers");
    struct json_object *multi = ev->kind == NF_EV_HTTP_V1 ? get(root, "multiValueHeaders") : NULL;
    int f = find_header(hdrs, multi, "content-type", &ev->content_type);
    int a = f < 0 ? -1 : find_header(hdrs, multi, "accept", &ev->accept);
    if (a < 0)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    ev->req.content_type = f ? ev->content_type.p : NULL;
    ev->req.accept = a ? ev->accept.p : NULL;
    return set_body(ev, root, err);
}

int nf_event_decode(nf_event *ev, const char *bytes, size_t len, nf_err *err)
{
    struct json_object *root = NULL;
    memset(&ev->req, 0, sizeof ev->req);
    ev->kind = NF_EV_DIRECT;
    ev->single = 0;
    /* a direct event as nf_route will see it, also the fallback on error */
    ev->req.method = "POST";
    ev->req.path = "/invocations";
    ev->req.content_type = CT_JSON;
    ev->req.body = bytes ? bytes : "";
    ev->req.body_len = bytes ? len : 0;
    int rc = nf_json_parse(bytes ? bytes : "", bytes ? len : 0, &root, err);
    if (rc) {
        if (rc == NF_ESYNTAX) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            nf_err_set(err, rc, "the event is not JSON: %s", msg);
        }
        return rc;
    }
    struct json_object *ctx = get(root, "requestContext");
    if (get_str(get(ctx, "http"), "method", NULL))
        ev->kind = NF_EV_HTTP_V2;
    else if (get_str(root, "httpMethod", NULL))
        ev->kind = NF_EV_HTTP_V1;
    if (ev->kind == NF_EV_DIRECT) {
        ev->single = json_object_is_type(root, json_type_object) && json_object_object_get_ex(root, "features", NULL);
        rc = 0;
    } else {
        rc = decode_http(ev, root, err);
    }
    json_object_put(root);
    return rc;
}

void nf_event_free(nf_event *ev)
{
    nf_buf_free(&ev->method);
    nf_buf_free(&ev->path);
    nf_buf_free(&ev->content_type);
    nf_buf_free(&ev->accept);
    nf_buf_free(&ev->body);
    memset(ev, 0, sizeof *ev);
}

/* ---- answers ------------------------------------------------------------ */

int nf_event_http_answer(nf_buf *out, const nf_resp *resp)
{
    const char *ct = resp->content_type ? resp->content_type : CT_JSON;
    const char *body = resp->body && resp->body->p ? resp->body->p : "";
    size_t n = resp->body ? resp->body->len : 0;
    if (nf_buf_printf(out, "{\"statusCode\":%d,\"headers\":{\"Content-Type\":", resp->status) < 0 ||
        nf_json_str(out, ct, strlen(ct)) < 0 || nf_buf_append(out, "},\"body\":", 9) < 0 ||
        nf_json_str(out, body, n) < 0 || nf_buf_append(out, ",\"isBase64Encoded\":false}", 25) < 0)
        return -1;
    return 0;
}

int nf_event_error_body(nf_buf *out, const char *type, const char *msg)
{
    if (nf_buf_append(out, "{\"errorMessage\":", 16) < 0 || nf_json_str(out, msg, strlen(msg)) < 0 ||
        nf_buf_append(out, ",\"errorType\":", 13) < 0 || nf_json_str(out, type, strlen(type)) < 0 ||
        nf_buf_append(out, ",\"stackTrace\":[]}", 17) < 0)
        return -1;
    return 0;
}

/* End of the JSON value starting at s[i] (a scalar, string, list or
 * object of our own encoder's output): the index just past it, or 0. */
static size_t value_end(const char *s, size_t n, size_t i)
{
    int depth = 0, in_str = 0;
    for (; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
            if (!in_str && depth == 0)
                return i + 1;
            continue;
        }
        if (c == '"')
            in_str = 1;
        else if (c == '[' || c == '{')
            depth++;
        else if (c == ']' || c == '}') {
            if (depth == 0)
                return i; /* the end of the enclosing list */
            if (--depth == 0)
                return i + 1;
        } else if (c == ',' && depth == 0)
            return i;
    }
    return 0;
}

/* {"predictions":[X]...} -> {"prediction":X...}: our encoder's layout
 * (codec.h) with exactly one row; anything else is left as is. */
static int single_row(nf_buf *out, const char *s, size_t n)
{
    static const char key[] = "{\"predictions\":[";
    size_t k = sizeof key - 1;
    if (n > k && memcmp(s, key, k) == 0) {
        size_t e = value_end(s, n, k);
        if (e > k && e < n && s[e] == ']')
            return nf_buf_append(out, "{\"prediction\":", 14) < 0 || nf_buf_append(out, s + k, e - k) < 0 ||
                           nf_buf_append(out, s + e + 1, n - e - 1) < 0
                       ? -1
                       : 0;
    }
    return nf_buf_append(out, s, n);
}

int nf_event_direct_answer(nf_buf *out, const nf_resp *resp, int single, const char **error_type)
{
    const char *body = resp->body && resp->body->p ? resp->body->p : "";
    size_t n = resp->body ? resp->body->len : 0;
    *error_type = NULL;
    if (resp->status == 200)
        return single ? single_row(out, body, n) : nf_buf_append(out, body, n);
    /* nf_route's error answers are {"error":{"code":..,"message":..}} */
    *error_type = resp->status >= 400 && resp->status < 500 ? "InvalidInput" : "InternalError";
    struct json_object *root = NULL;
    nf_err e = {0};
    const char *msg = NULL;
    if (nf_json_parse(body, n, &root, &e) == 0)
        msg = get_str(get(root, "error"), "message", NULL);
    char text[1100];
    snprintf(text, sizeof text, "%s", msg ? msg : "request failed");
    json_object_put(root);
    return nf_event_error_body(out, *error_type, text) < 0 ? -1 : 1;
}
