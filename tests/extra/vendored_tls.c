/*
 * vendored_tls.c — test fixture for issue 11: the one source file of
 * libxv_vendored_tls.so, a shared library that carries OpenSSL inside it
 * (Debian's libssl.a and libcrypto.a linked in whole) and exports its API,
 * as vendor SDKs do. A program linked against it has no libssl dependency;
 * the agent must find OpenSSL in this library (not in the executable) and
 * patch it there. Nothing here runs at load time.
 */
#include <openssl/ssl.h>

/* Something of our own, so the library is not just the archives. */
int xv_vendored_tls_init(void)
{
    return OPENSSL_init_ssl(0, NULL);
}
