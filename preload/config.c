/*
 * config.c — environment variables into struct xv_config (SPEC §10).
 * Every name, range, spelling and default comes from common/xv_knobs.def
 * (read through xv_knob_get_*), the table `xenovia run`, `--help` and the
 * README are made from: the agent accepts exactly what they say.
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
#include "xv_knobs.h"
#include "xv_session.h"

/* A text knob's value (NULL when unset or empty); only names declared in
 * common/xv_knobs.def can be read. */
XV_START_FN static const char *env(enum xv_knob_id id)
{
    return xv_knob_get_text(id);
}

XV_START_FN static const char *env_copy(enum xv_knob_id id)
{
    const char *v = env(id);
    return v ? strdup(v) : NULL;
}

/* A number, on/off switch or one-word choice, checked against its row in
 * common/xv_knobs.def (range, spellings, default): a bad value gets one
 * line and the default. Returns 1 for a bad value, else 0. */
XV_START_FN static int knob_num(enum xv_knob_id id, uint64_t *out)
{
    return xv_knob_get_num(id, out) < 0;
}

XV_START_FN static int knob_int(enum xv_knob_id id, int *out)
{
    uint64_t n;
    int bad = knob_num(id, &n);
    *out = (int)n;
    return bad;
}

/* A header value from the environment (a LINE knob: it goes on the wire
 * as is): a bad one is reported, without echoing it, and not sent. */
XV_START_FN static const char *env_header_value(enum xv_knob_id id, int *bad)
{
    const struct xv_knob *k = &xv_knobs[id];
    const char *v = env(id);
    if (!v)
        return NULL;
    if (xv_knob_check(k, v, NULL) != 0) {
        char want[160];
        xv_knob_expect(k, want, sizeof want);
        xv_log(XV_LOG_ERROR, "%s: expected %s; ignored", xv_knob_env(k), want);
        (*bad)++;
        return NULL;
    }
    return strdup(v);
}

/* Policy settings (SPEC §5). The policy itself is compiled by init.c. */
XV_START_FN static int load_policy_knobs(struct xv_config *cfg)
{
    int bad = 0;
    uint64_t n;
    cfg->policy_path = env_copy(XV_KNOB_POLICY);
    bad += knob_int(XV_KNOB_POLICY_MODE, &cfg->policy_monitor);      /* enforce|monitor */
    bad += knob_int(XV_KNOB_FAIL_MODE, &cfg->fail_open);             /* closed|open */
    bad += knob_int(XV_KNOB_STREAM_POLICY, &cfg->stream_buffer);     /* observe|buffer */
    bad += knob_num(XV_KNOB_POLICY_TIMEOUT_MS, &n);
    cfg->policy_timeout_ms = n;
    return bad;
}

/* Session and header settings (SPEC §3, §4) and the injected lines. */
XV_START_FN static int load_session(struct xv_config *cfg)
{
    int bad = 0;
    char err[256];
    const char *sid = env(XV_KNOB_SESSION_ID);
    if (sid) {
        if (xv_session_env_id_check(sid, err, sizeof err) == 0) {
            cfg->session_id = strdup(sid);
        } else {
            xv_log(XV_LOG_ERROR, "%s", err);
            bad++;
        }
    }
    cfg->session_path = env_header_value(XV_KNOB_SESSION_PATH, &bad);
    cfg->flow_id = env_header_value(XV_KNOB_FLOW_ID, &bad);
    cfg->parent_trace_id = env_header_value(XV_KNOB_PARENT_TRACE_ID, &bad);
    const char *props = env(XV_KNOB_PROPERTIES);
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
    size_t n = 0, cap = (cfg->session_path != NULL) + (cfg->props ? cfg->props->n : 0) +
                        (cfg->flow_id != NULL) + (cfg->parent_trace_id != NULL);
    if (!cap)
        return bad; /* no lines: nothing allocated (a start that allocates
                       nothing does not set up the heap, issue 9) */
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
static int g_replay_recorded XV_START_DATA; /* XENOVIA_REPLAY_TIMING=recorded (read once at init) */

XV_START_FN static int load_cassette(struct xv_config *cfg)
{
    const char *path = env(XV_KNOB_CASSETTE);
    int bad = 0, mode, timing;
    /* the choice's index in once|new_episodes|none|all is enum xv_cassette_mode */
    _Static_assert(XV_CASSETTE_ONCE == 0 && XV_CASSETTE_NEW_EPISODES == 1 &&
                   XV_CASSETTE_NONE == 2 && XV_CASSETTE_ALL == 3, "xv_knobs.def order");
    bad += knob_int(XV_KNOB_RECORD_MODE, &mode);
    bad += knob_int(XV_KNOB_REPLAY_TIMING, &timing);  /* fast|recorded */
    g_replay_recorded = timing == 1;
    if (!path)
        return bad;
    char err[512];
    /* unset: the default list; set (even empty, via the raw getenv): the user's */
    const char *ignore = getenv(xv_knob_env(&xv_knobs[XV_KNOB_CASSETTE_IGNORE]));
    cfg->cassette = xv_cassette_open(path, mode, ignore, err, sizeof err);
    if (!cfg->cassette) {
        xv_log(XV_LOG_ERROR, "XENOVIA_CASSETTE: %s; calls are neither recorded nor replayed", err);
        return bad + 1;
    }
    if (err[0])
        xv_log(XV_LOG_WARN, "%s", err);
    return bad;
}

XV_START_FN static int load_routes(struct xv_config *cfg)
{
    static struct xv_route_config routes XV_LARGE_BSS;
    char err[300];
    int bad = 0;
    const char *route = env(XV_KNOB_ROUTE), *proxy_id = env(XV_KNOB_PROXY_ID),
               *runtime = env(XV_KNOB_RUNTIME_URL), *api_key = env(XV_KNOB_API_KEY),
               *ca_file = env(XV_KNOB_CA_FILE);
    int replay = cfg->cassette && xv_cassette_replay_only(cfg->cassette);
    /* Nothing to route: the table is left unconfigured (route/ reads that as
     * "no rule") and its page untouched (issue 9). */
    if (!route && !proxy_id && !runtime && !api_key && !ca_file && !replay)
        return 0;
    if (xv_route_parse(route, proxy_id, runtime, api_key, ca_file, &routes, err,
                       sizeof err) != 0) {
        xv_log(XV_LOG_ERROR, "%s", err);
        bad = 1;
    }
    if (routes.n > 0 && proxy_id && !route && !routes.api_key[0])
        xv_log(XV_LOG_WARN, "XENOVIA_PROXY_ID is set without XENOVIA_API_KEY: the runtime will "
               "see the program's own credential");
    if (replay) {
        xv_route_set_replay(xv_conn_cassette_wire, g_replay_recorded);
        /* replay without network (SPEC §8.1): the hosts the cassette holds are
         * answered in-process; their connections never leave it */
        char what[300];
        snprintf(what, sizeof what, "cassette %s", env(XV_KNOB_CASSETTE));
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

XV_START_FN int xv_config_load(struct xv_config *cfg)
{
    int bad = 0;
    uint64_t n;
    memset(cfg, 0, sizeof *cfg);

    /* first, so that its own lines follow the level asked for */
    bad += knob_int(XV_KNOB_LOG_LEVEL, &cfg->log_level);  /* index = enum xv_log_level */
    xv_log_set_level(cfg->log_level);

    bad += knob_int(XV_KNOB_DISABLE, &cfg->disabled);
    cfg->trace_file = env_copy(XV_KNOB_TRACE_FILE);
    cfg->hosts = env_copy(XV_KNOB_HOSTS);
    bad += knob_num(XV_KNOB_CAPTURE_MAX_BYTES, &n);
    cfg->capture_max = (size_t)n;
    bad += knob_int(XV_KNOB_CAPTURE_CONTENT, &cfg->capture_content);
    bad += knob_num(XV_KNOB_BODY_MAX_BYTES, &n);
    cfg->body_max = (size_t)n;
    /* Decompression bombs (issue 7 class 5): past either bound a gzip/deflate
     * body is passed through uninspected (docs/http.md). */
    bad += knob_num(XV_KNOB_INFLATE_MAX_BYTES, &n);
    cfg->inflate_max = n;
    bad += knob_num(XV_KNOB_INFLATE_MAX_RATIO, &n);
    cfg->inflate_ratio = (unsigned)n;
    xv_http_set_inflate_limits(cfg->inflate_max, cfg->inflate_ratio);
    bad += knob_num(XV_KNOB_EXPORT_TIMEOUT_MS, &n);
    cfg->export_timeout_ms = n;
    cfg->agent_id = env_copy(XV_KNOB_AGENT_ID);
    cfg->org_id = env_copy(XV_KNOB_ORG_ID);
    bad += knob_int(XV_KNOB_STAMP, &cfg->stamp);
    bad += knob_num(XV_KNOB_SESSION_MAX, &n);
    cfg->session_max = (size_t)n;
    bad += load_session(cfg);
    bad += load_policy_knobs(cfg);
    bad += load_cassette(cfg);
    bad += load_routes(cfg);
    return bad;
}
