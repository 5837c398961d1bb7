/*
 * go/zone.c — IANA time zones for Go's time semantics: TZif files read from
 * /usr/share/zoneinfo, the POSIX TZ rule of the TZif footer for times past
 * the last transition, and the lookup of the local time type at an instant.
 *
 * Invariant: zones are loaded once and never freed (a bounded cache of 64
 * names); a zone is immutable once loaded.
 * Thread safety: reentrant; the cache (g_zones) is guarded by its mutex.
 */
#include "go/zone.h"
#include "go/time.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- zones ---- */


/* One end of a POSIX TZ DST rule: Jn, n or Mm.w.d, at a local time. */
struct tz_date {
    char kind;                /* 'J', 'N' (zero-based day) or 'M' */
    int a, b, c;              /* day, or month/week/weekday */
    int32_t time;             /* seconds after local midnight */
};

struct xv_go_zone {
    int64_t *trans;           /* transition times (Unix seconds), ascending */
    uint8_t *idx;             /* type index per transition */
    size_t ntrans;            /* number of transitions */
    struct xv_go_zone_type *types;  /* local time types */
    size_t ntypes;            /* number of types */
    /* the TZif footer rule for times after the last transition */
    bool has_rule;            /* a DST rule was parsed */
    struct xv_go_zone_type std, dst;/* the rule's two local time types */
    struct tz_date start, end;/* DST start and end */
};

static const char *tz_name(const char *p, char *out, size_t n)
{
    size_t k = 0;
    if (*p == '<') {
        p++;
        while (*p && *p != '>') {
            if (k + 1 < n)
                out[k++] = *p;
            p++;
        }
        if (*p != '>')
            return NULL;
        p++;
    } else {
        while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')) {
            if (k + 1 < n)
                out[k++] = *p;
            p++;
        }
    }
    out[k] = '\0';
    return k >= 3 ? p : NULL;
}

/* [+-]hh[:mm[:ss]] in seconds; *ok cleared when nothing parses. */
static const char *tz_num(const char *p, int32_t *out, bool *ok)
{
    int sign = 1;
    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    int32_t v = 0, part = 0;
    int parts = 0;
    while (parts < 3) {
        if (*p < '0' || *p > '9')
            break;
        part = 0;
        while (*p >= '0' && *p <= '9')
            part = part * 10 + (*p++ - '0');
        v += part * (parts == 0 ? 3600 : parts == 1 ? 60 : 1);
        parts++;
        if (*p != ':')
            break;
        p++;
    }
    if (!parts)
        *ok = false;
    *out = sign * v;
    return p;
}

static const char *tz_date_parse(const char *p, struct tz_date *d, bool *ok)
{
    d->time = 7200;
    if (*p == 'J' || (*p >= '0' && *p <= '9')) {
        d->kind = *p == 'J' ? 'J' : 'N';
        if (*p == 'J')
            p++;
        d->a = 0;
        while (*p >= '0' && *p <= '9')
            d->a = d->a * 10 + (*p++ - '0');
    } else if (*p == 'M') {
        d->kind = 'M';
        p++;
        d->a = (int)strtol(p, (char **)&p, 10);
        if (*p++ != '.') { *ok = false; return p; }
        d->b = (int)strtol(p, (char **)&p, 10);
        if (*p++ != '.') { *ok = false; return p; }
        d->c = (int)strtol(p, (char **)&p, 10);
        if (d->a < 1 || d->a > 12 || d->b < 1 || d->b > 5 || d->c < 0 || d->c > 6)
            *ok = false;
    } else {
        *ok = false;
    }
    if (*p == '/')
        p = tz_num(p + 1, &d->time, ok);
    return p;
}

/* Parse a POSIX TZ string ("EST5EDT,M3.2.0,M11.1.0"); only rules with DST
 * are kept (a fixed offset is already the last transition's type). */
static void tz_rule(struct xv_go_zone *z, const char *s)
{
    bool ok = true;
    int32_t off, doff;
    const char *p = tz_name(s, z->std.abbr, sizeof z->std.abbr);
    if (!p)
        return;
    p = tz_num(p, &off, &ok);
    if (!ok || !*p)
        return;
    z->std.off = -off;   /* POSIX offsets count west of Greenwich */
    p = tz_name(p, z->dst.abbr, sizeof z->dst.abbr);
    if (!p)
        return;
    doff = off - 3600;
    if (*p && *p != ',')
        p = tz_num(p, &doff, &ok);
    z->dst.off = -doff;
    if (!ok || *p != ',')
        return;
    p = tz_date_parse(p + 1, &z->start, &ok);
    if (!ok || *p != ',')
        return;
    p = tz_date_parse(p + 1, &z->end, &ok);
    if (ok && !*p)
        z->has_rule = true;
}

#define ZONE_CACHE 64
static struct {
    pthread_mutex_t lock;                 /* guards the arrays */
    char *name[ZONE_CACHE];               /* zone names */
    struct xv_go_zone *zone[ZONE_CACHE];  /* loaded zones (never freed) */
    unsigned n;                           /* entries used */
} g_zones = { .lock = PTHREAD_MUTEX_INITIALIZER };

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static struct xv_go_zone *load_tzif(const unsigned char *d, size_t n)
{
    if (n < 44 || memcmp(d, "TZif", 4) != 0)
        return NULL;
    int v2 = d[4] >= '2';
    size_t off = 0;
    int tsz = 4;
    for (int pass = 0; pass < (v2 ? 2 : 1); pass++) {
        if (off + 44 > n)
            return NULL;
        const unsigned char *h = d + off;
        uint32_t isut = rd32(h + 20), isstd = rd32(h + 24), leap = rd32(h + 28),
                 timecnt = rd32(h + 32), typecnt = rd32(h + 36), charcnt = rd32(h + 40);
        size_t body = (size_t)timecnt * tsz + timecnt + (size_t)typecnt * 6 + charcnt +
                      (size_t)leap * (tsz + 4) + isstd + isut;
        if (pass == 0 && v2) {
            off += 44 + body;
            tsz = 8;
            continue;
        }
        if (off + 44 + body > n || typecnt == 0 || timecnt > 100000 || typecnt > 256)
            return NULL;
        const unsigned char *p = h + 44;
        struct xv_go_zone *z = calloc(1, sizeof *z);
        if (!z)
            return NULL;
        z->trans = calloc(timecnt + 1, sizeof(int64_t));
        z->idx = calloc(timecnt + 1, 1);
        z->types = calloc(typecnt, sizeof *z->types);
        if (!z->trans || !z->idx || !z->types) {
            free(z->trans);
            free(z->idx);
            free(z->types);
            free(z);
            return NULL;
        }
        for (uint32_t i = 0; i < timecnt; i++) {
            if (tsz == 8)
                z->trans[i] = (int64_t)((uint64_t)rd32(p + 8 * i) << 32 | rd32(p + 8 * i + 4));
            else
                z->trans[i] = (int32_t)rd32(p + 4 * i);
        }
        p += (size_t)timecnt * tsz;
        for (uint32_t i = 0; i < timecnt; i++)
            z->idx[i] = p[i] < typecnt ? p[i] : 0;
        p += timecnt;
        const unsigned char *chars = p + (size_t)typecnt * 6;
        for (uint32_t i = 0; i < typecnt; i++) {
            z->types[i].off = (int32_t)rd32(p + 6 * i);
            unsigned ai = p[6 * i + 5];
            if (ai < charcnt)
                snprintf(z->types[i].abbr, sizeof z->types[i].abbr, "%.*s",
                         (int)strnlen((const char *)chars + ai, charcnt - ai), chars + ai);
        }
        z->ntrans = timecnt;
        z->ntypes = typecnt;
        /* v2+ footer: "\n<POSIX TZ>\n" right after the data block */
        const unsigned char *ft = h + 44 + body;
        if (v2 && ft < d + n && *ft == '\n') {
            const unsigned char *fe = memchr(ft + 1, '\n', (size_t)(d + n - ft - 1));
            if (fe && fe - ft - 1 < 128) {
                char rule[128];
                memcpy(rule, ft + 1, (size_t)(fe - ft - 1));
                rule[fe - ft - 1] = '\0';
                tz_rule(z, rule);
            }
        }
        return z;
    }
    return NULL;
}

const struct xv_go_zone *xv_go_zone(const char *name)
{
    static struct xv_go_zone utc = {0};
    if (!name[0] || strcmp(name, "UTC") == 0)
        return &utc;
    /* names are IANA paths: no absolute paths, no climbing out */
    if (name[0] == '/' || strstr(name, "..") || strlen(name) > 200)
        return NULL;
    pthread_mutex_lock(&g_zones.lock);
    for (unsigned i = 0; i < g_zones.n; i++)
        if (strcmp(g_zones.name[i], name) == 0) {
            struct xv_go_zone *z = g_zones.zone[i];
            pthread_mutex_unlock(&g_zones.lock);
            return z;
        }
    pthread_mutex_unlock(&g_zones.lock);
    char path[300];
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, 1 << 20, f) : 0;
    fclose(f);
    struct xv_go_zone *z = buf ? load_tzif(buf, n) : NULL;
    free(buf);
    if (!z)
        return NULL;
    pthread_mutex_lock(&g_zones.lock);
    if (g_zones.n < ZONE_CACHE) {
        g_zones.name[g_zones.n] = strdup(name);
        if (g_zones.name[g_zones.n])
            g_zones.zone[g_zones.n++] = z;
    }
    pthread_mutex_unlock(&g_zones.lock);
    /* a zone that did not fit the cache leaks deliberately: callers may
     * still hold it, and the cache bound keeps the total bounded by use */
    return z;
}


/* Unix time of a rule date in year y, given the offset in force before it. */
static int64_t rule_time(const struct tz_date *d, int64_t y, int32_t off)
{
    int64_t days;
    if (d->kind == 'J') {
        /* 1..365, February 29 never counted */
        days = xv_go_days_from_civil(y, 1, 1) + d->a - 1;
        if (d->a >= 60 && xv_go_days_in(y, 2) == 29)
            days++;
    } else if (d->kind == 'N') {
        days = xv_go_days_from_civil(y, 1, 1) + d->a;
    } else {
        int64_t first = xv_go_days_from_civil(y, d->a, 1);
        int wd = (int)(((first % 7) + 11) % 7);           /* weekday of the 1st */
        int64_t day = (d->c - wd + 7) % 7 + 7 * (d->b - 1);
        while (day >= xv_go_days_in(y, d->a))
            day -= 7;                                     /* week 5 = the last */
        days = first + day;
    }
    return days * 86400 + d->time - off;
}

const struct xv_go_zone_type *xv_go_zone_lookup(const struct xv_go_zone *z, int64_t sec)
{
    if (!z || z->ntypes == 0)
        return NULL;
    if (z->has_rule && z->ntrans > 0 && sec >= z->trans[z->ntrans - 1]) {
        int64_t y, days = xv_go_floordiv(sec + z->std.off, 86400);
        int m;
        /* the year of the local standard time */
        int64_t zz = days + 719468, era = xv_go_floordiv(zz, 146097), doe = zz - era * 146097;
        int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
        m = (int)(mp < 10 ? mp + 3 : mp - 9);
        y = yoe + era * 400 + (m <= 2);
        int64_t st = rule_time(&z->start, y, z->std.off), en = rule_time(&z->end, y, z->dst.off);
        bool dst = st < en ? (sec >= st && sec < en) : (sec < en || sec >= st);
        return dst ? &z->dst : &z->std;
    }
    if (z->ntrans == 0 || sec < z->trans[0]) {
        /* before the first transition: the first standard-time type */
        return &z->types[0];
    }
    size_t lo = 0, hi = z->ntrans;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (z->trans[mid] <= sec)
            lo = mid;
        else
            hi = mid;
    }
    return &z->types[z->idx[lo]];
}
