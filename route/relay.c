/*
 * relay.c — the in-process relay of rerouted connections (libxenovia-route.so).
 *
 * A listener on 127.0.0.1:<ephemeral> takes the connections the connect hook
 * sends it; each gets a thread that
 *   1. learns its rule from the program's local port (xv_route expect),
 *   2. connects to the gateway and, for https, runs a verified TLS client
 *      (SNI and host/IP check for the gateway's name, system CAs or
 *      XENOVIA_CA_FILE; never unverified),
 *   3. if the program speaks TLS (its first byte is a handshake record),
 *      terminates it with a certificate minted for the original name
 *      (mint.c; the X509_verify_cert hook vouches for exactly that one),
 *   4. copies bytes both ways: requests through the head rewriter (Host,
 *      path prefix, credential), responses unchanged.
 * When the gateway cannot be reached or verified, the program's handshake
 * still completes and its request is read, then the connection is reset:
 * the program sees an ordinary connection error, the agent's hooks record
 * the call with `error`, and one stderr line says why. Nothing ever goes
 * to the original host.
 *
 * The relay never calls a name the agent hooks: its libc calls go through
 * the agent's real-function table (g.api->real, common/xv_real.h), its
 * OpenSSL calls of hooked names through xv_route_ssl (relay_ssl.c). Every
 * thread here still holds the agent's re-entrancy guard for what happens
 * underneath: a libssl the program loaded itself is shared with the relay,
 * and its socket BIO's read/write calls reach the agent's hooks.
 *
 * Thread safety: g.mu guards the expectation table and the counters.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "route_int.h"
#include "xv_cassette.h"

#define RELAY_MAX_CONNS 256
#define RELAY_EXPECT_SLOTS 512
#define RELAY_BUF (64 * 1024)
#define RELAY_CONNECT_MS 10000
#define RELAY_HANDSHAKE_MS 10000
#define RELAY_FIRST_BYTE_MS 30000
#define RELAY_IDLE_MS (10 * 60 * 1000)

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;                /* signalled when an expectation is added */
    const struct xv_route_host_api *api;
    int lfd;                          /* listener, -1 when not started */
    int conns;                        /* relayed connections alive */
    struct {
        int lport;                    /* program's local port, 0 free */
        int rule;
        int orig_port;
        char orig_host[256];
        uint64_t at_ms;               /* when registered (stale ones expire) */
    } exp[RELAY_EXPECT_SLOTS];
    SSL_CTX *client;                  /* verified client context for gateways */
} g = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .lfd = -1 };

/*
 * Process exit. The program's exit runs OpenSSL's own atexit cleanup, which
 * frees libcrypto's global locks while relay threads may be inside a
 * handshake (seen: curl exiting while the relay accepted its next
 * connection crashed in CRYPTO_THREAD_read_lock). Every OpenSSL call of the
 * relay runs under g_ossl's read lock (they are all non-blocking: never held
 * across a wait); our own atexit handler, registered after OpenSSL's and so
 * run before it, takes the write lock and marks the relay as exiting, after
 * which no relay thread touches OpenSSL again.
 */
static pthread_rwlock_t g_ossl = PTHREAD_RWLOCK_INITIALIZER;
static atomic_int g_exiting;

static int ossl_enter(void)
{
    pthread_rwlock_rdlock(&g_ossl);
    if (atomic_load_explicit(&g_exiting, memory_order_relaxed)) {
        pthread_rwlock_unlock(&g_ossl);
        return -1;
    }
    return 0;
}

static void ossl_leave(void)
{
    pthread_rwlock_unlock(&g_ossl);
}

static void on_exit_stop_relay(void)
{
    pthread_rwlock_wrlock(&g_ossl);
    atomic_store(&g_exiting, 1);
    pthread_rwlock_unlock(&g_ossl);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ------------------------------------------------------- expectations */

static void expect(int lport, int rule, const char *orig_host, int orig_port)
{
    pthread_mutex_lock(&g.mu);
    int slot = -1;
    uint64_t oldest = UINT64_MAX;
    for (int i = 0; i < RELAY_EXPECT_SLOTS; i++) {
        if (g.exp[i].lport == lport || g.exp[i].lport == 0) {
            slot = i;
            break;
        }
        if (g.exp[i].at_ms < oldest) {
            oldest = g.exp[i].at_ms;
            slot = i;
        }
    }
    g.exp[slot].lport = lport;
    g.exp[slot].rule = rule;
    g.exp[slot].orig_port = orig_port;
    snprintf(g.exp[slot].orig_host, sizeof g.exp[slot].orig_host, "%s", orig_host ? orig_host : "");
    g.exp[slot].at_ms = now_ms();
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
}

/* Take the expectation for a peer port, waiting up to 5 s for the connect
 * hook to register it (it does so right after its connect returns). */
static int take(int lport, int *rule, char *host, size_t hostlen, int *orig_port)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&g.mu);
    for (;;) {
        for (int i = 0; i < RELAY_EXPECT_SLOTS; i++)
            if (g.exp[i].lport == lport) {
                *rule = g.exp[i].rule;
                *orig_port = g.exp[i].orig_port;
                snprintf(host, hostlen, "%s", g.exp[i].orig_host);
                g.exp[i].lport = 0;
                pthread_mutex_unlock(&g.mu);
                return 0;
            }
        if (pthread_cond_timedwait(&g.cv, &g.mu, &until) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&g.mu);
    return -1;
}

/* ------------------------------------------------------------- endpoints */

struct end {
    int fd;
    SSL *ssl;  /* NULL: plain */
};

/* > 0 bytes, 0 end of stream, -1 would block (*want = POLLIN/POLLOUT), -2 error */
static long end_io(struct end *e, char *buf, size_t n, int writing, short *want)
{
    if (!e->ssl) {
        ssize_t r = writing ? g.api->real->send(e->fd, buf, n, MSG_NOSIGNAL)
                            : g.api->real->recv(e->fd, buf, n, 0);
        if (r > 0 || (r == 0 && !writing))
            return (long)r;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            *want = writing ? POLLOUT : POLLIN;
            return -1;
        }
        return -2;
    }
    if (ossl_enter() != 0)
        return -2;
    size_t done = 0;
    long out;
    int r = writing ? xv_route_ssl.write_ex(e->ssl, buf, n, &done)
                    : xv_route_ssl.read_ex(e->ssl, buf, n, &done);
    if (r == 1) {
        out = (long)done;
    } else {
        switch (xv_route_ssl.get_error(e->ssl, r)) {
        case SSL_ERROR_WANT_READ:
            *want = POLLIN;
            out = -1;
            break;
        case SSL_ERROR_WANT_WRITE:
            *want = POLLOUT;
            out = -1;
            break;
        case SSL_ERROR_ZERO_RETURN:
            out = 0;
            break;
        case SSL_ERROR_SYSCALL:
            ERR_clear_error();
            out = writing ? -2 : 0; /* an unclean close reads as the end */
            break;
        default:
            ERR_clear_error();
            out = -2;
        }
    }
    ossl_leave();
    return out;
}

static int wait_fd(int fd, short ev, uint64_t deadline)
{
    for (;;) {
        uint64_t t = now_ms();
        if (t >= deadline)
            return -1;
        struct pollfd p = { fd, ev, 0 };
        int r = g.api->real->poll(&p, 1, (int)(deadline - t));
        if (r > 0)
            return 0;
        if (r == 0 || errno != EINTR)
            return -1;
    }
}

static int handshake(struct end *e, int server, uint64_t deadline, char *why, size_t wl)
{
    for (;;) {
        if (ossl_enter() != 0) {
            snprintf(why, wl, "the process is exiting");
            return -1;
        }
        int r = server ? SSL_accept(e->ssl) : SSL_connect(e->ssl);
        if (r == 1) {
            ossl_leave();
            return 0;
        }
        int err = xv_route_ssl.get_error(e->ssl, r);
        short ev = err == SSL_ERROR_WANT_READ ? POLLIN : err == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
        if (!ev) {
            unsigned long code = ERR_peek_last_error();
            long vr = server ? X509_V_OK : SSL_get_verify_result(e->ssl);
            if (vr != X509_V_OK)
                snprintf(why, wl, "certificate not verified: %s", X509_verify_cert_error_string(vr));
            else if (code)
                snprintf(why, wl, "TLS handshake failed: %s", ERR_reason_error_string(code));
            else
                snprintf(why, wl, "TLS handshake failed (connection closed)");
            ERR_clear_error();
            ossl_leave();
            return -1;
        }
        ossl_leave();
        if (wait_fd(e->fd, ev, deadline) != 0) {
            snprintf(why, wl, "TLS handshake timed out");
            return -1;
        }
    }
}

static int connect_gateway(const struct xv_route_rule *r, char *why, size_t wl)
{
    char port[8];
    snprintf(port, sizeof port, "%d", r->port);
    struct addrinfo hints = { 0 }, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    int gr = g.api->real->getaddrinfo(r->host, port, &hints, &res);
    if (gr != 0) {
        snprintf(why, wl, "cannot resolve %s: %s", r->host, gai_strerror(gr));
        return -1;
    }
    int fd = -1;
    uint64_t deadline = now_ms() + RELAY_CONNECT_MS;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int rc = g.api->real->connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline) == 0) {
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
            rc = soerr ? -1 : 0;
            errno = soerr ? soerr : ETIMEDOUT;
        }
        if (rc == 0)
            break;
        snprintf(why, wl, "cannot connect to %s:%d: %s", r->host, r->port, strerror(errno));
        g.api->real->close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

/* ----------------------------------------------------------- a connection */

struct job {
    int pfd;      /* the program's connection (accepted) */
    int lport;    /* its local port, as the relay sees it (peer port) */
};

static void reset_close(int fd)
{
    struct linger lg = { 1, 0 };
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    g.api->real->close(fd);
}

static void relay_loop(struct end *P, struct end *G, struct xv_route_rewriter *rw)
{
    struct xv_buf p2g, g2p;
    xv_buf_init(&p2g, 4 * RELAY_BUF);
    xv_buf_init(&g2p, 4 * RELAY_BUF);
    char tmp[16384];
    int p_eof = 0, g_eof = 0;
    uint64_t idle_until = now_ms() + RELAY_IDLE_MS;
    for (;;) {
        int progress = 0;
        short pev = 0, gev = 0, want = 0;
        if (!p_eof && p2g.len < RELAY_BUF) {
            long r = end_io(P, tmp, sizeof tmp, 0, &want);
            if (r > 0) {
                if (xv_route_rewriter_feed(rw, tmp, (size_t)r, &p2g) != 0)
                    goto out; /* malformed request: ends the connection */
                progress = 1;
            } else if (r == 0) {
                p_eof = 1;
            } else if (r == -1) {
                pev |= want;
            } else {
                goto out;
            }
        }
        if (p2g.len) {
            long r = end_io(G, p2g.data, p2g.len, 1, &want);
            if (r > 0) {
                xv_buf_consume(&p2g, (size_t)r);
                progress = 1;
            } else if (r == -1) {
                gev |= want;
            } else {
                goto out;
            }
        }
        if (!g_eof && g2p.len < RELAY_BUF) {
            long r = end_io(G, tmp, sizeof tmp, 0, &want);
            if (r > 0) {
                if (xv_buf_append(&g2p, tmp, (size_t)r) != 0)
                    goto out;
                progress = 1;
            } else if (r == 0) {
                g_eof = 1;
            } else if (r == -1) {
                gev |= want;
            } else {
                goto out;
            }
        }
        if (g2p.len) {
            long r = end_io(P, g2p.data, g2p.len, 1, &want);
            if (r > 0) {
                xv_buf_consume(&g2p, (size_t)r);
                progress = 1;
            } else if (r == -1) {
                pev |= want;
            } else {
                goto out;
            }
        }
        if ((g_eof && g2p.len == 0) || (p_eof && p2g.len == 0))
            break;
        if (progress) {
            idle_until = now_ms() + RELAY_IDLE_MS;
            continue;
        }
        uint64_t t = now_ms();
        if (t >= idle_until)
            break;
        struct pollfd pf[2] = { { P->fd, pev ? pev : POLLIN, 0 }, { G->fd, gev ? gev : POLLIN, 0 } };
        if (g.api->real->poll(pf, 2, (int)(idle_until - t)) < 0 && errno != EINTR)
            break;
    }
    if (P->ssl && ossl_enter() == 0) {
        xv_route_ssl.shutdown(P->ssl); /* close_notify, so the program reads a clean end */
        ossl_leave();
    }
out:
    xv_buf_free(&p2g);
    xv_buf_free(&g2p);
}

/* The gateway failed: let the program finish its handshake and send its
 * request (so the agent sees and records the call), then reset. */
static void fail_program(struct end *P, const char *host, uint64_t deadline)
{
    char why[160];
    if (P->ssl && handshake(P, 1, deadline, why, sizeof why) != 0)
        return;
    char tmp[4096];
    short want = 0;
    for (;;) {
        long r = end_io(P, tmp, sizeof tmp, 0, &want);
        if (r != -1)
            break; /* bytes of the request (or its end): enough */
        if (wait_fd(P->fd, want, deadline) != 0)
            break;
    }
}

/* ---------------------------------------------------- replay at the wire */

/* One request being read on a local (replay-only) connection. */
struct lreq {
    struct end *P;
    char host[256];             /* the name the recordings are keyed by */
    int use_host_header;        /* connected by address: the Host header names it */
    struct xv_buf head;         /* NUL-separated name/value pairs of the request head */
    struct xv_buf body;         /* decoded body */
    char method[16];
    char path[4096];
    struct xv_buf out;          /* answers not yet written */
    int close_after;            /* an answer said Connection: close */
    int failed;
};

static int lreq_head(void *ud, const struct xv_http_head *h)
{
    struct lreq *q = ud;
    xv_buf_reset(&q->head);
    xv_buf_reset(&q->body);
    snprintf(q->method, sizeof q->method, "%.*s", (int)h->method_len, h->method);
    snprintf(q->path, sizeof q->path, "%.*s", (int)h->target_len, h->target);
    const struct xv_http_header *hh = q->use_host_header ? xv_http_head_find(h, "host") : NULL;
    if (hh && hh->value_len) {
        /* "name:port" or "[v6]:port" -> name (the recordings carry no port) */
        size_t k = hh->value_len;
        const char *colon = hh->value[0] == '[' ? NULL : memchr(hh->value, ':', k);
        if (colon)
            k = (size_t)(colon - hh->value);
        if (k && k < sizeof q->host)
            snprintf(q->host, sizeof q->host, "%.*s", (int)k, hh->value);
    }
    for (size_t i = 0; i < h->nheaders; i++) {
        xv_buf_append(&q->head, h->headers[i].name, h->headers[i].name_len);
        xv_buf_append(&q->head, "", 1);
        xv_buf_append(&q->head, h->headers[i].value, h->headers[i].value_len);
        xv_buf_append(&q->head, "", 1);
    }
    return XV_HTTP_OK;
}

static void lreq_body(void *ud, const char *p, size_t n)
{
    struct lreq *q = ud;
    if (xv_buf_append(&q->body, p, n) != 0)
        q->failed = 1;
}

static int write_all_end(struct end *P, struct xv_buf *out);

/* 1 when an answer's head says the connection ends with it. */
static int answer_closes(const char *a, size_t n)
{
    const char *blank = a ? memmem(a, n, "\r\n\r\n", 4) : NULL;
    for (const char *l = a; blank && l < blank;) {
        const char *eol = memmem(l, (size_t)(blank + 2 - l), "\r\n", 2);
        if (!eol)
            break;
        if ((size_t)(eol - l) >= 11 && strncasecmp(l, "connection:", 11) == 0 &&
            memmem(l, (size_t)(eol - l), "close", 5))
            return 1;
        l = eol + 2;
    }
    return 0;
}

static void lreq_end(void *ud)
{
    struct lreq *q = ud;
    struct xv_cassette_header hs[64];
    size_t nh = 0;
    for (const char *p = q->head.data, *e = p ? p + q->head.len : NULL; p && p < e && nh < 64;) {
        hs[nh].name = p;
        p += strlen(p) + 1;
        hs[nh].value = p < e ? p : "";
        p += strlen(hs[nh].value) + 1;
        nh++;
    }
    struct xv_cassette_req rq = {
        .method = q->method, .host = q->host, .path = q->path, .headers = hs, .nheaders = nh,
        .body = q->body.data ? q->body.data : "", .body_len = q->body.len,
    };
    /* the agent fills a and t with its own allocator: copied here, then
     * handed back to it to free (see struct xv_route_host_api) */
    struct xv_buf a, t;
    xv_buf_init(&a, (size_t)256 << 20);
    xv_buf_init(&t, 1 << 20);
    int rc = g.api->replay ? g.api->replay(&rq, &a, g.api->replay_recorded_timing ? &t : NULL)
                           : -1;
    struct xv_buf ans, marks;
    xv_buf_init(&ans, (size_t)256 << 20);
    xv_buf_init(&marks, 1 << 20);
    if (rc == 0)
        rc = xv_buf_append(&ans, a.data ? a.data : "", a.len);
    if (rc == 0 && t.len)
        rc = xv_buf_append(&marks, t.data, t.len);
    if (g.api->buf_free) {
        g.api->buf_free(&a);
        g.api->buf_free(&t);
    }
    if (rc == 0 && answer_closes(ans.data, ans.len))
        q->close_after = 1;
    /* answers to earlier pipelined requests go first */
    if (rc == 0 && marks.len && q->out.len)
        rc = write_all_end(q->P, &q->out);
    /* recorded timing: each stream event when it arrived after the head */
    uint64_t t0 = now_ms();
    size_t pos = 0;
    for (size_t i = 0; rc == 0 && i + sizeof(struct xv_cassette_mark) <= marks.len;
         i += sizeof(struct xv_cassette_mark)) {
        struct xv_cassette_mark m;
        memcpy(&m, marks.data + i, sizeof m);
        uint64_t due = t0 + m.t_ms, now = now_ms();
        if (due > now)
            usleep((useconds_t)((due - now) * 1000u));
        if (m.off_end > pos && m.off_end <= ans.len) {
            struct xv_buf piece;
            xv_buf_init(&piece, ans.len);
            rc = xv_buf_append(&piece, ans.data + pos, m.off_end - pos);
            rc = rc ? rc : write_all_end(q->P, &piece);
            xv_buf_free(&piece);
            pos = m.off_end;
        }
    }
    if (rc == 0 && pos < ans.len)
        rc = xv_buf_append(&q->out, ans.data + pos, ans.len - pos);
    xv_buf_free(&ans);
    xv_buf_free(&marks);
    if (rc != 0)
        q->failed = 1;
}

static void lreq_error(void *ud, const char *why)
{
    (void)why;
    ((struct lreq *)ud)->failed = 1;
}

static const struct xv_http_callbacks lreq_cb = {
    .on_head = lreq_head, .on_body = lreq_body, .on_end = lreq_end, .on_error = lreq_error,
};

static int write_all_end(struct end *P, struct xv_buf *out)
{
    while (out->len) {
        short want = 0;
        long n = end_io(P, out->data, out->len, 1, &want);
        if (n > 0) {
            xv_buf_consume(out, (size_t)n);
            continue;
        }
        if (n != -1 || wait_fd(P->fd, want, now_ms() + RELAY_IDLE_MS) != 0)
            return -1;
    }
    return 0;
}

/* A local (replay-only) connection: complete the program's handshake, then
 * answer each request it sends from the cassette, as the upstream did when
 * it was recorded (keep-alive included), until the program closes. Nothing
 * leaves the process. */
static void local_loop(struct end *P, const struct xv_route_rule *r, const char *host, int port)
{
    char why[160];
    if (P->ssl && handshake(P, 1, now_ms() + RELAY_HANDSHAKE_MS, why, sizeof why) != 0)
        return;
    /* the host the recordings are keyed by: the name the program asked for
     * (SNI, or the name it resolved), else its Host header */
    struct lreq q = { .P = P };
    const char *sni = NULL;
    if (P->ssl && ossl_enter() == 0) {
        sni = SSL_get_servername(P->ssl, TLSEXT_NAMETYPE_host_name);
        if (sni)
            snprintf(q.host, sizeof q.host, "%s", sni);
        ossl_leave();
    }
    if (!sni) {
        struct in6_addr ip;
        q.use_host_header = inet_pton(AF_INET, host, &ip) == 1 || inet_pton(AF_INET6, host, &ip) == 1;
        snprintf(q.host, sizeof q.host, "%s", host);
    }
    xv_buf_init(&q.head, 64 * 1024);
    xv_buf_init(&q.body, (size_t)64 << 20);
    xv_buf_init(&q.out, (size_t)256 << 20);
    struct xv_http_parser *p = xv_http_parser_new(XV_HTTP_REQUEST, 64 * 1024, &lreq_cb, &q);
    char tmp[16384];
    while (p && !q.failed) {
        short want = 0;
        long n = end_io(P, tmp, sizeof tmp, 0, &want);
        if (n > 0) {
            xv_http_parser_feed(p, tmp, (size_t)n);
            if (q.failed || write_all_end(P, &q.out) != 0 || q.close_after)
                break;
            continue;
        }
        if (n == 0 || n == -2 || wait_fd(P->fd, want, now_ms() + RELAY_IDLE_MS) != 0)
            break;
    }
    if (q.failed)
        xv_log(XV_LOG_WARN, "%s: a request to %s:%d could not be answered from the cassette "
               "(not HTTP, or not an API call); its connection is reset", r->url, host, port);
    if (P->ssl && !q.failed && ossl_enter() == 0) {
        xv_route_ssl.shutdown(P->ssl);
        ossl_leave();
    }
    if (q.failed) {
        reset_close(P->fd);
        P->fd = -1;
    }
    xv_http_parser_free(p);
    xv_buf_free(&q.head);
    xv_buf_free(&q.body);
    xv_buf_free(&q.out);
}

static void *conn_thread(void *arg)
{
    struct job j = *(struct job *)arg;
    free(arg);
    g.api->guard_enter(); /* this thread's I/O is the agent's own */
    const struct xv_route_config *cfg = g.api->cfg;
    int rule, orig_port;
    char orig_host[256];
    struct end P = { j.pfd, NULL }, G = { -1, NULL };
    struct xv_route_rewriter *rw = NULL;
    int reset = 0;
    if (take(j.lport, &rule, orig_host, sizeof orig_host, &orig_port) != 0 || rule < 0 ||
        rule >= cfg->n)
        goto done; /* not one of ours (or far too late): just close */
    const struct xv_route_rule *r = &cfg->rule[rule];
    uint64_t deadline = now_ms() + RELAY_FIRST_BYTE_MS;
    unsigned char first = 0;
    if (wait_fd(P.fd, POLLIN, deadline) != 0 ||
        g.api->real->recv(P.fd, &first, 1, MSG_PEEK) != 1)
        goto done;
    int program_tls = first == 0x16;
    if (program_tls) {
        if (ossl_enter() != 0)
            goto done;
        P.ssl = xv_route_mint_ssl(orig_host, r);
        int set = P.ssl && SSL_set_fd(P.ssl, P.fd);
        ossl_leave();
        if (!set) {
            xv_log(XV_LOG_ERROR, "route %s: cannot set up TLS for the program", r->url);
            reset = 1;
            goto done;
        }
    }
    if (r->local) {
        /* replay without network: the agent answers every call on the
         * program's side; anything that reaches us had no recording */
        local_loop(&P, r, orig_host, orig_port);
        goto done;
    }
    char why[300] = "";
    G.fd = connect_gateway(r, why, sizeof why);
    if (G.fd >= 0 && r->tls) {
        if (ossl_enter() != 0)
            goto done;
        G.ssl = g.client ? SSL_new(g.client) : NULL;
        struct in6_addr ip;
        int is_ip = inet_pton(AF_INET, r->host, &ip) == 1 || inet_pton(AF_INET6, r->host, &ip) == 1;
        if (!G.ssl || !SSL_set_fd(G.ssl, G.fd) ||
            /* SSL_set_tlsext_host_name, spelled out: it names SSL_ctrl */
            (!is_ip && (!xv_route_ssl.ctrl(G.ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME,
                                           TLSEXT_NAMETYPE_host_name, (void *)r->host) ||
                        !SSL_set1_host(G.ssl, r->host))) ||
            (is_ip && !X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(G.ssl), r->host))) {
            snprintf(why, sizeof why, "cannot set up TLS to the gateway");
            xv_route_ssl.free(G.ssl);
            G.ssl = NULL;
            g.api->real->close(G.fd);
            G.fd = -1;
            ossl_leave();
        } else {
            ossl_leave();
            if (handshake(&G, 0, now_ms() + RELAY_HANDSHAKE_MS, why, sizeof why) != 0) {
                if (ossl_enter() == 0) {
                    xv_route_ssl.free(G.ssl);
                    ossl_leave();
                }
                G.ssl = NULL;
                g.api->real->close(G.fd);
                G.fd = -1;
            }
        }
    }
    if (G.fd < 0) {
        xv_log(XV_LOG_WARN, "route %s:%d -> %s: %s; the call fails (never sent to %s)", orig_host,
               orig_port, r->url, why, orig_host);
        fail_program(&P, orig_host, now_ms() + RELAY_HANDSHAKE_MS);
        reset = 1;
        goto done;
    }
    if (program_tls) {
        char pwhy[160];
        if (handshake(&P, 1, now_ms() + RELAY_HANDSHAKE_MS, pwhy, sizeof pwhy) != 0) {
            xv_log(XV_LOG_WARN, "route %s: the program's TLS handshake failed: %s", r->url, pwhy);
            goto done;
        }
    }
    rw = xv_route_rewriter_new(r, cfg->api_key[0] ? cfg->api_key : NULL);
    if (!rw)
        goto done;
    relay_loop(&P, &G, rw);
done:
    xv_route_rewriter_free(rw);
    if ((G.ssl || P.ssl) && ossl_enter() == 0) {
        if (G.ssl)
            xv_route_ssl.free(G.ssl);
        if (P.ssl)
            xv_route_ssl.free(P.ssl);
        ossl_leave();
    } /* else the process is exiting: OpenSSL's memory goes with it */
    if (G.fd >= 0)
        g.api->real->close(G.fd);
    if (P.fd < 0)
        ; /* already reset */
    else if (reset)
        reset_close(P.fd);
    else
        g.api->real->close(P.fd);
    pthread_mutex_lock(&g.mu);
    g.conns--;
    pthread_mutex_unlock(&g.mu);
    return NULL;
}

static void *accept_thread(void *arg)
{
    (void)arg;
    g.api->guard_enter();
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(g.lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE ||
                errno == ENOBUFS || errno == ENOMEM) {
                if (errno != EINTR && errno != ECONNABORTED)
                    usleep(10000);
                continue;
            }
            return NULL; /* listener closed */
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct job *j = malloc(sizeof *j);
        pthread_mutex_lock(&g.mu);
        int room = g.conns < RELAY_MAX_CONNS;
        if (room && j)
            g.conns++;
        pthread_mutex_unlock(&g.mu);
        if (!room || !j) {
            xv_log(XV_LOG_WARN, "route: more than %d rerouted connections at once; one refused",
                   RELAY_MAX_CONNS);
            free(j);
            reset_close(fd);
            continue;
        }
        j->pfd = fd;
        j->lport = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                            : ntohs(((struct sockaddr_in *)&ss)->sin_port);
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&at, 256 * 1024);
        pthread_t t;
        if (pthread_create(&t, &at, conn_thread, j) != 0) {
            free(j);
            reset_close(fd);
            pthread_mutex_lock(&g.mu);
            g.conns--;
            pthread_mutex_unlock(&g.mu);
        }
        pthread_attr_destroy(&at);
    }
}

static int start_guarded(const struct xv_route_host_api *api, int *port);

/* Runs on the program's thread (its first routed connect): the set-up is
 * I/O of the agent's own, so the hooks pass it through meanwhile. */
static int start(const struct xv_route_host_api *api, int *port)
{
    api->guard_enter();
    int rc = start_guarded(api, port);
    api->guard_leave();
    return rc;
}

static int start_guarded(const struct xv_route_host_api *api, int *port)
{
    g.api = api;
    xv_log_set_level(api->log_level);
    if (!api->real || xv_route_ssl_init() != 0) {
        xv_log(XV_LOG_ERROR, "route: the relay's OpenSSL or the agent's libc table is missing");
        return XV_E_IO;
    }
    if (!g.client) {
        g.client = SSL_CTX_new(TLS_client_method());
        if (!g.client)
            return XV_E_NOMEM;
        SSL_CTX_set_min_proto_version(g.client, TLS1_2_VERSION);
        SSL_CTX_set_verify(g.client, SSL_VERIFY_PEER, NULL);
        int ok = api->cfg->ca_file[0]
                     ? SSL_CTX_load_verify_locations(g.client, api->cfg->ca_file, NULL)
                     : SSL_CTX_set_default_verify_paths(g.client);
        if (!ok)
            xv_log(XV_LOG_ERROR, "route: cannot load %s%s; no gateway will verify",
                   api->cfg->ca_file[0] ? "XENOVIA_CA_FILE=" : "the system CAs",
                   api->cfg->ca_file);
        ERR_clear_error();
        /* the agent's minted certificates are only for programs, never for gateways */
    }
    /* OpenSSL registered its exit cleanup when it was first initialised
     * (by the program, or by SSL_CTX_new above); ours runs before it */
    static int registered;
    if (!registered && atexit(on_exit_stop_relay) == 0)
        registered = 1;
    if (xv_route_mint_init() != 0) {
        xv_log(XV_LOG_ERROR, "route: cannot make a key for program-side TLS");
        return XV_E_NOMEM;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = { 0 };
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sin;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(fd, 128) != 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &sl) != 0) {
        xv_log(XV_LOG_ERROR, "route: cannot listen on 127.0.0.1: %s", strerror(errno));
        if (fd >= 0)
            g.api->real->close(fd);
        return XV_E_IO;
    }
    g.lfd = fd;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&at, 128 * 1024);
    pthread_t t;
    int rc = pthread_create(&t, &at, accept_thread, NULL);
    pthread_attr_destroy(&at);
    if (rc != 0) {
        g.api->real->close(fd);
        g.lfd = -1;
        return XV_E_IO;
    }
    *port = ntohs(sin.sin_port);
    return 0;
}

static void atfork_child(void)
{
    /* the parent's threads do not exist here; its listener belongs to it */
    pthread_mutex_init(&g.mu, NULL);
    pthread_cond_init(&g.cv, NULL);
    if (g.lfd >= 0)
        g.api->real->close(g.lfd);
    g.lfd = -1;
    g.conns = 0;
    memset(g.exp, 0, sizeof g.exp);
}

static const struct xv_route_module g_module = {
    XV_ROUTE_ABI, start, expect, xv_route_mint_der, atfork_child,
};

__attribute__((visibility("default"))) const struct xv_route_module *xv_route_module(void)
{
    return &g_module;
}
