/*
 * otlp_tls.c — TLS for https:// OTLP endpoints through a lazily dlopen'ed
 * libssl.so.3 (the agent links no TLS library: a host without TLS must not
 * get one loaded, and one with its own keeps it). The library is loaded
 * only when an https endpoint is configured; if it cannot be, the
 * configuration falls back to the JSON Lines file with one stderr line.
 *
 * Functions are resolved from the dlopen handle, so they are libssl's own
 * and never the preload's SSL_* hooks; the socket I/O libssl does runs on
 * the exporter thread with xv_guard active, so the libc hooks pass it
 * through too. The server certificate is verified against the system CAs,
 * or the PEM file in OTEL_EXPORTER_OTLP_(TRACES_)CERTIFICATE, and the host
 * name (or IP address) of the endpoint.
 *
 * Thread safety: xv_exp_otlp_tls_available may run on any thread (once);
 * the other functions run on the exporter thread only (the SSL_CTX is
 * cached there; a fork child's thread may reuse it, as OpenSSL allows).
 */
#include "otlp_int.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <stddef.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Constants of the OpenSSL 3 ABI (stable: public macros of ssl.h). */
#define XV_SSL_VERIFY_PEER 1
#define XV_SSL_CTRL_SET_TLSEXT_HOSTNAME 55
#define XV_TLSEXT_NAMETYPE_host_name 0
#define XV_SSL_ERROR_WANT_READ 2
#define XV_SSL_ERROR_WANT_WRITE 3
#define XV_SSL_ERROR_ZERO_RETURN 6
#define XV_X509_V_OK 0
#define XV_OPENSSL_INIT_NO_ATEXIT 0x00080000L

/* libssl entry points (resolved once; NULL handle = not available). */
static struct {
    pthread_once_t once;           /* load() */
    void *h;                       /* dlopen handle */
    char why[160];                 /* dlerror() text when it failed */
    const void *(*TLS_client_method)(void);
    void *(*SSL_CTX_new)(const void *);
    void (*SSL_CTX_free)(void *);
    int (*SSL_CTX_set_default_verify_paths)(void *);
    int (*SSL_CTX_load_verify_locations)(void *, const char *, const char *);
    void (*SSL_CTX_set_verify)(void *, int, void *);
    void *(*SSL_new)(void *);
    void (*SSL_free)(void *);
    int (*SSL_set_fd)(void *, int);
    long (*SSL_ctrl)(void *, int, long, void *);
    int (*SSL_set1_host)(void *, const char *);
    int (*SSL_connect)(void *);
    int (*SSL_write)(void *, const void *, int);
    int (*SSL_read)(void *, void *, int);
    int (*SSL_get_error)(const void *, int);
    int (*SSL_shutdown)(void *);
    long (*SSL_get_verify_result)(const void *);
    void (*ERR_clear_error)(void);
    /* exporter thread only */
    void *ctx;                     /* cached SSL_CTX, NULL until first use */
    char *ctx_ca;                  /* CA file the cached ctx was made with (owned) */
} g_tls = { .once = PTHREAD_ONCE_INIT };

static void load(void)
{
    void *h = dlopen("libssl.so.3", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(g_tls.why, sizeof g_tls.why, "%s", e ? e : "not found");
        return;
    }
    /* Name → slot; every one must resolve or TLS stays off. ERR_clear_error
     * is libcrypto's, found through libssl's dependencies. Names and slot
     * offsets, not pointers: a table of pointers is relocated by the loader,
     * a page written at every process start (issue 9). */
#define XV_TLS_SYM(n) { #n, offsetof(__typeof__(g_tls), n) }
    static const struct {
        char name[40];
        unsigned short off;
    } syms[] = {
        XV_TLS_SYM(TLS_client_method),
        XV_TLS_SYM(SSL_CTX_new),
        XV_TLS_SYM(SSL_CTX_free),
        XV_TLS_SYM(SSL_CTX_set_default_verify_paths),
        XV_TLS_SYM(SSL_CTX_load_verify_locations),
        XV_TLS_SYM(SSL_CTX_set_verify),
        XV_TLS_SYM(SSL_new),
        XV_TLS_SYM(SSL_free),
        XV_TLS_SYM(SSL_set_fd),
        XV_TLS_SYM(SSL_ctrl),
        XV_TLS_SYM(SSL_set1_host),
        XV_TLS_SYM(SSL_connect),
        XV_TLS_SYM(SSL_write),
        XV_TLS_SYM(SSL_read),
        XV_TLS_SYM(SSL_get_error),
        XV_TLS_SYM(SSL_shutdown),
        XV_TLS_SYM(SSL_get_verify_result),
        XV_TLS_SYM(ERR_clear_error),
    };
#undef XV_TLS_SYM
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void **slot = (void **)((char *)&g_tls + syms[i].off);
        *slot = dlsym(h, syms[i].name);
        if (!*slot) {
            snprintf(g_tls.why, sizeof g_tls.why, "no %.64s in libssl.so.3", syms[i].name);
            return;
        }
    }
    /* Initialise OpenSSL here, from our constructor, before the host does:
     * - without it, SSL_CTX_new on the exporter thread failed in python3
     *   hosts that initialise OpenSSL themselves later (found by
     *   tests/otlp t_preload_python_https; cause not pinned down);
     * - OPENSSL_INIT_NO_ATEXIT keeps OpenSSL from registering
     *   OPENSSL_cleanup with atexit(): exit() would run it before our
     *   destructor, while the exporter thread may still be sending (the OS
     *   frees the memory at exit anyway).
     * A host that initialised OpenSSL before us, or calls OPENSSL_cleanup
     * itself, keeps that hazard: see docs/exporter.md. */
    int (*init_crypto)(uint64_t, const void *) = dlsym(h, "OPENSSL_init_crypto");
    int (*init_ssl)(uint64_t, const void *) = dlsym(h, "OPENSSL_init_ssl");
    if (!init_crypto || !init_ssl || init_crypto(XV_OPENSSL_INIT_NO_ATEXIT, NULL) != 1 ||
        init_ssl(0, NULL) != 1) {
        snprintf(g_tls.why, sizeof g_tls.why, "OpenSSL initialisation failed");
        return;
    }
    g_tls.h = h;                   /* published last: all symbols are there */
}

int xv_exp_otlp_tls_available(const char **why)
{
    pthread_once(&g_tls.once, load);
    *why = g_tls.why;
    return g_tls.h != NULL;
}

static void *get_ctx(const char *ca_file)
{
    if (g_tls.ctx && ((!ca_file && !g_tls.ctx_ca) ||
                      (ca_file && g_tls.ctx_ca && !strcmp(ca_file, g_tls.ctx_ca))))
        return g_tls.ctx;
    if (g_tls.ctx) {
        g_tls.SSL_CTX_free(g_tls.ctx);
        g_tls.ctx = NULL;
        free(g_tls.ctx_ca);
        g_tls.ctx_ca = NULL;
    }
    void *ctx = g_tls.SSL_CTX_new(g_tls.TLS_client_method());
    if (!ctx)
        return NULL;
    int ok = ca_file ? g_tls.SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                     : g_tls.SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        g_tls.SSL_CTX_free(ctx);
        return NULL;
    }
    g_tls.SSL_CTX_set_verify(ctx, XV_SSL_VERIFY_PEER, NULL);
    g_tls.ctx = ctx;
    g_tls.ctx_ca = ca_file ? strdup(ca_file) : NULL;
    return ctx;
}

/* Wait as libssl asked; 0 to retry, <0 to give up. */
static int want(void *ssl, int r, int fd, uint64_t deadline_ns)
{
    int e = g_tls.SSL_get_error(ssl, r);
    short ev;
    if (e == XV_SSL_ERROR_WANT_READ)
        ev = POLLIN;
    else if (e == XV_SSL_ERROR_WANT_WRITE)
        ev = POLLOUT;
    else
        return e == XV_SSL_ERROR_ZERO_RETURN ? -ECONNRESET : XV_E_IO;
    return xv_exp_otlp_wait_fd(fd, ev, deadline_ns);
}

int xv_exp_otlp_tls_open(const struct xv_exp_otlp_cfg *cfg, int fd, uint64_t deadline_ns,
                         void **out)
{
    *out = NULL;
    if (!g_tls.h)
        return XV_E_UNSUPPORTED;
    g_tls.ERR_clear_error();
    void *ctx = get_ctx(cfg->ca_file);
    if (!ctx)
        return XV_E_CONFIG;
    void *ssl = g_tls.SSL_new(ctx);
    if (!ssl)
        return XV_E_NOMEM;
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, cfg->host, ip) == 1 || inet_pton(AF_INET6, cfg->host, ip) == 1;
    /* SNI for names only (RFC 6066 forbids literal addresses); the
     * certificate is checked against the name or the address. */
    if (g_tls.SSL_set_fd(ssl, fd) != 1 ||
        (!is_ip && g_tls.SSL_ctrl(ssl, XV_SSL_CTRL_SET_TLSEXT_HOSTNAME,
                                  XV_TLSEXT_NAMETYPE_host_name, cfg->host) != 1) ||
        g_tls.SSL_set1_host(ssl, cfg->host) != 1) {
        g_tls.SSL_free(ssl);
        return XV_E_IO;
    }
    for (;;) {
        int r = g_tls.SSL_connect(ssl);
        if (r == 1)
            break;
        int rc = want(ssl, r, fd, deadline_ns);
        if (rc < 0) {
            long v = g_tls.SSL_get_verify_result(ssl);
            g_tls.SSL_free(ssl);
            g_tls.ERR_clear_error();
            return v != XV_X509_V_OK ? XV_E_CONFIG : rc;   /* CONFIG: certificate refused */
        }
    }
    *out = ssl;
    return 0;
}

int xv_exp_otlp_tls_write(void *ssl, int fd, const char *p, size_t n, uint64_t deadline_ns)
{
    while (n) {
        int chunk = n > (1u << 30) ? 1 << 30 : (int)n;
        int r = g_tls.SSL_write(ssl, p, chunk);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
            continue;
        }
        int rc = want(ssl, r, fd, deadline_ns);   /* retried with the same arguments */
        if (rc < 0)
            return rc;
    }
    return 0;
}

long xv_exp_otlp_tls_read(void *ssl, int fd, char *p, size_t n, uint64_t deadline_ns)
{
    for (;;) {
        int r = g_tls.SSL_read(ssl, p, n > (1u << 30) ? 1 << 30 : (int)n);
        if (r > 0)
            return r;
        int e = g_tls.SSL_get_error(ssl, r);
        if (e == XV_SSL_ERROR_ZERO_RETURN)
            return 0;
        int rc = want(ssl, r, fd, deadline_ns);
        if (rc < 0)
            return rc;
    }
}

void xv_exp_otlp_tls_close(void *ssl)
{
    if (!ssl)
        return;
    g_tls.SSL_shutdown(ssl);       /* one close_notify, no waiting for the peer's */
    g_tls.SSL_free(ssl);
    g_tls.ERR_clear_error();
}
