/*
 * xv_tkey.h — a thread's private state given back when the thread exits:
 * one pthread key per user (the per-thread caches of the session store's
 * kept history, the policy engine's value blocks and its regex slots),
 * created by the first thread that needs it, with no lock and no
 * pthread_once. Static storage zero-initialised is a valid, unmade key.
 */
#ifndef XV_TKEY_H
#define XV_TKEY_H

#include <pthread.h>

struct xv_tkey {
    _Atomic int state; /* XV_TKEY_*: made by the first thread that needs it */
    pthread_key_t key;
};

/* Have dtor(self) run when the calling thread exits (self non-NULL).
 * 0 done; XV_TKEY_LATER another thread is making the key right now (ask
 * again on a later call); XV_TKEY_NEVER no key could be made, or this
 * thread's slot refused it. */
#define XV_TKEY_LATER (-1)
#define XV_TKEY_NEVER (-2)
int xv_tkey_set(struct xv_tkey *k, void (*dtor)(void *), void *self);

/* A thread's registration kept in a state byte of its own state (zero, as
 * thread-local storage starts, is XV_TKEY_NEW; its destructor sets
 * XV_TKEY_OFF so that a later use on the exiting thread goes without):
 * 1 when self is registered (now or before), 0 when not (yet). */
enum { XV_TKEY_NEW = 0, XV_TKEY_ON, XV_TKEY_OFF };
int xv_tkey_join(struct xv_tkey *k, void (*dtor)(void *), void *self, unsigned char *state);

#endif
