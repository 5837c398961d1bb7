/*
 * go/zone.h — what go/time.c needs of go/zone.c: the local time type in
 * force at an instant, and the floor division both use.
 *
 * Invariant: a zone's types outlive every caller (zones are never freed).
 * Thread safety: reentrant.
 */
#ifndef XV_POLICY_GO_ZONE_H
#define XV_POLICY_GO_ZONE_H

#include <stdint.h>

#include "go/time.h"

/* One local time type of a zone. */
struct xv_go_zone_type {
    int32_t off;      /* UTC offset, seconds */
    char abbr[12];    /* designation */
};

/* The local time type of zone z at Unix second sec. Borrowed; lives as
 * long as the zone (forever). */
const struct xv_go_zone_type *xv_go_zone_lookup(const struct xv_go_zone *z, int64_t sec);
/* a / b rounded towards negative infinity (b > 0). */
int64_t xv_go_floordiv(int64_t a, int64_t b);

#endif
