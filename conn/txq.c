/*
 * txq.c — the send queue of a connection and how a write that queued is
 * reported to the app.
 *
 * Bytes the transport (a socket, or an SSL over a non-blocking one) would
 * not take yet wait in tx_out, never blocking a non-blocking socket; on TLS
 * every retry passes the queue from its start, as OpenSSL requires. A write
 * of the app whose own bytes are still queued is reported short by them (on
 * TLS as would-block) and a copy is kept in tx_owed; the app's retry of the
 * same bytes is reported written as the queue drains. So the app keeps
 * waiting for writability, and starts its read timeout once its request is
 * on the wire, as without the agent.
 *
 * Invariant: tx_owed holds only bytes that are also in tx_out (or already
 * sent); tx_owing mirrors tx_owed.len > 0 for lock-free readers.
 * Thread safety: callers hold c->mu; it is released around every real
 * write and wait.
 */
#include "xv_conn_int.h"

#include <string.h>

/* ---- writing ------------------------------------------------------------- */

/* Write all of p[0..n) (lock released around I/O). 0, or the failing wr result. */
long xv_conn_txq_write_all(struct xv_conn *c, const struct xv_conn_io *io, const char *p, size_t n)
{
    uint64_t deadline = xv_now_mono_ns() + (uint64_t)xv_conn_cfg.write_timeout_ms * 1000000u;
    while (n) {
        pthread_mutex_unlock(&c->mu);
        long w = io->wr(io->ctx, p, n);
        if (w == -1) {
            uint64_t now = xv_now_mono_ns();
            int left = now < deadline ? (int)((deadline - now) / 1000000u) + 1 : 0;
            int rc = left > 0 && io->wait ? io->wait(io->ctx, left) : -1;
            pthread_mutex_lock(&c->mu);
            if (rc != 0)
                return -1;
            continue;
        }
        pthread_mutex_lock(&c->mu);
        if (w <= 0)
            return w;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Send p[0..n) after whatever is queued, without ever waiting: what the
 * transport does not take now is queued in tx_out (it belongs to bytes the
 * app was already told were written). On TLS a would-block write has
 * already taken part of p into OpenSSL's pending record: all of p is
 * queued and every retry passes the queue from its start (the SSL hooks
 * allow the buffer to move; only the queue is written until it drained).
 * Returns 0, or the failing wr result (an error, not would-block). */
long xv_conn_txq_send(struct xv_conn *c, const struct xv_conn_io *io, const char *p, size_t n)
{
    while (n && !c->tx_out.len) {
        c->tx_busy = 1;
        pthread_mutex_unlock(&c->mu);
        long w = io->wr(io->ctx, p, n);
        pthread_mutex_lock(&c->mu);
        c->tx_busy = 0;
        if (w == -1)
            break;
        if (w <= 0)
            return w;
        p += w;
        n -= (size_t)w;
    }
    if (!n)
        return 0;
    if (xv_buf_append(&c->tx_out, p, n) != 0) {
        /* over the queue's bound (cannot happen for one held request):
         * drain what is queued, then write the rest, waiting (bounded).
         * On TLS a pending retry of p itself is written from p: that is
         * the only way left (write_all retries with the same bytes). */
        if (c->kind == XV_CONN_TLS && !c->tx_out.len)
            return xv_conn_txq_write_all(c, io, p, n);
        long rc = xv_conn_txq_write_all(c, io, c->tx_out.data, c->tx_out.len);
        xv_buf_reset(&c->tx_out);
        xv_conn_tx_track(c);
        return rc ? rc : xv_conn_txq_write_all(c, io, p, n);
    }
    xv_conn_tx_track(c);
    return 0;
}

/* Write queued bytes (plain sockets) with the app's own write call.
 * 0 when the queue is empty afterwards, -1 would block, or the error. */
long xv_conn_txq_drain(struct xv_conn *c, const struct xv_conn_io *io)
{
    while (c->tx_out.len) {
        c->tx_busy = 1;
        pthread_mutex_unlock(&c->mu);
        long w = io->wr(io->ctx, c->tx_out.data, c->tx_out.len);
        pthread_mutex_lock(&c->mu);
        c->tx_busy = 0;
        if (w <= 0) {
            xv_conn_tx_track(c);
            return w;
        }
        xv_buf_consume(&c->tx_out, (size_t)w);
    }
    xv_conn_tx_track(c);
    return 0;
}

/* ---- reporting a write that queued --------------------------------------- */

static void owed_set(struct xv_conn *c)
{
    atomic_store_explicit(&c->tx_owing, c->tx_owed.len > 0, memory_order_relaxed);
}

/* A write of the app took `accepted` bytes of buf and left bytes in the
 * send queue: report it short by as many of its own bytes as are still
 * queued (on TLS by all of them: SSL_write reports all or nothing unless
 * partial writes are enabled, and the app must retry the same bytes), and
 * keep a copy of those bytes to recognise the retry (tx_owed_write). The
 * app keeps waiting for writability and starts its read timeout only once
 * the request is out, as it would without the agent. Returns the count to
 * report (0: would-block). Over the copy's bound it reports all, as before. */
long xv_conn_txq_owe(struct xv_conn *c, const char *buf, long accepted)
{
    size_t q = c->tx_out.len;
    size_t owe = (size_t)accepted;
    if (c->kind == XV_CONN_PLAIN && owe > q)
        owe = q;
    xv_buf_reset(&c->tx_owed);
    if (!owe || xv_buf_append(&c->tx_owed, buf + accepted - (long)owe, owe) != 0) {
        xv_buf_reset(&c->tx_owed);
        owed_set(c);
        return accepted;
    }
    owed_set(c);
    return accepted - (long)owe;
}

/* A write while the app owes a retry: the same bytes (its unsent rest) are
 * reported written as far as the queue has drained; other bytes mean the
 * app wrote something new, which goes after the queue (*handled = 0). */
long xv_conn_txq_owed_write(struct xv_conn *c, const struct xv_conn_io *io, const char *buf, size_t len,
                          int *handled)
{
    size_t m = len < c->tx_owed.len ? len : c->tx_owed.len;
    *handled = 0;
    if (memcmp(buf, c->tx_owed.data, m) != 0) {
        xv_buf_reset(&c->tx_owed);
        owed_set(c);
        return 0;
    }
    *handled = 1;
    long rc = c->tx_out.len ? xv_conn_txq_drain(c, io) : 0;
    size_t q = c->tx_out.len;
    size_t can = c->tx_owed.len > q ? c->tx_owed.len - q : 0;
    if (c->kind != XV_CONN_PLAIN && q)
        can = 0;
    size_t r = m < can ? m : can;
    if (!r)
        return rc ? rc : -1;
    xv_buf_consume(&c->tx_owed, r);
    owed_set(c);
    return (long)r;
}
