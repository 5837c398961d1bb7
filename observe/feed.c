/*
 * feed.c — captured TLS plaintext into the conn/ pipeline. One struct
 * xv_conn per (process, SSL*) seen writing an HTTP request; writes go
 * through xv_conn_tx_write with a writer that accepts every byte, reads
 * through xv_conn_rx with a reader that hands back the captured bytes, so
 * parsing, sessions and records are the preload's own code.
 *
 * Loss is never silent: a gap in a connection's sequence numbers (ring
 * buffer full), bytes beyond the per-call cap or a failed copy end the
 * connection's open calls with `error` saying what was lost, and the
 * connection is only picked up again at the next write that starts a
 * request line.
 *
 * Invariant: the conn/ configuration's pid and process name are those of
 * the event's process while it is fed. Thread safety: one thread (the
 * ring-buffer consumer) calls everything here.
 */
#include "xv_observe.h"
#include "xv_observe_event.h"

#include "xv_conn.h"
#include "xv_knobs.h"
#include "xv_session.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct obs_conn {
    struct obs_conn *next;
    unsigned tgid;
    unsigned long long ssl;
    unsigned long long next_seq;
    struct xv_conn *c;        /* NULL: not (or no longer) followed */
    char lost[160];           /* loss not yet put on a record */
};

struct obs_proc {
    struct obs_proc *next;
    unsigned tgid;
    char name[256];
};

static struct obs_conn *g_conns;
static struct obs_proc *g_procs;
static struct xv_conn_config g_cfg;
static unsigned g_cur_tgid;

void xv_observe_feed_init(void)
{
    /* the agent's own readers and ranges (common/xv_knobs.def) */
    uint64_t cc, cm;
    xv_knob_get_num(XV_KNOB_CAPTURE_CONTENT, &cc);
    xv_knob_get_num(XV_KNOB_CAPTURE_MAX_BYTES, &cm);
    g_cfg = (struct xv_conn_config){
        .hosts = getenv("XENOVIA_HOSTS"),
        .body_max = 32u << 20,
        .capture_max = (size_t)cm,
        .capture_content = (int)cc,
        .head_max = 65536,
        .agent_id = getenv("XENOVIA_AGENT_ID"),
        .org_id = getenv("XENOVIA_ORG_ID"),
        .disabled_stamp = 1,
        .hold_max = 32u << 20,
        .write_timeout_ms = 0,
        .inject_lines = NULL,
        .inject_session = 0,
        .session_max = XV_SESSION_DEFAULT_MAX,
        .session_path = getenv("XENOVIA_SESSION_PATH"),
        .flow_id = getenv("XENOVIA_FLOW_ID"),
        .parent_trace_id = getenv("XENOVIA_PARENT_TRACE_ID"),
        .capture = "uprobe",
    };
    xv_conn_configure(&g_cfg);
}

static const char *proc_name(unsigned tgid)
{
    for (struct obs_proc *p = g_procs; p; p = p->next)
        if (p->tgid == tgid)
            return p->name;
    struct obs_proc *p = calloc(1, sizeof *p);
    if (!p)
        return "";
    p->tgid = tgid;
    char path[64];
    snprintf(path, sizeof path, "/proc/%u/cmdline", tgid);
    FILE *f = fopen(path, "r");
    if (f) {
        size_t n = fread(p->name, 1, sizeof p->name - 1, f);
        p->name[n] = '\0'; /* argv[0]: up to the first NUL */
        fclose(f);
    }
    p->next = g_procs;
    g_procs = p;
    return p->name;
}

/* Records made from now on belong to process tgid. */
static void use_proc(unsigned tgid)
{
    if (tgid == g_cur_tgid)
        return;
    g_cur_tgid = tgid;
    g_cfg.pid = (int)tgid;
    g_cfg.process = proc_name(tgid);
    xv_conn_configure(&g_cfg);
}

static struct obs_conn *find(unsigned tgid, unsigned long long ssl, int make)
{
    for (struct obs_conn *o = g_conns; o; o = o->next)
        if (o->tgid == tgid && o->ssl == ssl)
            return o;
    if (!make)
        return NULL;
    struct obs_conn *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->tgid = tgid;
    o->ssl = ssl;
    o->next_seq = 1;
    o->next = g_conns;
    g_conns = o;
    return o;
}

static void drop(struct obs_conn *o, const char *why)
{
    if (o->c) {
        use_proc(o->tgid);
        xv_conn_end(o->c, why);
        xv_conn_unref(o->c);
        o->c = NULL;
    }
}

static void forget(struct obs_conn *o, const char *why)
{
    drop(o, why);
    for (struct obs_conn **pp = &g_conns; *pp; pp = &(*pp)->next)
        if (*pp == o) {
            *pp = o->next;
            break;
        }
    free(o);
}

/* "METHOD SP" at the start: a request line begins here. */
static int looks_like_request(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && i < 16 && isupper((unsigned char)p[i]))
        i++;
    return i > 0 && i < n && p[i] == ' ';
}

/* The Host header of a request head, for the record's server address/port
 * (the socket is not seen from here; TLS default port 443). */
static void learn_host(struct xv_conn *c, const char *p, size_t n)
{
    struct xv_conn_peer peer;
    memset(&peer, 0, sizeof peer);
    for (size_t i = 0; i + 7 < n; i++) {
        if (p[i] != '\n')
            continue;
        if (strncasecmp(p + i + 1, "host:", 5) != 0)
            continue;
        size_t j = i + 6;
        while (j < n && (p[j] == ' ' || p[j] == '\t'))
            j++;
        size_t k = j;
        while (k < n && p[k] != '\r' && p[k] != '\n')
            k++;
        size_t hl = k - j;
        const char *colon = NULL;
        for (size_t m = j; m < k; m++)
            if (p[m] == ':' && p[j] != '[')
                colon = p + m;
        if (colon) {
            peer.port = atoi(colon + 1);
            hl = (size_t)(colon - (p + j));
        } else {
            peer.port = 443;
        }
        if (hl >= sizeof peer.host)
            hl = sizeof peer.host - 1;
        memcpy(peer.host, p + j, hl);
        peer.host[hl] = '\0';
        xv_conn_set_peer(c, &peer);
        return;
    }
}

static long accept_all(void *ctx, const char *buf, size_t len)
{
    (void)ctx;
    (void)buf;
    return (long)len;
}

static int never_wait(void *ctx, int timeout_ms)
{
    (void)ctx;
    (void)timeout_ms;
    return 0;
}

struct rx_src {
    const char *p;
    size_t left;
};

static long give_captured(void *ctx, char *buf, size_t len)
{
    struct rx_src *s = ctx;
    if (!s->left)
        return -1; /* "would block": nothing more was captured yet */
    size_t n = len < s->left ? len : s->left;
    memcpy(buf, s->p, n);
    s->p += n;
    s->left -= n;
    return (long)n;
}

static void feed_tx(struct obs_conn *o, const char *p, size_t n)
{
    size_t done = 0;
    for (int guard = 0; done < n && guard < 1024; guard++) {
        long r = xv_conn_tx_write(o->c, p + done, n - done, accept_all, never_wait, NULL);
        if (r <= 0)
            break;
        done += (size_t)r;
    }
}

static void feed_rx(struct obs_conn *o, const char *p, size_t n)
{
    static char sink[65536];
    struct rx_src s = { p, n };
    for (int guard = 0; (s.left || xv_conn_rx_pending(o->c)) && guard < 4096; guard++) {
        long r = xv_conn_rx(o->c, sink, sizeof sink, give_captured, &s);
        if (r <= 0)
            break;
    }
}

void xv_observe_feed(const struct xv_obs_hdr *h, const char *data)
{
    use_proc(h->tgid);
    struct obs_conn *o = find(h->tgid, h->ssl, h->kind == XV_OBS_TX);
    if (!o)
        return;
    if (h->conn_seq != o->next_seq) {
        /* records of this connection were lost: the ring buffer was full */
        unsigned long long gap = h->conn_seq > o->next_seq ? h->conn_seq - o->next_seq : 0;
        char why[160];
        snprintf(why, sizeof why, "observe: %llu captured event(s) of this connection lost "
                 "(ring buffer full)", gap);
        drop(o, why);
    }
    o->next_seq = h->conn_seq + 1;
    switch (h->kind) {
    case XV_OBS_NEW:
    case XV_OBS_FREE:
        forget(o, "SSL_free before the response completed");
        return;
    case XV_OBS_TX:
        if (!o->c) {
            if (h->offset != 0 || !looks_like_request(data, h->len))
                return; /* not a request start: wait for one */
            struct xv_conn_peer none;
            memset(&none, 0, sizeof none);
            o->c = xv_conn_new(XV_CONN_TLS, &none);
            if (!o->c)
                return;
            learn_host(o->c, data, h->len);
        }
        break;
    case XV_OBS_RX:
        if (!o->c)
            return;
        break;
    default:
        return;
    }
    if (h->copy_fail) {
        drop(o, "observe: the captured bytes could not be read from the process");
        return;
    }
    if (h->kind == XV_OBS_TX)
        feed_tx(o, data, h->len);
    else
        feed_rx(o, data, h->len);
    if (h->cut && o->c) {
        char why[160];
        snprintf(why, sizeof why, "observe: %u bytes of one SSL_%s beyond the per-call capture "
                 "cap (%u bytes) not captured", h->cut, h->kind == XV_OBS_TX ? "write" : "read",
                 XV_OBS_CHUNK * XV_OBS_MAX_CHUNKS);
        drop(o, why);
    }
}

void xv_observe_feed_exec(unsigned tgid)
{
    for (struct obs_conn *o = g_conns, *next; o; o = next) {
        next = o->next;
        if (o->tgid == tgid)
            forget(o, "process called execve before the response completed");
    }
    for (struct obs_proc *p = g_procs; p; p = p->next)
        if (p->tgid == tgid)
            p->tgid = 0;             /* its argv[0] is read again */
    if (g_cur_tgid == tgid)
        g_cur_tgid = 0;
}

void xv_observe_feed_end_all(const char *why)
{
    while (g_conns)
        forget(g_conns, why);
}
