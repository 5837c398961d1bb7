/*
 * value/pool.c — per-thread free lists for values' small blocks (see pool.h).
 *
 * A thread's lists live in its thread-local block; a pthread key whose
 * destructor empties them is set on a thread's first use, so a thread that
 * exits gives its blocks back. The key is made by the first thread that needs
 * it (an atomic state, not pthread_once: that ends in a futex call); a thread
 * that cannot register (no key, or its own destructor already ran) uses
 * malloc and free directly.
 */
#include "value/pool.h"
#include "xv_tkey.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#define NCLASS 3
static const size_t class_size[NCLASS] = { 64, 128, 256 };

struct block {
    struct block *next;
};

struct tpool {
    struct block *head[NCLASS];
    uint16_t n[NCLASS];
    unsigned char state; /* XV_TKEY_NEW, _ON (registered), _OFF (never again on this thread) */
};

/* Initial-exec like the engine's other thread-local (xv_guard_depth): the
 * engine object is marked STATIC_TLS already, and the general model's
 * __tls_get_addr call per block cost more than the list saves. */
static __thread struct tpool tp __attribute__((tls_model("initial-exec")));

static struct xv_tkey g_key;

static void drain(void *arg)
{
    struct tpool *p = arg;
    for (int c = 0; c < NCLASS; c++) {
        struct block *b = p->head[c];
        while (b) {
            struct block *next = b->next;
            free(b);
            b = next;
        }
        p->head[c] = NULL;
        p->n[c] = 0;
    }
    p->state = XV_TKEY_OFF; /* a later free on this exiting thread goes to free() */
}

/* This thread's lists, registered for draining at its exit on first use;
 * NULL when the thread cannot use them. */
static inline struct tpool *mine(void)
{
    if (__builtin_expect(tp.state == XV_TKEY_ON, 1))
        return &tp;
    return xv_tkey_join(&g_key, drain, &tp, &tp.state) ? &tp : NULL;
}

/* A block's class, or -1: above the classes, or every size under ASan (so
 * it sees each value's lifetime: a listed block is never poisoned). */
static int class_of(size_t n)
{
#ifdef __SANITIZE_ADDRESS__
    (void)n;
    return -1;
#else
    return n <= 64 ? 0 : n <= 128 ? 1 : n <= 256 ? 2 : -1;
#endif
}

void *xv_pool_alloc(size_t n)
{
    int c = class_of(n);
    if (c < 0)
        return malloc(n);
    struct tpool *p = mine();
    if (p && p->head[c]) {
        struct block *b = p->head[c];
        p->head[c] = b->next;
        p->n[c]--;
        return b;
    }
    return malloc(class_size[c]);
}

void xv_pool_free(void *v, size_t n)
{
    if (!v)
        return;
    int c = class_of(n);
    struct tpool *p = c < 0 ? NULL : mine();
    if (!p || p->n[c] >= XV_POOL_DEPTH) {
        free(v);
        return;
    }
    struct block *b = v;
    b->next = p->head[c];
    p->head[c] = b;
    p->n[c]++;
}

size_t xv_pool_held(void)
{
    size_t b = 0;
    for (int c = 0; c < NCLASS; c++)
        b += tp.n[c] * class_size[c];
    return b;
}
