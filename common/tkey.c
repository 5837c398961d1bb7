/*
 * tkey.c — see xv_tkey.h.
 */
#include "xv_tkey.h"

#include <stdatomic.h>

enum { K_NONE = 0, K_MAKING, K_READY, K_FAILED };

int xv_tkey_set(struct xv_tkey *k, void (*dtor)(void *), void *self)
{
    int s = atomic_load_explicit(&k->state, memory_order_acquire);
    if (s == K_NONE) {
        int want = K_NONE;
        if (atomic_compare_exchange_strong(&k->state, &want, K_MAKING)) {
            s = pthread_key_create(&k->key, dtor) == 0 ? K_READY : K_FAILED;
            atomic_store_explicit(&k->state, s, memory_order_release);
        } else {
            s = want;
        }
    }
    if (s == K_MAKING)
        return XV_TKEY_LATER;
    if (s != K_READY || pthread_setspecific(k->key, self) != 0)
        return XV_TKEY_NEVER;
    return 0;
}

int xv_tkey_join(struct xv_tkey *k, void (*dtor)(void *), void *self, unsigned char *state)
{
    if (*state == XV_TKEY_ON)
        return 1;
    if (*state == XV_TKEY_OFF)
        return 0;
    int r = xv_tkey_set(k, dtor, self);
    if (r == XV_TKEY_NEVER)
        *state = XV_TKEY_OFF;
    else if (r == 0)
        *state = XV_TKEY_ON; /* XV_TKEY_LATER: another thread is making the key */
    return r == 0;
}
