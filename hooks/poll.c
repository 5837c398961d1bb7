/*
 * poll.c — readiness hooks: poll, ppoll, select, pselect, epoll_ctl,
 * epoll_wait, epoll_pwait. While the agent holds bytes for the app on a
 * socket (a stamped head that did not fit the app's buffer, a response
 * released after it was held whole), the kernel does not see them, so an
 * app that waits for readiness before reading (curl, libuv, asyncio) would
 * wait for ever. These hooks report such a socket readable.
 *
 * Cost when nothing is held — the normal state — is one relaxed atomic
 * load per call before the real function. epoll needs the app's
 * registration (its epoll_data) to report an event, so epoll_ctl records
 * registrations of watched sockets only, in a small bounded table.
 *
 * They also push the send queue on (conn/: request bytes a non-blocking
 * plain socket would not take when the agent released a held request):
 * each wait first flushes it without blocking, and while bytes stay queued
 * the app's wait runs in slices of at most TX_SLICE_MS with a flush between
 * them, ending when the app's own timeout ends, so a program waiting for
 * its response (not for writability) still gets its request sent. ppoll
 * and pselect slice the same way, with every signal blocked between
 * slices, so a signal is only ever taken inside the wait under the app's
 * own mask (and ends it with EINTR, as it would have). TLS queues are
 * flushed only by the thread that uses the SSL (hooks/tls.c).
 *
 * They remember, per thread, the deadline of a finite wait that reported
 * sockets readable (a few fds; for epoll, the watched sockets registered
 * with the data of a returned event): a blocking read that follows must not
 * wait for the rest of a held response head past that deadline
 * (hooks/net.c, hooks/tls.c).
 *
 * Thread safety: the registration table has one mutex, never held across a
 * real call. Edge-triggered registrations get the event on every wait
 * while bytes are held (an extra event is harmless: the app reads until
 * EAGAIN, which it gets once the held bytes are served).
 */
#include "xv_hooks.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>

#include "xv_common.h"

#define REG_MAX 4096 /* epoll registrations of watched sockets remembered */
#define TX_SLICE_MS 10 /* wait slice while request bytes are queued */
#define LAST_FDS 8     /* readable fds of the last finite wait remembered */

/* This thread's last finite readiness wait that reported fds readable:
 * its deadline and those fds (-1: taken). Written by the wait hooks, taken
 * by the read hooks of the same thread. */
static __thread struct {
    uint64_t deadline_ns; /* 0: nothing recorded */
    int n;
    int fd[LAST_FDS];
} t_last __attribute__((tls_model("initial-exec")));

int xv_poll_recorded(void)
{
    return t_last.deadline_ns != 0;
}

uint64_t xv_poll_take_deadline(int fd)
{
    if (!t_last.deadline_ns || fd < 0)
        return 0;
    for (int i = 0; i < t_last.n; i++)
        if (t_last.fd[i] == fd) {
            t_last.fd[i] = -1;
            return t_last.deadline_ns;
        }
    return 0;
}

/* Start a record for a wait of `timeout_ms` (< 0: none) that began at
 * start_ns; 0 when nothing is to be recorded (no agent, infinite wait).
 * Any older record is dropped: it describes a wait that is not the last. */
static int last_begin(int timeout_ms, uint64_t start_ns)
{
    t_last.deadline_ns = 0;
    t_last.n = 0;
    if (timeout_ms < 0 || !xv_hooks_active())
        return 0;
    t_last.deadline_ns = start_ns + (uint64_t)timeout_ms * 1000000u;
    return 1;
}

static void last_add(int fd)
{
    if (t_last.n < LAST_FDS)
        t_last.fd[t_last.n++] = fd;
}

static void last_poll(const struct pollfd *fds, nfds_t n, int timeout, uint64_t start, int r)
{
    if (!last_begin(r > 0 ? timeout : -1, start))
        return;
    for (nfds_t i = 0; i < n && t_last.n < LAST_FDS; i++)
        if (fds[i].fd >= 0 && (fds[i].revents & (POLLIN | POLLRDNORM)))
            last_add(fds[i].fd);
}

static void last_select(int nfds, const fd_set *rd, int timeout, uint64_t start, int r)
{
    if (!last_begin(r > 0 && rd ? timeout : -1, start))
        return;
    for (int fd = 0; fd < nfds && fd < FD_SETSIZE && t_last.n < LAST_FDS; fd++)
        if (FD_ISSET(fd, rd))
            last_add(fd);
}

/* Milliseconds of a timespec/timeval timeout, rounded up; -1 for none. */
static int ts_ms(const struct timespec *ts)
{
    if (!ts)
        return -1;
    if (ts->tv_sec < 0 || ts->tv_sec > INT32_MAX / 1000 - 1)
        return ts->tv_sec < 0 ? 0 : INT32_MAX;
    return (int)(ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000);
}

static int tv_ms(const struct timeval *tv)
{
    if (!tv)
        return -1;
    if (tv->tv_sec < 0 || tv->tv_sec > INT32_MAX / 1000 - 1)
        return tv->tv_sec < 0 ? 0 : INT32_MAX;
    return (int)(tv->tv_sec * 1000 + (tv->tv_usec + 999) / 1000);
}

/* (epfd, fd) -> the app's epoll_event; written under g_reg.mu. */
static struct {
    pthread_mutex_t mu;
    size_t n;             /* entries of g_ereg_e in use */
} g_ereg XV_CALL_DATA = { .mu = PTHREAD_MUTEX_INITIALIZER };
/* Apart from its lock and count: a process that never registers a watched
 * socket never touches the table's pages (its close() reads only n). */
static struct {
    int epfd, fd;
    struct epoll_event ev;
} g_ereg_e[REG_MAX] XV_LARGE_BSS;

void xv_poll_atfork_child(void)
{
    pthread_mutex_init(&g_ereg.mu, NULL);
}

/* A TLS stream on fd has queued request bytes the readiness hooks may not
 * write themselves (hooks/tls.c: an app's own BIO, another thread's SSL):
 * once the socket is writable the app is told it is readable, so that its
 * next SSL call (whose hook writes the queue first) moves them. */
static int tx_wake(int fd)
{
    if (!xv_conn_tx_pending_any() || !xv_hooks_active() || !xv_conn_fd_tx_stream(fd))
        return 0;
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    int saved = errno;
    int r = XV_REAL(poll)(&p, 1, 0);
    errno = saved;
    return r > 0 && (p.revents & POLLOUT);
}

/* Must fd be reported readable? It has bytes the agent holds for the app,
 * or a queue to move (tx_wake). Cheap when neither exists anywhere. */
static int held(int fd)
{
    return (xv_conn_held_any() && xv_hooks_active() && xv_conn_fd_held(fd)) || tx_wake(fd);
}

static int any_held_or_queued(void)
{
    return xv_conn_held_any() || xv_conn_tx_pending_any();
}

/* ---- the send queue ----------------------------------------------------- */

/* Timeout for the next slice of a wait whose whole timeout is `timeout` ms
 * (-1: none) and that ends at *end (set on the first call, 0 = never).
 * Returns -2 when the app's timeout has passed. Flushes queued bytes first. */
static int tx_slice(int timeout, uint64_t *end, int first)
{
    uint64_t now = xv_now_mono_ns();
    if (first)
        *end = timeout < 0 ? 0 : now + (uint64_t)timeout * 1000000u;
    else if (*end && now >= *end)
        return -2;
    xv_net_tx_flush_all();
    int left = !*end ? -1 : (int)((*end - now + 999999u) / 1000000u);
    if (!xv_conn_tx_pending_any())
        return left;
    return (left < 0 || left > TX_SLICE_MS) ? TX_SLICE_MS : left;
}

static int tx_queued(void)
{
    return xv_conn_tx_pending_any() && xv_hooks_active();
}

/* ---- poll / ppoll ----------------------------------------------------- */

/* After a real poll with timeout 0: add POLLIN for held fds; the new count. */
static int poll_merge(struct pollfd *fds, nfds_t n, int r)
{
    if (r < 0)
        return r;
    int count = 0;
    for (nfds_t i = 0; i < n; i++) {
        if (fds[i].fd >= 0 && (fds[i].events & (POLLIN | POLLRDNORM)) && held(fds[i].fd))
            fds[i].revents |= (short)(fds[i].events & (POLLIN | POLLRDNORM));
        count += fds[i].revents != 0;
    }
    return count;
}

static int poll_any_held(const struct pollfd *fds, nfds_t n)
{
    if (!any_held_or_queued())
        return 0;
    for (nfds_t i = 0; i < n; i++)
        if (fds[i].fd >= 0 && (fds[i].events & (POLLIN | POLLRDNORM)) && held(fds[i].fd))
            return 1;
    return 0;
}

/* One wait of poll or ppoll (mask != NULL or use_mask: ppoll) for t ms. */
static int poll_once(struct pollfd *fds, nfds_t n, int t, int is_ppoll, const sigset_t *mask)
{
    if (!is_ppoll)
        return XV_REAL(poll)(fds, n, t);
    struct timespec st = { t / 1000, (long)(t % 1000) * 1000000 };
    return XV_REAL(ppoll)(fds, n, t < 0 ? NULL : &st, mask);
}

/* poll and ppoll. Between slices every signal is blocked when the app gave
 * ppoll a mask, so no handler runs outside the wait (a pending one is taken
 * by the next slice under the app's mask and ends the wait with EINTR). */
static int poll_common(struct pollfd *fds, nfds_t n, int timeout, int is_ppoll,
                       const sigset_t *mask)
{
    uint64_t start = xv_now_mono_ns();
    int r;
    if (tx_queued() && !poll_any_held(fds, n)) {
        sigset_t all, old;
        int masked = is_ppoll && mask && sigfillset(&all) == 0 &&
                     pthread_sigmask(SIG_BLOCK, &all, &old) == 0;
        uint64_t end = 0;
        for (int first = 1;; first = 0) {
            int t = tx_slice(timeout, &end, first);
            if (t == -2) {
                r = 0;
                break;
            }
            if (!first && poll_any_held(fds, n)) {
                /* a queue the app must move itself became writable */
                int saved = errno;
                r = poll_merge(fds, n, poll_once(fds, n, 0, is_ppoll, mask));
                if (r >= 0)
                    errno = saved;
                break;
            }
            r = poll_once(fds, n, t, is_ppoll, mask);
            if (r != 0 || t == timeout)
                break;
        }
        if (masked) {
            int e = errno;
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            errno = e;
        }
    } else if (!poll_any_held(fds, n)) {
        r = poll_once(fds, n, timeout, is_ppoll, mask);
    } else {
        int saved = errno;
        r = poll_merge(fds, n, poll_once(fds, n, 0, is_ppoll, mask));
        if (r >= 0)
            errno = saved;
    }
    if (t_last.deadline_ns || (r > 0 && timeout >= 0 && xv_net_any_watched())) {
        int saved = errno;
        last_poll(fds, n, timeout, start, r);
        errno = saved;
    }
    return r;
}

XV_HOOK int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    if (!tx_queued() && !xv_conn_held_any() && !xv_net_any_watched())
        return XV_REAL(poll)(fds, n, timeout);
    return poll_common(fds, n, timeout, 0, NULL);
}

XV_HOOK int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *mask)
{
    if (!tx_queued() && !xv_conn_held_any() && !xv_net_any_watched())
        return XV_REAL(ppoll)(fds, n, ts, mask);
    int timeout = ts_ms(ts);
    if (!tx_queued() && !poll_any_held(fds, n)) {
        /* the app's exact timeout (not rounded to ms) */
        uint64_t start = xv_now_mono_ns();
        int r = XV_REAL(ppoll)(fds, n, ts, mask);
        if (t_last.deadline_ns || (r > 0 && timeout >= 0)) {
            int saved = errno;
            last_poll(fds, n, timeout, start, r);
            errno = saved;
        }
        return r;
    }
    return poll_common(fds, n, timeout, 1, mask);
}

/* glibc's _FORTIFY_SOURCE variants (they call poll internally, not through
 * the PLT, so they need hooks of their own). */
XV_HOOK int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
    (void)fdslen;
    return poll(fds, n, timeout);
}

XV_HOOK int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *ts,
                        const sigset_t *mask, size_t fdslen)
{
    (void)fdslen;
    return ppoll(fds, n, ts, mask);
}

/* ---- select / pselect --------------------------------------------------- */

/* Held fds among readfds, as a set; 0 when none. */
static int select_held(int nfds, const fd_set *rd, fd_set *out)
{
    if (!rd || !any_held_or_queued())
        return 0;
    int any = 0;
    FD_ZERO(out);
    for (int fd = 0; fd < nfds && fd < FD_SETSIZE; fd++)
        if (FD_ISSET(fd, rd) && held(fd)) {
            FD_SET(fd, out);
            any = 1;
        }
    return any;
}

static int select_merge(int nfds, fd_set *rd, const fd_set *h, int r)
{
    if (r < 0)
        return r;
    for (int fd = 0; fd < nfds && fd < FD_SETSIZE; fd++)
        if (FD_ISSET(fd, h) && !FD_ISSET(fd, rd)) {
            FD_SET(fd, rd);
            r++;
        }
    return r;
}

/* One wait of select or pselect for t ms. */
static int select_once(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, int t, int is_pselect,
                       const sigset_t *mask)
{
    if (!is_pselect) {
        struct timeval st = { t / 1000, (t % 1000) * 1000 };
        return XV_REAL(select)(nfds, rd, wr, ex, t < 0 ? NULL : &st);
    }
    struct timespec st = { t / 1000, (long)(t % 1000) * 1000000 };
    return XV_REAL(pselect)(nfds, rd, wr, ex, t < 0 ? NULL : &st, mask);
}

/* select and pselect while request bytes are queued: slices, each from the
 * app's sets (select clobbers them); signals as in poll_common. */
static int select_sliced(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, int timeout,
                         int is_pselect, const sigset_t *mask)
{
    fd_set r0, w0, e0;
    if (rd) r0 = *rd;
    if (wr) w0 = *wr;
    if (ex) e0 = *ex;
    sigset_t all, old;
    int masked = is_pselect && mask && sigfillset(&all) == 0 &&
                 pthread_sigmask(SIG_BLOCK, &all, &old) == 0;
    uint64_t end = 0;
    int r;
    fd_set h;
    for (int first = 1;; first = 0) {
        int t = tx_slice(timeout, &end, first);
        if (t == -2) {
            if (rd) FD_ZERO(rd);
            if (wr) FD_ZERO(wr);
            if (ex) FD_ZERO(ex);
            r = 0;
            break;
        }
        if (rd) *rd = r0;
        if (wr) *wr = w0;
        if (ex) *ex = e0;
        if (!first && select_held(nfds, rd, &h)) {
            /* a queue the app must move itself became writable */
            int saved = errno;
            r = select_merge(nfds, rd, &h, select_once(nfds, rd, wr, ex, 0, is_pselect, mask));
            if (r >= 0)
                errno = saved;
            break;
        }
        r = select_once(nfds, rd, wr, ex, t, is_pselect, mask);
        if (r != 0 || t == timeout)
            break;
    }
    if (masked) {
        int e = errno;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        errno = e;
    }
    return r;
}

XV_HOOK int select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *tv)
{
    if (!tx_queued() && !xv_conn_held_any() && !xv_net_any_watched())
        return XV_REAL(select)(nfds, rd, wr, ex, tv);
    int timeout = tv_ms(tv);
    uint64_t start = xv_now_mono_ns();
    fd_set h;
    int r;
    if (tx_queued() && !select_held(nfds, rd, &h)) {
        r = select_sliced(nfds, rd, wr, ex, timeout, 0, NULL);
        if (tv && r == 0)
            tv->tv_sec = tv->tv_usec = 0;
    } else if (!select_held(nfds, rd, &h)) {
        r = XV_REAL(select)(nfds, rd, wr, ex, tv);
    } else {
        int saved = errno;
        struct timeval zero = { 0, 0 };
        r = select_merge(nfds, rd, &h, XV_REAL(select)(nfds, rd, wr, ex, &zero));
        if (r >= 0)
            errno = saved;
    }
    if (t_last.deadline_ns || (r > 0 && timeout >= 0)) {
        int saved = errno;
        last_select(nfds, rd, timeout, start, r);
        errno = saved;
    }
    return r;
}

XV_HOOK int pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, const struct timespec *ts,
                    const sigset_t *mask)
{
    if (!tx_queued() && !xv_conn_held_any() && !xv_net_any_watched())
        return XV_REAL(pselect)(nfds, rd, wr, ex, ts, mask);
    int timeout = ts_ms(ts);
    uint64_t start = xv_now_mono_ns();
    fd_set h;
    int r;
    if (tx_queued() && !select_held(nfds, rd, &h)) {
        r = select_sliced(nfds, rd, wr, ex, timeout, 1, mask);
    } else if (!select_held(nfds, rd, &h)) {
        r = XV_REAL(pselect)(nfds, rd, wr, ex, ts, mask);
    } else {
        int saved = errno;
        struct timespec zero = { 0, 0 };
        r = select_merge(nfds, rd, &h, XV_REAL(pselect)(nfds, rd, wr, ex, &zero, mask));
        if (r >= 0)
            errno = saved;
    }
    if (t_last.deadline_ns || (r > 0 && timeout >= 0)) {
        int saved = errno;
        last_select(nfds, rd, timeout, start, r);
        errno = saved;
    }
    return r;
}

/* ---- epoll ---------------------------------------------------------------- */

static void ereg_forget(int epfd, int fd)
{
    for (size_t i = 0; i < g_ereg.n; i++)
        if ((epfd < 0 || g_ereg_e[i].epfd == epfd) && g_ereg_e[i].fd == fd) {
            g_ereg_e[i] = g_ereg_e[--g_ereg.n];
            i--;
        }
}

void xv_poll_forget_fd(int fd)
{
    if (!__atomic_load_n(&g_ereg.n, __ATOMIC_RELAXED))
        return;
    pthread_mutex_lock(&g_ereg.mu);
    ereg_forget(-1, fd);
    pthread_mutex_unlock(&g_ereg.mu);
}

XV_HOOK int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    int r = XV_REAL(epoll_ctl)(epfd, op, fd, ev);
    if (r != 0 || !xv_hooks_active())
        return r;
    int saved = errno;
    /* Remember registrations of watched sockets only (the fd table knows). */
    struct xv_conn *c = (op == EPOLL_CTL_DEL) ? NULL : xv_net_conn_get(fd);
    pthread_mutex_lock(&g_ereg.mu);
    ereg_forget(epfd, fd);
    if (c && ev && g_ereg.n < REG_MAX) {
        g_ereg_e[g_ereg.n].epfd = epfd;
        g_ereg_e[g_ereg.n].fd = fd;
        g_ereg_e[g_ereg.n].ev = *ev;
        g_ereg.n++;
    }
    pthread_mutex_unlock(&g_ereg.mu);
    if (c)
        xv_conn_unref(c);
    errno = saved;
    return r;
}

/* Events for held sockets registered on epfd (at most max). */
static int epoll_held(int epfd, struct epoll_event *out, int max)
{
    if (!any_held_or_queued() || !xv_hooks_active() || max <= 0)
        return 0;
    struct { int fd; struct epoll_event ev; } cand[64];
    int nc = 0;
    pthread_mutex_lock(&g_ereg.mu);
    for (size_t i = 0; i < g_ereg.n && nc < 64; i++)
        if (g_ereg_e[i].epfd == epfd && (g_ereg_e[i].ev.events & EPOLLIN)) {
            cand[nc].fd = g_ereg_e[i].fd;
            cand[nc].ev = g_ereg_e[i].ev;
            nc++;
        }
    pthread_mutex_unlock(&g_ereg.mu);
    int n = 0;
    for (int i = 0; i < nc && n < max; i++)
        if (held(cand[i].fd)) {
            out[n].events = EPOLLIN;
            out[n].data = cand[i].ev.data;
            n++;
        }
    return n;
}

/* Merge our events into what the real wait returned (same data = same fd). */
static int epoll_merge(struct epoll_event *evs, int max, int r, const struct epoll_event *mine,
                       int nm)
{
    if (r < 0)
        return r;
    for (int i = 0; i < nm; i++) {
        int dup = 0;
        for (int k = 0; k < r && !dup; k++)
            if (evs[k].data.u64 == mine[i].data.u64) {
                evs[k].events |= EPOLLIN;
                dup = 1;
            }
        if (!dup && r < max)
            evs[r++] = mine[i];
    }
    return r;
}

static int epoll_once(int epfd, struct epoll_event *evs, int max, int t, int is_pwait,
                      const sigset_t *mask)
{
    return is_pwait ? XV_REAL(epoll_pwait)(epfd, evs, max, t, mask) : XV_REAL(epoll_wait)(epfd, evs, max, t);
}

/* Record a finite epoll wait that reported watched sockets readable. An
 * event names the app's epoll_data, not an fd, so the registrations of
 * watched sockets on epfd map it back (every fd registered with that data:
 * an app that gave two fds one data gets both bounded, which at worst
 * hands a held head over unstamped at the deadline). */
static void last_epoll(int epfd, const struct epoll_event *evs, int r, int timeout,
                       uint64_t start)
{
    if (!last_begin(r > 0 ? timeout : -1, start))
        return;
    if (__atomic_load_n(&g_ereg.n, __ATOMIC_RELAXED)) {
        pthread_mutex_lock(&g_ereg.mu);
        for (int k = 0; k < r && t_last.n < LAST_FDS; k++) {
            if (!(evs[k].events & (EPOLLIN | EPOLLRDNORM | EPOLLHUP | EPOLLRDHUP)))
                continue;
            for (size_t i = 0; i < g_ereg.n && t_last.n < LAST_FDS; i++)
                if (g_ereg_e[i].epfd == epfd && g_ereg_e[i].ev.data.u64 == evs[k].data.u64)
                    last_add(g_ereg_e[i].fd);
        }
        pthread_mutex_unlock(&g_ereg.mu);
    }
    if (!t_last.n)
        t_last.deadline_ns = 0;
}

/* epoll_wait and epoll_pwait: slices while bytes are queued (signals as in
 * poll_common), our events merged into the real ones. */
static int epoll_core(int epfd, struct epoll_event *evs, int max, int timeout, int is_pwait,
                      const sigset_t *mask)
{
    struct epoll_event mine[16];
    int nm = epoll_held(epfd, mine, max < 16 ? max : 16);
    int r;
    if (!nm && tx_queued()) {
        sigset_t all, old;
        int masked = is_pwait && mask && sigfillset(&all) == 0 &&
                     pthread_sigmask(SIG_BLOCK, &all, &old) == 0;
        uint64_t end = 0;
        for (int first = 1;; first = 0) {
            int t = tx_slice(timeout, &end, first);
            if (t == -2) {
                r = 0;
                break;
            }
            if (!first && (nm = epoll_held(epfd, mine, max < 16 ? max : 16)) > 0)
                break; /* a queue the app must move itself became writable */
            r = epoll_once(epfd, evs, max, t, is_pwait, mask);
            if (r != 0 || t == timeout)
                break;
        }
        if (masked) {
            int e = errno;
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            errno = e;
        }
        if (!nm)
            return r;
    }
    if (!nm)
        return epoll_once(epfd, evs, max, timeout, is_pwait, mask);
    int saved = errno;
    r = epoll_merge(evs, max, epoll_once(epfd, evs, max, 0, is_pwait, mask), mine, nm);
    if (r >= 0)
        errno = saved;
    return r;
}

/* The wait itself, then the record of which watched sockets it reported
 * readable before which deadline (as poll_common does). */
static int epoll_common(int epfd, struct epoll_event *evs, int max, int timeout, int is_pwait,
                        const sigset_t *mask)
{
    uint64_t start = xv_now_mono_ns();
    int r = epoll_core(epfd, evs, max, timeout, is_pwait, mask);
    if (t_last.deadline_ns || (r > 0 && timeout >= 0 && xv_net_any_watched())) {
        int saved = errno;
        last_epoll(epfd, evs, r, timeout, start);
        errno = saved;
    }
    return r;
}

XV_HOOK int epoll_wait(int epfd, struct epoll_event *evs, int max, int timeout)
{
    if (!tx_queued() && !xv_conn_held_any() && !xv_net_any_watched()) {
        t_last.deadline_ns = 0; /* the last wait recorded nothing */
        return XV_REAL(epoll_wait)(epfd, evs, max, timeout);
    }
    return epoll_common(epfd, evs, max, timeout, 0, NULL);
}

XV_HOOK int epoll_pwait(int epfd, struct epoll_event *evs, int max, int timeout,
                        const sigset_t *mask)
{
    if (!tx_queued() && !xv_conn_held_any() && !xv_net_any_watched()) {
        t_last.deadline_ns = 0; /* the last wait recorded nothing */
        return XV_REAL(epoll_pwait)(epfd, evs, max, timeout, mask);
    }
    return epoll_common(epfd, evs, max, timeout, 1, mask);
}
