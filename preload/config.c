/*
 * config.c — environment variables into struct xv_config (SPEC §10).
 * Runs once, inside once-init, before any hook is active; may allocate.
 */
#include "xv_preload.h"
#include "xv_cassette.h"
#include "xv_conn.h"
#include "xv_route.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xv_common.h"
#include "xv_http.h"
#include "xv_session.h"

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return (v && *v) ? v : NULL;
}

static const char *env_copy(const char *name)
{
    const char *v = env(name);
    return v ? strdup(v) : NULL;
}

/* Unsigned number with an upper bound; bad → default and one line. */
static int env_size(const char *name, uint64_t def, uint64_t min, uint64_t max, uint64_t *out)
{
    const char *v = env(name);
    *out = def;
    if (!v)
        return 0;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || *end || end == v || v[0] == '-' || n < min || n > max) {
        xv_log(XV_LOG_ERROR, "%s=%s is not a number between %llu and %llu; using %llu",
               name, v, (unsigned long long)min, (unsigned long long)max,
               (unsigned long long)def);
        return 1;
    }
    *out = n;
    return 0;
}

/* on/off switch; bad → default and one line. */
static int env_bool(const char *name, int def, int *out)
{
    const char *v = env(name);
    *out = def;
    if (!v)
        return 0;
    if (!strcasecmp(v, "on") || !strcasecmp(v, "1") || !strcasecmp(v, "true") ||
        !strcasecmp(v, "yes")) {
        *out = 1;
        return 0;
    }
    if (!strcasecmp(v, "off") || !strcasecmp(v, "0") || !strcasecmp(v, "false") ||
        !strcasecmp(v, "no")) {
        *out = 0;
        return 0;
    }
    xv_log(XV_LOG_ERROR, "%s=%s: expected on or off; using %s", name, v, def ? "on" : "off");
    return 1;
}

/* A header value from the environment: printable, no CR/LF (it goes on the
 * wire as is), at most `max` bytes. */
static const char *env_header_value(const char *name, size_t max, int *bad)
{
    const char *v = env(name);
    if (!v)
        return NULL;
    size_t n = strlen(v);
    int ok = n <= max;
    for (size_t i = 0; ok && i < n; i++)
        if ((unsigned char)v[i] < 0x20 && v[i] != '\t')
            ok = 0;
    if (!ok) {
        xv_log(XV_LOG_ERROR, "%s: must be at most %zu bytes without control characters; ignored",
               name, max);
        (*bad)++;
        return NULL;
    }
    return strdup(v);
}

/* One of two words; bad → default and one line. */
static int env_choice(const char *name, const char *a, const char *b, int *is_b)
{
    const char *v = env(name);
    *is_b = 0;
    if (!v || !strcasecmp(v, a))
        return 0;
    if (!strcasecmp(v, b)) {
        *is_b = 1;
        return 0;
    }
    xv_log(XV_LOG_ERROR, "%s=%s: expected %s or %s; using %s", name, v, a, b, a);
    return 1;
}

/* Policy settings (SPEC §5). The policy itself is compiled by init.c. */
static int load_policy_knobs(struct xv_config *cfg)
{
    int bad = 0;
    uint64_t n;
    cfg->policy_path = env_copy("XENOVIA_POLICY");
    bad += env_choice("XENOVIA_POLICY_MODE", "enforce", "monitor", &cfg->policy_monitor);
    bad += env_choice("XENOVIA_FAIL_MODE", "closed", "open", &cfg->fail_open);
    bad += env_choice("XENOVIA_STREAM_POLICY", "observe", "buffer", &cfg->stream_buffer);
    bad += env_size("XENOVIA_POLICY_TIMEOUT_MS", 200, 1, 60000, &n);
    cfg->policy_timeout_ms = n;
    return bad;
}

/* Session and header settings (SPEC §3, §4) and the injected lines. */
static int load_session(struct xv_config *cfg)
{
    int bad = 0;
    char err[256];
    const char *sid = env("XENOVIA_SESSION_ID");
    if (sid) {
        if (xv_session_env_id_check(sid, err, sizeof err) == 0) {
            cfg->session_id = strdup(sid);
        } else {
            xv_log(XV_LOG_ERROR, "%s", err);
            bad++;
        }
    }
    cfg->session_path = env_header_value("XENOVIA_SESSION_PATH", 512, &bad);
    cfg->flow_id = env_header_value("XENOVIA_FLOW_ID", 120, &bad);
    cfg->parent_trace_id = env_header_value("XENOVIA_PARENT_TRACE_ID", 120, &bad);
    const char *props = env("XENOVIA_PROPERTIES");
    if (props) {
        struct xv_session_props *p = malloc(sizeof *p);
        if (p && xv_session_props_parse(props, p, err, sizeof err) == 0) {
            cfg->props = p;
        } else {
            if (p)
                xv_log(XV_LOG_ERROR, "%s", err);
            free(p);
            bad++;
        }
    }
    /* The lines every inspected request gets (unless it has its own). */
    size_t n = 0, cap = 4 + (cfg->props ? cfg->props->n : 0);
    const char **lines = calloc(cap + 1, sizeof *lines);
    if (!lines)
        return bad;
    struct xv_buf b;
    if (cfg->session_path) {
        xv_buf_init(&b, 1024);
        if (xv_buf_appendf(&b, "X-Xenovia-Session-Path: %s\r\n", cfg->session_path) == 0)
            lines[n++] = xv_buf_steal(&b, NULL);
        xv_buf_free(&b);
    }
    for (size_t i = 0; cfg->props && i < cfg->props->n; i++) {
        xv_buf_init(&b, 2048);
        if (xv_buf_appendf(&b, "X-Xenovia-Property-%s: %s\r\n", cfg->props->p[i].key,
                           cfg->props->p[i].value) == 0)
            lines[n++] = xv_buf_steal(&b, NULL);
        xv_buf_free(&b);
    }
    if (cfg->flow_id) {
        xv_buf_init(&b, 256);
        if (xv_buf_appendf(&b, "X-Xenovia-Trace-Flow-Id: %s\r\n", cfg->flow_id) == 0)
            lines[n++] = xv_buf_steal(&b, NULL);
        xv_buf_free(&b);
    }
    if (cfg->parent_trace_id) {
        xv_buf_init(&b, 256);
        if (xv_buf_appendf(&b, "X-Xenovia-Parent-Trace-Id: %s\r\n", cfg->parent_trace_id) == 0)
            lines[n++] = xv_buf_steal(&b, NULL);
        xv_buf_free(&b);
    }
    lines[n] = NULL;
    cfg->inject_lines = lines;
    return bad;
}

/* SPEC §8: XENOVIA_ROUTE / XENOVIA_PROXY_ID (+ XENOVIA_RUNTIME_URL,
 * XENOVIA_API_KEY, XENOVIA_CA_FILE). A bad value gets one line and the
 * program runs unrouted. The configuration lives for the process. */
/* SPEC §8.1: XENOVIA_CASSETTE (+ XENOVIA_RECORD_MODE, XENOVIA_CASSETTE_IGNORE,
 * XENOVIA_REPLAY_TIMING). The cassette is opened (its recordings loaded)
 * here; a bad value or an unreadable cassette gets one line and the program
 * runs without it. */
static int g_replay_recorded; /* XENOVIA_REPLAY_TIMING=recorded (read once at init) */

static int load_cassette(struct xv_config *cfg)
{
    const char *path = env("XENOVIA_CASSETTE");
    int bad = 0, mode = XV_CASSETTE_ONCE;
    const char *m = env("XENOVIA_RECORD_MODE");
    if (m && xv_cassette_mode_parse(m, &mode) != 0) {
        xv_log(XV_LOG_ERROR, "XENOVIA_RECORD_MODE=%s: want once, new_episodes, none or all; "
               "using once", m);
        mode = XV_CASSETTE_ONCE;
        bad++;
    }
    const char *t = env("XENOVIA_REPLAY_TIMING");
    if (t && strcmp(t, "fast") != 0 && strcmp(t, "recorded") != 0) {
        xv_log(XV_LOG_ERROR, "XENOVIA_REPLAY_TIMING=%s: want fast or recorded; using fast", t);
        bad++;
    }
    g_replay_recorded = t && strcmp(t, "recorded") == 0;
    if (!path)
        return bad;
    char err[512];
    /* unset: the default list; set (even empty, via the raw getenv): the user's */
    const char *ignore = getenv("XENOVIA_CASSETTE_IGNORE");
    cfg->cassette = xv_cassette_open(path, mode, ignore, err, sizeof err);
    if (!cfg->cassette) {
        xv_log(XV_LOG_ERROR, "XENOVIA_CASSETTE: %s; calls are neither recorded nor replayed", err);
        return bad + 1;
    }
    if (err[0])
        xv_log(XV_LOG_WARN, "%s", err);
    return bad;
}

static int load_routes(struct xv_config *cfg)
{
    static struct xv_route_config routes;
    char err[300];
    int bad = 0;
    if (xv_route_parse(env("XENOVIA_ROUTE"), env("XENOVIA_PROXY_ID"), env("XENOVIA_RUNTIME_URL"),
                       env("XENOVIA_API_KEY"), env("XENOVIA_CA_FILE"), &routes, err,
                       sizeof err) != 0) {
        xv_log(XV_LOG_ERROR, "%s", err);
        bad = 1;
    }
    if (routes.n > 0 && env("XENOVIA_PROXY_ID") && !env("XENOVIA_ROUTE") && !routes.api_key[0])
        xv_log(XV_LOG_WARN, "XENOVIA_PROXY_ID is set without XENOVIA_API_KEY: the runtime will "
               "see the program's own credential");
    if (cfg->cassette && xv_cassette_replay_only(cfg->cassette)) {
        xv_route_set_replay(xv_conn_cassette_wire, g_replay_recorded);
        /* replay without network (SPEC §8.1): the hosts the cassette holds are
         * answered in-process; their connections never leave it */
        char what[300];
        snprintf(what, sizeof what, "cassette %s", env("XENOVIA_CASSETTE"));
        int port;
        const char *h;
        for (size_t i = 0; (h = xv_cassette_host(cfg->cassette, i, &port)) != NULL; i++)
            if (xv_route_add_local(&routes, h, port, what) == XV_E_LIMIT) {
                xv_log(XV_LOG_WARN, "XENOVIA_CASSETTE: more than %d hosts; the rest may need "
                       "the network", XV_ROUTE_MAX);
                break;
            }
    }
    xv_route_configure(&routes);
    return bad;
}

int xv_config_load(struct xv_config *cfg)
{
    int bad = 0;
    uint64_t n;
    memset(cfg, 0, sizeof *cfg);

    const char *lvl = env("XENOVIA_LOG_LEVEL");
    cfg->log_level = XV_LOG_WARN;
    if (lvl) {
        static const char *names[] = { "error", "warn", "info", "debug" };
        int found = -1;
        for (int i = 0; i < 4; i++)
            if (!strcasecmp(lvl, names[i]))
                found = i;
        if (found < 0) {
            xv_log(XV_LOG_ERROR, "XENOVIA_LOG_LEVEL=%s: expected error, warn, info or debug; using warn", lvl);
            bad++;
        } else {
            cfg->log_level = found;
        }
    }
    xv_log_set_level(cfg->log_level);

    bad += env_bool("XENOVIA_DISABLE", 0, &cfg->disabled);
    cfg->trace_file = env_copy("XENOVIA_TRACE_FILE");
    cfg->hosts = env_copy("XENOVIA_HOSTS");
    bad += env_size("XENOVIA_CAPTURE_MAX_BYTES", 16384, 0, 1u << 30, &n);
    cfg->capture_max = (size_t)n;
    bad += env_bool("XENOVIA_CAPTURE_CONTENT", 1, &cfg->capture_content);
    bad += env_size("XENOVIA_BODY_MAX_BYTES", 32u << 20, 4096, 1u << 30, &n);
    cfg->body_max = (size_t)n;
    /* Decompression bombs (issue 7 class 5): past either bound a gzip/deflate
     * body is passed through uninspected (docs/http.md). */
    bad += env_size("XENOVIA_INFLATE_MAX_BYTES", XV_HTTP_INFLATE_DEFAULT_MAX_BYTES, 0,
                    1ull << 40, &n);
    cfg->inflate_max = n;
    bad += env_size("XENOVIA_INFLATE_MAX_RATIO", XV_HTTP_INFLATE_DEFAULT_MAX_RATIO, 0, 100000, &n);
    cfg->inflate_ratio = (unsigned)n;
    xv_http_set_inflate_limits(cfg->inflate_max, cfg->inflate_ratio);
    bad += env_size("XENOVIA_EXPORT_TIMEOUT_MS", 2000, 0, 600000, &n);
    cfg->export_timeout_ms = n;
    cfg->agent_id = env_copy("XENOVIA_AGENT_ID");
    cfg->org_id = env_copy("XENOVIA_ORG_ID");
    bad += env_bool("XENOVIA_STAMP", 1, &cfg->stamp);
    bad += env_size("XENOVIA_SESSION_MAX", XV_SESSION_DEFAULT_MAX, 16, 1u << 22, &n);
    cfg->session_max = (size_t)n;
    bad += load_session(cfg);
    bad += load_policy_knobs(cfg);
    bad += load_cassette(cfg);
    bad += load_routes(cfg);
    return bad;
}
