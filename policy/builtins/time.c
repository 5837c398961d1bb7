/*
 * builtins/time.c — time.* builtins: now_ns, parse_ns, parse_rfc3339_ns,
 * parse_duration_ns, date, clock, weekday, format, add_date, diff.
 *
 * Invariant: timestamps are int64 Unix nanoseconds as in OPA; a result that
 * leaves that range is the builtin error "time outside of valid range", an
 * operand that is not an exact int64 is "timestamp too big".
 * Thread safety: reentrant (zones come from bi_time.c's locked cache).
 */
#include "builtins/helpers.h"
#include "go/time.h"

#include <stdlib.h>
#include <string.h>

#define S(v) XV_STR(v)
#define SL(v) XV_STRLEN(v)

static int ns_split(int64_t ns, int64_t *sec, int32_t *nsec)
{
    *sec = ns / 1000000000;
    int64_t r = ns % 1000000000;
    if (r < 0) {
        r += 1000000000;
        (*sec)--;
    }
    *nsec = (int32_t)r;
    return 0;
}

/* (sec, nsec) to int64 ns, or -1 when out of range. */
static int ns_join(int64_t sec, int32_t nsec, int64_t *ns)
{
    __int128 v = (__int128)sec * 1000000000 + nsec;
    if (v < INT64_MIN || v > INT64_MAX)
        return -1;
    *ns = (int64_t)v;
    return 0;
}

/* The timestamp operand of an exact int64 number. */
static int ts_number(struct xv_bctx *ctx, const struct xv_value *v, int64_t *ns)
{
    if (!XV_IS(v, XV_T_NUMBER))
        return xv_bi_type_error(ctx, 1, "number", v);
    if (!xv_val_number_is_int(v) || xv_val_number_get_int64(v, ns) != 0)
        return xv_bi_error(ctx, "timestamp too big");
    return 0;
}

/* OPA's tzTime: number, or [ns], [ns, tz], [ns, tz, layout]. */
static int tz_time(struct xv_bctx *ctx, const struct xv_value *a, struct xv_go_tm *tm,
                   int64_t *sec_out, int32_t *nsec_out, const struct xv_go_zone **zone_out,
                   const char **layout)
{
    const char *want = "either number (ns) or [number (ns), string (tz)]";
    const struct xv_value *nv;
    const struct xv_go_zone *z = xv_go_zone("");
    if (layout)
        *layout = "2006-01-02T15:04:05.999999999Z07:00";
    if (XV_IS(a, XV_T_ARRAY)) {
        if (XV_ARR_LEN(a) == 0)
            return xv_bi_type_error(ctx, 1, want, a);
        nv = XV_ARR_ITEM(a, 0);
        if (!XV_IS(nv, XV_T_NUMBER))
            return xv_bi_type_error(ctx, 1, "number", nv);
        if (XV_ARR_LEN(a) > 1) {
            const struct xv_value *tz = XV_ARR_ITEM(a, 1);
            if (!XV_IS(tz, XV_T_STRING))
                return xv_bi_type_error(ctx, 1, "string", tz);
            const char *name = S(tz);
            if (strcmp(name, "Local") == 0)
                name = "UTC";   /* the agent has no meaningful local zone: UTC */
            z = xv_go_zone(name);
            if (!z)
                return xv_bi_error(ctx, "unknown time zone %s", S(tz));
        }
        if (XV_ARR_LEN(a) > 2) {
            const struct xv_value *lay = XV_ARR_ITEM(a, 2);
            if (!XV_IS(lay, XV_T_STRING))
                return xv_bi_type_error(ctx, 1, "string", lay);
            if (layout)
                *layout = xv_go_layout_name(S(lay));
        }
    } else if (XV_IS(a, XV_T_NUMBER)) {
        nv = a;
    } else {
        return xv_bi_type_error(ctx, 1, want, a);
    }
    int64_t ns;
    if (ts_number(ctx, nv, &ns))
        return XV_BI_ERROR;
    int64_t sec;
    int32_t nsec;
    ns_split(ns, &sec, &nsec);
    xv_go_time_split(sec, nsec, z, tm);
    if (sec_out)
        *sec_out = sec;
    if (nsec_out)
        *nsec_out = nsec;
    if (zone_out)
        *zone_out = z;
    return 0;
}

BI_FN(bi_now_ns)
{
    return xv_bi_ret(ctx, xv_val_int(xv_bi_ctx_now_ns(ctx)), out);
}

static int parse_common(struct xv_bctx *ctx, const char *layout, size_t ln,
                        const struct xv_value *v, struct xv_value **out)
{
    int64_t sec, ns;
    int32_t nsec;
    char err[400];
    if (xv_go_time_parse(layout, ln, S(v), SL(v), &sec, &nsec, err, sizeof err))
        return xv_bi_error(ctx, "%s", err);
    if (ns_join(sec, nsec, &ns))
        return xv_bi_error(ctx, "time outside of valid range");
    return xv_bi_ret(ctx, xv_val_int(ns), out);
}

BI_FN(bi_parse_ns)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING) || xv_bi_want(ctx, a, 2, XV_T_STRING))
        return XV_BI_ERROR;
    const char *layout = xv_go_layout_name(S(a[0]));
    return parse_common(ctx, layout, strlen(layout), a[1], out);
}

BI_FN(bi_parse_rfc3339_ns)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING))
        return XV_BI_ERROR;
    static const char rfc3339[] = "2006-01-02T15:04:05Z07:00";
    return parse_common(ctx, rfc3339, sizeof rfc3339 - 1, a[0], out);
}

BI_FN(bi_parse_duration_ns)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING))
        return XV_BI_ERROR;
    int64_t ns;
    char err[300];
    if (xv_go_parse_duration(S(a[0]), SL(a[0]), &ns, err, sizeof err))
        return xv_bi_error(ctx, "%s", err);
    return xv_bi_ret(ctx, xv_val_int(ns), out);
}

static struct xv_value *int_triple(int64_t x, int64_t y, int64_t z)
{
    struct xv_value *arr = xv_val_array_new(3);
    int64_t v[3] = {x, y, z};
    for (int i = 0; arr && i < 3; i++) {
        struct xv_value *e = xv_val_int(v[i]);
        if (!e || xv_val_array_push(arr, e)) {
            xv_val_decref(e);
            xv_val_decref(arr);
            return NULL;
        }
        xv_val_decref(e);
    }
    return arr;
}

BI_FN(bi_date)
{
    struct xv_go_tm tm;
    if (tz_time(ctx, a[0], &tm, NULL, NULL, NULL, NULL))
        return XV_BI_ERROR;
    return xv_bi_ret(ctx, int_triple(tm.year, tm.month, tm.day), out);
}

BI_FN(bi_clock)
{
    struct xv_go_tm tm;
    if (tz_time(ctx, a[0], &tm, NULL, NULL, NULL, NULL))
        return XV_BI_ERROR;
    return xv_bi_ret(ctx, int_triple(tm.hour, tm.min, tm.sec), out);
}

BI_FN(bi_weekday)
{
    static const char *const days[] = {"Sunday", "Monday", "Tuesday", "Wednesday",
                                       "Thursday", "Friday", "Saturday"};
    struct xv_go_tm tm;
    if (tz_time(ctx, a[0], &tm, NULL, NULL, NULL, NULL))
        return XV_BI_ERROR;
    return xv_bi_ret(ctx, xv_val_cstring(days[tm.wday]), out);
}

BI_FN(bi_format)
{
    struct xv_go_tm tm;
    const char *layout;
    if (tz_time(ctx, a[0], &tm, NULL, NULL, NULL, &layout))
        return XV_BI_ERROR;
    size_t len;
    char *s = xv_go_time_format(&tm, layout, strlen(layout), &len);
    return xv_bi_ret_owned(ctx, s, len, out);
}

BI_FN(bi_add_date)
{
    int64_t ns, y, m, d;
    if (ts_number(ctx, a[0], &ns) || xv_bi_int_arg(ctx, a, 2, &y) ||
        xv_bi_int_arg(ctx, a, 3, &m) || xv_bi_int_arg(ctx, a, 4, &d))
        return XV_BI_ERROR;
    int64_t sec;
    int32_t nsec;
    ns_split(ns, &sec, &nsec);
    struct xv_go_tm tm;
    xv_go_time_split(sec, nsec, NULL, &tm);
    if (y > 1000000 || y < -1000000 || m > 12000000 || m < -12000000 || d > 400000000 ||
        d < -400000000)
        return xv_bi_error(ctx, "time outside of valid range");
    int64_t days = xv_go_days_from_civil(tm.year + y, tm.month + m, tm.day + d);
    int64_t nsec_total;
    if (ns_join(days * 86400 + tm.hour * 3600 + tm.min * 60 + tm.sec, nsec, &nsec_total))
        return xv_bi_error(ctx, "time outside of valid range");
    return xv_bi_ret(ctx, xv_val_int(nsec_total), out);
}

BI_FN(bi_diff)
{
    struct xv_go_tm t1, t2;
    int64_t s1, s2;
    int32_t n1, n2;
    const struct xv_go_zone *z1;
    if (tz_time(ctx, a[0], &t1, &s1, &n1, &z1, NULL) ||
        tz_time(ctx, a[1], &t2, &s2, &n2, NULL, NULL))
        return XV_BI_ERROR;
    /* both in the first operand's zone, earlier one first */
    if (s1 > s2 || (s1 == s2 && n1 > n2)) {
        int64_t ts = s1;
        int32_t tn = n1;
        s1 = s2;
        n1 = n2;
        s2 = ts;
        n2 = tn;
    }
    xv_go_time_split(s1, n1, z1, &t1);
    xv_go_time_split(s2, n2, z1, &t2);
    int64_t year = t2.year - t1.year, month = t2.month - t1.month, day = t2.day - t1.day,
            hour = t2.hour - t1.hour, min = t2.min - t1.min, sec = t2.sec - t1.sec;
    if (sec < 0) { sec += 60; min--; }
    if (min < 0) { min += 60; hour--; }
    if (hour < 0) { hour += 24; day--; }
    if (day < 0) {
        day += xv_go_days_in(t1.year, t1.month);
        month--;
    }
    if (month < 0) { month += 12; year--; }
    struct xv_value *hi = int_triple(year, month, day), *lo = int_triple(hour, min, sec);
    struct xv_value *arr = xv_val_array_new(6);
    for (int i = 0; arr && hi && lo && i < 6; i++)
        if (xv_val_array_push(arr, XV_ARR_ITEM(i < 3 ? hi : lo, i % 3))) {
            xv_val_decref(arr);
            arr = NULL;
        }
    if (!hi || !lo) {
        xv_val_decref(arr);
        arr = NULL;
    }
    xv_val_decref(hi);
    xv_val_decref(lo);
    return xv_bi_ret(ctx, arr, out);
}

const struct xv_builtin_def xv_bi_time[] = {
    {"time.now_ns", 0, bi_now_ns, XV_BIF_NONDET},
    {"time.parse_ns", 2, bi_parse_ns, 0},
    {"time.parse_rfc3339_ns", 1, bi_parse_rfc3339_ns, 0},
    {"time.parse_duration_ns", 1, bi_parse_duration_ns, 0},
    {"time.date", 1, bi_date, 0},
    {"time.clock", 1, bi_clock, 0},
    {"time.weekday", 1, bi_weekday, 0},
    {"time.format", 1, bi_format, 0},
    {"time.add_date", 4, bi_add_date, 0},
    {"time.diff", 2, bi_diff, 0},
    {NULL, 0, NULL, 0},
};
