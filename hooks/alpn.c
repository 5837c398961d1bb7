/*
 * alpn.c — ALPN offers for the TLS hooks (tls.c). For hosts the agent must
 * inspect, an offer of h2 is narrowed to http/1.1 (SPEC §2) once the SSL's
 * host name (SNI) is known. The offers seen before that — an SSL_CTX's, and
 * an SSL's own offer made before its host name was set (Node sets ALPN in
 * the TLSSocket constructor and the server name afterwards) — are kept
 * here, keyed by the SSL_CTX or SSL pointer, so SNI time can narrow them.
 *
 * Thread safety: a small fixed table under one lock (statically
 * initialised; a fork child re-initialises it); the oldest entry is
 * overwritten; an SSL's entry is dropped at SNI time or SSL_free.
 */
#include "xv_hooks.h"

#include <pthread.h>
#include <string.h>

#include "xv_common.h"

#define ALPN_CTX_MAX 32
static struct {
    pthread_mutex_t mu;
    unsigned next;
    struct {
        const void *key;
        unsigned len;
        unsigned char protos[64];
    } e[ALPN_CTX_MAX];
} g_alpn = { .mu = PTHREAD_MUTEX_INITIALIZER };
/* An SSL-level offer was ever stored (SSL_free skips the scan otherwise);
 * apart from the table, so every SSL_free does not read its page. */
static int g_alpn_any_ssl XV_CALL_DATA;

void xv_alpn_remember(const void *key, const unsigned char *protos, unsigned len, int is_ssl)
{
    pthread_mutex_lock(&g_alpn.mu);
    int slot = -1;
    for (int i = 0; i < ALPN_CTX_MAX; i++)
        if (g_alpn.e[i].key == key)
            slot = i;
    if (slot < 0)
        slot = (int)(g_alpn.next++ % ALPN_CTX_MAX);
    g_alpn.e[slot].key = key;
    g_alpn.e[slot].len = len;
    memcpy(g_alpn.e[slot].protos, protos, len);
    if (is_ssl)
        __atomic_store_n(&g_alpn_any_ssl, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&g_alpn.mu);
}

/* Copy the offer stored for key into out (64 bytes; may be NULL), optionally
 * dropping it. Its length, 0 when none. */
unsigned xv_alpn_take(const void *key, unsigned char *out, int drop)
{
    unsigned len = 0;
    if (!key)
        return 0;
    pthread_mutex_lock(&g_alpn.mu);
    for (int i = 0; i < ALPN_CTX_MAX; i++) {
        if (g_alpn.e[i].key != key)
            continue;
        len = g_alpn.e[i].len;
        if (out)
            memcpy(out, g_alpn.e[i].protos, len);
        if (drop)
            g_alpn.e[i].key = NULL;
    }
    pthread_mutex_unlock(&g_alpn.mu);
    return len;
}

/* Hosts whose h2 offers are narrowed: XENOVIA_HOSTS, else the defaults. */
int xv_alpn_narrow_host(const char *host)
{
    const char *list = xv_conn_get_config()->hosts;
    if (!list || !*list)
        list = "api.openai.com,*.openai.azure.com,runtime.xenovia.io";
    return xv_conn_host_allowed(list, host, 443) || xv_conn_host_allowed(list, host, 0);
}

/* Copy an ALPN wire list without "h2"; 0 when nothing to change (no h2, or
 * no http/1.1 to fall back to). */
unsigned xv_alpn_filter(const unsigned char *in, unsigned len, unsigned char *out, unsigned cap)
{
    unsigned o = 0, i = 0;
    int had_h2 = 0, has_h1 = 0;
    while (i < len) {
        unsigned l = in[i];
        if (i + 1 + l > len)
            return 0; /* malformed: leave it alone */
        const unsigned char *p = in + i + 1;
        if (l == 2 && memcmp(p, "h2", 2) == 0) {
            had_h2 = 1;
        } else {
            if (l == 8 && memcmp(p, "http/1.1", 8) == 0)
                has_h1 = 1;
            if (o + 1 + l > cap)
                return 0;
            out[o++] = (unsigned char)l;
            memcpy(out + o, p, l);
            o += l;
        }
        i += 1 + l;
    }
    return (had_h2 && has_h1) ? o : 0;
}

void xv_alpn_narrow_ssl(SSL *s, const unsigned char *protos, unsigned len)
{
    unsigned char f[256];
    unsigned n = xv_alpn_filter(protos, len, f, sizeof f);
    int (*set)(SSL *, const unsigned char *, unsigned) = xv_real_ssl(XV_SSL_set_alpn_protos);
    if (n && set && set(s, f, n) == 0)
        xv_log(XV_LOG_DEBUG, "ALPN narrowed to http/1.1 for inspection");
}

void xv_alpn_forget_ssl(const SSL *s)
{
    if (__atomic_load_n(&g_alpn_any_ssl, __ATOMIC_RELAXED))
        xv_alpn_take(s, NULL, 1);
}

void xv_alpn_atfork_child(void)
{
    pthread_mutex_init(&g_alpn.mu, NULL);
}
