/*
 * exp_json.c — a record (cJSON tree) as one line of JSON, byte for byte what
 * cJSON_PrintUnformatted prints, in one growing buffer.
 *
 * Why: cJSON's printer formats every non-integral number with sprintf and
 * then reads it back with sscanf to check the round trip, and copies strings
 * a byte at a time through its escaper; on the exporter thread that was
 * ~50,000 instructions per record, a good part of the agent's CPU per call
 * (issue 9). Here integers take a digit loop, other numbers snprintf and
 * a strtod check, and runs of bytes needing no escape are copied at once.
 *
 * Output rules (cJSON 1.7's): no whitespace; strings escape '"', '\\', and
 * bytes below 0x20 ("\b\f\n\r\t", others "\u00XX"), everything else raw;
 * numbers: NaN/Inf -> null, else "%1.15g" unless it does not read back
 * equal, then "%1.17g" (always with '.' as the decimal point) — integers
 * below 10^15 by a digit loop, which prints the same; raw items verbatim.
 *
 * Thread safety: none needed (pure function of its argument).
 */
#include "exp_internal.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct out {
    char *p;      /* the line, NUL-terminated while ok */
    size_t len;   /* bytes used */
    size_t cap;   /* bytes allocated */
    int oom;      /* an allocation failed */
};

static int reserve(struct out *o, size_t n)
{
    if (o->oom)
        return -1;
    if (o->len + n + 1 <= o->cap)
        return 0;
    size_t cap = o->cap ? o->cap : 256;
    while (cap < o->len + n + 1)
        cap *= 2;
    char *p = realloc(o->p, cap);
    if (!p) {
        o->oom = 1;
        return -1;
    }
    o->p = p;
    o->cap = cap;
    return 0;
}

static void put(struct out *o, const char *s, size_t n)
{
    if (reserve(o, n) == 0) {
        memcpy(o->p + o->len, s, n);
        o->len += n;
    }
}

static void put_string(struct out *o, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    put(o, "\"", 1);
    if (s) {
        for (;;) {
            const char *run = s;
            while ((unsigned char)*s >= 0x20 && *s != '"' && *s != '\\')
                s++;
            put(o, run, (size_t)(s - run));
            if (!*s)
                break;
            char e[6] = { '\\', 0 };
            size_t n = 2;
            switch (*s) {
            case '"': e[1] = '"'; break;
            case '\\': e[1] = '\\'; break;
            case '\b': e[1] = 'b'; break;
            case '\f': e[1] = 'f'; break;
            case '\n': e[1] = 'n'; break;
            case '\r': e[1] = 'r'; break;
            case '\t': e[1] = 't'; break;
            default:
                memcpy(e + 1, "u00", 3);
                e[4] = hex[((unsigned char)*s >> 4) & 0xF];
                e[5] = hex[(unsigned char)*s & 0xF];
                n = 6;
            }
            put(o, e, n);
            s++;
        }
    }
    put(o, "\"", 1);
}

static void put_number(struct out *o, const cJSON *item)
{
    double d = item->valuedouble;
    char buf[32];
    int n;
    if (isnan(d) || isinf(d)) {
        put(o, "null", 4);
        return;
    }
    if (d == floor(d) && fabs(d) < 1e15 && !(d == 0 && signbit(d))) {
        /* What "%1.15g" prints for an integer below 10^15: its digits. */
        long long v = (long long)d;
        char *e = buf + sizeof buf, *p = e;
        unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
        do {
            *--p = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (v < 0)
            *--p = '-';
        put(o, p, (size_t)(e - p));
        return;
    }
    /* Read back in the same locale it was printed in, as cJSON does. */
    n = snprintf(buf, sizeof buf, "%1.15g", d);
    double back = strtod(buf, NULL);
    double max = fabs(back) > fabs(d) ? fabs(back) : fabs(d);
    if (!(fabs(back - d) <= max * DBL_EPSILON))
        n = snprintf(buf, sizeof buf, "%1.17g", d);
    for (int i = 0; i < n && i < (int)sizeof buf; i++) /* a locale's decimal comma */
        if (buf[i] == ',')
            buf[i] = '.';
    if (n > 0)
        put(o, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* depth: cJSON's parser caps nesting at 1000; records are shallow. */
static void put_value(struct out *o, const cJSON *item, int depth)
{
    if (depth > 1000) {
        o->oom = 1; /* refuse, as cJSON would run out of stack first */
        return;
    }
    switch (item->type & 0xFF) {
    case cJSON_NULL: put(o, "null", 4); break;
    case cJSON_False: put(o, "false", 5); break;
    case cJSON_True: put(o, "true", 4); break;
    case cJSON_Number: put_number(o, item); break;
    case cJSON_Raw:
        if (!item->valuestring) {
            o->oom = 1; /* cJSON fails the whole print */
            return;
        }
        put(o, item->valuestring, strlen(item->valuestring));
        break;
    case cJSON_String: put_string(o, item->valuestring); break;
    case cJSON_Array:
        put(o, "[", 1);
        for (const cJSON *c = item->child; c; c = c->next) {
            put_value(o, c, depth + 1);
            if (c->next)
                put(o, ",", 1);
        }
        put(o, "]", 1);
        break;
    case cJSON_Object:
        put(o, "{", 1);
        for (const cJSON *c = item->child; c; c = c->next) {
            put_string(o, c->string);
            put(o, ":", 1);
            put_value(o, c, depth + 1);
            if (c->next)
                put(o, ",", 1);
        }
        put(o, "}", 1);
        break;
    default:
        o->oom = 1; /* an invalid item: cJSON prints nothing either */
    }
}

char *xv_exp_json_print(const cJSON *item)
{
    struct out o = { 0 };
    if (!item)
        return NULL;
    put_value(&o, item, 0);
    if (o.oom || reserve(&o, 0) < 0) {
        free(o.p);
        return NULL;
    }
    o.p[o.len] = '\0';
    return o.p;
}
