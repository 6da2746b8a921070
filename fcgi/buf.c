/*
 * buf.c: nf_buf, the growable byte buffer every request reuses.
 *
 * A buffer only grows (doubling), so after the largest request so far the
 * hot path does no allocation. Invariant: after a successful reserve p is
 * not NULL and there is room for one byte past len, which append and printf
 * set to 0, so text buffers can be read as C strings (tests rely on it).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"

/* Ensures room for extra more bytes plus the terminating byte. Doubling
 * keeps appends amortized O(1); the first block is 256 bytes because almost
 * every buffer here holds at least a short JSON answer. */
int nf_buf_reserve(nf_buf *b, size_t extra)
{
    size_t need;
    if (__builtin_add_overflow(b->len, extra, &need) || __builtin_add_overflow(need, 1, &need))
        return -1;
    if (need <= b->cap && b->p)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

int nf_buf_append(nf_buf *b, const void *p, size_t n)
{
    if (nf_buf_reserve(b, n) < 0)
        return -1;
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

/* Formats straight into the free space; only when that is too small does it
 * grow and format a second time (va_copy keeps the arguments for it). */
int nf_buf_printf(nf_buf *b, const char *fmt, ...)
{
    va_list ap, ap2;
    if (nf_buf_reserve(b, 64) < 0)
        return -1;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    size_t room = b->cap - b->len;
    int n = vsnprintf(b->p + b->len, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
        va_end(ap2);
        b->p[b->len] = 0;
        return -1;
    }
    if ((size_t)n >= room) {
        if (nf_buf_reserve(b, (size_t)n) < 0) {
            va_end(ap2);
            b->p[b->len] = 0;
            return -1;
        }
        vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap2);
    }
    va_end(ap2);
    b->len += (size_t)n;
    return 0;
}

void nf_buf_free(nf_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}
