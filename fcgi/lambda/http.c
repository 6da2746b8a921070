/*
 * http.c: the Runtime API's HTTP/1.1 client (see http.h): one blocking,
 * kept-alive TCP connection, TCP_NODELAY, head and body sent in one
 * sendmsg. Responses are read through a read-ahead buffer; the head must fit
 * in NF_HTTP_MAX_HEAD bytes and NF_HTTP_MAX_FIELDS fields, a chunk-size line
 * in 1 KB, so a misbehaving peer costs bounded memory.
 * No timeouts: the Runtime API's GET /next blocks until an event arrives
 * (AWS: "do not set a timeout on the GET request").
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "http.h"

#define MAX_CHUNK_LINE 1024

int nf_http_init(nf_http *h, const char *hostport, nf_err *err)
{
    memset(h, 0, sizeof *h);
    h->fd = -1;
    const char *host = hostport, *colon;
    size_t host_len;
    if (!hostport || !*hostport)
        return nf_err_set(err, NF_EINVAL, "AWS_LAMBDA_RUNTIME_API is empty");
    if (hostport[0] == '[') {
        const char *close = strchr(hostport, ']');
        if (!close || close[1] != ':')
            return nf_err_set(err, NF_EINVAL, "AWS_LAMBDA_RUNTIME_API '%.100s': expected [v6addr]:port", hostport);
        host = hostport + 1;
        host_len = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(hostport, ':');
        if (!colon)
            return nf_err_set(err, NF_EINVAL, "AWS_LAMBDA_RUNTIME_API '%.100s': expected host:port", hostport);
        host_len = (size_t)(colon - hostport);
    }
    const char *port = colon + 1;
    size_t port_len = strlen(port);
    if (host_len == 0 || host_len >= sizeof h->host || port_len == 0 || port_len >= sizeof h->port ||
        strspn(port, "0123456789") != port_len || atoi(port) < 1 || atoi(port) > 65535)
        return nf_err_set(err, NF_EINVAL, "AWS_LAMBDA_RUNTIME_API '%.100s': expected host:port", hostport);
    memcpy(h->host, host, host_len);
    memcpy(h->port, port, port_len);
    snprintf(h->authority, sizeof h->authority, "%s", hostport);
    return 0;
}

static void disconnect(nf_http *h)
{
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
    h->r_pos = h->r_end = 0;
}

void nf_http_fini(nf_http *h)
{
    disconnect(h);
    nf_buf_free(&h->body);
    nf_buf_free(&h->reqhead);
}

static int stopped(const nf_http *h)
{
    return h->stop && *h->stop;
}

static int do_connect(nf_http *h, nf_err *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL, *ai;
    int rc = getaddrinfo(h->host, h->port, &hints, &res);
    if (rc != 0)
        return nf_err_set(err, NF_ECONN, "runtime API %s: cannot resolve: %s", h->authority, gai_strerror(rc));
    int e = 0;
    for (ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        int r;
        do
            r = connect(fd, ai->ai_addr, ai->ai_addrlen);
        while (r < 0 && errno == EINTR && !stopped(h));
        if (r == 0) {
            /* Head and body leave in one sendmsg, but without NODELAY a
             * small request after a small request waits for the peer's
             * delayed ACK (40 ms). */
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            h->fd = fd;
            h->r_pos = h->r_end = 0;
            h->n_connects++;
            freeaddrinfo(res);
            return 0;
        }
        e = errno;
        close(fd);
    }
    freeaddrinfo(res);
    if (stopped(h))
        return nf_err_set(err, NF_ESTOPPED, "stopped");
    return nf_err_set(err, NF_ECONN, "runtime API %s: connect: %s", h->authority, strerror(e));
}

/* Sends everything in iov[0..n) (modified). */
static int send_all(nf_http *h, struct iovec *iov, int n, nf_err *err)
{
    while (n > 0) {
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(h->fd, &msg, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR && !stopped(h))
                continue;
            if (stopped(h))
                return nf_err_set(err, NF_ESTOPPED, "stopped");
            return nf_err_set(err, NF_ECONN, "runtime API %s: send: %s", h->authority, strerror(errno));
        }
        size_t left = (size_t)w;
        while (n > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++, n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

/* recv into p[0..n): bytes read, 0 at end of stream, or a negative status. */
static ssize_t recv_some(nf_http *h, void *p, size_t n, nf_err *err)
{
    for (;;) {
        ssize_t r = recv(h->fd, p, n, 0);
        if (r >= 0)
            return r;
        if (errno == EINTR && !stopped(h))
            continue;
        if (stopped(h))
            return nf_err_set(err, NF_ESTOPPED, "stopped");
        return nf_err_set(err, NF_ECONN, "runtime API %s: receive: %s", h->authority, strerror(errno));
    }
}

/* Reads more into the read-ahead buffer (compacting it first). Returns the
 * bytes added, 0 at end of stream, or a negative status. */
static ssize_t fill(nf_http *h, nf_err *err)
{
    if (h->r_pos > 0) {
        memmove(h->rbuf, h->rbuf + h->r_pos, h->r_end - h->r_pos);
        h->r_end -= h->r_pos;
        h->r_pos = 0;
    }
    if (h->r_end == sizeof h->rbuf)
        return nf_err_set(err, NF_EINTERNAL, "read buffer full");
    ssize_t r = recv_some(h, h->rbuf + h->r_end, sizeof h->rbuf - h->r_end, err);
    if (r > 0)
        h->r_end += (size_t)r;
    return r;
}

/* Body sink: keeps up to max bytes, drops the rest (and all kept so far)
 * once the total passes max, so the stream stays in step either way. */
typedef struct sink {
    nf_http *h;
    size_t max, total;
} sink;

static int sink_put(sink *s, const char *p, size_t n, nf_err *err)
{
    s->total += n;
    if (s->h->body_dropped)
        return 0;
    if (s->total > s->max) {
        s->h->body_dropped = 1;
        nf_buf_reset(&s->h->body);
        return 0;
    }
    if (nf_buf_append(&s->h->body, p, n) < 0)
        return nf_err_set(err, NF_ENOMEM, "out of memory for a %zu-byte response body", s->total);
    return 0;
}

/* Moves n body bytes from the connection (read-ahead first) to the sink;
 * large remainders go straight from recv into the body buffer. */
static int read_exact(nf_http *h, sink *s, size_t n, nf_err *err)
{
    while (n > 0) {
        size_t have = h->r_end - h->r_pos;
        if (have > 0) {
            size_t take = have < n ? have : n;
            if (sink_put(s, h->rbuf + h->r_pos, take, err) < 0)
                return -1;
            h->r_pos += take;
            n -= take;
            continue;
        }
        ssize_t r;
        if (!h->body_dropped && s->total + n <= s->max && n >= sizeof h->rbuf / 2) {
            if (nf_buf_reserve(&h->body, n) < 0)
                return nf_err_set(err, NF_ENOMEM, "out of memory for a %zu-byte response body", s->total + n);
            r = recv_some(h, h->body.p + h->body.len, n, err);
            if (r > 0) {
                h->body.len += (size_t)r;
                h->body.p[h->body.len] = 0;
                s->total += (size_t)r;
                n -= (size_t)r;
            }
        } else {
            r = fill(h, err);
        }
        if (r < 0)
            return (int)r;
        if (r == 0)
            return nf_err_set(err, NF_ECONN, "runtime API %s: connection closed in the middle of a response body",
                              h->authority);
    }
    return 0;
}

/* One line (up to LF) of at most max bytes from the read-ahead, CR LF or LF
 * stripped; *line points into rbuf, valid until the next fill. */
static int read_line(nf_http *h, char **line, size_t max, nf_err *err)
{
    for (;;) {
        char *p = h->rbuf + h->r_pos;
        size_t have = h->r_end - h->r_pos;
        char *lf = memchr(p, '\n', have);
        if (lf) {
            size_t n = (size_t)(lf - p);
            if (n > 0 && p[n - 1] == '\r')
                n--;
            p[n] = 0;
            *line = p;
            h->r_pos += (size_t)(lf - p) + 1;
            return 0;
        }
        if (have > max)
            return nf_err_set(err, NF_ESYNTAX, "runtime API %s: a chunk line is over %zu bytes", h->authority, max);
        ssize_t r = fill(h, err);
        if (r < 0)
            return (int)r;
        if (r == 0)
            return nf_err_set(err, NF_ECONN, "runtime API %s: connection closed in the middle of a chunked body",
                              h->authority);
    }
}

static int read_chunked(nf_http *h, sink *s, nf_err *err)
{
    char *line;
    int rc;
    for (;;) {
        if ((rc = read_line(h, &line, MAX_CHUNK_LINE, err)) != 0)
            return rc;
        char *end;
        errno = 0;
        unsigned long long n = strtoull(line, &end, 16);
        if (end == line || errno || (*end && *end != ';' && *end != ' ' && *end != '\t') || n > (1ULL << 40))
            return nf_err_set(err, NF_ESYNTAX, "runtime API %s: bad chunk size line '%.40s'", h->authority, line);
        if (n == 0)
            break;
        if ((rc = read_exact(h, s, (size_t)n, err)) != 0)
            return rc;
        if ((rc = read_line(h, &line, MAX_CHUNK_LINE, err)) != 0)
            return rc;
        if (*line)
            return nf_err_set(err, NF_ESYNTAX, "runtime API %s: chunk data not followed by CRLF", h->authority);
    }
    /* trailer fields, then the empty line; bounded like the head */
    size_t trailer = 0;
    for (;;) {
        if ((rc = read_line(h, &line, MAX_CHUNK_LINE, err)) != 0)
            return rc;
        if (!*line)
            return 0;
        trailer += strlen(line);
        if (trailer > NF_HTTP_MAX_HEAD)
            return nf_err_set(err, NF_ESYNTAX, "runtime API %s: chunked trailer over %d bytes", h->authority,
                              NF_HTTP_MAX_HEAD);
    }
}

static int read_to_close(nf_http *h, sink *s, nf_err *err)
{
    for (;;) {
        if (h->r_end > h->r_pos) {
            if (sink_put(s, h->rbuf + h->r_pos, h->r_end - h->r_pos, err) < 0)
                return -1;
            h->r_pos = h->r_end;
        }
        ssize_t r = fill(h, err);
        if (r < 0)
            return (int)r;
        if (r == 0)
            return 0;
    }
}

/* Finds the end of the head in the read-ahead: the offset just past the
 * empty line, or 0 if it has not arrived yet. Tolerates bare LF lines. */
static size_t head_end(const nf_http *h)
{
    const char *p = h->rbuf + h->r_pos;
    size_t n = h->r_end - h->r_pos;
    for (size_t i = 0; i + 1 < n; i++) {
        if (p[i] != '\n')
            continue;
        if (p[i + 1] == '\n')
            return i + 2;
        if (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

/* Parses the head (copied to h->head) into status and fields. */
static int parse_head(nf_http *h, size_t len, nf_err *err)
{
    memcpy(h->head, h->rbuf + h->r_pos, len);
    h->head[len] = 0;
    h->r_pos += len;
    h->n_fields = 0;
    char *p = h->head, *line_end;
    int first = 1;
    while (*p) {
        line_end = strchr(p, '\n');
        if (!line_end)
            break;
        *line_end = 0;
        if (line_end > p && line_end[-1] == '\r')
            line_end[-1] = 0;
        if (!*p)
            break; /* the empty line */
        if (first) {
            /* HTTP/1.x SSS reason */
            if (strncmp(p, "HTTP/1.", 7) != 0 || !(p[7] == '0' || p[7] == '1') || p[8] != ' ' ||
                strspn(p + 9, "0123456789") != 3 || (p[12] != ' ' && p[12] != 0))
                return nf_err_set(err, NF_ESYNTAX, "runtime API %s: bad status line '%.60s'", h->authority, p);
            h->status = atoi(p + 9);
            first = 0;
        } else {
            char *colon = strchr(p, ':');
            if (!colon || colon == p || *p == ' ' || *p == '\t')
                return nf_err_set(err, NF_ESYNTAX, "runtime API %s: bad header line '%.60s'", h->authority, p);
            if (h->n_fields == NF_HTTP_MAX_FIELDS)
                return nf_err_set(err, NF_ESYNTAX, "runtime API %s: more than %d header fields", h->authority,
                                  NF_HTTP_MAX_FIELDS);
            *colon = 0;
            char *v = colon + 1, *e = v + strlen(v);
            while (*v == ' ' || *v == '\t')
                v++;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                *--e = 0;
            h->fields[h->n_fields].name = p;
            h->fields[h->n_fields].value = v;
            h->n_fields++;
        }
        p = line_end + 1;
    }
    if (first)
        return nf_err_set(err, NF_ESYNTAX, "runtime API %s: empty response head", h->authority);
    return 0;
}

const char *nf_http_header(const nf_http *h, const char *name)
{
    for (int i = 0; i < h->n_fields; i++)
        if (strcasecmp(h->fields[i].name, name) == 0)
            return h->fields[i].value;
    return NULL;
}

/* Does the comma-separated list v hold token tok (case-insensitive)? */
static int has_token(const char *v, const char *tok)
{
    size_t n = strlen(tok);
    while (v && *v) {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        size_t l = strcspn(v, ",;");
        size_t t = l;
        while (t > 0 && (v[t - 1] == ' ' || v[t - 1] == '\t'))
            t--;
        if (t == n && strncasecmp(v, tok, n) == 0)
            return 1;
        v += l;
        if (*v == ';')
            v += strcspn(v, ",");
    }
    return 0;
}

/* Reads one response. *got_any is set once a byte of it arrived (after
 * that a failure is not retried: the request may have been acted on). */
static int read_response(nf_http *h, int head_only, size_t max_body, int *got_any, nf_err *err)
{
    int rc;
    for (;;) {
        size_t len;
        while ((len = head_end(h)) == 0) {
            if (h->r_end - h->r_pos > NF_HTTP_MAX_HEAD)
                return nf_err_set(err, NF_ESYNTAX, "runtime API %s: response head over %d bytes", h->authority,
                                  NF_HTTP_MAX_HEAD);
            ssize_t r = fill(h, err);
            if (r < 0)
                return (int)r;
            if (r == 0)
                return nf_err_set(err, NF_ECONN, "runtime API %s: connection closed %s", h->authority,
                                  h->r_end > h->r_pos ? "in the middle of a response head" : "before the response");
            *got_any = 1;
        }
        if (len > NF_HTTP_MAX_HEAD)
            return nf_err_set(err, NF_ESYNTAX, "runtime API %s: response head over %d bytes", h->authority,
                              NF_HTTP_MAX_HEAD);
        *got_any = 1;
        if ((rc = parse_head(h, len, err)) != 0)
            return rc;
        if (h->status >= 200)
            break;
        /* 1xx interim answers: skip (we never send Expect) */
    }
    nf_buf_reset(&h->body);
    if (nf_buf_reserve(&h->body, 0) < 0)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    h->body.p[0] = 0;
    h->body_dropped = 0;
    sink s = {.h = h, .max = max_body, .total = 0};
    const char *te = nf_http_header(h, "Transfer-Encoding");
    const char *cl = nf_http_header(h, "Content-Length");
    const char *conn = nf_http_header(h, "Connection");
    int keep = strncmp(h->head, "HTTP/1.1", 8) == 0 ? !has_token(conn, "close") : has_token(conn, "keep-alive");
    if (head_only || h->status == 204 || h->status == 304) {
        rc = 0;
    } else if (te && has_token(te, "chunked")) {
        rc = read_chunked(h, &s, err);
    } else if (te) {
        return nf_err_set(err, NF_ESYNTAX, "runtime API %s: unsupported Transfer-Encoding '%.40s'", h->authority, te);
    } else if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (end == cl || *end || errno || cl[0] == '-' || n > (1ULL << 40))
            return nf_err_set(err, NF_ESYNTAX, "runtime API %s: bad Content-Length '%.40s'", h->authority, cl);
        rc = read_exact(h, &s, (size_t)n, err);
    } else {
        rc = read_to_close(h, &s, err);
        keep = 0;
    }
    if (rc == 0 && !keep)
        disconnect(h);
    return rc;
}

/* Request ids go into the path: anything but unreserved characters is
 * percent-encoded so an odd id cannot break the request line. */
static int append_path(nf_buf *b, const char *path)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("-._~/", *p)) {
            if (nf_buf_append(b, p, 1) < 0)
                return -1;
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            if (nf_buf_append(b, e, 3) < 0)
                return -1;
        }
    }
    return 0;
}

int nf_http_request(nf_http *h, const char *method, const char *path, const char *headers, const char *body,
                    size_t body_len, size_t max_body, nf_err *err)
{
    nf_buf *rq = &h->reqhead;
    nf_buf_reset(rq);
    if (nf_buf_printf(rq, "%s ", method) < 0 || append_path(rq, path) < 0 ||
        nf_buf_printf(rq, " HTTP/1.1\r\nHost: %s\r\nUser-Agent: nginfer-lambda\r\n%s", h->authority,
                      headers ? headers : "") < 0 ||
        ((body_len > 0 || strcmp(method, "POST") == 0) && nf_buf_printf(rq, "Content-Length: %zu\r\n", body_len) < 0) ||
        nf_buf_append(rq, "\r\n", 2) < 0)
        return nf_err_set(err, NF_ENOMEM, "out of memory");
    h->status = 0;
    h->n_fields = 0;
    for (int attempt = 0;; attempt++) {
        int rc, got_any = 0;
        if (h->fd < 0 && (rc = do_connect(h, err)) != 0)
            return rc;
        struct iovec iov[2] = {{rq->p, rq->len}, {(void *)(body ? body : ""), body_len}};
        rc = send_all(h, iov, body_len ? 2 : 1, err);
        if (rc == 0)
            rc = read_response(h, strcmp(method, "HEAD") == 0, max_body, &got_any, err);
        if (rc == 0)
            return 0;
        disconnect(h);
        /* A kept-alive connection the peer closed while we were busy shows
         * up here as a failed send or an answer that never starts: open a
         * new one and send again, once. */
        if (rc == NF_ECONN && !got_any && attempt == 0)
            continue;
        return rc;
    }
}
