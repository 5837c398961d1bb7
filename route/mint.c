/*
 * mint.c — certificates for the program's side of a rerouted TLS connection.
 *
 * One P-256 key per process (made at the relay's start, never written
 * anywhere), and per original host name one self-signed certificate for it
 * (subject CN and subjectAltName DNS or IP), kept for the life of the
 * process (at most MINT_MAX names; past that the oldest context is reused
 * for no new name: the connection fails instead of growing memory).
 *
 * The X509_verify_cert hook asks whether the certificate a program is
 * verifying is one of these, by full comparison of the DER encodings
 * (signature included; xv_route_mint_der): only a peer holding this
 * process's private key can present it, and that is the relay itself. The
 * hook reads the certificate with the program's own OpenSSL (route/loader.c),
 * which may be another build than the relay's (Node's compiled-in one).
 *
 * Thread safety: g.mu guards the table; contexts are immutable once made.
 */
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "route_int.h"

#define MINT_MAX 64

static struct {
    pthread_mutex_t mu;
    EVP_PKEY *key;
    int n;
    struct {
        char host[256];
        X509 *cert;
        SSL_CTX *ctx;
        unsigned char *der;   /* the certificate's DER (what the hook compares) */
        size_t der_len;
    } e[MINT_MAX];
} g = { .mu = PTHREAD_MUTEX_INITIALIZER };

int xv_route_mint_init(void)
{
    pthread_mutex_lock(&g.mu);
    if (!g.key)
        g.key = EVP_EC_gen("P-256");
    int ok = g.key != NULL;
    pthread_mutex_unlock(&g.mu);
    ERR_clear_error();
    return ok ? 0 : XV_E_NOMEM;
}

static X509 *make_cert(const char *host)
{
    X509 *x = X509_new();
    if (!x)
        return NULL;
    uint64_t serial = 0;
    RAND_bytes((unsigned char *)&serial, sizeof serial);
    serial >>= 1;
    char san[300];
    struct in6_addr ip;
    int is_ip = inet_pton(AF_INET, host, &ip) == 1 || inet_pton(AF_INET6, host, &ip) == 1;
    snprintf(san, sizeof san, "%s:%s", is_ip ? "IP" : "DNS", host);
    X509V3_CTX v3;
    X509_NAME *nm = X509_get_subject_name(x);
    int ok = X509_set_version(x, 2) && ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial) &&
             X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
             X509_gmtime_adj(X509_getm_notAfter(x), 7L * 86400) && X509_set_pubkey(x, g.key) &&
             X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8, (const unsigned char *)host, -1,
                                        -1, 0) &&
             X509_set_issuer_name(x, nm);
    if (ok) {
        X509V3_set_ctx_nodb(&v3);
        X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
        ok = ext && X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    ok = ok && X509_sign(x, g.key, EVP_sha256()) > 0;
    if (!ok) {
        X509_free(x);
        ERR_clear_error();
        return NULL;
    }
    return x;
}

static int on_servername(SSL *ssl, int *alert, void *arg);

/* The server context presenting a certificate for host; made on first use.
 * Caller holds g.mu. NULL when the table is full or minting failed. */
static SSL_CTX *ctx_for(const char *host)
{
    for (int i = 0; i < g.n; i++)
        if (strcasecmp(g.e[i].host, host) == 0)
            return g.e[i].ctx;
    if (g.n >= MINT_MAX || !g.key || strlen(host) >= sizeof g.e[0].host)
        return NULL;
    X509 *cert = make_cert(host);
    SSL_CTX *c = cert ? SSL_CTX_new(TLS_server_method()) : NULL;
    if (!c || SSL_CTX_use_certificate(c, cert) != 1 || SSL_CTX_use_PrivateKey(c, g.key) != 1) {
        SSL_CTX_free(c);
        X509_free(cert);
        ERR_clear_error();
        return NULL;
    }
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    /* the chain is the certificate alone: no chain building (which would run
     * X509_verify_cert on our own certificate) */
    SSL_CTX_set_mode(c, SSL_MODE_NO_AUTO_CHAIN);
    /* no session tickets: a program reading right after the handshake must
     * see its response, nothing else (FACTS.md) */
    SSL_CTX_set_num_tickets(c, 0);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_tlsext_servername_callback(c, on_servername);
    unsigned char *der = NULL;
    int dl = i2d_X509(cert, &der);
    if (dl <= 0) {
        SSL_CTX_free(c);
        X509_free(cert);
        ERR_clear_error();
        return NULL;
    }
    snprintf(g.e[g.n].host, sizeof g.e[g.n].host, "%s", host);
    g.e[g.n].der = der;
    g.e[g.n].der_len = (size_t)dl;
    g.e[g.n].cert = cert;
    g.e[g.n].ctx = c;
    g.n++;
    return c;
}

/* The program named a host in SNI: present that name's certificate when the
 * connection's rule covers it (a wildcard rule serves many names). */
static int on_servername(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    (void)arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    const struct xv_route_rule *r = SSL_get_app_data(ssl);
    /* a rule by address (the program resolved the name itself, e.g. curl's
     * own "localhost") or a local replay rule serves whatever name it sends */
    struct in6_addr ip;
    int by_addr = r && (inet_pton(AF_INET, r->match_host, &ip) == 1 ||
                        inet_pton(AF_INET6, r->match_host, &ip) == 1);
    if (!name || !r || !(r->local || by_addr || xv_route_rule_covers(r, name)))
        return SSL_TLSEXT_ERR_OK; /* keep the certificate of the name it connected to */
    pthread_mutex_lock(&g.mu);
    SSL_CTX *c = ctx_for(name);
    pthread_mutex_unlock(&g.mu);
    if (c && c != SSL_get_SSL_CTX(ssl))
        SSL_set_SSL_CTX(ssl, c);
    return SSL_TLSEXT_ERR_OK;
}

SSL *xv_route_mint_ssl(const char *host, const struct xv_route_rule *r)
{
    pthread_mutex_lock(&g.mu);
    SSL_CTX *ctx = ctx_for(host);
    pthread_mutex_unlock(&g.mu);
    ERR_clear_error();
    SSL *s = ctx ? SSL_new(ctx) : NULL;
    if (s)
        SSL_set_app_data(s, (void *)r);
    return s;
}

int xv_route_mint_der(const unsigned char *der, size_t len)
{
    int hit = 0;
    pthread_mutex_lock(&g.mu);
    for (int i = 0; i < g.n && !hit; i++)
        hit = g.e[i].der_len == len && memcmp(g.e[i].der, der, len) == 0;
    pthread_mutex_unlock(&g.mu);
    return hit;
}
