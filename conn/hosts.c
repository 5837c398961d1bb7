/*
 * hosts.c — which hosts are inspected (XENOVIA_HOSTS) and which provider a
 * host belongs to. Pure functions over strings; no allocation.
 *
 * List syntax: comma-separated entries, spaces ignored; an entry is a host
 * name or address, optionally "*." + suffix (matches any name ending in
 * ".suffix", not the suffix itself), optionally ":port" (then the port must
 * match too). Names compare case-insensitively.
 */
#include "xv_conn_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int suffix_eq(const char *host, size_t hl, const char *suf, size_t sl)
{
    return hl >= sl && strncasecmp(host + hl - sl, suf, sl) == 0;
}

/* Does one entry [e, e+el) match host/port? */
static int entry_match(const char *e, size_t el, const char *host, int port)
{
    /* split off ":port" (not for bracketed or bare IPv6) */
    const char *colon = NULL;
    if (el && e[0] == '[') {
        const char *rb = memchr(e, ']', el);
        if (rb && (size_t)(rb - e) + 1 < el && rb[1] == ':')
            colon = rb + 1;
        if (rb) {
            size_t inner = (size_t)(rb - e - 1);
            if (colon) {
                if (atoi(colon + 1) != port)
                    return 0;
            }
            return strlen(host) == inner && strncasecmp(host, e + 1, inner) == 0;
        }
    }
    colon = memchr(e, ':', el);
    if (colon && memchr(colon + 1, ':', el - (size_t)(colon + 1 - e)))
        colon = NULL; /* bare IPv6 address */
    size_t nl = colon ? (size_t)(colon - e) : el;
    if (colon && atoi(colon + 1) != port)
        return 0;
    size_t hl = strlen(host);
    if (nl >= 2 && e[0] == '*' && e[1] == '.')
        return hl > nl - 1 && suffix_eq(host, hl, e + 1, nl - 1);
    return hl == nl && strncasecmp(host, e, nl) == 0;
}

int xv_conn_host_allowed(const char *list, const char *host, int port)
{
    if (!list || !*list)
        return 1;
    if (!host)
        host = "";
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*p && *p != ',')
            p++;
        size_t el = (size_t)(p - e);
        while (el && e[el - 1] == ' ')
            el--;
        if (el && entry_match(e, el, host, port))
            return 1;
    }
    return 0;
}

const char *xv_conn_provider(const char *host)
{
    struct xv_openai_provider p;
    xv_openai_provider_for(host, NULL, 0, &p);
    return p.id;
}
