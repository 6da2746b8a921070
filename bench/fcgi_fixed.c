/*
 * fcgi_fixed.c: the architecture's limit for bench/run.sh. A FastCGI
 * responder that reads the whole request body and answers every request
 * with the same small JSON (the size of a 1-row nginfer answer), doing no
 * parsing and no inference. Served exactly like nginfer: tools/nginfer-serve
 * (same nginx template, so the same upstream keepalive and
 * fastcgi_keep_conn; spawn-fcgi + multiwatch, same worker count) with -b
 * pointing at a directory whose nginfer-worker is a wrapper that passes
 * config queries and the model check to the real worker and execs this
 * program to serve (bench/run.sh writes it). And with the same connection
 * loop: fcgi/conn.h, which the worker runs too (kept connections served
 * one request at a time, the watchdog thread included), so the only
 * difference left is the work done per request. nginfer's throughput
 * divided by this one's is the efficiency figure.
 *
 *   gcc -O2 -o bench/work/fcgi_fixed bench/fcgi_fixed.c -lfcgi
 *
 * Like the worker, it takes its listening socket on fd 0 from spawn-fcgi.
 * SIGTERM (multiwatch) ends it after the requests already sent to it.
 */
#include <signal.h>
#include <string.h>

#include "../fcgi/conn.h"

static const char answer[] =
    "Status: 200 OK\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 38\r\n"
    "\r\n"
    "{\"predictions\":[[175.47991943359375]]}";

static volatile sig_atomic_t stop_requested;

static void on_term(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void serve_fixed(FCGX_Request *req, void *ctx)
{
    static char buf[65536];
    (void)ctx;
    while (FCGX_GetStr(buf, sizeof buf, req->in) > 0)
        ; /* read (and drop) the whole body, as a real worker must */
    FCGX_PutStr(answer, (int)sizeof answer - 1, req->out);
    FCGX_Finish_r(req);
}

int main(void)
{
    static nf_conn_loop loop;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term; /* no SA_RESTART: epoll_wait returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (FCGX_Init() != 0 || nf_conn_init(&loop, 0, &stop_requested) != 0)
        return 1;
    return nf_conn_run(&loop, serve_fixed, NULL) == 0 ? 0 : 1;
}
