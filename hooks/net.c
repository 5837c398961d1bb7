/*
 * net.c — socket hooks: connect, the plain read/write family, close and the
 * dup family. Hook bodies stay short: fast exit when the fd is not ours,
 * otherwise call the real function and hand bytes to the connection.
 *
 * The fd table maps socket fds (below XV_FD_MAX) to connections; an empty
 * slot costs one relaxed atomic load. Slots are replaced under a striped
 * lock; a hook holds its own reference while it runs, so a concurrent
 * close cannot free a connection in use.
 *
 * errno: hooks return exactly what the real call returned with the errno
 * it set; on success errno is what it was on entry.
 */
#include "xv_hooks.h"
#include "xv_route.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sched.h>
#include <unistd.h>

#include "xv_common.h"

#define XV_FD_MAX 65536
/* Stripes of the fd table's lock: taken only for watched fds, for a few
 * loads; 16 of them keep the first call's locks and the rest of .xvcall on
 * one page (common/xv_place.h), 64 took two. */
#define XV_FD_LOCKS 16

/* fd -> connection (one reference held by the table). */
static struct xv_conn *_Atomic g_fds[XV_FD_MAX] XV_LARGE_BSS;
/* Slots of g_fds in use (the readiness hooks' cheap "anything watched?"). */
static atomic_int g_nfds XV_CALL_DATA;
/* (with the start-up data: a first call locks one, XV_START_DATA) */
static pthread_mutex_t g_fd_mu[XV_FD_LOCKS] XV_CALL_DATA = { [0 ... XV_FD_LOCKS - 1] = PTHREAD_MUTEX_INITIALIZER };
/* 0: not yet or inert; 1: active, first use (xv_hooks_on_first_use) still
 * to run; 2: active, and it ran */
static atomic_int g_ready XV_START_DATA;
static void (*_Atomic g_first_use)(void) XV_START_DATA;

__thread struct xv_tls_current xv_tls_cur __attribute__((tls_model("initial-exec")));
__thread int xv_tls_last_wire_fd __attribute__((tls_model("initial-exec"))) = -1;

/* start-up code: called by the constructor (and at exit) */
XV_START_FN void xv_hooks_set_ready(int active)
{
    atomic_store(&g_ready, !active ? 0 : atomic_load(&g_first_use) ? 1 : 2);
}

XV_START_FN void xv_hooks_on_first_use(void (*fn)(void))
{
    atomic_store_explicit(&g_first_use, fn, memory_order_release);
}

/* The thread running the first-use callback (a signal handler on it must
 * not wait for itself). */
static __thread int t_first_use __attribute__((tls_model("initial-exec")));

static __attribute__((noinline, cold)) void first_use(void)
{
    void (*fn)(void) = atomic_exchange_explicit(&g_first_use, NULL, memory_order_acq_rel);
    if (fn) {
        int saved = errno;
        t_first_use = 1;
        fn();
        t_first_use = 0;
        errno = saved;
        atomic_store_explicit(&g_ready, 2, memory_order_release);
        return;
    }
    /* another thread runs it: wait (microseconds), unless that is us */
    while (!t_first_use && atomic_load_explicit(&g_ready, memory_order_acquire) == 1)
        sched_yield();
}

int xv_hooks_active(void)
{
    int r = atomic_load_explicit(&g_ready, memory_order_relaxed);
    if (r != 2) {
        if (!r || xv_guard_active())
            return 0;
        first_use();
    }
    return !xv_guard_active();
}

/* The locks start statically initialised (no constructor writes their
 * pages at start); a fork child re-initialises them. */
void xv_net_atfork_child(void)
{
    for (int i = 0; i < XV_FD_LOCKS; i++)
        pthread_mutex_init(&g_fd_mu[i], NULL);
}

/* The slot of fd, unlocked (a hint: NULL or a connection that may be going
 * away). Reads no slot before the first is set: the table's first page is
 * then written before it is ever read (one page fault, not a read fault
 * and a copy-on-write one, issue 9). */
static inline struct xv_conn *fd_peek(int fd)
{
    if (fd < 0 || fd >= XV_FD_MAX || !atomic_load_explicit(&g_nfds, memory_order_relaxed))
        return NULL;
    return atomic_load_explicit(&g_fds[fd], memory_order_relaxed);
}

struct xv_conn *xv_net_conn_get(int fd)
{
    if (!fd_peek(fd))
        return NULL;
    pthread_mutex_t *mu = &g_fd_mu[fd % XV_FD_LOCKS];
    pthread_mutex_lock(mu);
    struct xv_conn *c = atomic_load(&g_fds[fd]);
    if (c)
        xv_conn_ref(c);
    pthread_mutex_unlock(mu);
    return c;
}

/* Install c (taking a new reference) or clear the slot; drops the old one. */
static void fd_slot_set(int fd, struct xv_conn *c)
{
    if (fd < 0 || fd >= XV_FD_MAX)
        return;
    if (!c && !fd_peek(fd))
        return;
    if (c)
        xv_conn_ref(c);
    pthread_mutex_t *mu = &g_fd_mu[fd % XV_FD_LOCKS];
    pthread_mutex_lock(mu);
    struct xv_conn *old = atomic_exchange(&g_fds[fd], c);
    if (!old != !c)
        atomic_fetch_add_explicit(&g_nfds, c ? 1 : -1, memory_order_relaxed);
    pthread_mutex_unlock(mu);
    if (old)
        xv_conn_unref(old); /* may record open calls: outside the lock */
}

int xv_net_any_watched(void)
{
    return atomic_load_explicit(&g_nfds, memory_order_relaxed) > 0;
}

int xv_net_peer(int fd, struct xv_conn_peer *out)
{
    struct xv_conn *c = xv_net_conn_get(fd);
    if (!c)
        return -1;
    xv_conn_get_peer(c, out);
    xv_conn_unref(c);
    return 0;
}

/* ---- connect ------------------------------------------------------------ */

/* The agent queued an answer the app must read: make the socket readable
 * for poll/select/epoll (level- and edge-triggered alike) without touching
 * the app's registrations. After SHUT_RD the kernel reports the socket
 * readable; the read hooks serve the queued bytes, then end of stream. */
static void notify_readable(void *ud, int wire_fd)
{
    (void)wire_fd;
    int saved = errno;
    XV_REAL(shutdown)((int)(intptr_t)ud, SHUT_RD);
    errno = saved;
}

void xv_net_notify_fd(int fd, int wake_byte)
{
    notify_readable((void *)(intptr_t)fd, fd);
    if (wake_byte) {
        struct xv_conn *c = xv_net_conn_get(fd);
        if (c) {
            xv_conn_set_wake_byte(c);
            xv_conn_unref(c);
        }
    }
}

static void track_connect(int fd, const struct sockaddr *sa, socklen_t len,
                          const struct xv_route_rule *route)
{
    struct xv_conn_peer peer;
    memset(&peer, 0, sizeof peer);
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, peer.addr, sizeof peer.addr);
        peer.port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, peer.addr, sizeof peer.addr);
        peer.port = ntohs(in6->sin6_port);
    } else {
        return;
    }
    int type = 0;
    socklen_t tl = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_STREAM)
        return;
    xv_dns_lookup(peer.addr, peer.host, sizeof peer.host);
    if (route && route->local)
        peer.replay_local = 1;
    if (route && !route->local) {
        /* the program's view stays the original host; records say where the
         * call really went */
        if (!peer.host[0] || xv_route_sentinel_rule(sa, len) >= 0)
            snprintf(peer.host, sizeof peer.host, "%s",
                     peer.host[0] ? peer.host : route->match_host);
        peer.route_url = route->url;
        peer.via_host = route->host;
        peer.via_port = route->port;
    }
    struct xv_conn *c = xv_conn_new(XV_CONN_PLAIN, &peer);
    if (!c)
        return;
    xv_conn_set_notify(c, notify_readable, (void *)(intptr_t)fd);
    xv_conn_set_wire_fd(c, fd);
    fd_slot_set(fd, c);
    xv_conn_unref(c);
}

/* The route (SPEC §8) of a stream socket connecting to sa, or NULL: a
 * sentinel address our getaddrinfo gave a routed name, or an address whose
 * name (or the address itself) a rule names. */
static const struct xv_route_rule *route_for(int fd, const struct sockaddr *sa, socklen_t len,
                                             char *host, size_t hostlen, int *port)
{
    const struct xv_route_config *cfg = xv_route_config();
    char addr[64];
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, addr, sizeof addr);
        *port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof addr);
        *port = ntohs(in6->sin6_port);
    } else {
        return NULL;
    }
    int type = 0;
    socklen_t tl = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_STREAM)
        return NULL;
    int idx = xv_route_sentinel_rule(sa, len);
    if (idx >= 0) {
        if (xv_dns_lookup(addr, host, hostlen) != 0)
            snprintf(host, hostlen, "%s", cfg->rule[idx].match_host);
        return &cfg->rule[idx];
    }
    const struct xv_route_rule *r = NULL;
    if (xv_dns_lookup(addr, host, hostlen) == 0)
        r = xv_route_match(cfg, host, *port);
    if (!r && (r = xv_route_match(cfg, addr, *port)) != NULL)
        snprintf(host, hostlen, "%s", addr);
    return r;
}

/* preload/'s once-only work for the first connect (xv_hooks_on_first_connect). */
static void (*_Atomic g_first_connect)(void) XV_START_DATA;

XV_START_FN void xv_hooks_on_first_connect(void (*fn)(void))
{
    atomic_store_explicit(&g_first_connect, fn, memory_order_release);
}

XV_HOOK int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    xv_real_init();
    if (atomic_load_explicit(&g_first_connect, memory_order_relaxed) && sa &&
        (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) && xv_hooks_active()) {
        void (*fn)(void) = atomic_exchange_explicit(&g_first_connect, NULL, memory_order_acq_rel);
        if (fn) {
            int saved = errno;
            xv_guard_enter();
            fn();
            xv_guard_leave();
            errno = saved;
        }
    }
    const struct xv_route_rule *route = NULL;
    char rhost[256];
    int rport = 0;
    if (sa && xv_route_config() && xv_hooks_active())
        route = route_for(fd, sa, len, rhost, sizeof rhost, &rport);
    int rc = route ? xv_route_connect(fd, route, rhost, rport, xv_real.connect)
                   : XV_REAL(connect)(fd, sa, len);
    if (!xv_hooks_active() || !sa)
        return rc;
    int saved = errno;
    fd_slot_set(fd, NULL); /* whatever this fd was before, it is a new stream now */
    if (rc == 0 || saved == EINPROGRESS || saved == EINTR)
        track_connect(fd, sa, len, route);
    errno = saved;
    return rc;
}

/* ---- writes ------------------------------------------------------------- */

/* The connection a socket read or write must go through, or NULL for
 * passthrough. A plain (non-HTTP) connection is dropped from the table on
 * the way, so it costs one relaxed load from then on; TLS carriers stay
 * known so their SSL can learn the peer. */
static struct xv_conn *watched_conn(int fd)
{
    if (xv_tls_cur.active) {
        /* OpenSSL's record layer moving ciphertext: learn its fd, pass. */
        if (xv_tls_cur.fd < 0)
            xv_tls_cur.fd = fd;
        return NULL;
    }
    if (!xv_hooks_active())
        return NULL;
    struct xv_conn *c = xv_net_conn_get(fd);
    if (c && xv_conn_is_pass(c) && xv_conn_rx_pending(c) == 0 && !xv_conn_tx_queued(c)) {
        int mode = xv_conn_mode(c);
        if (mode == XV_CONN_TLSWIRE)
            xv_tls_last_wire_fd = fd;
        xv_conn_unref(c);
        if (mode == XV_CONN_PASS) {
            int saved = errno;
            fd_slot_set(fd, NULL);
            errno = saved;
        }
        return NULL;
    }
    return c;
}

/* One real write for xv_conn_tx_write; remembers errno for the hook. */
struct wr_ctx {
    int fd;
    int kind;   /* 0 write, 1 send, 2 sendto */
    int flags;
    const struct sockaddr *sa;
    socklen_t salen;
    int err;    /* errno after the last real call */
};

static long wr_sock(void *vctx, const char *buf, size_t len)
{
    struct wr_ctx *x = vctx;
    ssize_t r;
    if (x->kind == 0)
        r = XV_REAL(write)(x->fd, buf, len);
    else if (x->kind == 1)
        r = XV_REAL(send)(x->fd, buf, len, x->flags);
    else
        r = XV_REAL(sendto)(x->fd, buf, len, x->flags, x->sa, x->salen);
    x->err = errno;
    if (r < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? -1 : -2;
    return (long)r;
}

/* Wait for a would-block socket to drain (held requests only). */
int xv_net_wait(int fd, short events, int timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = events };
    for (;;) {
        int r = XV_REAL(poll)(&p, 1, timeout_ms);
        if (r > 0)
            return 0;
        if (r < 0 && errno == EINTR)
            continue;
        return -1;
    }
}

static int wait_sock(void *vctx, int timeout_ms)
{
    return xv_net_wait(((struct wr_ctx *)vctx)->fd, POLLOUT, timeout_ms);
}

static ssize_t tx_run(struct xv_conn *c, struct wr_ctx *x, const void *buf, size_t n)
{
    int saved = errno;
    x->err = saved;
    long r = xv_conn_tx_write(c, buf, n, wr_sock, wait_sock, x);
    xv_conn_unref(c);
    if (r > 0) {
        errno = saved;
        return (ssize_t)r;
    }
    if (r == XV_E_STATE) {
        errno = EPIPE; /* the agent answered; the stream is closed for writing */
        return -1;
    }
    errno = x->err;
    return r == 0 ? 0 : -1;
}

/* Vectored writes on a watched connection: one buffer after the other,
 * stopping at the first short write (which writev allows). */
static ssize_t txv_run(struct xv_conn *c, struct wr_ctx *x, const struct iovec *iov, int n)
{
    ssize_t total = 0;
    for (int i = 0; i < n; i++) {
        if (iov[i].iov_len == 0)
            continue;
        xv_conn_ref(c);
        ssize_t r = tx_run(c, x, iov[i].iov_base, iov[i].iov_len);
        if (r <= 0) {
            xv_conn_unref(c);
            return total ? total : r;
        }
        total += r;
        if ((size_t)r < iov[i].iov_len)
            break;
    }
    xv_conn_unref(c);
    return total;
}

XV_HOOK ssize_t write(int fd, const void *buf, size_t n)
{
    struct xv_conn *c = watched_conn(fd);
    if (!c)
        return XV_REAL(write)(fd, buf, n);
    struct wr_ctx x = { .fd = fd, .kind = 0 };
    return tx_run(c, &x, buf, n);
}

XV_HOOK ssize_t send(int fd, const void *buf, size_t n, int flags)
{
    struct xv_conn *c = watched_conn(fd);
    if (!c)
        return XV_REAL(send)(fd, buf, n, flags);
    struct wr_ctx x = { .fd = fd, .kind = 1, .flags = flags };
    return tx_run(c, &x, buf, n);
}

XV_HOOK ssize_t sendto(int fd, const void *buf, size_t n, int flags,
                       const struct sockaddr *sa, socklen_t len)
{
    struct xv_conn *c = watched_conn(fd);
    if (!c)
        return XV_REAL(sendto)(fd, buf, n, flags, sa, len);
    struct wr_ctx x = { .fd = fd, .kind = 2, .flags = flags, .sa = sa, .salen = len };
    return tx_run(c, &x, buf, n);
}

XV_HOOK ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    struct xv_conn *c = watched_conn(fd);
    if (!c)
        return XV_REAL(writev)(fd, iov, iovcnt);
    struct wr_ctx x = { .fd = fd, .kind = 0 };
    return txv_run(c, &x, iov, iovcnt);
}

XV_HOOK ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    struct xv_conn *c = watched_conn(fd);
    if (!c || msg->msg_controllen || msg->msg_name) {
        /* ancillary data or an address: not an HTTP byte stream write */
        if (c)
            xv_conn_unref(c);
        return XV_REAL(sendmsg)(fd, msg, flags);
    }
    struct wr_ctx x = { .fd = fd, .kind = 1, .flags = flags };
    return txv_run(c, &x, msg->msg_iov, (int)msg->msg_iovlen);
}

/* ---- reads -------------------------------------------------------------- */

/* A TLS carrier whose memory-BIO SSL was answered by the agent: the event
 * loop gets one dummy byte, feeds it to the SSL and calls SSL_read, which
 * the TLS hooks serve from the answer. Returns 1 when it took the read. */
static int wake_read(int fd, void *buf, size_t n, ssize_t *ret)
{
    if (n == 0 || xv_tls_cur.active || !xv_hooks_active() || !fd_peek(fd))
        return 0;
    struct xv_conn *c = xv_net_conn_get(fd);
    if (!c)
        return 0;
    int take = xv_conn_mode(c) == XV_CONN_TLSWIRE && xv_conn_take_wake_byte(c);
    xv_conn_unref(c);
    if (take) {
        ((char *)buf)[0] = 0;
        *ret = 1;
    }
    return take;
}

/* One real read for xv_conn_rx; remembers errno for the hook to restore. */
struct rd_ctx {
    int fd;
    int kind;   /* 0 read, 1 recv, 2 recvfrom */
    int flags;
    struct sockaddr *sa;
    socklen_t *salen;
    int err;    /* errno after the real call */
    int reads;  /* real reads made so far in this hook call */
    uint64_t start_ns; /* when the hook was entered */
    uint64_t poll_deadline_ns; /* end of the readiness wait the read follows, 0 none */
};

/* Milliseconds a blocking read on fd may still take before the app's own
 * SO_RCVTIMEO (counted from start_ns, the hook's entry) or the end of the
 * readiness wait it follows (poll_deadline_ns) passes, whichever is first;
 * -1 when there is no such deadline (non-blocking socket, MSG_DONTWAIT,
 * neither). */
static int rd_budget_ms(int fd, int flags, uint64_t start_ns, uint64_t poll_deadline_ns)
{
    if (flags & MSG_DONTWAIT)
        return -1;
    int fl = XV_REAL(fcntl)(fd, F_GETFL);
    if (fl < 0 || (fl & O_NONBLOCK))
        return -1;
    uint64_t now = xv_now_mono_ns();
    int left = -1;
    if (poll_deadline_ns)
        left = now >= poll_deadline_ns ? 0 : (int)((poll_deadline_ns - now) / 1000000u);
    struct timeval tv;
    socklen_t tl = sizeof tv;
    if (getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &tl) != 0 ||
        (tv.tv_sec == 0 && tv.tv_usec == 0))
        return left;
    uint64_t lim = (uint64_t)tv.tv_sec * 1000000000u + (uint64_t)tv.tv_usec * 1000u;
    uint64_t used = now - start_ns;
    int t = used >= lim ? 0 : (int)((lim - used) / 1000000u);
    return (left < 0 || t < left) ? t : left;
}

int xv_net_read_deadline(int fd, int flags, uint64_t start_ns, uint64_t poll_deadline_ns)
{
    int saved = errno;
    int left = rd_budget_ms(fd, flags, start_ns, poll_deadline_ns);
    int passed = 0;
    if (left >= 0) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        passed = (left > 0 ? XV_REAL(poll)(&p, 1, left) : 0) == 0;
    }
    errno = saved;
    return passed;
}

static long rd_sock(void *vctx, char *buf, size_t len)
{
    struct rd_ctx *x = vctx;
    ssize_t r;
    if (x->reads++ > 0 &&
        xv_net_read_deadline(x->fd, x->flags, x->start_ns, x->poll_deadline_ns)) {
        /* A later read of the same call (a held head is being completed):
         * never wait past the app's own SO_RCVTIMEO, nor past the timeout
         * of the poll that told it the read would not block (issue 7). */
        x->err = EAGAIN;
        return XV_CONN_RD_DEADLINE;
    }
    if (x->kind == 0)
        r = XV_REAL(read)(x->fd, buf, len);
    else if (x->kind == 1)
        r = XV_REAL(recv)(x->fd, buf, len, x->flags);
    else
        r = XV_REAL(recvfrom)(x->fd, buf, len, x->flags, x->sa, x->salen);
    x->err = errno;
    if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        return XV_CONN_RD_ERROR; /* the state machine may hand held bytes over first */
    return (long)r;
}

/* Non-blocking write for the send queue's flushes (readiness hooks, reads). */
static long wr_nowait(int fd, const char *buf, size_t len)
{
    ssize_t r = XV_REAL(send)(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? -1 : -2;
    return (long)r;
}

static long wr_nowait_ctx(void *ctx, const char *buf, size_t len)
{
    return wr_nowait(*(int *)ctx, buf, len);
}

void xv_net_tx_flush_all(void)
{
    if (!xv_conn_tx_pending_any())
        return;
    int saved = errno;
    xv_conn_tx_flush_all(wr_nowait, NULL);
    xv_tls_flush_all();
    errno = saved;
}

void xv_net_tx_drain_all(int timeout_ms)
{
    if (!xv_conn_tx_pending_any())
        return;
    int saved = errno;
    uint64_t deadline = xv_now_mono_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        /* plain sockets, and the SSLs of the exiting thread (their
         * owner); queues no flush may touch do not hold the exit up */
        int left = xv_conn_tx_flush_all(wr_nowait, NULL) + xv_tls_flush_all();
        if (!left || xv_now_mono_ns() >= deadline)
            break;
        struct timespec ts = { 0, 10 * 1000000 };
        nanosleep(&ts, NULL);
    }
    errno = saved;
}

/* Before a read on a stream with queued request bytes: push them on (the
 * response cannot come before the request is out). */
static void rx_flush(struct xv_conn *c, int fd)
{
    if (!xv_conn_tx_pending_any())
        return;
    int saved = errno;
    xv_conn_tx_flush(c, wr_nowait_ctx, &fd);
    errno = saved;
}

/* At close or shutdown(SHUT_WR): request bytes the agent still holds (an
 * incomplete request) or queued were reported written, so they go out
 * before the FIN (waiting, bounded by the write timeout, as SO_LINGER
 * would; the kernel would have sent them after close too). */
static void tx_drain_at_close(int fd)
{
    struct xv_conn *c = xv_net_conn_get(fd);
    if (!c)
        return;
    int saved = errno;
    if (xv_conn_tx_cut(c)) {
        uint64_t deadline = xv_now_mono_ns() +
                            (uint64_t)xv_conn_get_config()->write_timeout_ms * 1000000u;
        while (xv_conn_tx_flush(c, wr_nowait_ctx, &fd) == -1 && xv_now_mono_ns() < deadline) {
            struct pollfd p = { .fd = fd, .events = POLLOUT };
            if (XV_REAL(poll)(&p, 1, 50) < 0 && errno != EINTR)
                break;
        }
    }
    xv_conn_unref(c);
    errno = saved;
}

static ssize_t rx_run(struct xv_conn *c, struct rd_ctx *x, void *buf, size_t n)
{
    int saved = errno;
    x->err = saved;
    x->start_ns = xv_now_mono_ns();
    x->poll_deadline_ns = xv_poll_recorded() ? xv_poll_take_deadline(x->fd) : 0;
    rx_flush(c, x->fd);
    long r = xv_conn_rx(c, buf, n, rd_sock, x);
    xv_conn_unref(c);
    if (r == XV_CONN_RX_DEFERRED)
        return -1; /* errno: the error kept behind bytes handed over earlier */
    errno = r > 0 ? saved : x->err;
    return r < 0 ? -1 : (ssize_t)r;
}

XV_HOOK ssize_t read(int fd, void *buf, size_t n)
{
    if (xv_tls_cur.active) {
        /* OpenSSL's record layer (watched_conn's first case, taken first:
         * two of these a TLS record) */
        if (xv_tls_cur.fd < 0)
            xv_tls_cur.fd = fd;
        return XV_REAL(read)(fd, buf, n);
    }
    ssize_t woke;
    if (wake_read(fd, buf, n, &woke))
        return woke;
    struct xv_conn *c = watched_conn(fd);
    if (!c)
        return XV_REAL(read)(fd, buf, n);
    struct rd_ctx x = { .fd = fd, .kind = 0 };
    return rx_run(c, &x, buf, n);
}

XV_HOOK ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    ssize_t woke;
    if (wake_read(fd, buf, n, &woke))
        return woke;
    struct xv_conn *c = (flags & MSG_PEEK) ? NULL : watched_conn(fd);
    if (!c)
        return XV_REAL(recv)(fd, buf, n, flags);
    struct rd_ctx x = { .fd = fd, .kind = 1, .flags = flags };
    return rx_run(c, &x, buf, n);
}

XV_HOOK ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *sa,
                         socklen_t *salen)
{
    ssize_t woke;
    if (wake_read(fd, buf, n, &woke))
        return woke;
    struct xv_conn *c = (flags & MSG_PEEK) ? NULL : watched_conn(fd);
    if (!c)
        return XV_REAL(recvfrom)(fd, buf, n, flags, sa, salen);
    struct rd_ctx x = { .fd = fd, .kind = 2, .flags = flags, .sa = sa, .salen = salen };
    return rx_run(c, &x, buf, n);
}

/* Vectored reads on a watched connection: fill the first non-empty buffer
 * only (a short read is always allowed), so the state machine sees one
 * contiguous range. */
static int first_iov(const struct iovec *iov, int n)
{
    for (int i = 0; i < n; i++)
        if (iov[i].iov_len)
            return i;
    return -1;
}

XV_HOOK ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
    struct xv_conn *c = watched_conn(fd);
    int i = c ? first_iov(iov, iovcnt) : -1;
    if (i < 0) {
        if (c)
            xv_conn_unref(c);
        return XV_REAL(readv)(fd, iov, iovcnt);
    }
    struct rd_ctx x = { .fd = fd, .kind = 0 };
    return rx_run(c, &x, iov[i].iov_base, iov[i].iov_len);
}

XV_HOOK ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    struct xv_conn *c = (flags & MSG_PEEK) ? NULL : watched_conn(fd);
    int i = c ? first_iov(msg->msg_iov, (int)msg->msg_iovlen) : -1;
    if (i < 0 || msg->msg_controllen) {
        /* ancillary data (fd passing) is not HTTP: leave it alone */
        if (c)
            xv_conn_unref(c);
        return XV_REAL(recvmsg)(fd, msg, flags);
    }
    struct rd_ctx x = { .fd = fd, .kind = 1, .flags = flags };
    ssize_t r = rx_run(c, &x, msg->msg_iov[i].iov_base, msg->msg_iov[i].iov_len);
    if (r >= 0)
        msg->msg_flags = 0;
    return r;
}

/* ---- close and dup ------------------------------------------------------ */

XV_HOOK int close(int fd)
{
    xv_real_init();
    xv_poll_forget_fd(fd);
    if (fd_peek(fd)) {
        tx_drain_at_close(fd);
        int saved = errno;
        fd_slot_set(fd, NULL);
        errno = saved;
    }
    return XV_REAL(close)(fd);
}

XV_HOOK int shutdown(int fd, int how)
{
    if (how != SHUT_RD && xv_hooks_active() && !xv_tls_cur.active && fd_peek(fd))
        tx_drain_at_close(fd); /* held and queued request bytes precede the FIN */
    return XV_REAL(shutdown)(fd, how);
}

/* A duplicate refers to the same socket: share the connection. */
static void dup_track(int oldfd, int newfd)
{
    int saved = errno;
    fd_slot_set(newfd, NULL);
    struct xv_conn *c = xv_net_conn_get(oldfd);
    if (c) {
        fd_slot_set(newfd, c);
        xv_conn_unref(c);
    }
    errno = saved;
}

XV_HOOK int dup(int fd)
{
    xv_real_init();
    int r = XV_REAL(dup)(fd);
    if (r >= 0)
        dup_track(fd, r);
    return r;
}

XV_HOOK int dup2(int oldfd, int newfd)
{
    xv_real_init();
    int r = XV_REAL(dup2)(oldfd, newfd);
    if (r >= 0 && oldfd != newfd)
        dup_track(oldfd, r);
    return r;
}

XV_HOOK int dup3(int oldfd, int newfd, int flags)
{
    xv_real_init();
    int r = XV_REAL(dup3)(oldfd, newfd, flags);
    if (r >= 0)
        dup_track(oldfd, r);
    return r;
}

XV_HOOK int close_range(unsigned first, unsigned last, int flags)
{
    xv_real_init();
    int r = xv_real.close_range ? XV_REAL(close_range)(first, last, flags) : (errno = ENOSYS, -1);
    /* CLOSE_RANGE_CLOEXEC (4) only marks fds; they stay open */
    if (r == 0 && !(flags & 4)) {
        int saved = errno;
        for (unsigned fd = first; fd <= last && fd < XV_FD_MAX; fd++)
            fd_slot_set((int)fd, NULL);
        errno = saved;
    }
    return r;
}

/* fcntl: only F_DUPFD/F_DUPFD_CLOEXEC change which fds name a socket. The
 * third argument is passed on as the machine word it arrived in (int or
 * pointer; both travel in the same register class on the ABIs we build). */
static int fcntl_common(int (*real)(int, int, ...), int fd, int cmd, va_list ap)
{
    void *arg = va_arg(ap, void *);
    int r = real(fd, cmd, arg);
    if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
        dup_track(fd, r);
    return r;
}

XV_HOOK int fcntl(int fd, int cmd, ...)
{
    xv_real_init();
    va_list ap;
    va_start(ap, cmd);
    int r = fcntl_common(xv_real.fcntl, fd, cmd, ap);
    va_end(ap);
    return r;
}

XV_HOOK int fcntl64(int fd, int cmd, ...)
{
    xv_real_init();
    va_list ap;
    va_start(ap, cmd);
    int r = fcntl_common(xv_real.fcntl64 ? xv_real.fcntl64 : xv_real.fcntl, fd, cmd, ap);
    va_end(ap);
    return r;
}
