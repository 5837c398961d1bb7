/*
 * otlp_http.c — the smallest HTTP/1.1 client that can deliver an OTLP
 * request: resolve, connect, send one POST, read the status line and the
 * headers, close. Plus gzip (zlib) for Content-Encoding.
 *
 * Invariants: every blocking step is bounded by one absolute
 * CLOCK_MONOTONIC deadline (non-blocking socket + poll); the socket is
 * SOCK_CLOEXEC and closed before returning, so no agent descriptor lives
 * across calls (the host may close or dup2 any fd number at any time);
 * sends use MSG_NOSIGNAL so a collector that hangs up cannot raise SIGPIPE;
 * the response head read is capped at XV_OTLP_RESP_HEAD_MAX and the body is
 * never read (Connection: close — nothing else is sent on this socket).
 *
 * Runs on the exporter thread with xv_guard active: the preload's hooks
 * pass these socket calls and getaddrinfo straight through.
 * Thread safety: no shared state.
 */
#include "otlp_int.h"
#include "xv_real.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

int xv_exp_otlp_gzip(const char *in, size_t len, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    z_stream z;
    memset(&z, 0, sizeof z);
    /* windowBits 15 + 16: gzip wrapper (RFC 1952), as Content-Encoding: gzip wants. */
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return XV_E_NOMEM;
    if (len > 0xFFFFFFFFu) {       /* z_stream counts in uInt */
        deflateEnd(&z);
        return XV_E_LIMIT;
    }
    uLong cap = deflateBound(&z, (uLong)len);
    char *buf = malloc(cap);
    if (!buf) {
        deflateEnd(&z);
        return XV_E_NOMEM;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)buf;
    z.avail_out = (uInt)cap;
    int zr = deflate(&z, Z_FINISH);
    size_t n = cap - z.avail_out;
    deflateEnd(&z);
    if (zr != Z_STREAM_END) {
        free(buf);
        return XV_E_IO;
    }
    *out = buf;
    *out_len = n;
    return 0;
}

/* Milliseconds left until `deadline_ns`, at least 0, at most INT_MAX-ish. */
static int ms_left(uint64_t deadline_ns)
{
    uint64_t now = xv_now_mono_ns();
    if (now >= deadline_ns)
        return 0;
    uint64_t ms = (deadline_ns - now + 999999u) / 1000000u;
    return ms > 600000u ? 600000 : (int)ms;
}

int xv_exp_otlp_wait_fd(int fd, short events, uint64_t deadline_ns)
{
    for (;;) {
        /* Short slices so that a shutdown's hurry deadline, set while we
         * wait, is noticed within 50 ms. */
        int left = ms_left(xv_exp_otlp_cap_deadline(deadline_ns));
        if (left == 0)
            return -ETIMEDOUT;
        if (left > 50)
            left = 50;
        struct pollfd p = { .fd = fd, .events = events };
        int r = XV_REAL(poll)(&p, 1, left);
        if (r > 0)
            return 0;
        if (r == 0)
            continue;
        if (errno != EINTR)
            return -errno;
    }
}

static int connect_one(const struct addrinfo *ai, uint64_t deadline_ns)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0)
        return -errno;
    if (XV_REAL(connect)(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return fd;
    int err = errno;
    if (err != EINPROGRESS && err != EINTR) {
        XV_REAL(close)(fd);
        return -err;
    }
    int rc = xv_exp_otlp_wait_fd(fd, POLLOUT, deadline_ns);
    if (rc == 0) {
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
            soerr = errno;
        rc = soerr ? -soerr : 0;
    }
    if (rc < 0) {
        XV_REAL(close)(fd);
        return rc;
    }
    return fd;
}

static int connect_to(const struct xv_exp_otlp_cfg *cfg, uint64_t deadline_ns)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG };
    struct addrinfo *res = NULL;
    /* getaddrinfo has no timeout of its own; the collector is normally a
     * literal address or a name in /etc/hosts or the local resolver. */
    int gr = XV_REAL(getaddrinfo)(cfg->host, cfg->port, &hints, &res);
    if (gr != 0) {
        /* AI_ADDRCONFIG hides ::1/127.0.0.1 on hosts with only loopback. */
        hints.ai_flags = AI_NUMERICSERV;
        gr = XV_REAL(getaddrinfo)(cfg->host, cfg->port, &hints, &res);
    }
    if (gr != 0 || !res)
        return -EHOSTUNREACH;
    int fd = -ECONNREFUSED;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = connect_one(ai, deadline_ns);
        if (fd >= 0 || fd == -ETIMEDOUT)
            break;
    }
    freeaddrinfo(res);
    return fd;
}

/* Send all iovecs (modified in place) before the deadline. */
static int send_all(int fd, struct iovec *iov, int n, uint64_t deadline_ns)
{
    while (n > 0) {
        if (iov->iov_len == 0) {
            iov++;
            n--;
            continue;
        }
        struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)n };
        ssize_t w = XV_REAL(sendmsg)(fd, &m, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                int rc = xv_exp_otlp_wait_fd(fd, POLLOUT, deadline_ns);
                if (rc < 0)
                    return rc;
                continue;
            }
            return -errno;
        }
        size_t left = (size_t)w;
        while (n > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

/* Parse "HTTP/1.x NNN ..." and Retry-After from a complete head. */
static int parse_head(const char *h, struct xv_exp_otlp_resp *resp)
{
    if (strncmp(h, "HTTP/1.", 7) || !h[7] || h[8] != ' ')
        return XV_E_PARSE;
    int st = 0;
    for (int i = 9; i < 12; i++) {
        if (h[i] < '0' || h[i] > '9')
            return XV_E_PARSE;
        st = st * 10 + (h[i] - '0');
    }
    resp->status = st;
    for (const char *line = strstr(h, "\r\n"); line && line[2]; line = strstr(line + 2, "\r\n")) {
        const char *l = line + 2;
        if (!strncasecmp(l, "Retry-After:", 12)) {
            const char *v = l + 12;
            while (*v == ' ' || *v == '\t')
                v++;
            /* Only the delay-seconds form; an HTTP-date falls back to our backoff. */
            char *end;
            long long s = strtoll(v, &end, 10);
            if (end != v && s >= 0 && (*end == '\r' || *end == ' '))
                resp->retry_after_s = s > 3600 ? 3600 : s;
        }
    }
    return 0;
}

int xv_exp_otlp_http_post(const struct xv_exp_otlp_cfg *cfg, const char *content_type, const char *body,
                      size_t len, int gzipped, uint64_t deadline_ns, struct xv_exp_otlp_resp *resp)
{
    resp->status = 0;
    resp->retry_after_s = -1;
    char head[1024];
    int hn = snprintf(head, sizeof head,
                      "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: libxenovia-otlp/0.1\r\n"
                      "Content-Type: %s\r\n%sContent-Length: %zu\r\nConnection: close\r\n",
                      cfg->path, cfg->host_header, content_type,
                      gzipped ? "Content-Encoding: gzip\r\n" : "", len);
    if (hn < 0 || (size_t)hn >= sizeof head)
        return XV_E_LIMIT;
    int fd = connect_to(cfg, deadline_ns);
    if (fd < 0)
        return fd;
    void *ssl = NULL;
    int rc = 0;
    if (cfg->tls) {
        /* https: one buffer, written with SSL_write (which wants the same
         * arguments again after WANT_WRITE). */
        rc = xv_exp_otlp_tls_open(cfg, fd, deadline_ns, &ssl);
        size_t hl = strlen(cfg->headers);
        char *all = rc == 0 ? malloc((size_t)hn + hl + 2 + len) : NULL;
        if (rc == 0 && !all)
            rc = XV_E_NOMEM;
        if (rc == 0) {
            memcpy(all, head, (size_t)hn);
            memcpy(all + hn, cfg->headers, hl);
            memcpy(all + hn + hl, "\r\n", 2);
            memcpy(all + hn + hl + 2, body, len);
            rc = xv_exp_otlp_tls_write(ssl, fd, all, (size_t)hn + hl + 2 + len, deadline_ns);
        }
        free(all);
    } else {
        struct iovec iov[4] = {
            { head, (size_t)hn },
            { cfg->headers, strlen(cfg->headers) },
            { (void *)"\r\n", 2 },
            { (void *)body, len },
        };
        rc = send_all(fd, iov, 4, deadline_ns);
    }
    /* Read the head only; a body (partial success details) is not needed. */
    char in[XV_OTLP_RESP_HEAD_MAX + 1];
    size_t got = 0;
    while (rc == 0) {
        ssize_t r = ssl ? xv_exp_otlp_tls_read(ssl, fd, in + got, XV_OTLP_RESP_HEAD_MAX - got,
                                               deadline_ns)
                        : XV_REAL(recv)(fd, in + got, XV_OTLP_RESP_HEAD_MAX - got, 0);
        if (ssl && r < 0) {
            rc = (int)r;
            break;
        }
        if (r > 0) {
            got += (size_t)r;
            in[got] = '\0';
            if (strstr(in, "\r\n\r\n")) {
                rc = parse_head(in, resp);
                break;
            }
            if (got == XV_OTLP_RESP_HEAD_MAX) {
                rc = XV_E_LIMIT;
                break;
            }
            continue;
        }
        if (r == 0) {
            rc = -ECONNRESET;   /* closed before a complete head */
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            rc = xv_exp_otlp_wait_fd(fd, POLLIN, deadline_ns);
            continue;
        }
        rc = -errno;
    }
    xv_exp_otlp_tls_close(ssl);
    XV_REAL(close)(fd);
    return rc;
}
