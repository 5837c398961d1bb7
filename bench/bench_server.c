/*
 * bench_server.c — the benchmark's upstream: a minimal HTTP/1.1 server on
 * 127.0.0.1 (TLS, optionally plain TCP too) that answers fast enough for the
 * agent's per-call cost to show:
 *   POST .../chat/completions  -> a fixed chat.completion JSON (Content-Length)
 *   GET  /download/<N>         -> N bytes of a fixed pattern (Content-Length)
 *   anything else              -> 404
 * Keep-alive unless the request says "Connection: close". One thread per
 * connection, blocking I/O. Never run under the agent.
 *
 * Usage: bench_server --cert PEM --key PEM --port-file F [--plain-port-file F2]
 *                     [--max-seconds S]
 * Each port is written to its file (via a rename, so a reader never sees half
 * a number) once the listener is ready. The process exits after S seconds
 * (default 900) or on SIGTERM.
 *
 * Invariant: replies depend only on the request line, so runs with and
 * without the agent get the same bytes. Thread safety: connection threads
 * share only the read-only SSL_CTX and the pattern block.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4 */
#endif
#include "bench_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_CAP (64u * 1024u)

static SSL_CTX *g_ctx;
static unsigned char g_block[BUF_CAP];   /* download payload pattern */

struct conn {
    int fd;      /* accepted socket */
    int tls;     /* 1 when g_ctx wraps it */
};

struct io {
    SSL *ssl;    /* NULL on plain TCP */
    int fd;
};

static long io_read(struct io *io, char *buf, size_t n)
{
    if (io->ssl) {
        int r = SSL_read(io->ssl, buf, (int)(n > INT32_MAX ? INT32_MAX : n));
        return r > 0 ? r : -1;
    }
    for (;;) {
        ssize_t r = read(io->fd, buf, n);
        if (r < 0 && errno == EINTR)
            continue;
        return r > 0 ? (long)r : -1;
    }
}

static int io_write_all(struct io *io, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        long w;
        if (io->ssl) {
            w = SSL_write(io->ssl, p, (int)(n > (1u << 20) ? (1u << 20) : n));
        } else {
            w = write(io->fd, p, n);
            if (w < 0 && errno == EINTR)
                continue;
        }
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Serve requests on one connection until close or error. */
static void serve(struct io *io)
{
    static const char reply[] = BENCH_CHAT_REPLY;
    char *buf = malloc(BUF_CAP);
    if (!buf)
        return;
    size_t have = 0;
    for (;;) {
        size_t head;
        while ((head = bench_head_len(buf, have)) == 0) {
            if (have == BUF_CAP)
                goto out;
            long r = io_read(io, buf + have, BUF_CAP - have);
            if (r <= 0)
                goto out;
            have += (size_t)r;
        }
        long long clen = bench_header_num(buf, head, "Content-Length");
        if (clen < 0)
            clen = 0;
        int close_after = 0;
        for (size_t i = 0; i + 17 < head; i++)
            if (strncasecmp(buf + i, "\nConnection: close", 18) == 0)
                close_after = 1;
        char method[16] = "", target[512] = "";
        sscanf(buf, "%15s %511s", method, target);
        /* Drop the head, then the body (possibly across several reads). */
        memmove(buf, buf + head, have - head);
        have -= head;
        while ((long long)have < clen) {
            clen -= (long long)have;
            have = 0;
            long r = io_read(io, buf, BUF_CAP);
            if (r <= 0)
                goto out;
            have = (size_t)r;
        }
        memmove(buf, buf + clen, have - (size_t)clen);
        have -= (size_t)clen;

        char hdr[512];
        size_t tl = strlen(target);
        const char *conn_hdr = close_after ? "close" : "keep-alive";
        if (strcmp(method, "POST") == 0 && tl >= 17 &&
            strcmp(target + tl - 17, "/chat/completions") == 0) {
            char out[2048];
            int n = snprintf(out, sizeof out,
                             "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             "x-request-id: req_bench\r\nContent-Length: %zu\r\n"
                             "Connection: %s\r\n\r\n%s",
                             sizeof reply - 1, conn_hdr, reply);
            if (io_write_all(io, out, (size_t)n) != 0)
                goto out;
        } else if (strncmp(target, "/download/", 10) == 0) {
            unsigned long long left = strtoull(target + 10, NULL, 10);
            int n = snprintf(hdr, sizeof hdr,
                             "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                             "Content-Length: %llu\r\nConnection: %s\r\n\r\n",
                             left, conn_hdr);
            if (io_write_all(io, hdr, (size_t)n) != 0)
                goto out;
            while (left > 0) {
                size_t k = left < sizeof g_block ? (size_t)left : sizeof g_block;
                if (io_write_all(io, g_block, k) != 0)
                    goto out;
                left -= k;
            }
        } else {
            int n = snprintf(hdr, sizeof hdr,
                             "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: %s\r\n\r\n",
                             conn_hdr);
            if (io_write_all(io, hdr, (size_t)n) != 0)
                goto out;
        }
        if (close_after)
            break;
    }
out:
    free(buf);
}

static void *conn_main(void *arg)
{
    struct conn c = *(struct conn *)arg;
    free(arg);
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct io io = { NULL, c.fd };
    if (c.tls) {
        io.ssl = SSL_new(g_ctx);
        if (!io.ssl || SSL_set_fd(io.ssl, c.fd) != 1 || SSL_accept(io.ssl) != 1) {
            if (io.ssl)
                SSL_free(io.ssl);
            close(c.fd);
            return NULL;
        }
    }
    serve(&io);
    if (io.ssl) {
        SSL_shutdown(io.ssl);
        SSL_free(io.ssl);
    }
    close(c.fd);
    return NULL;
}

static int listen_local(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 128) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

static int write_port(const char *path, int port)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    fprintf(f, "%d\n", port);
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

struct acceptor {
    int lfd;
    int tls;
};

static void *accept_main(void *arg)
{
    struct acceptor *a = arg;
    for (;;) {
        int fd = accept4(a->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return NULL;
        }
        struct conn *c = malloc(sizeof *c);
        pthread_t t;
        pthread_attr_t at;
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->tls = a->tls;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &at, conn_main, c) != 0) {
            close(fd);
            free(c);
        }
        pthread_attr_destroy(&at);
    }
}

int main(int argc, char **argv)
{
    const char *cert = NULL, *key = NULL, *port_file = NULL, *plain_file = NULL;
    unsigned max_s = 900;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--cert"))
            cert = argv[i + 1];
        else if (!strcmp(argv[i], "--key"))
            key = argv[i + 1];
        else if (!strcmp(argv[i], "--port-file"))
            port_file = argv[i + 1];
        else if (!strcmp(argv[i], "--plain-port-file"))
            plain_file = argv[i + 1];
        else if (!strcmp(argv[i], "--max-seconds"))
            max_s = (unsigned)atoi(argv[i + 1]);
    }
    if (!cert || !key || !port_file) {
        fprintf(stderr, "usage: %s --cert PEM --key PEM --port-file F [--plain-port-file F2] "
                        "[--max-seconds S]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    alarm(max_s);   /* hard lifetime bound: SIGALRM's default action ends the process */
    for (size_t i = 0; i < sizeof g_block; i++)
        g_block[i] = (unsigned char)(i * 7 + 3);

    g_ctx = SSL_CTX_new(TLS_server_method());
    if (!g_ctx || SSL_CTX_use_certificate_chain_file(g_ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(g_ctx, key, SSL_FILETYPE_PEM) != 1) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    struct acceptor acc[2];
    int nacc = 0, port;
    acc[nacc].lfd = listen_local(&port);
    acc[nacc].tls = 1;
    if (acc[nacc].lfd < 0 || write_port(port_file, port) != 0) {
        perror("tls listener");
        return 1;
    }
    nacc++;
    if (plain_file) {
        acc[nacc].lfd = listen_local(&port);
        acc[nacc].tls = 0;
        if (acc[nacc].lfd < 0 || write_port(plain_file, port) != 0) {
            perror("plain listener");
            return 1;
        }
        nacc++;
    }
    pthread_t t[2];
    for (int i = 0; i < nacc; i++)
        pthread_create(&t[i], NULL, accept_main, &acc[i]);
    for (int i = 0; i < nacc; i++)
        pthread_join(t[i], NULL);
    return 0;
}
