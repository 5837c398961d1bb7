/*
 * value/pool.h — per-thread free lists for the small blocks values are made of.
 *
 * An evaluation builds and drops dozens of values (the input document, the
 * intermediate results) whose blocks come in a few small sizes: the value
 * struct with a short string after it, an object's key/value block, an
 * array's items. Those blocks go back to a short list of the thread that
 * frees them instead of to malloc, and the next value of the class takes one
 * from there (issue 9: malloc and free were a fifth of a policy decision).
 *
 * Invariants:
 *  - A block of class c (its size rounded up to 64, 128 or 256 bytes) is a
 *    malloc'd block of the class's full size, so any block of a class serves
 *    any request of that class, and plain free()/realloc() of a pool block is
 *    still correct (it only skips the list).
 *  - xv_pool_free(p, n) takes only blocks from xv_pool_alloc with a size of
 *    the same class as n (the caller knows the size it asked for); a block
 *    from malloc may be given to xv_pool_free only with n above the classes.
 *  - Under AddressSanitizer no block is kept: each goes to malloc and free.
 *  - Each thread keeps at most XV_POOL_DEPTH blocks per class (bounded: ~28
 *    KiB); the rest go to free(). A thread's blocks are freed when it exits.
 * Thread safety: each list is its own thread's; a block freed on another
 * thread than the one that took it joins the freeing thread's list.
 */
#ifndef XV_POLICY_VALUE_POOL_H
#define XV_POLICY_VALUE_POOL_H

#include <stddef.h>

#define XV_POOL_DEPTH 64 /* blocks kept per class and thread */

/* n bytes (uninitialised); NULL when out of memory. */
void *xv_pool_alloc(size_t n);
/* Release p, taken with xv_pool_alloc(n') where n' and n are of one class
 * (or any malloc'd block when n is above the largest class). NULL is ignored. */
void xv_pool_free(void *p, size_t n);
/* Bytes the calling thread's lists hold (tests, bench). Always 0 under
 * ASan, which gets every block from malloc and back to free. */
size_t xv_pool_held(void);

#endif
