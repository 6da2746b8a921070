/*
 * arena.c: bump allocation in blocks, freed all at once (nginx ngx_palloc
 * is the picture). Every pointer is NF_ALIGN-aligned and zeroed. The model
 * arena owns the IR, constant data and kernel state; nothing is freed
 * before the model is.
 */
#include <stdlib.h>
#include <string.h>

#include "nf_impl.h"

#define NF_ARENA_BLOCK (64 * 1024)

struct nf_arena_block {
    nf_arena_block *next;
    size_t cap;  /* usable bytes after the header */
    size_t used;
    /* data follows, NF_ALIGN-aligned */
};

#define HDR ((sizeof(nf_arena_block) + NF_ALIGN - 1) & ~(size_t)(NF_ALIGN - 1))

static nf_arena_block *block_new(size_t cap)
{
    void *p = NULL;
    if (cap > SIZE_MAX - HDR || posix_memalign(&p, NF_ALIGN, HDR + cap) != 0)
        return NULL;
    nf_arena_block *b = p;
    b->next = NULL;
    b->cap = cap;
    b->used = 0;
    return b;
}

/* Returns size bytes, zeroed and aligned, or NULL when out of memory. Large
 * requests get a block of their own, linked behind the current one so the
 * current block's free space is kept. */
void *nf_arena_alloc(nf_arena *a, size_t size)
{
    if (size == 0)
        size = 1;
    if (size > SIZE_MAX - NF_ALIGN)
        return NULL;
    size = (size + NF_ALIGN - 1) & ~(size_t)(NF_ALIGN - 1);
    nf_arena_block *b = a->head;
    if (b == NULL || b->cap - b->used < size) {
        if (size > NF_ARENA_BLOCK / 4) {
            nf_arena_block *big = block_new(size);
            if (big == NULL)
                return NULL;
            big->used = size;
            if (b != NULL) {
                big->next = b->next;
                b->next = big;
            } else {
                a->head = big;
            }
            a->used_total += size;
            char *p = (char *)big + HDR;
            memset(p, 0, size);
            return p;
        }
        b = block_new(NF_ARENA_BLOCK);
        if (b == NULL)
            return NULL;
        b->next = a->head;
        a->head = b;
    }
    char *p = (char *)b + HDR + b->used;
    b->used += size;
    a->used_total += size;
    memset(p, 0, size);
    return p;
}

char *nf_arena_strndup(nf_arena *a, const char *s, size_t n)
{
    char *p = nf_arena_alloc(a, n + 1);
    if (p != NULL) {
        if (n > 0)
            memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

char *nf_arena_strdup(nf_arena *a, const char *s)
{
    return nf_arena_strndup(a, s, strlen(s));
}

void nf_arena_fini(nf_arena *a)
{
    nf_arena_block *b = a->head;
    while (b != NULL) {
        nf_arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->used_total = 0;
}
