/*
 * config.c — route rules from the environment (SPEC §8), matching a host
 * against them, and the sentinel addresses getaddrinfo gives routed names.
 *
 * Grammar: XENOVIA_ROUTE = rule *("," rule); rule = host [":" port] "=" URL;
 * URL = ("http" | "https") "://" host [":" port] [path]. The host of a rule
 * may start with "*." (any subdomain). Hosts compare case-insensitively.
 *
 * Thread safety: parsing has no state; the process configuration is set
 * once by the preload before any hook runs and read-only after.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xv_route.h"

#define RUNTIME_DEFAULT "https://runtime.xenovia.io"

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* The decimal port p[0..n) (1..65535) into *port. 0 or -1. */
static int parse_port(const char *p, size_t n, int *port)
{
    char num[8];
    if (n == 0 || n >= sizeof num)
        return -1;
    memcpy(num, p, n);
    num[n] = '\0';
    char *e;
    long v = strtol(num, &e, 10);
    if (*e || v < 1 || v > 65535 || num[0] == '+' || num[0] == '-' || num[0] == ' ')
        return -1;
    *port = (int)v;
    return 0;
}

/* "host[:port]" or "[v6]:port" of length n -> host, port (0 absent).
 * Returns 0 or -1. */
static int split_hostport(const char *s, size_t n, char *host, size_t hostlen, int *port)
{
    *port = 0;
    const char *end = s + n;
    const char *hs = s, *he;
    if (n && *s == '[') {
        he = memchr(s, ']', n);
        if (!he)
            return -1;
        hs = s + 1;
        const char *after = he + 1;
        if (after < end && *after != ':')
            return -1;
        if (after < end && parse_port(after + 1, (size_t)(end - after - 1), port) != 0)
            return -1;
    } else {
        const char *colon = memchr(s, ':', n);
        he = colon ? colon : end;
        if (colon) {
            if (memchr(colon + 1, ':', (size_t)(end - colon - 1)))
                return -1; /* a bare IPv6 address needs brackets */
            if (parse_port(colon + 1, (size_t)(end - colon - 1), port) != 0)
                return -1;
        }
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0 || hl >= hostlen)
        return -1;
    for (size_t i = 0; i < hl; i++) {
        unsigned char ch = (unsigned char)hs[i];
        if (!(isalnum(ch) || ch == '.' || ch == '-' || ch == '_' || ch == ':' || ch == '*'))
            return -1;
    }
    memcpy(host, hs, hl);
    host[hl] = '\0';
    lower(host);
    /* '*' only as a leading "*." */
    const char *star = strchr(host, '*');
    if (star && (star != host || host[1] != '.' || strchr(host + 1, '*')))
        return -1;
    return 0;
}

static int parse_url(const char *u, size_t n, struct xv_route_rule *r)
{
    if (n >= sizeof r->url)
        return -1;
    memcpy(r->url, u, n);
    r->url[n] = '\0';
    size_t skip;
    if (n > 8 && strncasecmp(u, "https://", 8) == 0) {
        r->tls = 1;
        skip = 8;
    } else if (n > 7 && strncasecmp(u, "http://", 7) == 0) {
        r->tls = 0;
        skip = 7;
    } else {
        return -1;
    }
    const char *a = u + skip, *end = u + n;
    const char *slash = memchr(a, '/', (size_t)(end - a));
    const char *ae = slash ? slash : end;
    if (memchr(a, '@', (size_t)(ae - a)) || memchr(a, '?', (size_t)(end - a)) ||
        memchr(a, '#', (size_t)(end - a)))
        return -1; /* no userinfo, query or fragment in a gateway URL */
    if (split_hostport(a, (size_t)(ae - a), r->host, sizeof r->host, &r->port) != 0 ||
        strchr(r->host, '*'))
        return -1;
    if (!r->port)
        r->port = r->tls ? 443 : 80;
    size_t pl = slash ? (size_t)(end - slash) : 0;
    while (pl && slash[pl - 1] == '/')
        pl--;
    if (pl >= sizeof r->prefix)
        return -1;
    for (size_t i = 0; i < pl; i++)
        if ((unsigned char)slash[i] <= 0x20 || slash[i] == 0x7f)
            return -1;
    if (pl)
        memcpy(r->prefix, slash, pl);
    r->prefix[pl] = '\0';
    return 0;
}

static int fail(struct xv_route_config *out, char *err, size_t errlen, const char *fmt,
                const char *a, size_t alen)
{
    char piece[128];
    size_t k = alen < sizeof piece - 1 ? alen : sizeof piece - 1;
    memcpy(piece, a ? a : "", a ? k : 0);
    piece[a ? k : 0] = '\0';
    /* a value shown in a log line must not carry control bytes */
    for (char *p = piece; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
            *p = '?';
    if (err && errlen)
        snprintf(err, errlen, fmt, piece);
    out->n = 0;
    return XV_E_CONFIG;
}

/* Not start-up code: only a process with routing configured runs it (one
 * more page of code at its start; every other start's code stays within
 * its first window, issue 9). */
int xv_route_parse(const char *route, const char *proxy_id, const char *runtime_url,
                   const char *api_key, const char *ca_file, struct xv_route_config *out,
                   char *err, size_t errlen)
{
    /* Rules are zeroed one by one as they are filled: a process without
     * XENOVIA_ROUTE touches none of the table's 32 KiB (a static in bss). */
    out->n = 0;
    out->api_key[0] = '\0';
    out->ca_file[0] = '\0';
    if (err && errlen)
        err[0] = '\0';
    if (api_key && *api_key) {
        if (strlen(api_key) >= sizeof out->api_key || strpbrk(api_key, "\r\n"))
            return fail(out, err, errlen,
                        "XENOVIA_API_KEY is too long or has a line break: ignored%s", "", 0);
        snprintf(out->api_key, sizeof out->api_key, "%s", api_key);
    }
    if (ca_file && *ca_file) {
        if (strlen(ca_file) >= sizeof out->ca_file)
            return fail(out, err, errlen, "XENOVIA_CA_FILE is too long%s", "", 0);
        snprintf(out->ca_file, sizeof out->ca_file, "%s", ca_file);
    }
    if (route && *route) {
        const char *p = route;
        while (*p) {
            const char *comma = strchr(p, ',');
            size_t n = comma ? (size_t)(comma - p) : strlen(p);
            while (n && isspace((unsigned char)*p)) {
                p++;
                n--;
            }
            while (n && isspace((unsigned char)p[n - 1]))
                n--;
            if (n) {
                if (out->n == XV_ROUTE_MAX)
                    return fail(out, err, errlen,
                                "XENOVIA_ROUTE has more than 16 rules; the program runs unrouted%s",
                                "", 0);
                const char *eq = memchr(p, '=', n);
                struct xv_route_rule *r = &out->rule[out->n];
                memset(r, 0, sizeof *r);
                size_t hl = eq ? (size_t)(eq - p) : 0;
                while (hl && isspace((unsigned char)p[hl - 1]))
                    hl--;
                const char *u = eq ? eq + 1 : p;
                while (eq && u < p + n && isspace((unsigned char)*u))
                    u++;
                if (!eq || split_hostport(p, hl, r->match_host, sizeof r->match_host,
                                          &r->match_port) != 0)
                    return fail(out, err, errlen,
                                "XENOVIA_ROUTE: \"%s\" is not host[:port]=URL; the program runs "
                                "unrouted", p, n);
                if (parse_url(u, (size_t)(p + n - u), r) != 0)
                    return fail(out, err, errlen,
                                "XENOVIA_ROUTE: \"%s\" does not end in an http:// or https:// URL "
                                "(no user, query or fragment); the program runs unrouted", p, n);
                out->n++;
            }
            p += comma ? (size_t)(comma - p) + 1 : strlen(p);
        }
        return 0;
    }
    if (proxy_id && *proxy_id) {
        for (const char *q = proxy_id; *q; q++)
            if (!(isalnum((unsigned char)*q) || *q == '-' || *q == '_') || q - proxy_id > 128)
                return fail(out, err, errlen,
                            "XENOVIA_PROXY_ID \"%s\" is not a proxy id ([A-Za-z0-9_-]); the "
                            "program runs unrouted", proxy_id, strlen(proxy_id));
        const char *base = runtime_url && *runtime_url ? runtime_url : RUNTIME_DEFAULT;
        size_t bl = strlen(base);
        while (bl && base[bl - 1] == '/')
            bl--;
        char url[1024];
        if (snprintf(url, sizeof url, "%.*s/a/%s/openai", (int)bl, base, proxy_id) >=
            (int)sizeof url)
            return fail(out, err, errlen, "XENOVIA_RUNTIME_URL is too long%s", "", 0);
        struct xv_route_rule *r = &out->rule[0];
        memset(r, 0, sizeof *r);
        snprintf(r->match_host, sizeof r->match_host, "api.openai.com");
        if (parse_url(url, strlen(url), r) != 0)
            return fail(out, err, errlen,
                        "XENOVIA_RUNTIME_URL \"%s\" is not an http:// or https:// URL; the "
                        "program runs unrouted", base, bl);
        out->n = 1;
    }
    return 0;
}

static int host_matches(const char *pattern, const char *host)
{
    if (pattern[0] == '*' && pattern[1] == '.') {
        size_t pl = strlen(pattern + 1), hl = strlen(host);
        return hl > pl && strcasecmp(host + hl - pl, pattern + 1) == 0;
    }
    return strcasecmp(pattern, host) == 0;
}

int xv_route_add_local(struct xv_route_config *cfg, const char *host, int port, const char *what)
{
    if (cfg->n >= XV_ROUTE_MAX)
        return XV_E_LIMIT;
    if (!host || !*host || strlen(host) >= sizeof cfg->rule[0].match_host)
        return XV_E_CONFIG;
    struct xv_route_rule *r = &cfg->rule[cfg->n];
    memset(r, 0, sizeof *r);
    snprintf(r->match_host, sizeof r->match_host, "%s", host);
    lower(r->match_host);
    r->match_port = port;
    r->local = 1;
    snprintf(r->url, sizeof r->url, "%s", what ? what : "local");
    cfg->n++;
    return 0;
}

int xv_route_rule_covers(const struct xv_route_rule *r, const char *host)
{
    return r && host && host_matches(r->match_host, host);
}

const struct xv_route_rule *xv_route_match(const struct xv_route_config *cfg, const char *host,
                                           int port)
{
    if (!cfg || !host || !*host)
        return NULL;
    for (int i = 0; i < cfg->n; i++) {
        const struct xv_route_rule *r = &cfg->rule[i];
        if ((r->match_port == 0 || port == 0 || r->match_port == port) &&
            host_matches(r->match_host, host))
            return r;
    }
    return NULL;
}

static const struct xv_route_config *g_cfg XV_START_DATA; /* set once by the preload */

XV_START_FN void xv_route_configure(const struct xv_route_config *cfg)
{
    g_cfg = cfg;
}

const struct xv_route_config *xv_route_config(void)
{
    return g_cfg && g_cfg->n > 0 ? g_cfg : NULL;
}

void xv_route_sentinel(int rule, char out[16])
{
    snprintf(out, 16, "127.88.0.%u", (unsigned)(rule + 1) & 0xffu);
}

int xv_route_sentinel_rule(const struct sockaddr *sa, socklen_t len)
{
    const unsigned char *a = NULL;
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        a = (const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct in6_addr *v6 = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        if (!IN6_IS_ADDR_V4MAPPED(v6))
            return -1;
        a = v6->s6_addr + 12;
    } else {
        return -1;
    }
    if (a[0] != 127 || a[1] != 88 || a[2] != 0 || a[3] == 0 || a[3] > XV_ROUTE_MAX)
        return -1;
    const struct xv_route_config *cfg = xv_route_config();
    return cfg && a[3] - 1 < cfg->n ? a[3] - 1 : -1;
}
