/*
 * Internal to the relay object (libxenovia-route.so): the certificates it
 * mints for programs' TLS. Not for use outside route/.
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

#endif
