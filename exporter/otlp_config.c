/*
 * otlp_config.c — the OTEL_EXPORTER_OTLP_* environment into an immutable,
 * refcounted struct xv_exp_otlp_cfg (SPEC §7, §10).
 *
 * Invariant: a config is never modified after xv_exp_otlp_cfg_from_env returns
 * it; whoever uses it holds a reference, so a re-init can replace the
 * published config while a pusher is still spooling with the old one.
 * Every bad value gets one stderr line naming the variable; OTLP is then
 * either used with the default for that value or (endpoint unusable) not
 * used at all, and the JSON Lines file takes the records.
 *
 * Thread safety: from_env reads the environment (xv_secure_getenv) and may
 * run on any thread; ref/unref are atomic.
 */
#include "otlp_int.h"
#include "xv_knobs.h"
#include "xv_place.h"

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

XV_START_FN static const char *env(const char *name)
{
    const char *v = xv_secure_getenv(name);
    return v && *v ? v : NULL;
}

/* Copy [p, p+n) trimmed of spaces/tabs and percent-decoded. */
XV_START_FN static char *decode(const char *p, size_t n)
{
    while (n && (*p == ' ' || *p == '\t'))
        p++, n--;
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    char *out = malloc(n + 1);
    if (out)
        xv_pct_decode(p, n, out, NULL, 0);   /* common/bytes.c; a stray '%' kept */
    return out;
}

XV_START_FN int xv_exp_otlp_parse_pairs(const char *s,
                                        int (*fn)(void *ud, const char *k, const char *v),
                                        void *ud)
{
    int rc = 0;
    while (s && *s) {
        const char *end = strchr(s, ',');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        const char *eq = memchr(s, '=', n);
        int blank = 1;
        for (size_t i = 0; i < n; i++)
            if (s[i] != ' ' && s[i] != '\t')
                blank = 0;
        if (!blank) {
            char *k = eq ? decode(s, (size_t)(eq - s)) : NULL;
            char *v = eq ? decode(eq + 1, n - (size_t)(eq - s) - 1) : NULL;
            if (!k || !v || !*k)
                rc = XV_E_PARSE;
            else if (fn(ud, k, v) < 0)
                rc = XV_E_PARSE;
            free(k);
            free(v);
        }
        if (!end)
            break;
        s = end + 1;
    }
    return rc;
}

/* ---- headers ---- */

struct hdr_ctx {
    struct xv_buf buf;             /* "k: v\r\n" lines */
    const char *var;               /* variable being parsed (for the log line) */
};

XV_START_FN static int is_tchar(int c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

XV_START_FN static int add_header(void *ud, const char *k, const char *v)
{
    struct hdr_ctx *h = ud;
    for (const char *p = k; *p; p++)
        if (!is_tchar((unsigned char)*p))
            goto bad;
    for (const char *p = v; *p; p++)
        if (*p == '\r' || *p == '\n')
            goto bad;
    /* Framing headers are ours to write. */
    if (!strcasecmp(k, "content-length") || !strcasecmp(k, "transfer-encoding") ||
        !strcasecmp(k, "host") || !strcasecmp(k, "connection") ||
        !strcasecmp(k, "content-encoding") || !strcasecmp(k, "content-type"))
        goto bad;
    if (xv_buf_appendf(&h->buf, "%s: %s\r\n", k, v) < 0)
        return XV_E_NOMEM;
    return 0;
bad:
    /* The value may be a credential: name the key, never print the value. */
    xv_log(XV_LOG_ERROR, "%s: header '%.64s' is not a valid or allowed HTTP header; it is "
           "not sent", h->var, k);
    return 0;
}

/* ---- resource attributes ---- */

struct res_ctx {
    struct xv_exp_otlp_cfg *c;
    char *service_from_res;        /* service.name found in OTEL_RESOURCE_ATTRIBUTES */
};

XV_START_FN static int add_res(void *ud, const char *k, const char *v)
{
    struct res_ctx *r = ud;
    if (!strcmp(k, "service.name")) {
        free(r->service_from_res);
        r->service_from_res = strdup(v);
        return 0;
    }
    if (r->c->nres >= 128)
        return 0;                  /* bounded: a resource is not a data store */
    struct xv_exp_otlp_kv *n = realloc(r->c->res, (r->c->nres + 1) * sizeof *n);
    if (!n)
        return XV_E_NOMEM;
    r->c->res = n;
    n[r->c->nres].key = strdup(k);
    n[r->c->nres].value = strdup(v);
    if (!n[r->c->nres].key || !n[r->c->nres].value) {
        free(n[r->c->nres].key);
        free(n[r->c->nres].value);
        return XV_E_NOMEM;
    }
    r->c->nres++;
    return 0;
}

/* ---- endpoint ---- */

/* Split "http://host[:port][/path]" into the config. `full`: the URL is
 * the traces URL itself; else "/v1/traces" is appended to its path.
 * Returns 0, XV_E_UNSUPPORTED (https) or XV_E_PARSE. */
XV_START_FN static int parse_endpoint(struct xv_exp_otlp_cfg *c, const char *url, int full)
{
    if (strlen(url) > 512)         /* keeps the request head within its buffer */
        return XV_E_PARSE;
    if (!strncasecmp(url, "https://", 8))
        c->tls = 1;
    else if (strncasecmp(url, "http://", 7))
        return XV_E_PARSE;
    const char *h = url + (c->tls ? 8 : 7);
    const char *slash = strchr(h, '/');
    size_t authlen = slash ? (size_t)(slash - h) : strlen(h);
    if (!authlen || memchr(h, '@', authlen) || memchr(h, '?', authlen))
        return XV_E_PARSE;
    const char *hs, *he, *ps = NULL;
    if (h[0] == '[') {             /* [v6]:port */
        const char *rb = memchr(h, ']', authlen);
        if (!rb)
            return XV_E_PARSE;
        hs = h + 1;
        he = rb;
        if (rb + 1 < h + authlen) {
            if (rb[1] != ':')
                return XV_E_PARSE;
            ps = rb + 2;
        }
    } else {
        hs = h;
        const char *colon = memchr(h, ':', authlen);
        he = colon ? colon : h + authlen;
        if (colon)
            ps = colon + 1;
    }
    if (he == hs)
        return XV_E_PARSE;
    size_t plen = ps ? (size_t)(h + authlen - ps) : 0;
    if (ps) {
        if (!plen || plen > 5)
            return XV_E_PARSE;
        for (size_t i = 0; i < plen; i++)
            if (!isdigit((unsigned char)ps[i]))
                return XV_E_PARSE;
        if (atoi(ps) < 1 || atoi(ps) > 65535)
            return XV_E_PARSE;
    }
    c->host = strndup(hs, (size_t)(he - hs));
    c->port = ps ? strndup(ps, plen) : strdup(c->tls ? "443" : "80");
    c->host_header = strndup(h, authlen);
    const char *path = slash ? slash : "";
    /* No fragment or whitespace on a request line. */
    for (const char *p = path; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '#')
            return XV_E_PARSE;
    if (full) {
        c->path = strdup(*path ? path : "/");
    } else {
        size_t n = strlen(path);
        while (n && path[n - 1] == '/')
            n--;
        c->path = malloc(n + sizeof "/v1/traces");
        if (c->path) {
            memcpy(c->path, path, n);
            memcpy(c->path + n, "/v1/traces", sizeof "/v1/traces");
        }
    }
    if (!c->host || !c->port || !c->host_header || !c->path)
        return XV_E_NOMEM;
    return 0;
}

/* $XENOVIA_SPOOL_DIR, $XDG_STATE_HOME/xenovia/spool (absolute only),
 * ~/.local/state/xenovia/spool; NULL when no home is known. */
XV_START_FN static char *spool_dir(void)
{
    const char *v = env("XENOVIA_SPOOL_DIR");
    if (v)
        return strdup(v);
    struct xv_buf b;
    xv_buf_init(&b, 8192);
    const char *xdg = env("XDG_STATE_HOME");
    const char *home = env("HOME");
    if (xdg && xdg[0] == '/') {
        xv_buf_appendf(&b, "%s/xenovia/spool", xdg);
    } else if (home && home[0] == '/') {
        xv_buf_appendf(&b, "%s/.local/state/xenovia/spool", home);
    } else {
        struct passwd pw, *res = NULL;
        char pbuf[4096];
        if (getpwuid_r(getuid(), &pw, pbuf, sizeof pbuf, &res) == 0 && res && res->pw_dir &&
            res->pw_dir[0] == '/')
            xv_buf_appendf(&b, "%s/.local/state/xenovia/spool", res->pw_dir);
    }
    size_t n;
    return xv_buf_steal(&b, &n);
}

/* process.executable.name: the base name of /proc/self/exe's target, as
 * the conventions ask on Linux; else the program's short name. */
XV_START_FN static char *exe_name(void)
{
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n > 0) {
        buf[n] = '\0';
        /* " (deleted)" when the file was replaced since exec: still its name */
        const char *b = strrchr(buf, '/');
        return strdup(b ? b + 1 : buf);
    }
    extern char *program_invocation_short_name;
    const char *p = program_invocation_short_name;
    return p && *p ? strdup(p) : NULL;
}

/* The GenAI conventions make message content opt-in: on when
 * OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT is true, or when
 * XENOVIA_CAPTURE_CONTENT is explicitly on (the trace file's default
 * capture alone does not send content to a collector). */
XV_START_FN static int capture_content(void)
{
    /* XENOVIA_CAPTURE_CONTENT's bad values are reported by the agent's config */
    const char *x = env("XENOVIA_CAPTURE_CONTENT");
    uint64_t on = 0, o = 0;
    if (x && xv_knob_check(&xv_knobs[XV_KNOB_CAPTURE_CONTENT], x, &on) == 0 && on)
        return 1;
    return xv_knob_get_num(XV_KNOB_OTLP_CAPTURE_CONTENT, &o) > 0 && o;   /* false|true */
}

XV_START_FN static const char *first_set(const char *a, const char *b)
{
    return env(a) ? a : b;
}

XV_START_FN struct xv_exp_otlp_cfg *xv_exp_otlp_cfg_from_env(void)
{
    const char *full = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    const char *base = env("OTEL_EXPORTER_OTLP_ENDPOINT");
    if (!full && !base)
        return NULL;
    struct xv_exp_otlp_cfg *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    atomic_init(&c->refs, 1);
    const char *var = full ? "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" : "OTEL_EXPORTER_OTLP_ENDPOINT";
    int rc = parse_endpoint(c, full ? full : base, full != NULL);
    if (rc < 0) {
        /* A URL with userinfo or a query may carry a credential: not echoed. */
        const char *u = full ? full : base;
        int quiet = strchr(u, '@') || strchr(u, '?');
        xv_log(XV_LOG_ERROR, "%s%s%.200s is not an http(s)://host[:port][/path] URL; traces go "
               "to the JSON Lines file", var, quiet ? "" : "=", quiet ? "" : u);
        xv_exp_otlp_cfg_unref(c);
        return NULL;
    }
    const char *why = "";
    if (c->tls && !xv_exp_otlp_tls_available(&why)) {
        /* The agent links no TLS library; https needs the system's libssl.so.3. */
        xv_log(XV_LOG_ERROR, "%s: https:// needs libssl.so.3, which could not be loaded "
               "(%.120s); traces go to the JSON Lines file", var, why);
        xv_exp_otlp_cfg_unref(c);
        return NULL;
    }
    const char *cav = first_set("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
                                "OTEL_EXPORTER_OTLP_CERTIFICATE");
    if (c->tls && env(cav)) {
        if (access(env(cav), R_OK) != 0)
            xv_log(XV_LOG_ERROR, "%s=%.200s is not a readable PEM file; the collector's "
                   "certificate cannot be verified and nothing will be sent (spans are spooled)",
                   cav, env(cav));
        c->ca_file = strdup(env(cav));
    }

    /* Values, ranges and defaults: common/xv_knobs.def (one line per bad value). */
    uint64_t n;
    xv_knob_get_num(env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                        ? XV_KNOB_OTLP_TRACES_PROTOCOL : XV_KNOB_OTLP_PROTOCOL, &n);
    c->proto = n == 1 ? XV_OTLP_JSON : XV_OTLP_PROTOBUF;   /* http/protobuf|http/json */

    xv_knob_get_num(env("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION")
                        ? XV_KNOB_OTLP_TRACES_COMPRESSION : XV_KNOB_OTLP_COMPRESSION, &n);
    c->gzip = n == 1;                                        /* none|gzip */
    xv_knob_get_num(env("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
                        ? XV_KNOB_OTLP_TRACES_TIMEOUT : XV_KNOB_OTLP_TIMEOUT, &n);
    c->timeout_ms = n;

    /* Generic headers first, then the traces-specific ones (both sent). */
    struct hdr_ctx h;
    xv_buf_init(&h.buf, 65536);
    xv_buf_append(&h.buf, "", 0);
    const char *hv[2] = { "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS" };
    for (int i = 0; i < 2; i++) {
        h.var = hv[i];
        if (env(hv[i]) && xv_exp_otlp_parse_pairs(env(hv[i]), add_header, &h) < 0)
            xv_log(XV_LOG_ERROR, "%s: expected key=value pairs separated by commas "
                   "(percent-encoded); malformed members are not sent", hv[i]);
    }
    size_t hl;
    c->headers = xv_buf_steal(&h.buf, &hl);

    struct res_ctx r = { .c = c };
    const char *ra = env("OTEL_RESOURCE_ATTRIBUTES");
    if (ra && xv_exp_otlp_parse_pairs(ra, add_res, &r) < 0)
        xv_log(XV_LOG_ERROR, "OTEL_RESOURCE_ATTRIBUTES: expected key=value pairs separated "
               "by commas (percent-encoded); malformed members are ignored");
    c->exe_name = exe_name();
    const char *sn = env("OTEL_SERVICE_NAME");
    if (sn) {
        c->service_name = strdup(sn);
        free(r.service_from_res);
    } else if (r.service_from_res) {
        c->service_name = r.service_from_res;
    } else {
        /* The SDK specification's fallback: unknown_service:<executable>. */
        struct xv_buf sb;
        xv_buf_init(&sb, 4096);
        if (c->exe_name)
            xv_buf_appendf(&sb, "unknown_service:%s", c->exe_name);
        else
            xv_buf_appendf(&sb, "unknown_service");
        size_t sl;
        c->service_name = xv_buf_steal(&sb, &sl);
    }
    c->capture_content = capture_content();

    c->spool_dir = spool_dir();
    xv_knob_get_num(XV_KNOB_SPOOL_MAX_MB, &n);
    c->spool_max = n << 20;
    if (!c->spool_dir || !*c->spool_dir) {
        free(c->spool_dir);
        c->spool_dir = NULL;
        xv_log(XV_LOG_WARN, "no OTLP spool directory (HOME unknown); set XENOVIA_SPOOL_DIR, "
               "or spans that cannot be sent are lost");
    }
    if (!c->headers || !c->service_name) {
        xv_exp_otlp_cfg_unref(c);
        return NULL;
    }
    return c;
}

struct xv_exp_otlp_cfg *xv_exp_otlp_cfg_ref(struct xv_exp_otlp_cfg *c)
{
    if (c)
        atomic_fetch_add(&c->refs, 1);
    return c;
}

XV_EXIT_FN void xv_exp_otlp_cfg_unref(struct xv_exp_otlp_cfg *c)
{
    if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    free(c->host);
    free(c->port);
    free(c->host_header);
    free(c->path);
    free(c->ca_file);
    free(c->headers);
    free(c->service_name);
    free(c->exe_name);
    for (size_t i = 0; i < c->nres; i++) {
        free(c->res[i].key);
        free(c->res[i].value);
    }
    free(c->res);
    free(c->spool_dir);
    free(c);
}
