/*
 * stream.c — a connection's transport side: the send queue (tx_out) shared
 * by the write path (tx.c), the read hooks and the readiness hooks, the
 * count of connections holding bytes for the app (out), the
 * sockets a stream is known to use, and the count of app calls running on
 * a stream (for the TLS hooks, which may drive an SSL from a readiness
 * hook only while the app is not using it).
 *
 * Invariant: xv_conn_tx_pending_n counts exactly the connections whose
 * tx_out is non-empty (tx_counted set), g_held those whose out is
 * (out_counted), each kept in step under the connection's lock, so
 * "nothing queued anywhere" is one relaxed load.
 *
 * Thread safety: per-connection state under c->mu; the registry walk under
 * its lock (conn.c); io_calls/io_owner are atomics read lock-free.
 */
#include "xv_conn_int.h"

#include <stdint.h>

/* Connections whose output queue (out) holds bytes for the app. */
static atomic_int g_held;

void xv_conn_count_flag(atomic_int *flag, atomic_int *total, int now)
{
    if (atomic_load(flag) != now) {
        atomic_store(flag, now);
        atomic_fetch_add(total, now ? 1 : -1);
    }
}

void xv_conn_out_track(struct xv_conn *c)
{
    xv_conn_count_flag(&c->out_counted, &g_held, c->out.len > 0);
    if (c->out.len) /* bytes queued for the app go before any lean read */
        atomic_store_explicit(&c->lean_left, 0, memory_order_relaxed);
}

int xv_conn_held_any(void)
{
    return atomic_load_explicit(&g_held, memory_order_relaxed) > 0;
}

/* Does a connection counted as holding bytes for the app (held; its wire
 * or hint fd), else one with a send queue (its wire fd), use fd? A walk of
 * the registry under its lock. */
static int fd_counted(int fd, int held)
{
    int found = 0;
    xv_conn_reg_lock();
    for (struct xv_conn *c = xv_conn_reg_head(); c && !found; c = c->reg_next)
        found = atomic_load(held ? &c->out_counted : &c->tx_counted) &&
                (c->wire_fd == fd || (held && c->hint_fd == fd));
    xv_conn_reg_unlock();
    return found;
}

int xv_conn_fd_held(int fd)
{
    return fd >= 0 && xv_conn_held_any() && fd_counted(fd, 1);
}

/* Connections whose send queue (tx_out) holds accepted request bytes. */
atomic_int xv_conn_tx_pending_n XV_CALL_DATA;

void xv_conn_tx_track(struct xv_conn *c)
{
    xv_conn_count_flag(&c->tx_counted, &xv_conn_tx_pending_n, c->tx_out.len > 0);
}

int xv_conn_tx_pending_any(void)
{
    return atomic_load_explicit(&xv_conn_tx_pending_n, memory_order_relaxed) > 0;
}

int xv_conn_fd_tx_pending(int fd)
{
    return fd >= 0 && xv_conn_tx_pending_any() &&
           fd_counted(fd, 0);
}

int xv_conn_fd_tx_stream(int fd)
{
    if (fd < 0 || !xv_conn_tx_pending_any())
        return 0;
    int found = 0;
    xv_conn_reg_lock();
    for (struct xv_conn *c = xv_conn_reg_head(); c && !found; c = c->reg_next)
        found = atomic_load(&c->tx_counted) && c->kind != XV_CONN_PLAIN &&
                (c->wire_fd == fd || c->hint_fd == fd);
    xv_conn_reg_unlock();
    return found;
}

int xv_conn_tx_queued(struct xv_conn *c)
{
    return (xv_conn_tx_pending_any() &&
            atomic_load_explicit(&c->tx_counted, memory_order_relaxed)) ||
           atomic_load_explicit(&c->tx_owing, memory_order_relaxed);
}

long xv_conn_tx_flush(struct xv_conn *c, xv_conn_write_fn wr, void *ctx)
{
    /* Non-blocking writes only (the caller's wr), so c->mu stays held and
     * no other writer can interleave; a writer that released the lock
     * around its own real write (tx_busy) is left to finish the job. */
    pthread_mutex_lock(&c->mu);
    long rc = 0;
    while (c->tx_out.len && !c->tx_busy) {
        long w = wr(ctx, c->tx_out.data, c->tx_out.len);
        if (w <= 0) {
            rc = w < 0 ? w : -1;
            break;
        }
        xv_buf_consume(&c->tx_out, (size_t)w);
    }
    if (c->tx_out.len && !rc)
        rc = -1;
    xv_conn_tx_track(c);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

struct fd_wr {
    long (*fn)(int fd, const char *buf, size_t len);
    int fd;
};

static long fd_wr_call(void *ctx, const char *buf, size_t len)
{
    struct fd_wr *w = ctx;
    return w->fn(w->fd, buf, len);
}

int xv_conn_tx_flush_all(long (*wr_fd)(int fd, const char *buf, size_t len),
                         int (*flush_stream)(struct xv_conn *c, void *ud))
{
    if (!xv_conn_tx_pending_any())
        return 0;
    struct xv_conn *todo[64];
    int n = 0;
    xv_conn_reg_lock();
    for (struct xv_conn *c = xv_conn_reg_head(); c && n < 64; c = c->reg_next)
        if (atomic_load(&c->tx_counted) &&
            (c->kind == XV_CONN_PLAIN ? wr_fd && c->wire_fd >= 0 : flush_stream != NULL)) {
            xv_conn_ref(c);
            todo[n++] = c;
        }
    xv_conn_reg_unlock();
    int left = 0;
    for (int i = 0; i < n; i++) {
        int tried = 1;
        if (todo[i]->kind == XV_CONN_PLAIN) {
            struct fd_wr w = { wr_fd, todo[i]->wire_fd };
            xv_conn_tx_flush(todo[i], fd_wr_call, &w);
        } else {
            /* notify_ud is written once, before the stream carries data */
            tried = flush_stream(todo[i], todo[i]->notify_ud);
        }
        left += tried && atomic_load(&todo[i]->tx_counted);
        xv_conn_unref(todo[i]);
    }
    return left;
}

void xv_conn_io_begin(struct xv_conn *c, uintptr_t thread)
{
    atomic_fetch_add_explicit(&c->io_calls, 1, memory_order_acq_rel);
    if (atomic_load_explicit(&c->io_owner, memory_order_relaxed) != thread)
        atomic_store_explicit(&c->io_owner, thread, memory_order_relaxed);
}

void xv_conn_io_end(struct xv_conn *c)
{
    atomic_fetch_sub_explicit(&c->io_calls, 1, memory_order_acq_rel);
}

int xv_conn_io_idle_for(struct xv_conn *c, uintptr_t thread)
{
    return atomic_load_explicit(&c->io_calls, memory_order_acquire) == 0 &&
           atomic_load_explicit(&c->io_owner, memory_order_relaxed) == thread;
}

void xv_conn_set_wire_fd(struct xv_conn *c, int fd)
{
    pthread_mutex_lock(&c->mu);
    c->wire_fd = fd;
    pthread_mutex_unlock(&c->mu);
}

void xv_conn_set_hint_fd(struct xv_conn *c, int fd)
{
    pthread_mutex_lock(&c->mu);
    c->hint_fd = fd;
    pthread_mutex_unlock(&c->mu);
}

int xv_conn_wire_fd(struct xv_conn *c)
{
    pthread_mutex_lock(&c->mu);
    int fd = c->wire_fd;
    pthread_mutex_unlock(&c->mu);
    return fd;
}

int xv_conn_io_fd(struct xv_conn *c)
{
    pthread_mutex_lock(&c->mu);
    int fd = c->wire_fd >= 0 ? c->wire_fd : c->hint_fd;
    pthread_mutex_unlock(&c->mu);
    return fd;
}

uint64_t xv_conn_rx_skipped(struct xv_conn *c)
{
    pthread_mutex_lock(&c->mu);
    xv_conn_lean_settle(c);
    uint64_t n = c->rx_skipped;
    pthread_mutex_unlock(&c->mu);
    return n;
}

int xv_conn_is_pass(const struct xv_conn *c)
{
    int m = atomic_load_explicit(&((struct xv_conn *)c)->mode, memory_order_relaxed);
    return m == XV_CONN_PASS || m == XV_CONN_TLSWIRE;
}

int xv_conn_peer_known(const struct xv_conn *c)
{
    return atomic_load_explicit(&((struct xv_conn *)c)->peer_known, memory_order_relaxed);
}

int xv_conn_mode(const struct xv_conn *c)
{
    return atomic_load(&((struct xv_conn *)c)->mode);
}

size_t xv_conn_rx_pending(struct xv_conn *c)
{
    pthread_mutex_lock(&c->mu);
    size_t n = c->out.len - c->out_off;
    pthread_mutex_unlock(&c->mu);
    return n;
}

/* ---- lean reads (see xv_conn.h) ------------------------------------------
 * lean_left is written under mu (opened by conn.c's lean_open after a
 * fast-path read, closed by the settle and by anything queuing bytes for
 * the app) and lowered lock-free by the reader; lean_used carries the
 * reader's bytes to the next settle. A read the credit covers leaves at
 * least one body byte, so the body's end, and all after it, is always the
 * locked path's. */

int xv_conn_lean_ok(struct xv_conn *c, size_t len)
{
    return atomic_load_explicit(&c->lean_left, memory_order_acquire) > len;
}

void xv_conn_lean_done(struct xv_conn *c, size_t n)
{
    uint64_t cur = atomic_load_explicit(&c->lean_left, memory_order_relaxed);
    /* closed meanwhile (settle): stays closed */
    while (cur && !atomic_compare_exchange_weak_explicit(&c->lean_left, &cur,
                                                          cur > n ? cur - n : 0,
                                                          memory_order_relaxed,
                                                          memory_order_relaxed)) {
    }
    atomic_fetch_add_explicit(&c->lean_used, n, memory_order_release);
}

void xv_conn_lean_settle_slow(struct xv_conn *c)
{
    atomic_store_explicit(&c->lean_left, 0, memory_order_relaxed);
    uint64_t used = atomic_exchange_explicit(&c->lean_used, 0, memory_order_acquire);
    /* the bytes were inside the body, short of its end */
    if (used && c->resp && xv_http_parser_body_skip(c->resp, (size_t)used) == 0)
        c->rx_skipped += used;
}
