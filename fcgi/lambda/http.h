/*
 * http.h: the smallest HTTP/1.1 client the Lambda Runtime API needs: one
 * kept-alive TCP connection to AWS_LAMBDA_RUNTIME_API (host:port), one
 * request at a time, Content-Length request bodies, Content-Length, chunked
 * or until-close response bodies.
 * Memory: everything hangs off nf_http and is reused; the response head is a
 * fixed array (bounded), the body an nf_buf that grows only when a body is
 * larger than any before it (and never past the caller's limit).
 */
#ifndef NF_LAMBDA_HTTP_H
#define NF_LAMBDA_HTTP_H

#include <signal.h>
#include <stddef.h>

#include "../codec.h"

#define NF_HTTP_MAX_HEAD 16384  /* status line plus header fields, bytes */
#define NF_HTTP_MAX_FIELDS 64   /* header fields in one response */
#define NF_HTTP_RBUF 65536      /* read-ahead buffer */

/* Status codes beyond the core's: the connection failed (connect, send,
 * receive, or the peer closed it), or a signal asked us to stop. */
enum { NF_ECONN = -200, NF_ESTOPPED = -201 };

typedef struct nf_http_field {
    const char *name;  /* points into nf_http.head, NUL-terminated */
    const char *value; /* leading and trailing blanks trimmed */
} nf_http_field;

typedef struct nf_http {
    char host[256];              /* as given, without IPv6 brackets */
    char port[8];
    char authority[272];         /* Host: header value ("host:port") */
    int fd;                      /* -1 = not connected */
    volatile sig_atomic_t *stop; /* may be NULL; when set, EINTR ends a call with NF_ESTOPPED */
    long n_connects;             /* connections opened so far */

    /* The last response; valid until the next request. */
    int status;
    char head[NF_HTTP_MAX_HEAD + 1];
    nf_http_field fields[NF_HTTP_MAX_FIELDS];
    int n_fields;
    nf_buf body;      /* de-chunked, NUL-terminated; empty when dropped */
    int body_dropped; /* the body was over the caller's limit: read and discarded */

    nf_buf reqhead; /* request line and headers being sent */
    size_t r_pos, r_end;
    char rbuf[NF_HTTP_RBUF];
} nf_http;

/* Fills h for hostport ("127.0.0.1:9001", "[::1]:9001", "localhost:9001");
 * does not connect yet. NF_EINVAL when hostport is malformed. */
int nf_http_init(nf_http *h, const char *hostport, nf_err *err);
void nf_http_fini(nf_http *h);

/* Sends one request and reads the whole response into h->status,
 * h->fields and h->body. headers is NULL or extra header lines, each ending
 * in "\r\n"; body (body_len bytes, may be 0) goes with a Content-Length.
 * A response body over max_body bytes is read and dropped (body_dropped).
 * The connection is opened on first use and kept alive; if it turns out to
 * be dead (send fails, or it closes before the first byte of the answer) it
 * is reopened once and the request sent again. Returns 0 (any HTTP status),
 * NF_ECONN with a message naming the step, NF_ESYNTAX for a malformed or
 * oversized response head, NF_ESTOPPED when *h->stop got set. */
int nf_http_request(nf_http *h, const char *method, const char *path, const char *headers, const char *body,
                    size_t body_len, size_t max_body, nf_err *err);

/* Value of the last response's header name (case-insensitive), NULL if
 * absent. */
const char *nf_http_header(const nf_http *h, const char *name);

#endif
