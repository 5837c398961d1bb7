/*
 * ast/arena.c — bump allocator for the syntax tree and rule tree: nodes are
 * allocated zeroed from 64 KiB chunks and freed all at once with the policy.
 * Invariant: allocations are 16-byte aligned and never move.
 * Thread safety: an arena is used by one thread at a time.
 */
#include "ast/tree.h"

#include <stdlib.h>
#include <string.h>

/* ---- arena ---- */
struct xv_arena_chunk {
    struct xv_arena_chunk *next; /* older chunk */
    size_t used, cap;            /* bytes */
    _Alignas(16) unsigned char data[];
};

void *xv_ast_arena_alloc(struct xv_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct xv_arena_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

char *xv_ast_arena_strdup(struct xv_arena *a, const char *s, size_t n)
{
    char *p = xv_ast_arena_alloc(a, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

void xv_ast_arena_free(struct xv_arena *a)
{
    while (a->head) {
        struct xv_arena_chunk *n = a->head->next;
        free(a->head);
        a->head = n;
    }
}

