/*
 * otlp.c — the OTLP output of the exporter thread (SPEC §7): records in,
 * OTLP/HTTP requests out; what cannot be delivered goes to the disk spool,
 * which is replayed once the collector answers again.
 *
 * Per thread batch: spans are encoded into requests of at most
 * XV_OTLP_REQ_SPANS_MAX spans / ~XV_OTLP_REQ_SOFT_MAX bytes. Each request
 * gets a budget of OTEL_EXPORTER_OTLP_TIMEOUT for all its attempts:
 * connection errors, 429 and 5xx are retried with exponential backoff and
 * jitter (or after Retry-After seconds when the collector says so); when
 * the budget would be exceeded the request is spooled, and the sink goes
 * "down" for a while (1 s doubling to 30 s): requests are spooled without
 * trying, so a dead collector costs one budget, not one per batch. Other
 * 4xx answers are final (the request is dropped and counted, logged once).
 * After any delivered request the spool is replayed (one attempt per file).
 *
 * Invariants: every span handed in ends up sent, spooled or counted as
 * dropped; no wait outlives the hurry deadline set by xv_exp_shutdown;
 * the network is only used by the exporter thread (the direct path only
 * spools). Thread safety: g_otlp.mu guards the config pointer (held only
 * to take a reference); counters are atomics; down-state and replay
 * bookkeeping are the exporter thread's alone.
 */
#include "otlp_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define DOWN_MIN_MS 1000u
#define DOWN_MAX_MS 30000u
#define BACKOFF_MIN_MS 100u
#define BACKOFF_MAX_MS 5000u
#define REPLAY_FILES_PER_ROUND 4096u
#define REPLAY_ROUND_NS 1000000000u  /* a replay round yields to new records after 1 s */
#define SPOOL_READ_MAX ((size_t)64 << 20)

static struct {
    pthread_mutex_t mu;            /* guards cfg */
    struct xv_exp_otlp_cfg *cfg;   /* published config (owned ref), NULL: OTLP off */
    _Atomic uint64_t hurry_ns;     /* 0, or the shutdown deadline (mono ns) */
    atomic_int replay_pending;     /* the spool may hold files to replay */
    /* exporter thread only */
    char last_err[96];             /* why the last attempt failed (for the log line) */
    uint64_t down_until_ns;        /* spool without trying until then (mono ns) */
    uint64_t down_ms;              /* next down period */
    uint64_t rng;                  /* jitter state */
    /* counters (spans) */
    atomic_uint_fast64_t sent, spooled, replayed, dropped;
    /* once-per-process log flags */
    atomic_int logged_final, logged_spool, logged_encode, logged_down;
} g_otlp XV_START_DATA = { .mu = PTHREAD_MUTEX_INITIALIZER };

static struct xv_exp_otlp_cfg *cfg_get(void)
{
    pthread_mutex_lock(&g_otlp.mu);
    struct xv_exp_otlp_cfg *c = xv_exp_otlp_cfg_ref(g_otlp.cfg);
    pthread_mutex_unlock(&g_otlp.mu);
    return c;
}

XV_START_FN int xv_exp_otlp_configure(void)
{
    struct xv_exp_otlp_cfg *c = xv_exp_otlp_cfg_from_env();
    pthread_mutex_lock(&g_otlp.mu);
    struct xv_exp_otlp_cfg *old = g_otlp.cfg;
    g_otlp.cfg = c;
    pthread_mutex_unlock(&g_otlp.mu);
    xv_exp_otlp_cfg_unref(old);
    atomic_store(&g_otlp.hurry_ns, 0);
    atomic_store(&g_otlp.replay_pending, 1);   /* a previous process may have left some */
    g_otlp.down_until_ns = 0;
    g_otlp.down_ms = DOWN_MIN_MS;
    atomic_store(&g_otlp.sent, 0);
    atomic_store(&g_otlp.spooled, 0);
    atomic_store(&g_otlp.replayed, 0);
    atomic_store(&g_otlp.dropped, 0);
    return c != NULL;
}

void xv_exp_otlp_hurry(uint64_t deadline_ns)
{
    atomic_store(&g_otlp.hurry_ns, deadline_ns ? deadline_ns : 1);
}

uint64_t xv_exp_otlp_hurry_begin(uint64_t deadline_ns)
{
    uint64_t none = 0;
    if (!deadline_ns)
        deadline_ns = 1;
    return atomic_compare_exchange_strong(&g_otlp.hurry_ns, &none, deadline_ns) ? deadline_ns : 0;
}

void xv_exp_otlp_hurry_end(uint64_t token)
{
    if (token)
        atomic_compare_exchange_strong(&g_otlp.hurry_ns, &token, 0);
}

uint64_t xv_exp_otlp_cap_deadline(uint64_t d)
{
    uint64_t h = atomic_load(&g_otlp.hurry_ns);
    return h && h < d ? h : d;
}

/* The shutdown deadline has passed: no more network, spool the rest. */
static int hurried(void)
{
    uint64_t h = atomic_load(&g_otlp.hurry_ns);
    return h && xv_now_mono_ns() >= h;
}

void xv_exp_otlp_atfork_child(void)
{
    pthread_mutex_init(&g_otlp.mu, NULL);
    xv_exp_otlp_span_map_reset();
    atomic_store(&g_otlp.hurry_ns, 0);
    g_otlp.down_until_ns = 0;
    g_otlp.down_ms = DOWN_MIN_MS;
    g_otlp.rng = 0;
    atomic_store(&g_otlp.sent, 0);
    atomic_store(&g_otlp.spooled, 0);
    atomic_store(&g_otlp.replayed, 0);
    atomic_store(&g_otlp.dropped, 0);
}

void xv_exp_otlp_stats(uint64_t *sent, uint64_t *spooled, uint64_t *replayed, uint64_t *dropped)
{
    *sent = atomic_load(&g_otlp.sent);
    *spooled = atomic_load(&g_otlp.spooled);
    *replayed = atomic_load(&g_otlp.replayed);
    *dropped = atomic_load(&g_otlp.dropped);
}

/* ---- sending ---- */

enum send_result { SENT, FINAL, GAVE_UP };

static uint64_t jitter_ms(uint64_t base)
{
    if (!g_otlp.rng && getrandom(&g_otlp.rng, sizeof g_otlp.rng, GRND_NONBLOCK) != sizeof g_otlp.rng)
        g_otlp.rng = xv_now_mono_ns() | 1;
    g_otlp.rng ^= g_otlp.rng << 13;
    g_otlp.rng ^= g_otlp.rng >> 7;
    g_otlp.rng ^= g_otlp.rng << 17;
    /* "equal jitter": between half and all of the backoff */
    return base / 2 + g_otlp.rng % (base / 2 + 1);
}

/* Sleep until `until_ns` unless the hurry deadline comes first; returns 0
 * when slept fully, -1 when hurried. */
static int sleep_until(uint64_t until_ns)
{
    for (;;) {
        uint64_t now = xv_now_mono_ns();
        uint64_t h = atomic_load(&g_otlp.hurry_ns);
        if (h && now >= h)
            return -1;
        if (now >= until_ns)
            return 0;
        uint64_t d = until_ns - now;
        if (d > 50000000u)
            d = 50000000u;           /* 50 ms slices: notice a shutdown */
        struct timespec ts = { 0, (long)d };
        nanosleep(&ts, NULL);
    }
}

static const char *ctype(enum xv_exp_otlp_proto p)
{
    return p == XV_OTLP_JSON ? "application/json" : "application/x-protobuf";
}

/* Deliver one request body: attempts until sent, a final answer, or the
 * budget (and the hurry deadline) runs out. `retry` 0: one attempt. */
static enum send_result send_body(const struct xv_exp_otlp_cfg *cfg, enum xv_exp_otlp_proto proto,
                                  const char *body, size_t len, int retry, int *final_status)
{
    char *gz = NULL;
    size_t gzlen = 0;
    if (cfg->gzip && xv_exp_otlp_gzip(body, len, &gz, &gzlen) < 0)
        gz = NULL;                   /* could not compress: send it plain */
    uint64_t deadline = xv_now_mono_ns() + cfg->timeout_ms * 1000000u;
    uint64_t backoff = BACKOFF_MIN_MS;
    enum send_result res = GAVE_UP;
    for (;;) {
        uint64_t dl = xv_exp_otlp_cap_deadline(deadline);
        if (xv_now_mono_ns() >= dl)
            break;
        struct xv_exp_otlp_resp resp;
        int rc = xv_exp_otlp_http_post(cfg, ctype(proto), gz ? gz : body, gz ? gzlen : len,
                                       gz != NULL, dl, &resp);
        if (rc == 0 && resp.status >= 200 && resp.status < 300) {
            res = SENT;
            break;
        }
        if (rc == 0 && resp.status != 429 && (resp.status < 500 || resp.status > 599)) {
            *final_status = resp.status;
            res = FINAL;
            break;
        }
        if (rc == 0)
            snprintf(g_otlp.last_err, sizeof g_otlp.last_err, "HTTP %d", resp.status);
        else
            snprintf(g_otlp.last_err, sizeof g_otlp.last_err, "%s", xv_strerror(rc));
        if (!retry)
            break;
        uint64_t wait = rc == 0 && resp.retry_after_s >= 0 ? (uint64_t)resp.retry_after_s * 1000u
                                                            : jitter_ms(backoff);
        uint64_t until = xv_now_mono_ns() + wait * 1000000u;
        if (until >= xv_exp_otlp_cap_deadline(deadline))
            break;                   /* would not fit in the budget: spool now */
        if (sleep_until(until) < 0)
            break;
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    free(gz);
    return res;
}

static void count_dropped(size_t nspans, const char *why)
{
    atomic_fetch_add(&g_otlp.dropped, nspans);
    if (atomic_exchange(&g_otlp.logged_final, 1) == 0)
        xv_log(XV_LOG_ERROR, "OTLP: %zu span(s) dropped: %s (further drops are only counted)",
               nspans, why);
}

static int spool(const struct xv_exp_otlp_cfg *cfg, enum xv_exp_otlp_proto proto, const char *body,
                 size_t len, size_t nspans)
{
    uint64_t capped = 0;
    int rc = xv_exp_otlp_spool_write(cfg->spool_dir, proto, body, len, nspans, cfg->spool_max,
                                     &capped);
    if (capped) {
        atomic_fetch_add(&g_otlp.dropped, capped);
        xv_log(XV_LOG_WARN, "OTLP spool %s over its limit: %llu oldest span(s) dropped",
               cfg->spool_dir, (unsigned long long)capped);
    }
    if (rc < 0) {
        atomic_fetch_add(&g_otlp.dropped, nspans);
        if (atomic_exchange(&g_otlp.logged_spool, 1) == 0)
            xv_log(XV_LOG_ERROR, "OTLP spool %s: %s; %zu span(s) lost (set XENOVIA_SPOOL_DIR "
                   "to a writable directory)", cfg->spool_dir ? cfg->spool_dir : "(none)",
                   xv_strerror(rc), nspans);
        return rc;
    }
    atomic_fetch_add(&g_otlp.spooled, nspans);
    atomic_store(&g_otlp.replay_pending, 1);
    return 0;
}

/* Replay spooled requests, oldest first, one attempt each, until the spool
 * is empty, an attempt fails, a shutdown hurries us, or the round has
 * taken REPLAY_ROUND_NS (new records wait in the ring meanwhile). Files are claimed
 * REPLAY_CLAIM at a time (one directory scan each); claims not tried are
 * given back. */
#define REPLAY_CLAIM 16u
static void replay(const struct xv_exp_otlp_cfg *cfg)
{
    struct xv_exp_otlp_claim *cl = malloc(REPLAY_CLAIM * sizeof *cl);
    if (!cl)
        return;
    unsigned files = 0;
    int stop = 0;
    uint64_t until = xv_now_mono_ns() + REPLAY_ROUND_NS;
    while (!stop && files < REPLAY_FILES_PER_ROUND && xv_now_mono_ns() < until) {
        if (hurried() || !atomic_load(&g_otlp.replay_pending))
            break;
        int got = xv_exp_otlp_spool_claim_many(cfg->spool_dir, cl, REPLAY_CLAIM);
        if (got <= 0) {
            if (got == 0)
                atomic_store(&g_otlp.replay_pending, 0);
            break;
        }
        for (int i = 0; i < got; i++) {
            if (stop || hurried()) {
                xv_exp_otlp_spool_release(&cl[i]);
                stop = 1;
                continue;
            }
            files++;
            char *body;
            size_t len;
            if (xv_exp_otlp_spool_read(&cl[i], SPOOL_READ_MAX, &body, &len) < 0) {
                xv_exp_otlp_spool_done(&cl[i]);     /* unreadable: would never succeed */
                count_dropped(cl[i].nspans, "unreadable spool file");
                continue;
            }
            int status = 0;
            enum send_result res = send_body(cfg, cl[i].proto, body, len, 0, &status);
            free(body);
            if (res == SENT) {
                xv_exp_otlp_spool_done(&cl[i]);
                atomic_fetch_add(&g_otlp.replayed, cl[i].nspans);
            } else if (res == FINAL) {
                xv_exp_otlp_spool_done(&cl[i]);
                count_dropped(cl[i].nspans, "the collector refused a spooled request");
            } else {
                xv_exp_otlp_spool_release(&cl[i]);
                stop = 1;
            }
        }
    }
    free(cl);
}

/* One request's worth of spans: send (thread) or spool. Returns spans
 * delivered or spooled. */
static size_t deliver(const struct xv_exp_otlp_cfg *cfg, struct xv_exp_otlp_batch *b, int network)
{
    size_t n = b->nspans;
    char *body;
    size_t len;
    if (xv_exp_otlp_encode_request(cfg, b, &body, &len) < 0) {
        count_dropped(n, "out of memory while encoding");
        return 0;
    }
    size_t ok = 0;
    uint64_t now = xv_now_mono_ns();
    if (network && !hurried() && now >= g_otlp.down_until_ns) {
        int status = 0;
        enum send_result res = send_body(cfg, cfg->proto, body, len, 1, &status);
        if (res == SENT) {
            atomic_fetch_add(&g_otlp.sent, n);
            if (g_otlp.down_until_ns)
                xv_log(XV_LOG_INFO, "OTLP collector %s:%s reachable again", cfg->host, cfg->port);
            g_otlp.down_until_ns = 0;
            g_otlp.down_ms = DOWN_MIN_MS;
            atomic_store(&g_otlp.logged_down, 0);
            free(body);
            replay(cfg);
            return n;
        }
        if (res == FINAL) {
            char why[96];
            snprintf(why, sizeof why, "the collector answered HTTP %d (not retryable)", status);
            count_dropped(n, why);
            free(body);
            return 0;
        }
        if (!hurried()) {
            /* Gave up within the budget: stop trying for a while. */
            g_otlp.down_until_ns = xv_now_mono_ns() + g_otlp.down_ms * 1000000u;
            g_otlp.down_ms = g_otlp.down_ms * 2 > DOWN_MAX_MS ? DOWN_MAX_MS : g_otlp.down_ms * 2;
            if (atomic_exchange(&g_otlp.logged_down, 1) == 0)
                xv_log(XV_LOG_WARN, "OTLP collector %s:%s not reachable within %llu ms (%s); "
                       "spooling to %s", cfg->host, cfg->port,
                       (unsigned long long)cfg->timeout_ms, g_otlp.last_err,
                       cfg->spool_dir ? cfg->spool_dir : "(none)");
        }
    }
    if (spool(cfg, cfg->proto, body, len, n) == 0)
        ok = n;
    free(body);
    return ok;
}

static size_t run(cJSON *const *recs, size_t n, int network)
{
    struct xv_exp_otlp_cfg *cfg = cfg_get();
    if (!cfg)
        return 0;
    struct xv_exp_otlp_batch b;
    /* Room for a full request plus one span of the maximum size. */
    xv_buf_init(&b.frags, XV_OTLP_REQ_SOFT_MAX + XV_OTLP_SPAN_MAX + 64);
    b.nspans = 0;
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = xv_exp_otlp_encode_span(cfg->proto, cfg->capture_content, recs[i], &b);
        if (rc > 0) {
            ok++;                  /* no span of its own (a tool result): done */
            continue;
        }
        if (rc < 0) {
            atomic_fetch_add(&g_otlp.dropped, 1);
            if (atomic_exchange(&g_otlp.logged_encode, 1) == 0)
                xv_log(XV_LOG_ERROR, "OTLP: a record could not be encoded as a span (%s); "
                       "it is dropped", xv_strerror(rc));
            continue;
        }
        if (b.frags.len >= XV_OTLP_REQ_SOFT_MAX || b.nspans >= XV_OTLP_REQ_SPANS_MAX) {
            ok += deliver(cfg, &b, network);
            xv_buf_reset(&b.frags);
            b.nspans = 0;
        }
    }
    if (b.nspans)
        ok += deliver(cfg, &b, network);
    xv_buf_free(&b.frags);
    xv_exp_otlp_cfg_unref(cfg);
    return ok;
}

size_t xv_exp_otlp_export(cJSON *const *recs, size_t n)
{
    return run(recs, n, 1);
}

size_t xv_exp_otlp_spool_records(cJSON *const *recs, size_t n)
{
    return run(recs, n, 0);
}
