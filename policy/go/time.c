/*
 * go/time.c — Go `time` semantics for the time.* builtins (see go/time.h):
 * civil-date arithmetic, Go layouts (format and parse) and Go durations;
 * zones are go/zone.c's.
 *
 * Invariant: civil dates are proleptic Gregorian over int64 days, so no
 * year Go accepts overflows; a parse never reads past the value's length.
 * Thread safety: reentrant; no state of its own.
 */
#include "go/time.h"
#include "go/zone.h"
#include "value/buf.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- civil arithmetic ---- */

int64_t xv_go_floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

int64_t xv_go_days_from_civil(int64_t y, int64_t m, int64_t d)
{
    /* normalise the month into 1..12 first, as time.Date does */
    int64_t m0 = m - 1;
    y += xv_go_floordiv(m0, 12);
    m = m0 - xv_go_floordiv(m0, 12) * 12 + 1;
    int64_t yy = y - (m <= 2);
    int64_t era = xv_go_floordiv(yy, 400);
    int64_t yoe = yy - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468 + (d - 1);
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = xv_go_floordiv(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int xv_go_days_in(int64_t y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[(m - 1) % 12];
}

void xv_go_time_split(int64_t sec, int32_t nsec, const struct xv_go_zone *z,
                             struct xv_go_tm *tm)
{
    const struct xv_go_zone_type *t = xv_go_zone_lookup(z, sec);
    memset(tm, 0, sizeof *tm);
    tm->offset = t ? t->off : 0;
    if (t && t->abbr[0])
        snprintf(tm->abbr, sizeof tm->abbr, "%s", t->abbr);
    else if (!t)
        snprintf(tm->abbr, sizeof tm->abbr, "UTC");
    int64_t local = sec + tm->offset;
    int64_t days = xv_go_floordiv(local, 86400);
    int64_t rem = local - days * 86400;
    civil_from_days(days, &tm->year, &tm->month, &tm->day);
    tm->hour = (int)(rem / 3600);
    tm->min = (int)(rem / 60 % 60);
    tm->sec = (int)(rem % 60);
    tm->nsec = nsec;
    tm->wday = (int)(((days % 7) + 11) % 7);   /* 1970-01-01 was a Thursday */
    tm->yday = (int)(days - xv_go_days_from_civil(tm->year, 1, 1) + 1);
}

/* ---- layouts ---- */

static const char *const long_days[] = {"Sunday", "Monday", "Tuesday", "Wednesday",
                                        "Thursday", "Friday", "Saturday"};
static const char *const long_months[] = {"January", "February", "March", "April",
                                          "May", "June", "July", "August",
                                          "September", "October", "November", "December"};

const char *xv_go_layout_name(const char *l)
{
    static const char *const map[][2] = {
        {"ANSIC", "Mon Jan _2 15:04:05 2006"},
        {"UnixDate", "Mon Jan _2 15:04:05 MST 2006"},
        {"RubyDate", "Mon Jan 02 15:04:05 -0700 2006"},
        {"RFC822", "02 Jan 06 15:04 MST"},
        {"RFC822Z", "02 Jan 06 15:04 -0700"},
        {"RFC850", "Monday, 02-Jan-06 15:04:05 MST"},
        {"RFC1123", "Mon, 02 Jan 2006 15:04:05 MST"},
        {"RFC1123Z", "Mon, 02 Jan 2006 15:04:05 -0700"},
        {"RFC3339", "2006-01-02T15:04:05Z07:00"},
        {"RFC3339Nano", "2006-01-02T15:04:05.999999999Z07:00"},
        {"Kitchen", "3:04PM"},
        {"Stamp", "Jan _2 15:04:05"},
        {"StampMilli", "Jan _2 15:04:05.000"},
        {"StampMicro", "Jan _2 15:04:05.000000"},
        {"StampNano", "Jan _2 15:04:05.000000000"},
        {"DateTime", "2006-01-02 15:04:05"},
        {"DateOnly", "2006-01-02"},
        {"TimeOnly", "15:04:05"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(l, map[i][0]) == 0)
            return map[i][1];
    return l;
}

enum std {
    S_NONE, S_LONGMONTH, S_MONTH, S_NUMMONTH, S_ZEROMONTH, S_LONGWEEKDAY, S_WEEKDAY,
    S_DAY, S_UNDERDAY, S_ZERODAY, S_UNDERYEARDAY, S_ZEROYEARDAY, S_HOUR, S_HOUR12,
    S_ZEROHOUR12, S_MINUTE, S_ZEROMINUTE, S_SECOND, S_ZEROSECOND, S_LONGYEAR, S_YEAR,
    S_PM, S_pm, S_TZ, S_ISO8601TZ, S_ISO8601SECONDSTZ, S_ISO8601SHORTTZ, S_ISO8601COLONTZ,
    S_ISO8601COLONSECONDSTZ, S_NUMTZ, S_NUMSECONDSTZ, S_NUMSHORTTZ, S_NUMCOLONTZ,
    S_NUMCOLONSECONDSTZ, S_FRAC0, S_FRAC9,
};

static bool lower_at(const char *l, size_t n, size_t i)
{
    return i < n && l[i] >= 'a' && l[i] <= 'z';
}

static bool digit_at(const char *l, size_t n, size_t i)
{
    return i < n && l[i] >= '0' && l[i] <= '9';
}

static bool has(const char *l, size_t n, size_t i, const char *w)
{
    size_t k = strlen(w);
    return i + k <= n && memcmp(l + i, w, k) == 0;
}

/* Go's nextStdChunk: find the next token at or after *pos. Sets *start and
 * *end of the token (start == n when none), returns its code; *arg holds
 * the digit count of fractional seconds. */
static enum std next_chunk(const char *l, size_t n, size_t pos, size_t *start, size_t *end,
                           int *arg)
{
    for (size_t i = pos; i < n; i++) {
        *start = i;
        switch (l[i]) {
        case 'J':
            if (has(l, n, i, "Jan")) {
                if (has(l, n, i, "January")) { *end = i + 7; return S_LONGMONTH; }
                if (!lower_at(l, n, i + 3)) { *end = i + 3; return S_MONTH; }
            }
            break;
        case 'M':
            if (has(l, n, i, "Mon")) {
                if (has(l, n, i, "Monday")) { *end = i + 6; return S_LONGWEEKDAY; }
                if (!lower_at(l, n, i + 3)) { *end = i + 3; return S_WEEKDAY; }
            }
            if (has(l, n, i, "MST")) { *end = i + 3; return S_TZ; }
            break;
        case '0':
            if (i + 1 < n && l[i + 1] >= '1' && l[i + 1] <= '6') {
                static const enum std z[] = {S_ZEROMONTH, S_ZERODAY, S_ZEROHOUR12,
                                             S_ZEROMINUTE, S_ZEROSECOND, S_YEAR};
                *end = i + 2;
                return z[l[i + 1] - '1'];
            }
            if (has(l, n, i, "002")) { *end = i + 3; return S_ZEROYEARDAY; }
            break;
        case '1':
            if (i + 1 < n && l[i + 1] == '5') { *end = i + 2; return S_HOUR; }
            *end = i + 1;
            return S_NUMMONTH;
        case '2':
            if (has(l, n, i, "2006")) { *end = i + 4; return S_LONGYEAR; }
            *end = i + 1;
            return S_DAY;
        case '_':
            if (i + 1 < n && l[i + 1] == '2') {
                if (has(l, n, i + 1, "2006")) {
                    *start = i + 1;
                    *end = i + 5;
                    return S_LONGYEAR;
                }
                *end = i + 2;
                return S_UNDERDAY;
            }
            if (has(l, n, i, "__2")) { *end = i + 3; return S_UNDERYEARDAY; }
            break;
        case '3': *end = i + 1; return S_HOUR12;
        case '4': *end = i + 1; return S_MINUTE;
        case '5': *end = i + 1; return S_SECOND;
        case 'P':
            if (i + 1 < n && l[i + 1] == 'M') { *end = i + 2; return S_PM; }
            break;
        case 'p':
            if (i + 1 < n && l[i + 1] == 'm') { *end = i + 2; return S_pm; }
            break;
        case '-':
            if (has(l, n, i, "-070000")) { *end = i + 7; return S_NUMSECONDSTZ; }
            if (has(l, n, i, "-07:00:00")) { *end = i + 9; return S_NUMCOLONSECONDSTZ; }
            if (has(l, n, i, "-0700")) { *end = i + 5; return S_NUMTZ; }
            if (has(l, n, i, "-07:00")) { *end = i + 6; return S_NUMCOLONTZ; }
            if (has(l, n, i, "-07")) { *end = i + 3; return S_NUMSHORTTZ; }
            break;
        case 'Z':
            if (has(l, n, i, "Z070000")) { *end = i + 7; return S_ISO8601SECONDSTZ; }
            if (has(l, n, i, "Z07:00:00")) { *end = i + 9; return S_ISO8601COLONSECONDSTZ; }
            if (has(l, n, i, "Z0700")) { *end = i + 5; return S_ISO8601TZ; }
            if (has(l, n, i, "Z07:00")) { *end = i + 6; return S_ISO8601COLONTZ; }
            if (has(l, n, i, "Z07")) { *end = i + 3; return S_ISO8601SHORTTZ; }
            break;
        case '.': case ',':
            if (i + 1 < n && (l[i + 1] == '0' || l[i + 1] == '9')) {
                char ch = l[i + 1];
                size_t j = i + 1;
                while (j < n && l[j] == ch)
                    j++;
                if (!digit_at(l, n, j)) {
                    *end = j;
                    *arg = (int)(j - i - 1);
                    return ch == '0' ? S_FRAC0 : S_FRAC9;
                }
            }
            break;
        default:
            break;
        }
    }
    *start = *end = n;
    return S_NONE;
}

static void put_int(struct xv_val_buf *b, int64_t v, int width, char padc)
{
    char tmp[32];
    int neg = v < 0;
    uint64_t u = neg ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    int k = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)u);
    if (neg)
        xv_val_buf_addc(b, '-');
    for (int i = k; i < width; i++)
        xv_val_buf_addc(b, padc);
    xv_val_buf_add(b, tmp, (size_t)k);
}

static void put_tz(struct xv_val_buf *b, int off, enum std s)
{
    bool iso = s >= S_ISO8601TZ && s <= S_ISO8601COLONSECONDSTZ;
    if (iso && off == 0) {
        xv_val_buf_addc(b, 'Z');
        return;
    }
    int z = off / 60, absoff = off;
    if (z < 0) {
        xv_val_buf_addc(b, '-');
        z = -z;
        absoff = -absoff;
    } else {
        xv_val_buf_addc(b, '+');
    }
    put_int(b, z / 60, 2, '0');
    bool colon = s == S_ISO8601COLONTZ || s == S_NUMCOLONTZ || s == S_ISO8601COLONSECONDSTZ ||
                 s == S_NUMCOLONSECONDSTZ;
    if (s != S_ISO8601SHORTTZ && s != S_NUMSHORTTZ) {
        if (colon)
            xv_val_buf_addc(b, ':');
        put_int(b, z % 60, 2, '0');
    }
    if (s == S_ISO8601SECONDSTZ || s == S_NUMSECONDSTZ || s == S_NUMCOLONSECONDSTZ ||
        s == S_ISO8601COLONSECONDSTZ) {
        if (colon)
            xv_val_buf_addc(b, ':');
        put_int(b, absoff % 60, 2, '0');
    }
}

char *xv_go_time_format(const struct xv_go_tm *tm, const char *l, size_t n, size_t *outlen)
{
    struct xv_val_buf b = {0};
    size_t pos = 0;
    int hr12 = tm->hour % 12 == 0 ? 12 : tm->hour % 12;
    while (pos < n) {
        size_t st, en;
        int arg = 0;
        enum std s = next_chunk(l, n, pos, &st, &en, &arg);
        xv_val_buf_add(&b, l + pos, st - pos);
        if (s == S_NONE)
            break;
        pos = en;
        switch (s) {
        case S_YEAR: put_int(&b, ((tm->year % 100) + 100) % 100, 2, '0'); break;
        case S_LONGYEAR: put_int(&b, tm->year, 4, '0'); break;
        case S_MONTH: xv_val_buf_add(&b, long_months[tm->month - 1], 3); break;
        case S_LONGMONTH: xv_val_buf_adds(&b, long_months[tm->month - 1]); break;
        case S_NUMMONTH: put_int(&b, tm->month, 0, '0'); break;
        case S_ZEROMONTH: put_int(&b, tm->month, 2, '0'); break;
        case S_WEEKDAY: xv_val_buf_add(&b, long_days[tm->wday], 3); break;
        case S_LONGWEEKDAY: xv_val_buf_adds(&b, long_days[tm->wday]); break;
        case S_DAY: put_int(&b, tm->day, 0, '0'); break;
        case S_UNDERDAY: put_int(&b, tm->day, 2, ' '); break;
        case S_ZERODAY: put_int(&b, tm->day, 2, '0'); break;
        case S_UNDERYEARDAY: put_int(&b, tm->yday, 3, ' '); break;
        case S_ZEROYEARDAY: put_int(&b, tm->yday, 3, '0'); break;
        case S_HOUR: put_int(&b, tm->hour, 2, '0'); break;
        case S_HOUR12: put_int(&b, hr12, 0, '0'); break;
        case S_ZEROHOUR12: put_int(&b, hr12, 2, '0'); break;
        case S_MINUTE: put_int(&b, tm->min, 0, '0'); break;
        case S_ZEROMINUTE: put_int(&b, tm->min, 2, '0'); break;
        case S_SECOND: put_int(&b, tm->sec, 0, '0'); break;
        case S_ZEROSECOND: put_int(&b, tm->sec, 2, '0'); break;
        case S_PM: xv_val_buf_adds(&b, tm->hour >= 12 ? "PM" : "AM"); break;
        case S_pm: xv_val_buf_adds(&b, tm->hour >= 12 ? "pm" : "am"); break;
        case S_TZ:
            if (tm->abbr[0]) {
                xv_val_buf_adds(&b, tm->abbr);
            } else {
                /* no name: -07 or -0700 as Go does */
                int z = tm->offset / 60;
                put_tz(&b, tm->offset, z % 60 ? S_NUMTZ : S_NUMSHORTTZ);
            }
            break;
        case S_FRAC0: case S_FRAC9: {
            char digs[10];
            snprintf(digs, sizeof digs, "%09d", (int)tm->nsec);
            int k = arg > 9 ? 9 : arg;
            if (s == S_FRAC9) {
                while (k > 0 && digs[k - 1] == '0')
                    k--;
                if (k == 0)
                    break;
            }
            xv_val_buf_addc(&b, l[st]);
            xv_val_buf_add(&b, digs, (size_t)k);
            break;
        }
        default:
            put_tz(&b, tm->offset, s);
            break;
        }
    }
    return xv_val_buf_take(&b, outlen);
}

/* ---- parsing ---- */

/* getnum: one or two digits (exactly two when fixed). */
static bool getnum(const char **v, const char *e, bool fixed, int *out)
{
    const char *p = *v;
    if (p >= e || *p < '0' || *p > '9')
        return false;
    if (p + 1 >= e || p[1] < '0' || p[1] > '9') {
        if (fixed)
            return false;
        *out = *p - '0';
        *v = p + 1;
        return true;
    }
    *out = (p[0] - '0') * 10 + (p[1] - '0');
    *v = p + 2;
    return true;
}

static bool getnum3(const char **v, const char *e, bool fixed, int *out)
{
    int r = 0, i = 0;
    const char *p = *v;
    while (i < 3 && p < e && *p >= '0' && *p <= '9') {
        r = r * 10 + (*p - '0');
        p++;
        i++;
    }
    if (i == 0 || (fixed && i != 3))
        return false;
    *out = r;
    *v = p;
    return true;
}

static int lookup_name(const char **v, const char *e, const char *const *tab, int cnt, size_t len)
{
    for (int i = 0; i < cnt; i++) {
        size_t k = len ? len : strlen(tab[i]);
        if ((size_t)(e - *v) >= k && strncasecmp(*v, tab[i], k) == 0) {
            *v += k;
            return i;
        }
    }
    return -1;
}

/* What a time value parsed so far says (xv_go_time_parse). */
struct tparse {
    const char *v, *e;     /* the rest of the value */
    int64_t year;          /* calendar year */
    int month, day, yday;  /* -1 until seen */
    int hour, min, secs;   /* clock */
    int64_t ns;            /* fraction of the second */
    bool pm, am, utc;      /* PM/AM seen; Z or UTC seen */
    bool have_off;         /* a numeric offset was seen (zoff) */
    int zoff;              /* seconds east of UTC */
    const char *what;      /* detail for the error text ("" or ": ...") */
};

/* Go's rule: a fractional second after the seconds ('.' or ',' then
 * digits), up to nanoseconds, extra digits ignored. */
static void parse_frac(struct tparse *t)
{
    const char *p = t->v + 1;
    int64_t f = 0;
    int digs = 0;
    while (p < t->e && *p >= '0' && *p <= '9') {
        if (digs < 9) {
            f = f * 10 + (*p - '0');
            digs++;
        }
        p++;
    }
    while (digs++ < 9)
        f *= 10;
    t->ns = f;
    t->v = p;
}

/* The numeric zone offset forms (-07, -0700, -07:00, -070000, ...). */
static bool parse_numtz(struct tparse *t, enum std s)
{
    if (t->v >= t->e || (*t->v != '+' && *t->v != '-'))
        return false;
    int sign = *t->v == '-' ? -1 : 1;
    t->v++;
    int hh = 0, mm = 0, ss = 0;
    if (!getnum(&t->v, t->e, true, &hh))
        return false;
    bool colon = s == S_ISO8601COLONTZ || s == S_NUMCOLONTZ ||
                 s == S_ISO8601COLONSECONDSTZ || s == S_NUMCOLONSECONDSTZ;
    if (s != S_ISO8601SHORTTZ && s != S_NUMSHORTTZ) {
        if (colon) {
            if (t->v >= t->e || *t->v != ':')
                return false;
            t->v++;
        }
        if (!getnum(&t->v, t->e, true, &mm))
            return false;
    }
    if (s == S_ISO8601SECONDSTZ || s == S_NUMSECONDSTZ || s == S_NUMCOLONSECONDSTZ ||
        s == S_ISO8601COLONSECONDSTZ) {
        if (colon) {
            if (t->v >= t->e || *t->v != ':')
                return false;
            t->v++;
        }
        if (!getnum(&t->v, t->e, true, &ss))
            return false;
    }
    if (hh > 24 || mm > 60 || ss > 60) {
        t->what = ": time zone offset out of range";
        return false;
    }
    t->zoff = sign * (hh * 3600 + mm * 60 + ss);
    t->have_off = true;
    return true;
}

/* A zone abbreviation: UTC, or 3-5 upper-case letters (offset 0 unless
 * a numeric offset says otherwise, as in Go for unknown names). */
static bool parse_abbr(struct tparse *t)
{
    if (t->e - t->v >= 3 && memcmp(t->v, "UTC", 3) == 0) {
        t->v += 3;
        t->utc = true;
        return true;
    }
    /* an abbreviation: 3-5 upper-case letters; unknown ones get offset 0 */
    const char *p = t->v;
    while (p < t->e && *p >= 'A' && *p <= 'Z' && p - t->v < 5)
        p++;
    if (p - t->v < 3)
        return false;
    t->v = p;
    return true;
}

/* The layout's literal text l[pos..st) against the value: runs of spaces
 * match runs of spaces, everything else byte for byte. */
static bool parse_literal(struct tparse *t, const char *l, size_t pos, size_t st)
{
    for (size_t i = pos; i < st;) {
        if (l[i] == ' ') {
            if (t->v < t->e && *t->v != ' ')
                return false;
            while (i < st && l[i] == ' ')
                i++;
            while (t->v < t->e && *t->v == ' ')
                t->v++;
            continue;
        }
        if (t->v >= t->e || *t->v != l[i])
            return false;
        t->v++;
        i++;
    }
    return true;
}

/* One layout element s (arg: fraction digits) against the value; pos is
 * the layout position after it (a fraction may follow the seconds). */
static bool parse_elem(struct tparse *t, enum std s, int arg, const char *l, size_t n, size_t pos)
{
    int x = 0;
    switch (s) {
    case S_YEAR:
        if (!getnum(&t->v, t->e, true, &x))
            return false;
        t->year = x >= 69 ? 1900 + x : 2000 + x;
        break;
    case S_LONGYEAR:
        if (t->e - t->v < 4)
            return false;
        t->year = 0;
        for (int k = 0; k < 4; k++) {
            if (t->v[k] < '0' || t->v[k] > '9')
                return false;
            t->year = t->year * 10 + (t->v[k] - '0');
        }
        t->v += 4;
        break;
    case S_MONTH:
        if ((x = lookup_name(&t->v, t->e, long_months, 12, 3)) < 0)
            return false;
        t->month = x + 1;
        break;
    case S_LONGMONTH:
        if ((x = lookup_name(&t->v, t->e, long_months, 12, 0)) < 0)
            return false;
        t->month = x + 1;
        break;
    case S_NUMMONTH: case S_ZEROMONTH:
        if (!getnum(&t->v, t->e, s == S_ZEROMONTH, &t->month) || t->month < 1 || t->month > 12) {
            t->what = ": month out of range";
            return false;
        }
        break;
    case S_WEEKDAY:
        if (lookup_name(&t->v, t->e, long_days, 7, 3) < 0)
            return false;
        break;
    case S_LONGWEEKDAY:
        if (lookup_name(&t->v, t->e, long_days, 7, 0) < 0)
            return false;
        break;
    case S_DAY: case S_UNDERDAY: case S_ZERODAY:
        if (s == S_UNDERDAY && t->v < t->e && *t->v == ' ')
            t->v++;
        if (!getnum(&t->v, t->e, s == S_ZERODAY, &t->day))
            return false;
        break;
    case S_UNDERYEARDAY: case S_ZEROYEARDAY:
        for (int k = 0; k < 2 && s == S_UNDERYEARDAY && t->v < t->e && *t->v == ' '; k++)
            t->v++;
        if (!getnum3(&t->v, t->e, s == S_ZEROYEARDAY, &t->yday) || t->yday < 1 || t->yday > 366)
            return false;
        break;
    case S_HOUR:
        if (!getnum(&t->v, t->e, false, &t->hour) || t->hour > 23) {
            t->what = ": hour out of range";
            return false;
        }
        break;
    case S_HOUR12: case S_ZEROHOUR12:
        if (!getnum(&t->v, t->e, s == S_ZEROHOUR12, &t->hour) || t->hour > 12) {
            t->what = ": hour out of range";
            return false;
        }
        break;
    case S_MINUTE: case S_ZEROMINUTE:
        if (!getnum(&t->v, t->e, s == S_ZEROMINUTE, &t->min) || t->min > 59) {
            t->what = ": minute out of range";
            return false;
        }
        break;
    case S_SECOND: case S_ZEROSECOND: {
        if (!getnum(&t->v, t->e, s == S_ZEROSECOND, &t->secs) || t->secs > 59) {
            t->what = ": second out of range";
            return false;
        }
        /* a fractional second may follow even when the layout has none */
        if (t->e - t->v >= 2 && (*t->v == '.' || *t->v == ',') && t->v[1] >= '0' &&
            t->v[1] <= '9') {
            size_t st2, en2;
            int a2;
            enum std nx = next_chunk(l, n, pos, &st2, &en2, &a2);
            if ((nx == S_FRAC0 || nx == S_FRAC9) && st2 == pos)
                break;
            parse_frac(t);
        }
        break;
    }
    case S_PM: case S_pm:
        if (t->e - t->v < 2)
            return false;
        if (strncasecmp(t->v, "PM", 2) == 0)
            t->pm = true;
        else if (strncasecmp(t->v, "AM", 2) == 0)
            t->am = true;
        else
            return false;
        t->v += 2;
        break;
    case S_ISO8601TZ: case S_ISO8601COLONTZ: case S_ISO8601SECONDSTZ:
    case S_ISO8601SHORTTZ: case S_ISO8601COLONSECONDSTZ:
        if (t->v < t->e && *t->v == 'Z') {
            t->v++;
            t->utc = true;
            break;
        }
        /* fall through */
    case S_NUMTZ: case S_NUMSHORTTZ: case S_NUMCOLONTZ: case S_NUMSECONDSTZ:
    case S_NUMCOLONSECONDSTZ:
        return parse_numtz(t, s);
    case S_TZ:
        return parse_abbr(t);
    case S_FRAC0: {
        if (t->e - t->v < arg + 1 || (*t->v != '.' && *t->v != ','))
            return false;
        int64_t f = 0;
        for (int k = 1; k <= arg; k++) {
            if (t->v[k] < '0' || t->v[k] > '9')
                return false;
            if (k <= 9)
                f = f * 10 + (t->v[k] - '0');
        }
        for (int k = arg; k < 9; k++)
            f *= 10;
        t->ns = f;
        t->v += arg + 1;
        break;
    }
    case S_FRAC9:
        if (t->e - t->v >= 2 && (*t->v == '.' || *t->v == ',') && t->v[1] >= '0' &&
            t->v[1] <= '9')
            parse_frac(t);
        break;
    default:
        return false;
    }
    return true;
}

/* Put the parsed fields together: AM/PM, day of year, defaults, ranges. */
static bool parse_finish(struct tparse *t, int64_t *sec, int32_t *nsec)
{
    if (t->pm && t->hour < 12)
        t->hour += 12;
    else if (t->am && t->hour == 12)
        t->hour = 0;
    if (t->yday >= 0) {
        int m = 1;
        int d = t->yday;
        while (m <= 12 && d > xv_go_days_in(t->year, m)) {
            d -= xv_go_days_in(t->year, m);
            m++;
        }
        if (m > 12 || (t->month >= 0 && t->month != m) || (t->day >= 0 && t->day != d)) {
            t->what = ": day-of-year out of range";
            return false;
        }
        t->month = m;
        t->day = d;
    }
    if (t->month < 0)
        t->month = 1;
    if (t->day < 0)
        t->day = 1;
    if (t->day < 1 || t->day > xv_go_days_in(t->year, t->month)) {
        t->what = ": day out of range";
        return false;
    }
    int64_t days = xv_go_days_from_civil(t->year, t->month, t->day);
    *sec = days * 86400 + t->hour * 3600 + t->min * 60 + t->secs -
           (t->have_off && !t->utc ? t->zoff : 0);
    *nsec = (int32_t)t->ns;
    return true;
}

int xv_go_time_parse(const char *l, size_t n, const char *value, size_t vn, int64_t *sec,
                     int32_t *nsec, char *err, size_t errlen)
{
    struct tparse t = {.v = value, .e = value + vn, .month = -1, .day = -1, .yday = -1,
                       .what = ""};
    size_t pos = 0;
    bool ok = true;
    while (ok) {
        size_t st, en;
        int arg = 0;
        enum std s = next_chunk(l, n, pos, &st, &en, &arg);
        if (!parse_literal(&t, l, pos, st)) {
            ok = false;
            break;
        }
        if (s == S_NONE) {
            if (t.v != t.e) {
                t.what = ": extra text";
                ok = false;
            }
            break;
        }
        pos = en;
        ok = parse_elem(&t, s, arg, l, n, pos);
    }
    if (ok && parse_finish(&t, sec, nsec))
        return 0;
    if (err)
        snprintf(err, errlen, "parsing time \"%.*s\" as \"%.*s\": cannot parse \"%.*s\"%s",
                 (int)(vn > 100 ? 100 : vn), value, (int)(n > 100 ? 100 : n), l,
                 (int)(t.e - t.v > 100 ? 100 : t.e - t.v), t.v, t.what);
    return -1;
}

/* ---- durations ---- */

int xv_go_parse_duration(const char *s, size_t n, int64_t *out, char *err, size_t errlen)
{
    size_t i = 0;
    bool neg = false;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    if (n - i == 1 && s[i] == '0') {
        *out = 0;
        return 0;
    }
    if (i >= n)
        goto bad;
    unsigned __int128 total = 0;
    while (i < n) {
        uint64_t whole = 0;
        double frac = 0, scale = 1;
        bool pre = false, post = false;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (whole > (UINT64_MAX - 9) / 10)
                goto bad;
            whole = whole * 10 + (uint64_t)(s[i] - '0');
            i++;
            pre = true;
        }
        if (i < n && s[i] == '.') {
            i++;
            while (i < n && s[i] >= '0' && s[i] <= '9') {
                scale /= 10;
                frac += (s[i] - '0') * scale;
                i++;
                post = true;
            }
        }
        if (!pre && !post)
            goto bad;
        size_t us = i;
        while (i < n && s[i] != '.' && (s[i] < '0' || s[i] > '9'))
            i++;
        size_t ul = i - us;
        uint64_t unit;
        const char *u = s + us;
        if (ul == 2 && memcmp(u, "ns", 2) == 0) unit = 1;
        else if ((ul == 2 && memcmp(u, "us", 2) == 0) || (ul == 3 && memcmp(u, "\xc2\xb5s", 3) == 0) ||
                 (ul == 3 && memcmp(u, "\xce\xbcs", 3) == 0)) unit = 1000;
        else if (ul == 2 && memcmp(u, "ms", 2) == 0) unit = 1000000;
        else if (ul == 1 && u[0] == 's') unit = 1000000000ULL;
        else if (ul == 1 && u[0] == 'm') unit = 60000000000ULL;
        else if (ul == 1 && u[0] == 'h') unit = 3600000000000ULL;
        else {
            if (err) {
                if (ul == 0)
                    snprintf(err, errlen, "time: missing unit in duration \"%.*s\"", (int)n, s);
                else
                    snprintf(err, errlen, "time: unknown unit \"%.*s\" in duration \"%.*s\"",
                             (int)ul, u, (int)n, s);
            }
            return -1;
        }
        total += (unsigned __int128)whole * unit + (unsigned __int128)(frac * (double)unit);
        if (total > (unsigned __int128)INT64_MAX + (neg ? 1 : 0))
            goto bad;
    }
    *out = neg ? (int64_t)(0 - (uint64_t)total) : (int64_t)total;
    return 0;
bad:
    if (err)
        snprintf(err, errlen, "time: invalid duration \"%.*s\"", (int)(n > 100 ? 100 : n), s);
    return -1;
}
