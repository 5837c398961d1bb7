/*
 * Internal to the relay object (libxenovia-route.so): the certificates it
 * mints for programs' TLS, and its own OpenSSL functions whose names the
 * agent hooks. Not for use outside route/.
 */
#ifndef XV_ROUTE_INT_H
#define XV_ROUTE_INT_H

#include <openssl/ssl.h>

#include "xv_route.h"

/* Make the process's key (once). 0 or < 0. */
int xv_route_mint_init(void);
/* A server SSL presenting a certificate minted for `host` (a name or an IP
 * literal) — or for the name the program sends in SNI when rule r covers it
 * (wildcard rules) — or NULL. Caller owns it (SSL_free). */
SSL *xv_route_mint_ssl(const char *host, const struct xv_route_rule *r);
/* 1 when der[0..len) is the DER encoding of a certificate minted here. */
int xv_route_mint_der(const unsigned char *der, size_t len);

/* The relay's own libssl functions whose names the agent hooks
 * (relay_ssl.c): call these, never the names. */
struct xv_route_ssl_fns {
    int (*write_ex)(SSL *, const void *, size_t, size_t *);
    int (*read_ex)(SSL *, void *, size_t, size_t *);
    int (*get_error)(const SSL *, int);
    int (*shutdown)(SSL *);
    long (*ctrl)(SSL *, int, long, void *);
    void (*free)(SSL *);
};
extern struct xv_route_ssl_fns xv_route_ssl;
/* Fill xv_route_ssl (idempotent). 0, or -1 when libssl lacks one. */
int xv_route_ssl_init(void);

#endif
