/*
 * static_tls_client.c — a tiny HTTP/1.1 client for acceptance 5 of issue 2:
 * built with OpenSSL linked in statically (libssl.a, libcrypto.a), so the
 * agent's SSL_* hooks can never see its TLS and the agent must say
 * "xenovia: not covered: ..." once and otherwise stay out of the way.
 *
 * Usage: static_tls_client https|http PORT PATH [CA_FILE] [BODY]
 *   Connects to 127.0.0.1:PORT, sends one request (POST with BODY as JSON when
 *   BODY is given, else GET) with "Connection: close", verifies the server
 *   against CA_FILE (https; host 127.0.0.1 checked as an IP SAN), and writes
 *   the whole response (head and body) to stdout. Exit 0 when a complete
 *   response arrived, 1 otherwise (with a message on stderr).
 *
 * Invariant: the bytes written to stdout are exactly the bytes received, so a
 * run with and without the agent can be compared byte for byte. The body is
 * complete when Content-Length bytes arrived (the mock closes without
 * close_notify, which OpenSSL 3 reports as an unexpected EOF).
 *
 * Thread safety: single-threaded test program.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define RESP_MAX (4u << 20) /* the mock's answers are a few hundred bytes */

static int connect_local(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Is the response in buf[0..n) complete? Head plus Content-Length bytes. */
static int response_complete(const char *buf, size_t n)
{
    const char *end = NULL;
    for (size_t i = 0; i + 3 < n; i++) {
        if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
            end = buf + i + 4;
            break;
        }
    }
    if (!end)
        return 0;
    size_t head = (size_t)(end - buf);
    long clen = -1;
    for (const char *p = buf; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        if ((size_t)(nl - p) > 15 && strncasecmp(p, "Content-Length:", 15) == 0)
            clen = strtol(p + 15, NULL, 10);
        p = nl + 1;
    }
    return clen >= 0 && n >= head + (size_t)clen;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s https|http PORT PATH [CA_FILE] [BODY]\n", argv[0]);
        return 2;
    }
    int tls = strcmp(argv[1], "https") == 0;
    int port = atoi(argv[2]);
    const char *path = argv[3];
    const char *ca = argc > 4 ? argv[4] : NULL;
    const char *body = argc > 5 ? argv[5] : NULL;

    char req[8192];
    int rn;
    if (body)
        rn = snprintf(req, sizeof req,
                      "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: static-tls-client/1\r\n"
                      "Authorization: Bearer sk-test-static\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                      path, port, strlen(body), body);
    else
        rn = snprintf(req, sizeof req,
                      "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: static-tls-client/1\r\n"
                      "Connection: close\r\n\r\n",
                      path, port);
    if (rn < 0 || (size_t)rn >= sizeof req) {
        fprintf(stderr, "request too long\n");
        return 2;
    }

    int fd = connect_local(port);
    if (fd < 0) {
        perror("connect");
        return 1;
    }
    char *resp = malloc(RESP_MAX);
    if (!resp)
        return 1;
    size_t got = 0;
    int ok = 0;

    if (tls) {
        SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
        if (!ctx || (ca && SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)) {
            ERR_print_errors_fp(stderr);
            return 1;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        SSL *ssl = SSL_new(ctx);
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1");
        SSL_set_fd(ssl, fd);
        if (SSL_connect(ssl) != 1) {
            fprintf(stderr, "TLS handshake failed\n");
            ERR_print_errors_fp(stderr);
            return 1;
        }
        if (SSL_write(ssl, req, rn) != rn) {
            fprintf(stderr, "SSL_write failed\n");
            return 1;
        }
        while (got < RESP_MAX && !response_complete(resp, got)) {
            int r = SSL_read(ssl, resp + got, (int)(RESP_MAX - got));
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        ok = response_complete(resp, got);
        SSL_shutdown(ssl);
        SSL_free(ssl);
        SSL_CTX_free(ctx);
    } else {
        for (int off = 0; off < rn;) {
            ssize_t w = write(fd, req + off, (size_t)(rn - off));
            if (w <= 0) {
                perror("write");
                return 1;
            }
            off += (int)w;
        }
        while (got < RESP_MAX && !response_complete(resp, got)) {
            ssize_t r = read(fd, resp + got, RESP_MAX - got);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        ok = response_complete(resp, got);
    }
    close(fd);
    fwrite(resp, 1, got, stdout);
    fflush(stdout);
    free(resp);
    if (!ok)
        fprintf(stderr, "incomplete response (%zu bytes)\n", got);
    return ok ? 0 : 1;
}
