/*
 * conn.c — the connection state machine (see xv_conn.h for the model).
 *
 * Invariant kept here: the bytes the app reads are exactly the bytes read
 * from the transport, in order, except for one stamped header line inserted
 * before the blank line of an inspected response's header block. Whenever
 * something goes wrong (parse error, allocation failure) the connection
 * turns passthrough, whatever was held is released unchanged, and open
 * calls are recorded with `error`.
 *
 * Thread safety: every entry point takes c->mu; the real read callback is
 * invoked with c->mu released, so a blocking read never blocks another
 * thread writing on the same connection.
 */
#include "xv_conn_int.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>
#include <unistd.h>

#include "xv_exporter.h"

/* Room kept free in the app's buffer while a held head may be completed, so
 * the stamped head plus what follows it fits without a leftover queue. */
#define STAMP_RESERVE 256
/* Base bound of the RX output queue: beyond what the agent itself may hold
 * (a whole held response, its rebuild, a held head), room for one read.
 * xv_conn_rx raises it to fit the app's buffer: a read of several MB (a
 * warm keep-alive socket's grown receive buffer) behind a stamped head must
 * never be cut (issue 7 class 3: the tail of such a read was dropped). */
#define OUT_MAX (1u << 20)
#define OUT_BOUND (2 * xv_conn_cfg.hold_max + 2 * xv_conn_cfg.head_max + OUT_MAX)

/* Registry of live connections (for xv_conn_end_all at exit).
 * Written under g_reg.mu by new/unref; read at exit. */
static struct {
    pthread_mutex_t mu;
    struct xv_conn *head;
    atomic_int used; /* a connection was ever registered */
} g_reg XV_CALL_DATA = { PTHREAD_MUTEX_INITIALIZER, NULL, 0 }; /* read at every exit */

void xv_conn_reg_lock(void)
{
    pthread_mutex_lock(&g_reg.mu);
}

void xv_conn_reg_unlock(void)
{
    pthread_mutex_unlock(&g_reg.mu);
}

struct xv_conn *xv_conn_reg_head(void)
{
    return g_reg.head;
}

/* Configuration; written once by xv_conn_configure before any connection. */
struct xv_conn_config xv_conn_cfg = {
    .body_max = 32u << 20, .capture_max = 16384, .capture_content = 1, .head_max = 65536,
    .hold_max = 32u << 20, .write_timeout_ms = 30000,
};

int xv_conn_head_copy_except(struct xv_buf *dst, const char *h, size_t n,
                             const char *const *drop)
{
    size_t pos = 0;
    int rc = 0;
    while (pos < n && !rc) {
        const char *le = memchr(h + pos, '\n', n - pos);
        size_t e = le ? (size_t)(le - h) + 1 : n;
        int keep = 1;
        for (size_t i = 0; drop[i] && keep; i++) {
            size_t dl = strlen(drop[i]);
            keep = !(e - pos > dl && !strncasecmp(h + pos, drop[i], dl));
        }
        if (keep)
            rc = xv_buf_append(dst, h + pos, e - pos);
        pos = e;
    }
    return rc;
}

/* Unlock after RX work, keeping the held count right. */
static void rx_unlock(struct xv_conn *c)
{
    xv_conn_out_track(c);
    pthread_mutex_unlock(&c->mu);
}

/* Counters; atomics so any thread may bump them. */
static atomic_uint_fast64_t g_stats[4] XV_CALL_DATA;

void xv_conn_stat_add(int which)
{
    atomic_fetch_add(&g_stats[which], 1);
}

void xv_conn_get_stats(struct xv_conn_stats *out)
{
    out->calls = atomic_load(&g_stats[XV_STAT_CALLS]);
    out->records = atomic_load(&g_stats[XV_STAT_RECORDS]);
    out->stamped = atomic_load(&g_stats[XV_STAT_STAMPED]);
    out->pass = atomic_load(&g_stats[XV_STAT_PASS]);
}

XV_START_FN void xv_conn_configure(const struct xv_conn_config *cfg)
{
    xv_conn_cfg = *cfg;
    xv_conn_policy_configure();
}

const struct xv_conn_config *xv_conn_get_config(void)
{
    return &xv_conn_cfg;
}

/* ---- parser callbacks: responses (RX) --------------------------------- */

/* The call the next response answers (oldest without a finished response). */
struct xv_call *xv_conn_front_call(struct xv_conn *c)
{
    return c->calls;
}

/* One freed call kept for the next request (lock-free: an atomic slot).
 * A call is ~3 KB, a "large" chunk for malloc: allocating one while small
 * chunks sat in the fast bins (cJSON frees them on every call) made glibc
 * consolidate the fast bins on every request (issue 9: ~5 % of the agent's
 * CPU per call). Holds at most one call; never freed (process lifetime). */
static _Atomic(struct xv_call *) g_spare_call XV_CALL_DATA;

struct xv_call *xv_conn_call_alloc(void)
{
    struct xv_call *call = atomic_exchange_explicit(&g_spare_call, NULL, memory_order_acquire);
    if (!call)
        return calloc(1, sizeof *call);
    memset(call, 0, offsetof(struct xv_call, convo)); /* reused: the tail made empty */
    call->convo.valid = 0;
#define XV_CALL_TEXT_EMPTY(m) call->m[0] = '\0';
    XV_CALL_TEXT(XV_CALL_TEXT_EMPTY)
#undef XV_CALL_TEXT_EMPTY
    return call;
}

void xv_conn_call_free(struct xv_call *call)
{
    if (call->api)
        xv_openai_call_free(call->api);
    if (call->props_own) {
        xv_session_props_free(call->props_own);
        free(call->props_own);
    }
    if (call->headers_v)
        xv_val_decref(call->headers_v);
    xv_conn_policy_call_free(call);
    free(call->answer);
    if (call->steps)
        xv_session_tool_steps_free(call->steps, call->nsteps);
    xv_conn_cassette_free(call->cas);
    struct xv_call *none = NULL;
    if (!atomic_compare_exchange_strong_explicit(&g_spare_call, &none, call, memory_order_release,
                                                 memory_order_relaxed))
        free(call);
}

/* Remove the oldest call, record it if inspected, free it. */
void xv_conn_pop_call(struct xv_conn *c, const char *error)
{
    struct xv_call *call = c->calls;
    if (!call)
        return;
    c->calls = call->next;
    if (c->tx_call == call)
        c->tx_call = NULL; /* answered before its request was fully written */
    if (call->api) {
        if (error)
            xv_openai_call_response_end(call->api, error, xv_now_mono_ns());
        xv_conn_record_emit(c, call, error);
    }
    xv_conn_call_free(call);
    /* A pipelined call the agent answers itself gets its answer only now
     * that every response before it was handed over (in order). */
    if (!error && c->calls && c->calls->answer)
        c->answer_ready = 1;
}

void xv_conn_answer_deliver(struct xv_conn *c)
{
    struct xv_call *call = c->calls;
    c->answer_ready = 0;
    if (!call || !call->answer)
        return;
    char *a = call->answer;
    size_t n = call->answer_len;
    call->answer = NULL;
    struct xv_call *tx = c->tx_call;
    c->tx_call = call; /* the call answered is the front one now: delivered at once */
    xv_conn_answer(c, a, n);
    c->tx_call = tx;
    free(a);
}

/* Does anything read the body of the response to `call` (an inspected call,
 * a cassette)? Else it is framed only, never inflated, and read unparsed. */
static int body_wanted(const struct xv_call *call)
{
    return call && (call->api || call->cas);
}

static int resp_on_head(void *ud, const struct xv_http_head *h)
{
    struct xv_conn *c = ud;
    struct xv_call *call = xv_conn_front_call(c);
    c->rx_head_status = h->status;
    c->rx_head_has_trace = xv_http_head_find(h, "x-xenovia-trace-id") != NULL;
    c->rx_stamp = 0;
    c->rx_nostamp = 0; /* the head that was handed over unheld is complete */
    if (h->status >= 100 && h->status < 200 && h->status != 101) {
        /* Interim response: handed over as is; the real head follows. */
        c->rx_head_done = 1;
        return c->rx_in_head ? XV_HTTP_PAUSE : XV_HTTP_OK;
    }
    if (!body_wanted(call))
        xv_http_parser_frame_only(c->resp); /* nothing reads that body: no inflating it */
    if (call) {
        call->response_started = 1;
        if (call->api) {
            const struct xv_http_header *ct = xv_http_head_find(h, "content-type");
            xv_openai_call_response_head(call->api, h->status, ct ? ct->value : NULL,
                                         ct ? ct->value_len : 0, xv_now_mono_ns());
            if (call->cas)
                xv_conn_cassette_head(call, h);
            /* A synthetic answer carries the agent's own ids: not an upstream's. */
            const struct xv_http_header *ut =
                call->synthetic ? NULL : xv_http_head_find(h, "x-xenovia-trace-id");
            if (ut) {
                size_t n = ut->value_len < sizeof call->upstream_trace_id - 1
                               ? ut->value_len : sizeof call->upstream_trace_id - 1;
                n = xv_utf8_cut(ut->value, ut->value_len, n); /* whole characters */
                memcpy(call->upstream_trace_id, ut->value, n);
                call->upstream_trace_id[n] = '\0';
            }
            if (h->content_encoding == XV_HTTP_CE_OTHER)
                xv_openai_call_set_error(call->api, "response content-encoding not supported; body not inspected");
            const struct xv_http_header *us =
                call->synthetic ? NULL : xv_http_head_find(h, "x-xenovia-session-id");
            if (us) {
                size_t n = us->value_len < sizeof call->upstream_session_id - 1
                               ? us->value_len : sizeof call->upstream_session_id - 1;
                n = xv_utf8_cut(us->value, us->value_len, n);
                memcpy(call->upstream_session_id, us->value, n);
                call->upstream_session_id[n] = '\0';
            }
            /* Decide the stamp now: a message without body is recorded
             * (on_end) before feed returns to the caller that splices. An
             * upstream's own values (a Xenovia runtime) are kept. */
            c->rx_stamp_id[0] = '\0';
            c->rx_stamp_session[0] = '\0';
            if (c->rx_in_head) {
                if (!c->rx_head_has_trace)
                    memcpy(c->rx_stamp_id, call->trace_id, sizeof c->rx_stamp_id);
                if (!us && call->session_id[0])
                    memcpy(c->rx_stamp_session, call->session_id, sizeof c->rx_stamp_session);
                c->rx_stamp = c->rx_stamp_id[0] || c->rx_stamp_session[0];
                call->stamped = c->rx_stamp_id[0] != '\0';
                /* SPEC §5 response stage in enforce mode: hold the whole
                 * response (streams only with XENOVIA_STREAM_POLICY=buffer). */
                c->resp_holding = xv_conn_cfg.policy && !xv_conn_cfg.policy_monitor &&
                                  h->status >= 200 && h->status < 300 && !h->no_body &&
                                  h->content_encoding != XV_HTTP_CE_OTHER &&
                                  (!xv_openai_call_stream(call->api) || xv_conn_cfg.stream_buffer);
                xv_buf_reset(&c->resp_hold);
                xv_buf_reset(&c->resp_body);
            }
        }
    }
    c->rx_head_done = 1;
    return c->rx_in_head ? XV_HTTP_PAUSE : XV_HTTP_OK;
}

static void resp_on_body(void *ud, const char *p, size_t n)
{
    struct xv_conn *c = ud;
    struct xv_call *call = xv_conn_front_call(c);
    if (call && call->response_started && call->api) {
        xv_openai_call_response_body(call->api, p, n, xv_now_mono_ns());
        if (call->cas)
            xv_conn_cassette_body(call, p, n);
        if (c->resp_holding && xv_buf_append(&c->resp_body, p, n) != 0)
            xv_buf_reset(&c->resp_body); /* too big to rewrite: block still works */
    }
}

static void resp_on_end(void *ud)
{
    struct xv_conn *c = ud;
    struct xv_call *call = xv_conn_front_call(c);
    if (!call || !call->response_started)
        return; /* end of an interim (1xx) response */
    if (call->api)
        xv_openai_call_response_end(call->api, NULL, xv_now_mono_ns());
    if (call->cas)
        xv_conn_cassette_end(call, NULL);
    if (c->resp_holding) {
        /* decided and recorded once the feed's bytes are in resp_hold */
        c->resp_end_pending = 1;
        return;
    }
    xv_conn_pop_call(c, NULL);
}

static void resp_on_error(void *ud, const char *why)
{
    struct xv_conn *c = ud;
    xv_conn_to_pass(c, why);
}

static void resp_on_raw(void *ud, const char *p, size_t n)
{
    struct xv_conn *c = ud;
    struct xv_call *call = xv_conn_front_call(c);
    if (call && call->cas && call->response_started)
        xv_conn_cassette_raw(call, p, n);
}

const struct xv_http_callbacks xv_conn_resp_cb = {
    .on_head = resp_on_head, .on_body = resp_on_body, .on_end = resp_on_end, .on_error = resp_on_error,
    .on_raw = resp_on_raw,
};

/* ---- lifecycle --------------------------------------------------------- */

struct xv_conn *xv_conn_new(int kind, const struct xv_conn_peer *peer)
{
    struct xv_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    pthread_mutex_init(&c->mu, NULL);
    atomic_init(&c->refs, 1);
    atomic_init(&c->mode, XV_CONN_UNDECIDED);
    c->kind = kind;
    c->wire_fd = -1;
    c->hint_fd = -1;
    if (peer) {
        c->peer = *peer;
        atomic_init(&c->peer_known, peer->port != 0);
    }
    xv_buf_init(&c->out, OUT_BOUND);
    xv_buf_init(&c->tx_out, xv_conn_cfg.hold_max + 2 * xv_conn_cfg.head_max + 65536);
    xv_buf_init(&c->tx_owed, xv_conn_cfg.hold_max + 2 * xv_conn_cfg.head_max + 65536);
    xv_buf_init(&c->hold, xv_conn_cfg.head_max + 1024);
    xv_buf_init(&c->tx_hold, xv_conn_cfg.hold_max + xv_conn_cfg.head_max);
    xv_buf_init(&c->resp_hold, xv_conn_cfg.hold_max + xv_conn_cfg.head_max + 1024);
    xv_buf_init(&c->resp_body, xv_conn_cfg.hold_max);
    pthread_mutex_lock(&g_reg.mu);
    atomic_store_explicit(&g_reg.used, 1, memory_order_relaxed);
    c->reg_next = g_reg.head;
    if (g_reg.head)
        g_reg.head->reg_prev = c;
    g_reg.head = c;
    pthread_mutex_unlock(&g_reg.mu);
    return c;
}

void xv_conn_ref(struct xv_conn *c)
{
    atomic_fetch_add(&c->refs, 1);
}

static void end_locked(struct xv_conn *c, const char *why)
{
    if (c->ended)
        return;
    c->ended = 1;
    c->end_reason = why; /* a parse error the end provokes is reported as this */
    xv_conn_lean_settle(c);
    if (c->resp && c->calls) {
        /* A close-delimited body ends here legitimately; the parser knows. */
        xv_http_parser_eof(c->resp);
    }
    while (c->calls)
        xv_conn_pop_call(c, why);
}

void xv_conn_unref(struct xv_conn *c)
{
    if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    pthread_mutex_lock(&g_reg.mu);
    if (c->reg_prev)
        c->reg_prev->reg_next = c->reg_next;
    else
        g_reg.head = c->reg_next;
    if (c->reg_next)
        c->reg_next->reg_prev = c->reg_prev;
    pthread_mutex_unlock(&g_reg.mu);
    pthread_mutex_lock(&c->mu);
    end_locked(c, "connection closed before the response completed");
    xv_buf_reset(&c->out);
    c->out_off = 0;
    xv_conn_out_track(c);
    xv_buf_reset(&c->tx_out);
    xv_conn_tx_track(c);
    pthread_mutex_unlock(&c->mu);
    if (c->req)
        xv_http_parser_free(c->req);
    if (c->resp)
        xv_http_parser_free(c->resp);
    xv_buf_free(&c->out);
    xv_buf_free(&c->tx_out);
    xv_buf_free(&c->tx_owed);
    xv_buf_free(&c->hold);
    xv_buf_free(&c->tx_hold);
    xv_buf_free(&c->resp_hold);
    xv_buf_free(&c->resp_body);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void xv_conn_end(struct xv_conn *c, const char *why)
{
    pthread_mutex_lock(&c->mu);
    end_locked(c, why);
    pthread_mutex_unlock(&c->mu);
}

XV_EXIT_FN void xv_conn_end_all(const char *why)
{
    /* At exit: other threads may still run, so take each connection's lock;
     * trylock on the registry so a thread killed while holding it cannot
     * block exit. A process that never had a connection takes no lock (a
     * page of libc's code its exit would not otherwise touch, issue 9). */
    if (!atomic_load_explicit(&g_reg.used, memory_order_relaxed) ||
        pthread_mutex_trylock(&g_reg.mu) != 0)
        return;
    for (struct xv_conn *c = g_reg.head; c; c = c->reg_next) {
        if (pthread_mutex_trylock(&c->mu) != 0)
            continue;
        end_locked(c, why);
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_unlock(&g_reg.mu);
}

/* The lazily made session store. `store` is written once, under `mu`;
 * read without the lock through an atomic load. A fork holds `mu` from
 * prepare to parent/child, so the store the prepare handler locked is the
 * one the other handlers unlock (TSan found the old pthread_once version
 * unlocking a store another thread had created during the fork). */
static struct {
    pthread_mutex_t mu;                 /* guards creation; held across fork() */
    struct xv_session_store *store;     /* atomic loads/stores; NULL until made */
    struct xv_session_store *forking;   /* what atfork_prepare locked (forking thread) */
    int tried;                          /* under mu: one attempt, as pthread_once did (here,
                                           not in .bss: a page read, then copied on write) */
} g_store XV_CALL_DATA = { PTHREAD_MUTEX_INITIALIZER, NULL, NULL, 0 };

static void store_make(void)
{
    struct xv_session_config sc = {
        .max_sessions = xv_conn_cfg.session_max,
        .keep_tool_args = xv_conn_cfg.capture_content,
    };
    struct xv_session_store *st = xv_session_store_new(&sc);
    if (!st)
        xv_log(XV_LOG_ERROR, "session store could not be created; every call gets a new session");
    __atomic_store_n(&g_store.store, st, __ATOMIC_RELEASE);
}

struct xv_session_store *xv_conn_sessions(void)
{
    if (xv_conn_cfg.sessions)
        return xv_conn_cfg.sessions;
    if (!xv_conn_cfg.session_max)
        return NULL;
    struct xv_session_store *st = __atomic_load_n(&g_store.store, __ATOMIC_ACQUIRE);
    if (st)
        return st;
    pthread_mutex_lock(&g_store.mu);
    if (!g_store.tried) {
        g_store.tried = 1;
        store_make();
    }
    pthread_mutex_unlock(&g_store.mu);
    return __atomic_load_n(&g_store.store, __ATOMIC_ACQUIRE);
}

void xv_conn_atfork_prepare(void)
{
    pthread_mutex_lock(&g_store.mu);
    struct xv_session_store *s = xv_conn_cfg.sessions ? xv_conn_cfg.sessions
                                                      : __atomic_load_n(&g_store.store, __ATOMIC_ACQUIRE);
    g_store.forking = s;
    if (s)
        xv_session_store_atfork_prepare(s);
}

void xv_conn_atfork_parent(void)
{
    struct xv_session_store *s = g_store.forking;
    g_store.forking = NULL;
    if (s)
        xv_session_store_atfork_parent(s);
    pthread_mutex_unlock(&g_store.mu);
}

/* This process's pid for records, read once: getpid() was the one extra
 * system call per call (issue 9). Reset in the fork child. */
static atomic_int g_pid XV_CALL_DATA;

int xv_conn_pid(void)
{
    int p = atomic_load_explicit(&g_pid, memory_order_relaxed);
    if (!p) {
        p = (int)getpid();
        atomic_store_explicit(&g_pid, p, memory_order_relaxed);
    }
    return p;
}

void xv_conn_atfork_child(void)
{
    atomic_store_explicit(&g_pid, 0, memory_order_relaxed);
    struct xv_session_store *s = g_store.forking;
    g_store.forking = NULL;
    if (s)
        xv_session_store_atfork_child(s);
    pthread_mutex_init(&g_store.mu, NULL);
    /* Only the forking thread exists here: every lock may be held by a
     * thread that is gone. Calls open at the fork belong to the parent
     * (which records them); the child drops its copies without recording,
     * and a connection caught mid-call is left alone for good (its state is
     * the parent's). An idle inherited connection stays usable. */
    pthread_mutex_init(&g_reg.mu, NULL);
    /* Queued request bytes are the parent's to send: the child's readiness
     * hooks must never write them a second time. */
    atomic_store(&xv_conn_tx_pending_n, 0);
    for (struct xv_conn *c = g_reg.head; c; c = c->reg_next) {
        pthread_mutex_init(&c->mu, NULL);
        xv_buf_reset(&c->tx_out);
        xv_buf_reset(&c->tx_owed); /* a retry in the child is its own write, as */
        atomic_store(&c->tx_owing, 0); /* without the agent */
        c->tx_busy = 0;
        atomic_store(&c->tx_counted, 0);
        if (!c->calls && !c->hold.len && !c->tx_hold.len && !c->out.len)
            continue;
        while (c->calls) {
            struct xv_call *next = c->calls->next;
            xv_conn_call_free(c->calls);
            c->calls = next;
        }
        c->tx_call = NULL;
        xv_buf_reset(&c->hold);
        xv_buf_reset(&c->tx_hold);
        atomic_store(&c->mode, XV_CONN_PASS);
    }
}

void xv_conn_set_host(struct xv_conn *c, const char *host)
{
    pthread_mutex_lock(&c->mu);
    snprintf(c->peer.host, sizeof c->peer.host, "%s", host);
    pthread_mutex_unlock(&c->mu);
}

void xv_conn_set_peer(struct xv_conn *c, const struct xv_conn_peer *peer)
{
    pthread_mutex_lock(&c->mu);
    char host[sizeof c->peer.host];
    memcpy(host, c->peer.host, sizeof host);
    c->peer = *peer;
    if (host[0]) /* a name learned from SNI beats one from DNS */
        memcpy(c->peer.host, host, sizeof host);
    if (c->peer.port)
        atomic_store(&c->peer_known, 1);
    pthread_mutex_unlock(&c->mu);
}

void xv_conn_get_peer(struct xv_conn *c, struct xv_conn_peer *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->peer;
    pthread_mutex_unlock(&c->mu);
}

/* Give up on a connection: release held bytes unchanged, record open calls. */
void xv_conn_to_pass(struct xv_conn *c, const char *why)
{
    if (atomic_load(&c->mode) == XV_CONN_PASS)
        return;
    atomic_store(&c->mode, XV_CONN_PASS);
    xv_conn_stat_add(XV_STAT_PASS);
    if (c->resp_hold.len) {
        if (xv_buf_append(&c->out, c->resp_hold.data, c->resp_hold.len) != 0)
            xv_log(XV_LOG_ERROR, "internal: could not release held bytes");
        xv_buf_reset(&c->resp_hold);
    }
    c->resp_holding = 0;
    c->resp_end_pending = 0;
    if (c->hold.len) {
        if (xv_buf_append(&c->out, c->hold.data, c->hold.len) != 0)
            xv_log(XV_LOG_ERROR, "internal: could not release held bytes");
        xv_buf_reset(&c->hold);
    }
    c->rx_in_head = 0;
    xv_conn_out_track(c);
    char msg[160];
    if (c->end_reason)
        xv_utf8_snprintf(msg, sizeof msg, "%s", c->end_reason);
    else
        xv_utf8_snprintf(msg, sizeof msg, "malformed HTTP: %s", why ? why : "unknown");
    while (c->calls)
        xv_conn_pop_call(c, msg);
}

/* ---- RX ----------------------------------------------------------------- */

/* Will the next response bytes start a header block we must hold? */
static int want_hold(struct xv_conn *c)
{
    if (atomic_load(&c->mode) != XV_CONN_HTTP || xv_conn_cfg.disabled_stamp || c->rx_nostamp)
        return 0;
    if (c->hold.len)
        return 1;
    if (xv_http_parser_state(c->resp) != XV_HTTP_S_HEAD)
        return 0;
    struct xv_call *call = xv_conn_front_call(c);
    return call && call->api && !call->response_started;
}

/* The read fast path: while the response being read is one nothing is
 * taken from (its request not an inspected call, no cassette, nothing held
 * or queued for the app) and inside a body framed by Content-Length, a read
 * that cannot reach the body's end (the app asks for fewer bytes than are
 * left) goes to the app as the transport gave it, the parser only counting
 * it off. The read that reaches the end takes the full path, which ends the
 * message and handles whatever follows; no read is ever shortened (an app's
 * MSG_WAITALL keeps its meaning). A bulk download then costs no parse per
 * read (issue 9). 1: this read of len bytes may go so. */
static int body_pass(struct xv_conn *c, size_t len)
{
    if (atomic_load(&c->mode) != XV_CONN_HTTP || c->out.len || c->hold.len || c->resp_holding ||
        c->resp_end_pending || body_wanted(c->calls))
        return 0;
    return len < xv_http_parser_body_left(c->resp);
}

/* Under mu, after a fast-path read: open the lean-read credit (stream.c)
 * for what is left of the body; TLS streams only (a plain socket's hooks
 * have no lean read to use it). */
static void lean_open(struct xv_conn *c)
{
    if (c->kind != XV_CONN_PLAIN && !c->rx_err_pending && !c->synth_eof && body_pass(c, 0))
        atomic_store_explicit(&c->lean_left, xv_http_parser_body_left(c->resp),
                              memory_order_release);
}

/* Insert our header lines before the blank line that ends `hold`. */
static int stamp_head(struct xv_conn *c, struct xv_buf *dst)
{
    struct xv_buf *h = &c->hold;
    size_t blank = (h->len >= 2 && h->data[h->len - 2] == '\r') ? 2 : 1;
    const char *eol = blank == 2 ? "\r\n" : "\n";
    if (h->len < blank)
        return XV_E_PARSE;
    int rc = xv_buf_append(dst, h->data, h->len - blank);
    if (!rc && c->rx_stamp_session[0])
        rc = xv_buf_append_header(dst, "X-Xenovia-Session-Id", c->rx_stamp_session, eol);
    if (!rc && c->rx_stamp_id[0])
        rc = xv_buf_append_header(dst, "X-Xenovia-Trace-Id", c->rx_stamp_id, eol);
    if (!rc)
        rc = xv_buf_append(dst, h->data + h->len - blank, blank);
    return rc;
}

/* A held response ended: decide, hand over, record. Or (stream ended
 * before the response did) hand over what is held, unchanged. */
static void finish_held(struct xv_conn *c)
{
    int complete = c->resp_end_pending;
    c->resp_end_pending = 0;
    c->resp_holding = 0;
    struct xv_call *call = xv_conn_front_call(c);
    if (complete && call && call->api)
        xv_conn_policy_release(c, call);
    else if (xv_buf_append(&c->out, c->resp_hold.data, c->resp_hold.len) != 0)
        xv_log(XV_LOG_ERROR, "internal: could not release a held response");
    xv_buf_reset(&c->resp_hold);
    xv_buf_reset(&c->resp_body);
    if (complete)
        xv_conn_pop_call(c, NULL);
}

/* Parse one read's worth of bytes. Returns 0 when the bytes go to the app
 * unchanged (zero-copy), 1 when the app's bytes are now in c->out. */
static int rx_process(struct xv_conn *c, const char *data, size_t n)
{
    int copying = 0;
    size_t pos = 0;
    while (pos < n) {
        if (atomic_load(&c->mode) != XV_CONN_HTTP) {
            if (copying && xv_buf_append(&c->out, data + pos, n - pos) != 0)
                goto fail;
            break;
        }
        /* Local copy: a parse error inside the feed resets the conn state. */
        int in_head = want_hold(c);
        int in_body_hold = c->resp_holding && !in_head;
        c->rx_in_head = in_head;
        c->rx_head_done = 0;
        size_t k = xv_http_parser_feed(c->resp, data + pos, n - pos);
        if (k == 0 || k > n - pos)
            k = n - pos;
        int still_http = atomic_load(&c->mode) == XV_CONN_HTTP;
        if (in_head && still_http) {
            if (!copying) {
                if (xv_buf_append(&c->out, data, pos) != 0)
                    goto fail;
                copying = 1;
            }
            if (xv_buf_append(&c->hold, data + pos, k) != 0)
                goto fail;
            if (c->rx_head_done) {
                struct xv_buf *dst = c->resp_holding ? &c->resp_hold : &c->out;
                if (c->rx_stamp) {
                    c->rx_stamp = 0;
                    size_t mark = dst->len;
                    if (stamp_head(c, dst) != 0) {
                        /* Out of memory half-way (found by tests/fault): drop
                         * the partial stamped copy; the held head goes out
                         * unchanged through the fail path. */
                        dst->len = mark;
                        if (dst->data)
                            dst->data[mark] = '\0';
                        pos += k; /* those bytes are in c->hold already */
                        goto fail;
                    }
                    xv_conn_stat_add(XV_STAT_STAMPED);
                } else if (xv_buf_append(dst, c->hold.data, c->hold.len) != 0) {
                    pos += k; /* in c->hold, which the fail path releases */
                    goto fail;
                }
                xv_buf_reset(&c->hold);
            }
        } else if (in_body_hold && still_http) {
            if (!copying) {
                if (xv_buf_append(&c->out, data, pos) != 0)
                    goto fail;
                copying = 1;
            }
            if (xv_buf_append(&c->resp_hold, data + pos, k) != 0) {
                /* over the limit: release what is held, stop holding */
                struct xv_call *call = xv_conn_front_call(c);
                if (call && call->api)
                    call->tx_error = "response over the hold limit; response-stage policy not applied";
                c->resp_holding = 0;
                if (xv_buf_append(&c->out, c->resp_hold.data, c->resp_hold.len) != 0 ||
                    xv_buf_append(&c->out, data + pos, k) != 0)
                    goto fail;
                xv_buf_reset(&c->resp_hold);
                xv_buf_reset(&c->resp_body);
                if (c->resp_end_pending) {
                    c->resp_end_pending = 0;
                    xv_conn_pop_call(c, NULL);
                }
            }
        } else if (in_head && !copying) {
            /* The parser failed inside a held head: conn_to_pass queued the
             * held bytes; this read's bytes so far follow them. */
            if (xv_buf_append(&c->out, data, pos + k) != 0)
                goto fail;
            copying = 1;
        } else if (copying) {
            if (xv_buf_append(&c->out, data + pos, k) != 0)
                goto fail;
        }
        c->rx_in_head = 0;
        pos += k;
        if (c->resp_end_pending)
            finish_held(c);
    }
    c->rx_in_head = 0;
    if (c->answer_ready) {
        /* the response before a call the agent answers ended in this read:
         * the read's bytes first, then the answer */
        if (!copying && xv_buf_append(&c->out, data, n) != 0)
            goto fail;
        copying = 1;
        xv_conn_answer_deliver(c);
    }
    return copying || c->out.len > 0;
fail:
    /* Cannot build the output. Bytes already queued precede data[pos..];
     * queue the rest behind them and stop touching this connection. */
    xv_log(XV_LOG_ERROR, "internal: out of memory while holding a response head; passing through");
    xv_conn_to_pass(c, "agent out of memory");
    if (!copying)
        xv_buf_append(&c->out, data, pos);
    xv_buf_append(&c->out, data + pos, n - pos);
    c->rx_in_head = 0;
    return 1;
}

static size_t serve_out(struct xv_conn *c, char *buf, size_t len, int consume)
{
    size_t avail = c->out.len - c->out_off;
    size_t k = avail < len ? avail : len;
    memcpy(buf, c->out.data + c->out_off, k);
    if (consume) {
        c->out_off += k;
        if (c->out_off == c->out.len) {
            xv_buf_reset(&c->out);
            c->out_off = 0;
        } else if (c->out_off >= 65536 && c->out_off * 2 >= c->out.len) {
            xv_buf_consume(&c->out, c->out_off);
            c->out_off = 0;
        }
    }
    return k;
}

/* A read returned early with a head still held (the app's deadline, or an
 * error kept for the next read): hand the held bytes over unstamped; the
 * rest of that head passes unheld. */
static void release_hold(struct xv_conn *c)
{
    if (!c->hold.len)
        return;
    if (xv_buf_append(&c->out, c->hold.data, c->hold.len) != 0)
        xv_log(XV_LOG_ERROR, "internal: could not release a held head");
    xv_buf_reset(&c->hold);
    c->rx_nostamp = 1;
}

long xv_conn_rx(struct xv_conn *c, char *buf, size_t len, xv_conn_read_fn rd, void *ctx)
{
    pthread_mutex_lock(&c->mu);
    xv_conn_lean_settle(c);
    if (c->out.len && len) {
        size_t k = serve_out(c, buf, len, 1);
        rx_unlock(c);
        return (long)k;
    }
    if (c->rx_err_pending) {
        /* the error a read met behind bytes it handed over first */
        c->rx_err_pending = 0;
        int e = c->rx_err_errno;
        rx_unlock(c);
        errno = e;
        return XV_CONN_RX_DEFERRED;
    }
    if (c->synth_eof) {
        /* The agent answered this stream itself; what the upstream may
         * still send belongs to no request the app made. */
        rx_unlock(c);
        return 0;
    }
    for (;;) {
        size_t cap = len;
        int fast = body_pass(c, len);
        if (!fast && want_hold(c) && len > 2 * STAMP_RESERVE + c->hold.len)
            cap = len - STAMP_RESERVE - c->hold.len;
        int http = atomic_load(&c->mode) == XV_CONN_HTTP;
        rx_unlock(c);
        long r = rd(ctx, buf, cap);
        int rd_errno = errno;
        pthread_mutex_lock(&c->mu);
        xv_conn_lean_settle(c); /* a lean read on another thread meanwhile: the app's race */
        if (fast && r > 0 && xv_http_parser_body_skip(c->resp, (size_t)r) == 0) {
            c->rx_skipped += (uint64_t)r; /* counted off unparsed (body_pass) */
            lean_open(c);
            rx_unlock(c);
            errno = rd_errno;
            return r;
        }
        if (r == XV_CONN_RD_DEADLINE || r == XV_CONN_RD_ERROR) {
            /* Plain sockets only. The app's SO_RCVTIMEO ran out while a
             * head was held, or the read failed: the held bytes go to the
             * app now, as they would have without the agent (an error
             * follows on the next read). */
            if (c->hold.len) {
                release_hold(c);
                if (r == XV_CONN_RD_ERROR) {
                    c->rx_err_pending = 1;
                    c->rx_err_errno = rd_errno;
                }
            }
            if (c->out.len && len) {
                size_t k = serve_out(c, buf, len, 1);
                rx_unlock(c);
                return (long)k;
            }
            rx_unlock(c);
            errno = rd_errno;
            return -1;
        }
        if (r <= 0) {
            if (r == 0 && c->resp && http) {
                /* End of stream: a close-delimited body ends, open calls end. */
                c->end_reason = "connection closed before the response completed";
                xv_http_parser_eof(c->resp);
                c->end_reason = NULL;
                if (c->resp_end_pending || c->resp_holding)
                    finish_held(c); /* a close-delimited body ended, or a cut one */
                if (c->hold.len) {
                    xv_buf_append(&c->out, c->hold.data, c->hold.len);
                    xv_buf_reset(&c->hold);
                }
                while (c->calls)
                    xv_conn_pop_call(c, "connection closed before the response completed");
                if (c->out.len && len) {
                    size_t k = serve_out(c, buf, len, 1);
                    rx_unlock(c);
                    return (long)k;
                }
            }
            rx_unlock(c);
            errno = rd_errno;
            return r;
        }
        if (!http && !c->out.len) {
            rx_unlock(c);
            errno = rd_errno;
            return r;
        }
        /* Room for everything this read can turn into (see OUT_BOUND). */
        size_t need = c->out.len + c->hold.len + c->resp_hold.len + (size_t)r + 4096;
        if (c->out.max < need)
            c->out.max = need;
        if (!rx_process(c, buf, (size_t)r)) {
            rx_unlock(c);
            return r;
        }
        if (c->out.len) {
            size_t k = serve_out(c, buf, len, 1);
            rx_unlock(c);
            return (long)k;
        }
        /* Everything read so far belongs to an incomplete held head: read
         * on. A non-blocking transport returns would-block from rd and the
         * app comes back when more bytes arrive; a plain socket with
         * SO_RCVTIMEO returns XV_CONN_RD_DEADLINE when the app's own
         * deadline passes (hooks/net.c). */
    }
}

long xv_conn_rx_peek(struct xv_conn *c, char *buf, size_t len, xv_conn_read_fn rd, void *ctx)
{
    pthread_mutex_lock(&c->mu);
    xv_conn_lean_settle(c);
    if (!c->out.len && !want_hold(c) && !c->synth_eof) {
        rx_unlock(c);
        return XV_E_STATE; /* caller uses the real peek: bytes would pass unchanged */
    }
    rx_unlock(c);
    if (!c->out.len) {
        /* Run a real read through the state machine into the queue. */
        char *tmp = malloc(len ? len : 1);
        if (!tmp)
            return XV_E_STATE;
        long r = xv_conn_rx(c, tmp, len, rd, ctx);
        if (r > 0) {
            pthread_mutex_lock(&c->mu);
            /* put the bytes back in front of whatever is still queued */
            struct xv_buf nb;
            xv_buf_init(&nb, OUT_BOUND + len);
            if (xv_buf_append(&nb, tmp, (size_t)r) == 0 &&
                xv_buf_append(&nb, c->out.data + c->out_off, c->out.len - c->out_off) == 0) {
                xv_buf_free(&c->out);
                c->out_off = 0;
                c->out = nb;
            } else {
                xv_buf_free(&nb);
            }
            rx_unlock(c);
        }
        free(tmp);
        if (r <= 0)
            return r;
    }
    pthread_mutex_lock(&c->mu);
    size_t k = serve_out(c, buf, len, 0);
    rx_unlock(c);
    return (long)k;
}
