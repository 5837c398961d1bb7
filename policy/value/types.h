/*
 * value/types.h — what the files of value/ share and nobody else needs.
 *
 * Invariant: a value from xv_val_alloc has refcount 1, the given type and
 * zeroed payload (the `extra` bytes past the struct are not zeroed: the
 * caller writes them); the caller fills it before anyone else sees it.
 * Thread safety: reentrant.
 */
#ifndef XV_POLICY_VALUE_TYPES_H
#define XV_POLICY_VALUE_TYPES_H

#include <stddef.h>

#include "value/xv_value.h"

/* A new value of type t with `extra` payload bytes after the struct; NULL
 * when out of memory. Caller owns it (refcount 1). */
struct xv_value *xv_val_alloc(enum xv_type t, size_t extra);
/* Give back the block of a value from xv_val_alloc whose payload was never
 * filled or is released already (value/pool.h); NULL is ignored. */
void xv_val_release(struct xv_value *v);

#endif
