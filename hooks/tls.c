/*
 * tls.c — OpenSSL hooks. Each SSL object that carries HTTP gets a
 * connection (conn/) keyed by the SSL pointer; plaintext goes through the
 * same state machine as plain sockets.
 *
 * While a hook runs the real SSL function, xv_tls_cur.active is set on the
 * thread so the socket hooks pass the record layer's ciphertext straight
 * through and report which fd it used (curl's own BIO hides it from
 * SSL_get_fd). ALPN (alpn.c): for hosts we must inspect, an offer of h2 is narrowed
 * to http/1.1 when the SNI name is set (SPEC §2).
 *
 * Writes never wait: a released request an SSL over a non-blocking socket
 * would not take stays in the connection's send queue (conn/), retried by
 * OpenSSL's rule from the next SSL_write/SSL_read/SSL_shutdown of the app,
 * by the readiness hooks (tls_flush_stream: only when that cannot run
 * beside the app's own use of the SSL) and at SSL_free.
 *
 * Thread safety: the SSL table is a chained hash with striped locks; a
 * hook takes its own reference to the connection, and an app I/O call is
 * counted on it (xv_conn_io_begin, under the bucket lock) for as long as it
 * runs.
 */
#include "xv_hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xv_common.h"

#define SSL_BUCKETS 1024
#define SSL_LOCKS 16 /* held for a chain walk; 16 keep .xvcall on one page (net.c) */
#define SSL_CTRL_SET_TLSEXT_HOSTNAME 55 /* OpenSSL's SSL_ctrl command number */
#define SSL_ERROR_WANT_READ 2
#define SSL_ERROR_WANT_WRITE 3

/* SSL* -> connection entries; chain heads guarded by g_ssl.mu[bucket % SSL_LOCKS]. */
struct ssl_ent {
    struct ssl_ent *next;
    const SSL *ssl;
    struct xv_conn *c;   /* one reference held by the table */
    int peer_known;      /* peer copied from the socket's connection */
};

static struct {
    pthread_mutex_t mu[SSL_LOCKS];
} g_ssl XV_CALL_DATA = { .mu = { [0 ... SSL_LOCKS - 1] = PTHREAD_MUTEX_INITIALIZER } };
/* The chain heads, apart from the locks: the locks stay among the small
 * variables, the heads go after them (XV_LARGE_BSS). */
static struct ssl_ent *g_ssl_bucket[SSL_BUCKETS] XV_LARGE_BSS;
/* An entry was ever added (set under the bucket's lock before it): until
 * then no bucket is read, so the first one's page is written first (one
 * page fault instead of a read fault and a copy-on-write one, issue 9). */
static atomic_int g_ssl_used XV_CALL_DATA;

/* Bumped whenever an entry leaves the table (SSL_free) and in a fork child:
 * a thread's t_lean made before it is stale. */
static _Atomic uint64_t g_ssl_gen XV_CALL_DATA;

/* The SSL this thread last read a passing body from (ssl_lean_read), its
 * connection unreferenced (the table's ref lasts until SSL_free, which bumps
 * g_ssl_gen; no app frees an SSL its other call uses) and its socket. */
static __thread struct {
    const SSL *s;
    struct xv_conn *c;
    uint64_t gen;
    int fd;
} t_lean __attribute__((tls_model("initial-exec")));

static inline struct ssl_ent **bucket(unsigned b)
{
    static struct ssl_ent *none XV_CALL_DATA; /* never written */
    return atomic_load_explicit(&g_ssl_used, memory_order_relaxed) ? &g_ssl_bucket[b] : &none;
}

/* The locks start statically initialised (no constructor writes their
 * pages at start); a fork child re-initialises them. */
void xv_tls_atfork_child(void)
{
    atomic_fetch_add_explicit(&g_ssl_gen, 1, memory_order_relaxed); /* t_lean */
    for (int i = 0; i < SSL_LOCKS; i++)
        pthread_mutex_init(&g_ssl.mu[i], NULL);
    xv_alpn_atfork_child();
}

static unsigned ssl_hash(const SSL *s)
{
    uintptr_t v = (uintptr_t)s;
    v ^= v >> 17;
    v *= 0x9E3779B97F4A7C15ull;
    return (unsigned)(v >> 40) % SSL_BUCKETS;
}

#define REAL(name) xv_real_ssl(XV_##name)

static void notify_ssl(void *ud, int wire_fd);

/* This thread, as xv_conn_io_begin names it. */
static uintptr_t self_thread(void)
{
    return (uintptr_t)&xv_tls_cur;
}

/* Look up (and with `create`, make) the connection of an SSL. New ref or
 * NULL. With `io`, the call is an app I/O call on the SSL: counted under
 * the bucket lock (xv_conn_io_begin), so a flush from a readiness hook,
 * which holds that lock while it writes, never runs beside it. */
static struct xv_conn *ssl_conn_io(const SSL *s, int create, int io)
{
    unsigned b = ssl_hash(s);
    pthread_mutex_t *mu = &g_ssl.mu[b % SSL_LOCKS];
    pthread_mutex_lock(mu);
    struct ssl_ent *e = *bucket(b);
    while (e && e->ssl != s)
        e = e->next;
    if (!e && create) {
        e = calloc(1, sizeof *e);
        if (e) {
            e->ssl = s;
            e->c = xv_conn_new(XV_CONN_TLS, NULL);
            if (!e->c) {
                free(e);
                e = NULL;
            } else {
                xv_conn_set_notify(e->c, notify_ssl, (void *)s);
                e->next = *bucket(b); /* no read of a bucket before the first write */
                atomic_store_explicit(&g_ssl_used, 1, memory_order_relaxed);
                g_ssl_bucket[b] = e;
            }
        }
    }
    struct xv_conn *c = e ? e->c : NULL;
    if (c) {
        xv_conn_ref(c);
        if (io)
            xv_conn_io_begin(c, self_thread());
    }
    pthread_mutex_unlock(mu);
    return c;
}

static struct xv_conn *ssl_conn(const SSL *s, int create)
{
    return ssl_conn_io(s, create, 0);
}

/* End of an app I/O call that got c from io_conn. */
static void io_done(struct xv_conn *c)
{
    xv_conn_io_end(c);
    xv_conn_unref(c);
}

static struct xv_conn *ssl_conn_remove(const SSL *s)
{
    unsigned b = ssl_hash(s);
    pthread_mutex_t *mu = &g_ssl.mu[b % SSL_LOCKS];
    pthread_mutex_lock(mu);
    struct ssl_ent **pp = bucket(b);
    while (*pp && (*pp)->ssl != s)
        pp = &(*pp)->next;
    struct ssl_ent *e = *pp;
    if (e) {
        *pp = e->next;
        atomic_fetch_add_explicit(&g_ssl_gen, 1, memory_order_release); /* t_lean */
    }
    pthread_mutex_unlock(mu);
    struct xv_conn *c = e ? e->c : NULL;
    free(e);
    return c;
}

/* Copy the socket's peer (address, port, DNS name) into an SSL connection. */
static void learn_peer(struct xv_conn *c, int fd)
{
    struct xv_conn_peer cur, sock;
    if (xv_conn_peer_known(c))
        return; /* the hot path: one relaxed load */
    if (fd >= 0 && xv_conn_wire_fd(c) != fd)
        xv_conn_set_wire_fd(c, fd);
    xv_conn_get_peer(c, &cur);
    if (cur.port)
        return;
    if (fd < 0) {
        fd = xv_tls_last_wire_fd; /* memory-BIO SSL: see xv_hooks.h */
        if (fd >= 0)
            xv_conn_set_hint_fd(c, fd);
    }
    if (fd < 0)
        return;
    if (xv_net_peer(fd, &sock) == 0)
        xv_conn_set_peer(c, &sock);
}

/* Enter/leave an SSL call: socket hooks pass through meanwhile. Nested
 * SSL calls (an SSL_read inside a BIO callback) keep the outer state. */
struct tls_scope {
    struct xv_tls_current saved;
};

static void scope_enter(struct tls_scope *sc)
{
    sc->saved = xv_tls_cur;
    xv_tls_cur.active = 1;
    xv_tls_cur.fd = -1;
    xv_tls_cur.in_read = 0;
}

static int scope_leave(struct tls_scope *sc)
{
    int fd = xv_tls_cur.fd;
    xv_tls_cur = sc->saved;
    return fd;
}

/* The connection to use for an SSL I/O call, or NULL to pass through.
 * An SSL call made from inside another one is OpenSSL's own business and
 * passes through — except a write made from inside a read hook's real
 * SSL_read: Node completes the handshake inside SSL_read, and its info
 * callback runs JavaScript synchronously that writes the first request
 * (TLSWrap::SSLInfoCallback -> onhandshakedone -> SSL_write). The read hook
 * holds no lock around its real read, so that write can be inspected. */
static struct xv_conn *io_conn(const SSL *s, int write)
{
    if (!xv_hooks_active() || (xv_tls_cur.active && !(write && xv_tls_cur.in_read)))
        return NULL;
    return ssl_conn_io(s, 1, 1);
}

/* ---- writes ------------------------------------------------------------- */

#define SSL_ERROR_ZERO_RETURN 6

/* One real SSL write for xv_conn_tx_write. */
struct ssl_wr {
    SSL *s;
    int ex;        /* SSL_write_ex */
    int ret;       /* what the real call returned */
    int err;       /* errno after it */
    short want;    /* POLLIN/POLLOUT the SSL waits for after would-block */
    int fd;        /* socket seen during the call, -1 unknown */
};

static long wr_ssl(void *vctx, const char *buf, size_t len)
{
    struct ssl_wr *x = vctx;
    struct tls_scope sc;
    long out;
    scope_enter(&sc);
    if (x->ex) {
        int (*real)(SSL *, const void *, size_t, size_t *) = REAL(SSL_write_ex);
        size_t w = 0;
        x->ret = real(x->s, buf, len, &w);
        out = x->ret == 1 ? (long)w : 0;
    } else {
        int (*real)(SSL *, const void *, int) = REAL(SSL_write);
        x->ret = real(x->s, buf, len > INT32_MAX ? INT32_MAX : (int)len);
        out = x->ret > 0 ? x->ret : 0;
    }
    x->err = errno;
    if (out <= 0) {
        int (*gerr)(const SSL *, int) = REAL(SSL_get_error);
        int e = gerr ? gerr(x->s, x->ret) : 0;
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            x->want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
            out = -1;
        } else {
            out = -2;
        }
    }
    int fd = scope_leave(&sc);
    if (fd >= 0)
        x->fd = fd;
    errno = x->err;
    return out;
}

static int wait_ssl(void *vctx, int timeout_ms)
{
    struct ssl_wr *x = vctx;
    int fd = x->fd;
    if (fd < 0) {
        int (*getfd)(const SSL *) = REAL(SSL_get_fd);
        fd = getfd ? getfd(x->s) : -1;
    }
    if (fd < 0)
        return -1; /* memory BIO: nothing to wait on (its writes never block) */
    return xv_net_wait(fd, x->want ? x->want : POLLOUT, timeout_ms);
}

/* The readiness hooks' flush of an SSL's send queue (xv_conn_tx_flush_all):
 * only from the thread that made the SSL's last call, outside any SSL call
 * of its own, while no app call runs on it (checked under the SSL's bucket
 * lock, which app calls take to start and SSL_free to remove it), only over
 * OpenSSL's own socket BIO (SSL_get_fd >= 0: no callback into the app; an
 * app's BIO, like curl's, may rely on state it sets around its own SSL
 * calls) on a non-blocking socket — so the write never waits and never runs
 * beside the app's own use of the SSL. The other queues move in the app's
 * next SSL call, which the readiness hooks prompt by reporting the socket
 * readable once it is writable (hooks/poll.c). */
static int tls_flush_stream(struct xv_conn *c, void *ud)
{
    const SSL *s = ud;
    if (!s || xv_tls_cur.active || !xv_conn_io_idle_for(c, self_thread()))
        return 0;
    int (*getfd)(const SSL *) = REAL(SSL_get_fd);
    if (!getfd || getfd(s) < 0)
        return 0;
    int fd = xv_conn_io_fd(c);
    int fl = fd >= 0 ? XV_REAL(fcntl)(fd, F_GETFL) : -1;
    if (fl < 0 || !(fl & O_NONBLOCK))
        return 0;
    int tried = 0;
    unsigned b = ssl_hash(s);
    pthread_mutex_t *mu = &g_ssl.mu[b % SSL_LOCKS];
    pthread_mutex_lock(mu);
    struct ssl_ent *e = *bucket(b);
    while (e && e->ssl != s)
        e = e->next;
    if (e && e->c == c && xv_conn_io_idle_for(c, self_thread())) {
        struct ssl_wr w = { .s = (SSL *)s, .ex = 0, .ret = -1, .fd = -1 };
        xv_conn_tx_flush(c, wr_ssl, &w);
        tried = 1;
    }
    pthread_mutex_unlock(mu);
    return tried;
}

int xv_tls_flush_all(void)
{
    return xv_conn_tx_flush_all(NULL, tls_flush_stream);
}

/* SSL_free with request bytes still queued: they were reported written, so
 * they go out first, waiting at most the write timeout (as close does for a
 * plain socket; the kernel would have sent them). */
static void drain_at_free(SSL *s, struct xv_conn *c)
{
    if (!xv_conn_tx_queued(c))
        return;
    uint64_t deadline = xv_now_mono_ns() +
                        (uint64_t)xv_conn_get_config()->write_timeout_ms * 1000000u;
    struct ssl_wr w = { .s = s, .ex = 0, .ret = -1, .fd = -1 };
    while (xv_conn_tx_flush(c, wr_ssl, &w) == -1 && xv_now_mono_ns() < deadline) {
        int fd = w.fd >= 0 ? w.fd : xv_conn_io_fd(c);
        if (fd < 0)
            break;
        xv_net_wait(fd, w.want ? w.want : POLLOUT, 50); /* the loop checks the deadline */
    }
}

/* The agent answered a call on this SSL: make the app read. */
static void notify_ssl(void *ud, int wire_fd)
{
    SSL *s = ud;
    int fd = wire_fd;
    if (fd < 0) {
        int (*getfd)(const SSL *) = REAL(SSL_get_fd);
        fd = getfd ? getfd(s) : -1;
    }
    if (fd >= 0) {
        xv_net_notify_fd(fd, 0);
    } else if (xv_tls_last_wire_fd >= 0) {
        /* memory BIO: the event loop reads the socket before SSL_read */
        xv_net_notify_fd(xv_tls_last_wire_fd, 1);
    }
}

#define SSL_CTRL_MODE 33                      /* OpenSSL's SSL_ctrl command number */
#define SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER 2L

/* A released request the transport would not take stays in the send queue
 * (conn/tx.c), and OpenSSL's retry of it comes from the queue, not from the
 * buffer of the first attempt: allow the buffer to move (it only relaxes
 * OpenSSL's check of a retry's address; the app's own retries stay valid;
 * a program reading SSL_get_mode sees the bit). */
static void allow_moving_buffer(SSL *s)
{
    long (*ctrl)(SSL *, int, long, void *) = REAL(SSL_ctrl);
    if (ctrl)
        ctrl(s, SSL_CTRL_MODE, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER, NULL);
}

static long ssl_tx(SSL *s, struct xv_conn *c, struct ssl_wr *x, const void *buf, size_t num)
{
    int saved = errno;
    x->err = saved;
    x->fd = -1;
    learn_peer(c, -1); /* a call answered by the agent is recorded inside tx_write */
    long r = xv_conn_tx_write(c, buf, num, wr_ssl, wait_ssl, x);
    learn_peer(c, x->fd);
    if (xv_conn_tx_queued(c)) {
        /* set before any retry: none happens inside the call that queued */
        allow_moving_buffer(s);
        if (x->fd >= 0 && xv_conn_wire_fd(c) != x->fd)
            xv_conn_set_wire_fd(c, x->fd); /* the readiness hooks flush through it */
    }
    io_done(c);
    errno = r > 0 ? saved : x->err;
    if (r == XV_E_STATE) {
        x->ret = -1;
        errno = EPIPE;
    }
    return r;
}

/* A write on an SSL whose handshake is unfinished: SSL_write would run the
 * handshake first and return its failure (would-block) without taking a
 * byte; the app then retries the same bytes (Node writes its first request
 * before the handshake completes and retries from TLSWrap::ClearIn). Run
 * that handshake step here, as SSL_write would, so the request is handed to
 * the connection only once, when it can really go out. 1: go on; 0: return
 * the handshake's result (in *ret: -1, errno and SSL_get_error as left). */
static int handshake_gate(SSL *s, int *ret)
{
    int (*fin)(const SSL *) = REAL(SSL_is_init_finished);
    int (*hs)(SSL *) = REAL(SSL_do_handshake);
    if (!fin || !hs || fin(s))
        return 1;
    struct tls_scope sc;
    scope_enter(&sc);
    int r = hs(s);
    scope_leave(&sc);
    if (r == 1)
        return 1;
    *ret = -1;
    return 0;
}

XV_HOOK int SSL_write(SSL *s, const void *buf, int num)
{
    int (*real)(SSL *, const void *, int) = REAL(SSL_write);
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    struct xv_conn *c = io_conn(s, 1);
    if (!c || num <= 0 || (xv_conn_is_pass(c) && !xv_conn_tx_queued(c))) {
        if (!c)
            return real(s, buf, num);
        int r = real(s, buf, num);
        int e = errno;
        io_done(c);
        errno = e;
        return r;
    }
    int hret;
    if (!handshake_gate(s, &hret)) {
        io_done(c);
        return hret;
    }
    struct ssl_wr x = { .s = s, .ex = 0, .ret = -1 };
    long r = ssl_tx(s, c, &x, buf, (size_t)num);
    return r > 0 ? (int)r : x.ret;
}

XV_HOOK int SSL_write_ex(SSL *s, const void *buf, size_t num, size_t *written)
{
    int (*real)(SSL *, const void *, size_t, size_t *) = REAL(SSL_write_ex);
    if (!real) {
        errno = ENOSYS;
        return 0;
    }
    struct xv_conn *c = io_conn(s, 1);
    if (!c || num == 0 || (xv_conn_is_pass(c) && !xv_conn_tx_queued(c))) {
        if (!c)
            return real(s, buf, num, written);
        int r = real(s, buf, num, written);
        int e = errno;
        io_done(c);
        errno = e;
        return r;
    }
    int hret;
    if (!handshake_gate(s, &hret)) {
        io_done(c);
        if (written)
            *written = 0;
        return 0;
    }
    struct ssl_wr x = { .s = s, .ex = 1, .ret = 0 };
    long r = ssl_tx(s, c, &x, buf, num);
    if (written)
        *written = r > 0 ? (size_t)r : 0;
    return r > 0 ? 1 : (x.ret == 1 ? 0 : x.ret);
}

/* ---- reads -------------------------------------------------------------- */

/* One real SSL read for xv_conn_rx. */
struct ssl_rd {
    SSL *s;
    int ex;        /* _ex variant */
    int peek;      /* SSL_peek(_ex) */
    int ret;       /* what the real call returned */
    int err;       /* errno after it */
    int fd;        /* socket seen during the call */
    int reads;     /* real reads made in this hook call */
    uint64_t start_ns; /* hook entry (SO_RCVTIMEO budget) */
    uint64_t poll_deadline_ns; /* end of the app's readiness wait that reported the
                              socket readable (xv_poll_take_deadline), 0 none */
};

/* Did a failed real read of s (returning ret) only find nothing to do yet? */
static int ssl_would_block(const SSL *s, int ret)
{
    int (*gerr)(const SSL *, int) = REAL(SSL_get_error);
    int e = gerr ? gerr(s, ret) : 0;
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

static long rd_ssl(void *vctx, char *buf, size_t len)
{
    struct ssl_rd *x = vctx;
    struct tls_scope sc;
    long out;
    int (*pend)(const SSL *) = x->reads++ > 0 && x->fd >= 0 && !x->peek ? REAL(SSL_pending) : NULL;
    if (pend && pend(x->s) == 0 &&
        xv_net_read_deadline(x->fd, 0, x->start_ns, x->poll_deadline_ns)) {
        /* completing a held head: not past the socket's SO_RCVTIMEO */
        x->err = EAGAIN;
        x->ret = -1;
        return XV_CONN_RD_DEADLINE;
    }
    scope_enter(&sc);
    xv_tls_cur.in_read = 1;
    if (x->ex) {
        size_t got = 0;
        int (*real)(SSL *, void *, size_t, size_t *) =
            x->peek ? REAL(SSL_peek_ex) : REAL(SSL_read_ex);
        x->ret = real(x->s, buf, len, &got);
        x->err = errno;
        if (x->ret == 1) {
            out = (long)got;
        } else {
            /* _ex returns 0 for every failure: would-block is not the end */
            out = ssl_would_block(x->s, 0) ? -1 : 0;
        }
    } else {
        int (*real)(SSL *, void *, int) = x->peek ? REAL(SSL_peek) : REAL(SSL_read);
        int n = len > INT32_MAX ? INT32_MAX : (int)len;
        x->ret = real(x->s, buf, n);
        x->err = errno;
        if (x->ret > 0) {
            out = x->ret;
        } else {
            out = ssl_would_block(x->s, x->ret) ? -1 : 0;
        }
    }
    int fd = scope_leave(&sc);
    if (fd >= 0)
        x->fd = fd;
    errno = x->err;
    return out;
}

/* Shared body of the four read hooks. Returns the number of bytes (> 0) or
 * -1 meaning "return the real call's result as is" (in x->ret / x->err). */
static long ssl_rx(struct xv_conn *c, struct ssl_rd *x, void *buf, size_t num)
{
    int saved = errno;
    x->fd = -1;
    x->err = saved;
    long r;
    if (xv_conn_tx_queued(c)) {
        /* The request the app was told is written goes out first (the
         * response cannot come before it); would-block leaves it queued. */
        struct ssl_wr w = { .s = x->s, .ex = x->ex, .ret = -1, .fd = -1 };
        xv_conn_tx_flush(c, wr_ssl, &w);
        if (w.fd >= 0)
            x->fd = w.fd;
        errno = saved;
    }
    x->poll_deadline_ns = xv_poll_recorded() ? xv_poll_take_deadline(xv_conn_io_fd(c)) : 0;
    if (x->peek) {
        r = xv_conn_rx_peek(c, buf, num, rd_ssl, x);
        if (r == XV_E_STATE) {
            r = rd_ssl(x, buf, num); /* nothing held: the real peek is exact */
            if (r > 0) {
                learn_peer(c, x->fd);
                io_done(c);
                errno = saved;
                return r;
            }
            r = -1;
        }
    } else {
        x->ret = -2; /* marks "no real call made" */
        x->start_ns = xv_now_mono_ns();
        r = xv_conn_rx(c, buf, num, rd_ssl, x);
        if (r == 0 && x->ret == -2 && xv_conn_synthetic_eof(c)) {
            /* end of a stream the agent answered: a clean close */
            x->ret = 0;
            x->err = saved;
        }
    }
    learn_peer(c, x->fd);
    io_done(c);
    errno = r > 0 ? saved : x->err;
    return r > 0 ? r : -1;
}

/* A lean read (bulk, docs/architecture.md): s is the thread's current
 * t_lean and its credit covers `num` bytes (short of the passing body's
 * end): the real read's result goes to the app as is, its bytes are only
 * counted; no lookup, reference, lock or state machine. `real`: SSL_read,
 * or SSL_read_ex when `got` is given. 1: done, *ret (*got) the real call's
 * result, errno its errno; 0: take the full path. */
__attribute__((noinline)) static int ssl_lean_read(SSL *s, void *buf, size_t num, void *real,
                                                   size_t *got, int *ret)
{
    if (!xv_hooks_active() || xv_tls_cur.active ||
        t_lean.gen != atomic_load_explicit(&g_ssl_gen, memory_order_acquire))
        return 0;
    struct xv_conn *c = t_lean.c;
    /* An app call first: no readiness flush starts beside it after this,
     * and one already writing still shows as queued. */
    xv_conn_io_begin(c, self_thread());
    if (!xv_conn_lean_ok(c, num) || xv_conn_tx_queued(c)) {
        xv_conn_io_end(c);
        return 0;
    }
    if (xv_poll_recorded())
        xv_poll_take_deadline(t_lean.fd); /* spent by this read, as in ssl_rx */
    struct tls_scope sc;
    scope_enter(&sc);
    xv_tls_cur.in_read = 1;
    size_t n = 0;
    if (got) {
        int (*rd_ex)(SSL *, void *, size_t, size_t *) = real;
        *ret = rd_ex(s, buf, num, &n);
        *got = n = *ret == 1 ? n : 0;
    } else {
        int (*rd)(SSL *, void *, int) = real;
        *ret = rd(s, buf, (int)num); /* num came in as an int */
        n = *ret > 0 ? (size_t)*ret : 0;
    }
    int e = errno;
    scope_leave(&sc);
    if (n) {
        xv_conn_lean_done(c, n);
    } else if (!ssl_would_block(s, *ret)) {
        t_lean.s = NULL; /* an end or error is the full path's to record */
    }
    xv_conn_io_end(c);
    errno = e;
    return 1;
}

/* After a full-path read of s on c (gen: g_ssl_gen before the lookup). */
__attribute__((noinline)) static void lean_note(SSL *s, struct xv_conn *c, uint64_t gen)
{
    t_lean.s = xv_conn_lean_ok(c, 0) && xv_conn_peer_known(c) ? s : NULL; /* credit open */
    t_lean.c = c;
    t_lean.gen = gen;
    t_lean.fd = xv_conn_io_fd(c);
}

static int ssl_read_common(SSL *s, void *buf, int num, int peek)
{
    int (*real)(SSL *, void *, int) = peek ? REAL(SSL_peek) : REAL(SSL_read);
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    int lean;
    if (!peek && num > 0 && t_lean.s == s &&
        ssl_lean_read(s, buf, (size_t)num, (void *)real, NULL, &lean))
        return lean;
    uint64_t gen = atomic_load_explicit(&g_ssl_gen, memory_order_acquire);
    struct xv_conn *c = io_conn(s, 0);
    if (!c || num <= 0 || (xv_conn_is_pass(c) && xv_conn_rx_pending(c) == 0 &&
                           !xv_conn_tx_queued(c))) {
        if (!c)
            return real(s, buf, num);
        int r = real(s, buf, num);
        int e = errno;
        io_done(c);
        errno = e;
        return r;
    }
    struct ssl_rd x = { .s = s, .ex = 0, .peek = peek };
    long r = ssl_rx(c, &x, buf, (size_t)num);
    if (!peek && r > 0 && (t_lean.s == s || xv_conn_lean_ok(c, 0))) {
        int e = errno;
        lean_note(s, c, gen); /* c: alive past io_done, as for ssl_lean_read */
        errno = e;
    }
    return r > 0 ? (int)r : x.ret;
}

static int ssl_read_ex_common(SSL *s, void *buf, size_t num, size_t *got, int peek)
{
    int (*real)(SSL *, void *, size_t, size_t *) = peek ? REAL(SSL_peek_ex) : REAL(SSL_read_ex);
    if (!real) {
        errno = ENOSYS;
        return 0;
    }
    int lean;
    size_t lean_got;
    if (!peek && num > 0 && t_lean.s == s &&
        ssl_lean_read(s, buf, num, (void *)real, &lean_got, &lean)) {
        if (got)
            *got = lean_got;
        return lean;
    }
    uint64_t gen = atomic_load_explicit(&g_ssl_gen, memory_order_acquire);
    struct xv_conn *c = io_conn(s, 0);
    if (!c || num == 0 || (xv_conn_is_pass(c) && xv_conn_rx_pending(c) == 0 &&
                           !xv_conn_tx_queued(c))) {
        if (!c)
            return real(s, buf, num, got);
        int r = real(s, buf, num, got);
        int e = errno;
        io_done(c);
        errno = e;
        return r;
    }
    struct ssl_rd x = { .s = s, .ex = 1, .peek = peek };
    long r = ssl_rx(c, &x, buf, num);
    if (!peek && r > 0 && (t_lean.s == s || xv_conn_lean_ok(c, 0))) {
        int e = errno;
        lean_note(s, c, gen); /* c: alive past io_done, as for ssl_lean_read */
        errno = e;
    }
    if (r > 0) {
        if (got)
            *got = (size_t)r;
        return 1;
    }
    if (got)
        *got = 0;
    return x.ret;
}

XV_HOOK int SSL_read(SSL *s, void *buf, int num)
{
    return ssl_read_common(s, buf, num, 0);
}

XV_HOOK int SSL_peek(SSL *s, void *buf, int num)
{
    return ssl_read_common(s, buf, num, 1);
}

XV_HOOK int SSL_read_ex(SSL *s, void *buf, size_t num, size_t *got)
{
    return ssl_read_ex_common(s, buf, num, got, 0);
}

XV_HOOK int SSL_peek_ex(SSL *s, void *buf, size_t num, size_t *got)
{
    return ssl_read_ex_common(s, buf, num, got, 1);
}

/* Bytes we hold for the app count as pending plaintext. */
static size_t held(const SSL *s)
{
    /* lock-free: nothing held anywhere (the normal case) needs no lookup */
    if (!xv_conn_held_any() || !xv_hooks_active())
        return 0;
    struct xv_conn *c = ssl_conn(s, 0);
    if (!c)
        return 0;
    size_t n = xv_conn_rx_pending(c);
    xv_conn_unref(c);
    return n;
}

XV_HOOK int SSL_pending(const SSL *s)
{
    int (*real)(const SSL *) = REAL(SSL_pending);
    int r = real ? real(s) : 0;
    size_t h = held(s);
    return h ? (int)(h + (size_t)r > INT32_MAX ? INT32_MAX : h + (size_t)r) : r;
}

XV_HOOK int SSL_has_pending(const SSL *s)
{
    int (*real)(const SSL *) = REAL(SSL_has_pending);
    if (held(s))
        return 1;
    return real ? real(s) : 0;
}

/* Results we return always come from a real call (or are > 0), so the
 * real SSL_get_error is right; the hook exists so synthetic results can
 * be explained later (SPEC §5). */
XV_HOOK int SSL_get_error(const SSL *s, int ret)
{
    int (*real)(const SSL *, int) = REAL(SSL_get_error);
    if (ret <= 0 && xv_hooks_active() && !xv_tls_cur.active) {
        /* After an answer made by the agent, the app's reads end cleanly. */
        struct xv_conn *c = ssl_conn(s, 0);
        if (c) {
            int eof = xv_conn_synthetic_eof(c);
            xv_conn_unref(c);
            if (eof)
                return SSL_ERROR_ZERO_RETURN;
        }
    }
    return real ? real(s, ret) : 1 /* SSL_ERROR_SSL */;
}

/* CPython reads SSL_read's 0 as a clean end of stream only when the peer's
 * close_notify arrived (SSL_get_shutdown == SSL_RECEIVED_SHUTDOWN); after an
 * answer made by the agent, say so. */
XV_HOOK int SSL_get_shutdown(const SSL *s)
{
    int (*real)(const SSL *) = REAL(SSL_get_shutdown);
    int r = real ? real(s) : 0;
    if (xv_hooks_active() && !xv_tls_cur.active) {
        struct xv_conn *c = ssl_conn(s, 0);
        if (c) {
            if (xv_conn_synthetic_eof(c))
                r |= 2; /* SSL_RECEIVED_SHUTDOWN */
            xv_conn_unref(c);
        }
    }
    return r;
}

XV_HOOK int SSL_shutdown(SSL *s)
{
    int (*real)(SSL *) = REAL(SSL_shutdown);
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    if (!xv_hooks_active())
        return real(s);
    /* A stream the agent answered itself is over as far as the app knows:
     * its shutdown completes at once. (The real session's peer never sent
     * close_notify, so a real two-way shutdown would wait for ever; asyncio
     * then failed the read that had the answer's body.) */
    struct xv_conn *c = xv_tls_cur.active ? NULL : ssl_conn_io(s, 0, 1);
    if (c) {
        int eof = xv_conn_synthetic_eof(c);
        long q = 0;
        struct ssl_wr w = { .s = s, .ex = 0, .ret = -1, .fd = -1, .err = errno };
        if (!eof && xv_conn_tx_queued(c))
            q = xv_conn_tx_flush(c, wr_ssl, &w); /* the request goes before close_notify */
        io_done(c);
        if (eof)
            return 1;
        if (q != 0) {
            /* still queued: the shutdown would block (SSL_get_error tells
             * what the retry waits for); an error is the write's */
            errno = w.err;
            return -1;
        }
    }
    struct tls_scope sc;
    scope_enter(&sc);
    int r = real(s);
    scope_leave(&sc);
    return r;
}

XV_HOOK void SSL_free(SSL *s)
{
    void (*real)(SSL *) = REAL(SSL_free);
    if (s && xv_hooks_active()) {
        int saved = errno;
        struct xv_conn *c = ssl_conn_remove(s);
        if (c) {
            drain_at_free(s, c);
            xv_conn_end(c, "SSL_free before the response completed");
            xv_conn_unref(c);
        }
        xv_alpn_forget_ssl(s); /* its address may come back as another SSL */
        errno = saved;
    }
    if (real)
        real(s);
}

/* ---- SNI and ALPN --------------------------------------------------------- */

XV_HOOK long SSL_ctrl(SSL *s, int cmd, long larg, void *parg)
{
    long (*real)(SSL *, int, long, void *) = REAL(SSL_ctrl);
    if (!real)
        return 0;
    long r = real(s, cmd, larg, parg);
    if (cmd != SSL_CTRL_SET_TLSEXT_HOSTNAME || r != 1 || !parg || !xv_hooks_active())
        return r;
    int saved = errno;
    struct xv_conn *c = ssl_conn(s, 1);
    if (c) {
        xv_conn_set_host(c, (const char *)parg);
        xv_conn_unref(c);
    }
    unsigned char protos[64];
    /* the SSL's own earlier offer wins over its context's */
    unsigned len = xv_alpn_take(s, protos, 1);
    if (xv_alpn_narrow_host((const char *)parg)) {
        if (!len) {
            SSL_CTX *(*getctx)(const SSL *) = REAL(SSL_get_SSL_CTX);
            len = xv_alpn_take(getctx ? getctx(s) : NULL, protos, 0);
        }
        if (len)
            xv_alpn_narrow_ssl(s, protos, len);
    }
    errno = saved;
    return r;
}

XV_HOOK int SSL_CTX_set_alpn_protos(SSL_CTX *ctx, const unsigned char *protos, unsigned len)
{
    int (*real)(SSL_CTX *, const unsigned char *, unsigned) = REAL(SSL_CTX_set_alpn_protos);
    if (!real)
        return 1;
    int r = real(ctx, protos, len);
    if (r == 0 && xv_hooks_active() && protos && len <= 64)
        xv_alpn_remember(ctx, protos, len, 0);
    return r;
}

XV_HOOK int SSL_set_alpn_protos(SSL *s, const unsigned char *protos, unsigned len)
{
    int (*real)(SSL *, const unsigned char *, unsigned) = REAL(SSL_set_alpn_protos);
    if (!real)
        return 1;
    if (xv_hooks_active() && protos) {
        struct xv_conn *c = ssl_conn(s, 0);
        struct xv_conn_peer p;
        p.host[0] = '\0';
        if (c) {
            xv_conn_get_peer(c, &p);
            xv_conn_unref(c);
        }
        if (p.host[0]) {
            unsigned char f[256];
            unsigned n = xv_alpn_narrow_host(p.host) ? xv_alpn_filter(protos, len, f, sizeof f) : 0;
            if (n)
                return real(s, f, n);
        } else if (len <= 64) {
            int r = real(s, protos, len);
            if (r == 0)
                xv_alpn_remember(s, protos, len, 1); /* narrowed when the host name is set */
            return r;
        }
    }
    return real(s, protos, len);
}

/* ---- addresses of our own hooks (for patch/) ------------------------------ */

/* Hidden aliases: inside this library `&SSL_write` would resolve through
 * the GOT to the program's own SSL_write when the program defines one
 * (Node does) — the very function being patched. The aliases bind here. */
#define XV_ALIAS(name) \
    extern __typeof__(name) xv_tls_self_##name __attribute__((alias(#name), visibility("hidden")));
XV_ALIAS(SSL_write)
XV_ALIAS(SSL_write_ex)
XV_ALIAS(SSL_read)
XV_ALIAS(SSL_read_ex)
XV_ALIAS(SSL_peek)
XV_ALIAS(SSL_peek_ex)
XV_ALIAS(SSL_pending)
XV_ALIAS(SSL_has_pending)
XV_ALIAS(SSL_get_error)
XV_ALIAS(SSL_shutdown)
XV_ALIAS(SSL_free)
XV_ALIAS(SSL_ctrl)
XV_ALIAS(SSL_set_alpn_protos)
XV_ALIAS(SSL_CTX_set_alpn_protos)
XV_ALIAS(SSL_get_shutdown)
#undef XV_ALIAS

XV_START_FN void xv_tls_hook_table(void *out[XV_SSL_FN_COUNT])
{
    for (int i = 0; i < XV_SSL_FN_COUNT; i++)
        out[i] = NULL;
    out[XV_SSL_write] = (void *)xv_tls_self_SSL_write;
    out[XV_SSL_write_ex] = (void *)xv_tls_self_SSL_write_ex;
    out[XV_SSL_read] = (void *)xv_tls_self_SSL_read;
    out[XV_SSL_read_ex] = (void *)xv_tls_self_SSL_read_ex;
    out[XV_SSL_peek] = (void *)xv_tls_self_SSL_peek;
    out[XV_SSL_peek_ex] = (void *)xv_tls_self_SSL_peek_ex;
    out[XV_SSL_pending] = (void *)xv_tls_self_SSL_pending;
    out[XV_SSL_has_pending] = (void *)xv_tls_self_SSL_has_pending;
    out[XV_SSL_get_error] = (void *)xv_tls_self_SSL_get_error;
    out[XV_SSL_shutdown] = (void *)xv_tls_self_SSL_shutdown;
    out[XV_SSL_free] = (void *)xv_tls_self_SSL_free;
    out[XV_SSL_ctrl] = (void *)xv_tls_self_SSL_ctrl;
    out[XV_SSL_set_alpn_protos] = (void *)xv_tls_self_SSL_set_alpn_protos;
    out[XV_SSL_CTX_set_alpn_protos] = (void *)xv_tls_self_SSL_CTX_set_alpn_protos;
    out[XV_SSL_get_shutdown] = (void *)xv_tls_self_SSL_get_shutdown;
    out[XV_SSL_X509_verify_cert] = xv_x509_hook_addr();
}
