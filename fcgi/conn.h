/*
 * conn.h: the FastCGI serving loop of one worker process: many kept
 * connections from nginx, served one request at a time, never pinned.
 * Header-only (static functions) so that the worker (fcgi/main.c) and the
 * bench's fixed-answer peer (bench/fcgi_fixed.c) run the very same loop.
 *
 * Why: with `fastcgi_keep_conn on` and an upstream `keepalive` pool nginx
 * keeps connections open between requests, which saves per request a
 * socket/connect/close in nginx and an accept, a shutdown, a wait for
 * nginx's close and a close in the worker (measured on the fixed-answer
 * peer, 1-row bodies, 64 clients, 2 workers: worker CPU per request 34 ->
 * 12 us, nginx 53 -> 26 us, about twice the requests per second; worker
 * system calls per request 8 -> 3). libfcgi's own loop serves one connection until
 * nginx closes it: a worker blocks on its idle kept connection while new
 * connections wait in the listen backlog, a stall (issue 7: a probe hung
 * for 8 s with keepalive 8 and 2 workers).
 *
 * The loop here never blocks on one connection. It waits (epoll, level
 * triggered) on the listen socket and on every connection it holds, and
 * serves whichever has a request; libfcgi only parses and writes requests
 * on a connection the loop hands it (each slot's FCGX_Request has listen
 * socket -1, so libfcgi can never sit in accept()). The listen socket is
 * made non-blocking (it is shared by all workers: they all run this loop),
 * so losing an accept race to another worker costs an EAGAIN. Hence:
 *   - no stall: a connection in the backlog is accepted by the next worker
 *     that waits, whatever connections the workers hold; any keepalive
 *     count is safe;
 *   - fairness: level-triggered epoll hands out one ready descriptor per
 *     call and puts it back at the tail of its ready list, so the listen
 *     socket and the held connections take turns;
 *   - head-of-line blocking: a request nginx sends on a connection whose
 *     worker is busy waits for that worker even if another one is idle.
 *     For a long request (a large batch) a watchdog thread sheds the busy
 *     worker's other connections once it has run NF_CONN_SHED_MS, a few
 *     at a time: shutdown(2), so nginx sees them close and resends what it
 *     had sent on them over another connection (fastcgi_next_upstream
 *     error ... non_idempotent; an error on a cached connection does not
 *     use up one of the fastcgi_next_upstream_tries, but each attempt
 *     takes one of the upstream's server lines: nginx/nginfer.conf.in
 *     lists the socket 32 times), and another worker answers it.
 * Invariant: only the loop's thread touches a slot's FCGX_Request; the
 * watchdog only calls shutdown() on descriptors of slots that are not
 * being served, under the mutex, and the loop changes slots only while it
 * serves nothing (it takes the same mutex to stop serving).
 */
#ifndef NF_CONN_H
#define NF_CONN_H

#include <errno.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Connections one worker holds at most. libfcgi waits with select(), so
 * every descriptor must stay below FD_SETSIZE (the worker caps its open
 * files there); this leaves room for the model and log files. Past it the
 * least recently used connection is closed to make room (nginx opens a
 * new one when it needs it). */
#define NF_CONN_MAX 512

/* A request running longer than this (wall clock) makes its worker shed
 * its other connections (see above). Far above a 1-row or 64-row request
 * (0.05-2 ms), far below nginx's read timeout. */
#ifndef NF_CONN_SHED_MS
#define NF_CONN_SHED_MS 20
#endif
#define NF_CONN_SHED_BATCH 4 /* connections shed per NF_CONN_SHED_MS / 2 */

#define NF_CONN_LISTEN UINT32_MAX /* epoll tag of the listen socket */

/* Serves one request that FCGX_Accept_r has read into req: must write the
 * answer and call FCGX_Finish_r(req) before it returns (it may do more
 * afterwards, such as logging). */
typedef void (*nf_conn_handler)(FCGX_Request *req, void *ctx);

typedef struct nf_conn_loop {
    FCGX_Request reqs[NF_CONN_MAX]; /* ipcFd >= 0: the slot holds a connection */
    int reg[NF_CONN_MAX];           /* descriptor registered with epoll, -1 none */
    uint64_t used[NF_CONN_MAX];     /* last request served (eviction order) */
    unsigned char shed[NF_CONN_MAX]; /* shut down by the watchdog: close it */
    uint64_t tick;
    int ep, listen_fd, listening;
    /* watchdog state, under mu */
    pthread_mutex_t mu;
    int serving;                  /* slot being served, -1 none */
    struct timespec since;        /* when it started */
    volatile sig_atomic_t *stop;  /* set by the caller's signal handler */
    void (*idle)(void);           /* called before the loop waits, or NULL */
} nf_conn_loop;

static long nf_conn__ms_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/* The watchdog: every NF_CONN_SHED_MS / 2, while one request has run
 * longer than NF_CONN_SHED_MS, shut down up to NF_CONN_SHED_BATCH more of
 * the other held connections, most recently used first (nearest the head
 * of nginx's keepalive cache, which it takes from first). A few at a time:
 * nginx may pick a connection in the moment it is shut, fail on it and
 * take the next from its cache; each such failure uses up one of the
 * upstream's server lines (nginx/nginfer.conf.in), so the run of dead
 * connections it can meet must stay short. */
static void *nf_conn__watchdog(void *arg)
{
    nf_conn_loop *L = arg;
    struct timespec nap = {0, NF_CONN_SHED_MS * 1000000L / 2};
    while (!*L->stop) {
        nanosleep(&nap, NULL);
        pthread_mutex_lock(&L->mu);
        if (L->serving >= 0 && nf_conn__ms_since(&L->since) >= NF_CONN_SHED_MS) {
            for (int k = 0; k < NF_CONN_SHED_BATCH; k++) {
                int best = -1;
                for (int i = 0; i < NF_CONN_MAX; i++)
                    if (i != L->serving && L->reqs[i].ipcFd >= 0 && !L->shed[i] &&
                        (best < 0 || L->used[i] > L->used[best]))
                        best = i;
                if (best < 0)
                    break;
                shutdown(L->reqs[best].ipcFd, SHUT_RDWR);
                L->shed[best] = 1;
            }
        }
        pthread_mutex_unlock(&L->mu);
    }
    return NULL;
}

/* Closes the connection of slot s (not being served, no request open). */
static void nf_conn__drop(nf_conn_loop *L, int s)
{
    close(L->reqs[s].ipcFd); /* also leaves the epoll set */
    L->reqs[s].ipcFd = -1;
    L->reqs[s].keepConnection = 0;
    L->reg[s] = -1;
    L->shed[s] = 0;
}

/* Closes the least recently used connection (a request nginx had just
 * sent on it is resent, above); returns its slot, -1 if none is held. */
static int nf_conn__drop_lru(nf_conn_loop *L)
{
    int lru = -1;
    for (int i = 0; i < NF_CONN_MAX; i++)
        if (L->reqs[i].ipcFd >= 0 && (lru < 0 || L->used[i] < L->used[lru]))
            lru = i;
    if (lru >= 0)
        nf_conn__drop(L, lru);
    return lru;
}

/* A free slot; when all are taken, the least recently used connection is
 * closed for it. */
static int nf_conn__free_slot(nf_conn_loop *L)
{
    for (int i = 0; i < NF_CONN_MAX; i++)
        if (L->reqs[i].ipcFd < 0)
            return i;
    return nf_conn__drop_lru(L);
}

/* Sets up the loop on the listening socket listen_fd. stop: checked
 * before every wait; the caller's SIGTERM handler sets it (without
 * SA_RESTART, so epoll_wait returns EINTR). Returns 0, or -1 with a
 * message on stderr naming the step that failed. */
static int nf_conn_init(nf_conn_loop *L, int listen_fd, volatile sig_atomic_t *stop)
{
    memset(L, 0, sizeof *L);
    L->listen_fd = listen_fd;
    L->stop = stop;
    L->serving = -1;
    for (int i = 0; i < NF_CONN_MAX; i++) {
        /* listen socket -1: libfcgi's accept fails at once (EBADF) if it
         * ever tries, instead of blocking */
        FCGX_InitRequest(&L->reqs[i], -1, 0);
        L->reg[i] = -1;
    }
    int fl = fcntl(listen_fd, F_GETFL);
    if (fl < 0 || fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        fprintf(stderr, "nginfer: fcntl(listen socket %d, O_NONBLOCK): %s\n", listen_fd, strerror(errno));
        return -1;
    }
    L->ep = epoll_create1(EPOLL_CLOEXEC);
    if (L->ep < 0) {
        fprintf(stderr, "nginfer: epoll_create1: %s\n", strerror(errno));
        return -1;
    }
    /* Not EPOLLEXCLUSIVE: it wakes one waiting worker per new connection,
     * and a burst of connections that arrives while that one is still
     * waking all goes to it while the others sleep on (measured: 19 of 24
     * slow requests on one of 2 workers). Every idle worker wakes instead
     * and the losers of the accept get EAGAIN: cheap, and rare once nginx
     * keeps its connections. */
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = NF_CONN_LISTEN};
    if (epoll_ctl(L->ep, EPOLL_CTL_ADD, listen_fd, &ev) < 0) {
        fprintf(stderr, "nginfer: epoll_ctl(add listen socket %d): %s\n", listen_fd, strerror(errno));
        close(L->ep);
        return -1;
    }
    L->listening = 1;
    pthread_mutex_init(&L->mu, NULL);
    return 0;
}

/* After a request on slot s: a connection libfcgi closed is gone from the
 * epoll set with its descriptor; one it keeps is registered if new. */
static void nf_conn__sync(nf_conn_loop *L, int s)
{
    int fd = L->reqs[s].ipcFd;
    if (fd < 0) {
        L->reg[s] = -1;
        L->shed[s] = 0;
        return;
    }
    if (L->reg[s] == fd)
        return;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)s};
    if (epoll_ctl(L->ep, EPOLL_CTL_ADD, fd, &ev) < 0 &&
        (errno != EEXIST || epoll_ctl(L->ep, EPOLL_CTL_MOD, fd, &ev) < 0)) {
        nf_conn__drop(L, s); /* cannot watch it: do not hold it */
        return;
    }
    L->reg[s] = fd;
}

/* One request on slot s, the watchdog told when it starts and ends. */
static void nf_conn__serve(nf_conn_loop *L, int s, nf_conn_handler fn, void *ctx)
{
    pthread_mutex_lock(&L->mu);
    L->serving = s;
    clock_gettime(CLOCK_MONOTONIC, &L->since);
    pthread_mutex_unlock(&L->mu);
    L->used[s] = ++L->tick;
    /* On a read error or end of file libfcgi closes the connection and
     * returns < 0 (it cannot accept: listen socket -1). */
    if (FCGX_Accept_r(&L->reqs[s]) == 0)
        fn(&L->reqs[s], ctx);
    pthread_mutex_lock(&L->mu);
    L->serving = -1;
    pthread_mutex_unlock(&L->mu);
    nf_conn__sync(L, s);
}

/* Waits for and serves one event; 0 normally, 1 when there was nothing to
 * do (timeout_ms elapsed or a signal), -1 on a fatal epoll error. */
static int nf_conn__step(nf_conn_loop *L, nf_conn_handler fn, void *ctx, int timeout_ms)
{
    struct epoll_event ev;
    int n;
    if (L->idle != NULL && timeout_ms != 0) {
        /* Something ready? Then no idle work and no second call (under
         * load still one epoll_wait per request); else idle work, wait. */
        n = epoll_wait(L->ep, &ev, 1, 0);
        if (n == 0) {
            L->idle();
            n = epoll_wait(L->ep, &ev, 1, timeout_ms);
        }
    } else {
        n = epoll_wait(L->ep, &ev, 1, timeout_ms);
    }
    if (n < 0) {
        if (errno == EINTR)
            return 1;
        fprintf(stderr, "nginfer: epoll_wait: %s\n", strerror(errno));
        return -1;
    }
    if (n == 0)
        return 1;
    int s;
    if (ev.data.u32 == NF_CONN_LISTEN) {
        if (!L->listening)
            return 0;
        int fd = accept(L->listen_fd, NULL, NULL);
        if (fd < 0) {
            /* EAGAIN: another worker took it. Out of descriptors: free
             * one (the connection waits in the backlog meanwhile). */
            if ((errno == EMFILE || errno == ENFILE) && nf_conn__drop_lru(L) < 0) {
                struct timespec nap = {0, 10 * 1000000L}; /* nothing to free: do not spin */
                nanosleep(&nap, NULL);
            }
            return 0;
        }
        if (fd >= FD_SETSIZE) { /* libfcgi's select() cannot take it */
            close(fd);
            return 0;
        }
        s = nf_conn__free_slot(L);
        L->reqs[s].ipcFd = fd;
        /* FCGX_Accept_r first finishes the slot's last request and closes
         * its connection unless that one was kept: this one is */
        L->reqs[s].keepConnection = 1;
    } else {
        s = (int)ev.data.u32;
        if (s < 0 || s >= NF_CONN_MAX || L->reqs[s].ipcFd < 0)
            return 0;
        if (L->shed[s]) { /* nginx has resent whatever it had sent on it */
            pthread_mutex_lock(&L->mu);
            nf_conn__drop(L, s);
            pthread_mutex_unlock(&L->mu);
            return 0;
        }
    }
    nf_conn__serve(L, s, fn, ctx);
    return 0;
}

/* Serves requests until *stop is set, then stops accepting, answers the
 * requests already waiting on held connections (bounded: two rounds of
 * them), closes the connections and returns 0 (-1 on a fatal error). */
static int nf_conn_run(nf_conn_loop *L, nf_conn_handler fn, void *ctx)
{
    pthread_t wd;
    int have_wd = 0;
    sigset_t all, old;
    /* Signals stay with this thread: SIGTERM must interrupt its epoll_wait */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    /* default attributes: a smaller stack can be refused for the static
     * TLS of the libraries loaded (OpenBLAS); untouched stack costs no RSS */
    if (pthread_create(&wd, NULL, nf_conn__watchdog, L) == 0)
        have_wd = 1;
    else
        fprintf(stderr, "nginfer: no watchdog thread: long requests will not shed connections\n");
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    int rc = 0;
    while (!*L->stop) {
        if (nf_conn__step(L, fn, ctx, -1) < 0) {
            rc = -1;
            break;
        }
    }
    epoll_ctl(L->ep, EPOLL_CTL_DEL, L->listen_fd, NULL);
    L->listening = 0;
    for (int round = 0; rc == 0 && round < 2 * NF_CONN_MAX; round++)
        if (nf_conn__step(L, fn, ctx, 0) != 0)
            break;
    *L->stop = 1; /* ends the watchdog too */
    if (have_wd)
        pthread_join(wd, NULL);
    for (int i = 0; i < NF_CONN_MAX; i++)
        if (L->reqs[i].ipcFd >= 0)
            nf_conn__drop(L, i);
    close(L->ep);
    pthread_mutex_destroy(&L->mu);
    return rc;
}

#endif
