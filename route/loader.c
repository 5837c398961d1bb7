/*
 * loader.c — the agent's side of the relay: loading the private object
 * libxenovia-route.so (next to libxenovia.so) on the first routed connect,
 * sending a connecting socket to it, and answering the X509_verify_cert
 * hook. A process that routes nothing never loads libssl through us.
 *
 * Thread safety: g is written under g.mu; g.mod is published with release
 * semantics and read lock-free by xv_route_vouch.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "xv_route.h"

static struct {
    pthread_mutex_t mu;
    _Atomic(const struct xv_route_module *) mod; /* loaded relay object, or NULL */
    int started;          /* the relay runs in this process (reset in a fork child) */
    int port;             /* its loopback port */
    int failed;           /* could not load or start: routed connects fail */
    struct xv_route_host_api api;
    xv_route_replay_fn replay;   /* set by the preload */
    int recorded_timing;
} g = { .mu = PTHREAD_MUTEX_INITIALIZER };

void xv_route_set_replay(xv_route_replay_fn fn, int recorded_timing)
{
    g.replay = fn;
    g.recorded_timing = recorded_timing;
}

static const struct xv_route_module *load(void)
{
    Dl_info info;
    char path[4096];
    if (!dladdr((void *)&xv_route_connect, &info) || !info.dli_fname)
        return NULL;
    const char *slash = strrchr(info.dli_fname, '/');
    int dl = slash ? (int)(slash - info.dli_fname) : 1;
    snprintf(path, sizeof path, "%.*s/libxenovia-route.so", dl, slash ? info.dli_fname : ".");
    /* RTLD_DEEPBIND: the relay and the libssl/libcrypto it brings resolve
     * their names among themselves first — in a program that exports its own
     * OpenSSL (Node's official builds) they must not call into it — and its
     * socket calls go straight to libc, not through the agent's hooks. */
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL | XV_RTLD_DEEPBIND);
    if (!h) {
        xv_log(XV_LOG_ERROR, "route: cannot load %s (%s); routed calls fail", path, dlerror());
        return NULL;
    }
    const struct xv_route_module *(*entry)(void) =
        (const struct xv_route_module *(*)(void))dlsym(h, "xv_route_module");
    const struct xv_route_module *m = entry ? entry() : NULL;
    if (!m || m->abi != XV_ROUTE_ABI) {
        xv_log(XV_LOG_ERROR, "route: %s is not this agent's relay; routed calls fail", path);
        return NULL;
    }
    return m;
}

/* The relay, started on first use; NULL (logged once) when it cannot run. */
static const struct xv_route_module *relay(int *port)
{
    pthread_mutex_lock(&g.mu);
    const struct xv_route_module *m = atomic_load(&g.mod);
    if (!g.started && !g.failed) {
        if (!m) {
            m = load();
            atomic_store_explicit(&g.mod, m, memory_order_release);
        }
        g.api.guard_enter = xv_guard_enter;
        g.api.guard_leave = xv_guard_leave;
        g.api.cfg = xv_route_config();
        g.api.log_level = XV_LOG_WARN;
        g.api.replay = g.replay;
        g.api.buf_free = xv_buf_free;
        g.api.replay_recorded_timing = g.recorded_timing;
        g.api.real = &xv_real;
        if (m && m->start(&g.api, &g.port) == 0)
            g.started = 1;
        else
            g.failed = 1;
    }
    int ok = g.started;
    *port = g.port;
    pthread_mutex_unlock(&g.mu);
    return ok ? m : NULL;
}

int xv_route_connect(int fd, const struct xv_route_rule *r, const char *orig_host,
                     int orig_port, xv_route_connect_fn real_connect)
{
    const struct xv_route_config *cfg = xv_route_config();
    int port = 0;
    const struct xv_route_module *m = cfg ? relay(&port) : NULL;
    if (!m) {
        errno = ECONNREFUSED; /* never to the original host */
        return -1;
    }
    int family = AF_INET;
    socklen_t fl = sizeof family;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &fl) != 0)
        family = AF_INET;
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    if (family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        inet_pton(AF_INET6, "::ffff:127.0.0.1", &s6->sin6_addr);
        len = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *s4;
    }
    int rc = real_connect(fd, (struct sockaddr *)&ss, len);
    int saved = errno;
    if (rc == 0 || saved == EINPROGRESS || saved == EINTR) {
        struct sockaddr_storage me;
        socklen_t ml = sizeof me;
        if (getsockname(fd, (struct sockaddr *)&me, &ml) == 0) {
            int lport = me.ss_family == AF_INET6
                            ? ntohs(((struct sockaddr_in6 *)&me)->sin6_port)
                            : ntohs(((struct sockaddr_in *)&me)->sin_port);
            m->expect(lport, (int)(r - cfg->rule), orig_host, orig_port);
        }
    }
    errno = saved;
    return rc;
}

/* The libcrypto functions the vouch needs, from the OpenSSL that owns the
 * context (opaque pointers: the agent includes no OpenSSL header). */
typedef void *(*get0_cert_fn)(void *ctx);
typedef int (*i2d_fn)(void *x509, unsigned char **out);
typedef void (*set_error_fn)(void *ctx, int err);
typedef void *(*sk_new_fn)(void);
typedef int (*sk_push_fn)(void *sk, const void *item);
typedef int (*up_ref_fn)(void *x509);
typedef void (*set_chain_fn)(void *ctx, void *sk);

int xv_route_vouch(void *ctx, void *(*fn)(const char *name))
{
    const struct xv_route_module *m = atomic_load_explicit(&g.mod, memory_order_acquire);
    if (!m || !fn)
        return 0;
    get0_cert_fn get0 = (get0_cert_fn)fn("X509_STORE_CTX_get0_cert");
    i2d_fn i2d = (i2d_fn)fn("i2d_X509");
    set_error_fn set_error = (set_error_fn)fn("X509_STORE_CTX_set_error");
    void *leaf = get0 ? get0(ctx) : NULL;
    if (!leaf || !i2d || !set_error)
        return 0;
    int n = i2d(leaf, NULL);
    if (n <= 0 || n > (1 << 20))
        return 0;
    unsigned char stackbuf[4096];
    unsigned char *der = n <= (int)sizeof stackbuf ? stackbuf : malloc((size_t)n);
    if (!der)
        return 0;
    unsigned char *p = der;
    int hit = i2d(leaf, &p) == n && m->minted_der(der, (size_t)n);
    if (der != stackbuf)
        free(der);
    if (!hit)
        return 0;
    /* look like a completed verification: no error (X509_V_OK is 0) and a
     * verified chain of the certificate alone, for whoever asks for it */
    sk_new_fn sk_new = (sk_new_fn)fn("OPENSSL_sk_new_null");
    sk_push_fn sk_push = (sk_push_fn)fn("OPENSSL_sk_push");
    up_ref_fn up_ref = (up_ref_fn)fn("X509_up_ref");
    set_chain_fn set_chain = (set_chain_fn)fn("X509_STORE_CTX_set0_verified_chain");
    if (sk_new && sk_push && up_ref && set_chain) {
        void *sk = sk_new();
        if (sk && up_ref(leaf) && sk_push(sk, leaf) > 0)
            set_chain(ctx, sk); /* the context owns it now */
    }
    set_error(ctx, 0);
    return 1;
}

void xv_route_atfork_child(void)
{
    pthread_mutex_init(&g.mu, NULL);
    const struct xv_route_module *m = atomic_load(&g.mod);
    if (m && g.started)
        m->atfork_child();
    g.started = 0;
    g.failed = 0;
}
