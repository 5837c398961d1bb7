/*
 * go/time.h — Go `time` semantics for the time.* builtins: civil dates from
 * Unix nanoseconds, IANA zones read from the system's TZif files, Go's
 * reference-time layouts for formatting and parsing, and Go durations.
 *
 * Invariant: all arithmetic is on int64 seconds plus nanoseconds (with
 * 128-bit intermediates), so the whole int64-nanosecond range is exact.
 * Thread safety: reentrant; the zone cache is guarded by its own mutex and
 * zones are immutable once loaded.
 */
#ifndef XV_POLICY_BI_TIME_H
#define XV_POLICY_BI_TIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct xv_go_zone; /* a loaded zone; owned by the cache, lives forever */

/* A broken-down time in some zone. */
struct xv_go_tm {
    int64_t year;    /* proleptic Gregorian year */
    int month;       /* 1..12 */
    int day;         /* 1..31 */
    int hour, min, sec;
    int32_t nsec;    /* 0..999999999 */
    int wday;        /* 0 = Sunday */
    int yday;        /* 1..366 */
    int offset;      /* seconds east of UTC */
    char abbr[16];   /* zone abbreviation ("UTC", "PST", "+0530"...) */
};

/* Zone by IANA name; "" and "UTC" are UTC. NULL when unknown. */
const struct xv_go_zone *xv_go_zone(const char *name);
/* Break down Unix time (sec, nsec) in zone z (NULL = UTC). */
void xv_go_time_split(int64_t sec, int32_t nsec, const struct xv_go_zone *z,
                             struct xv_go_tm *tm);
/* Days since 1970-01-01 of a civil date (any month/day, normalised as Go's
 * time.Date does). */
int64_t xv_go_days_from_civil(int64_t y, int64_t m, int64_t d);
/* Days in month m (1..12) of year y. */
int xv_go_days_in(int64_t y, int m);
/* Go layout by constant name ("RFC3339", "ANSIC"...), or the input. */
const char *xv_go_layout_name(const char *layout);
/* Format tm with a Go layout into a malloc'd string. */
char *xv_go_time_format(const struct xv_go_tm *tm, const char *layout, size_t ln,
                               size_t *outlen);
/* time.Parse(layout, value): 0 and Unix (sec, nsec), or -1 with a Go-like
 * message in err. */
int xv_go_time_parse(const char *layout, size_t ln, const char *value, size_t vn,
                            int64_t *sec, int32_t *nsec, char *err, size_t errlen);
/* time.ParseDuration: 0 and *ns, or -1 (message in err). */
int xv_go_parse_duration(const char *s, size_t n, int64_t *ns, char *err, size_t errlen);

#endif
