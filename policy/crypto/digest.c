/*
 * crypto/digest.c — message digests and HMAC (RFC 2104) for the crypto.*,
 * io.jwt.* and providers.aws builtins: MD5, SHA-1, SHA-384 and SHA-512 are
 * Debian's nettle (libnettle), SHA-256 is the project's one (common/, seen
 * as a nettle hash through crypto/sha256.c), and HMAC is nettle's generic
 * construction over either.
 *
 * Invariant: one-shot functions over a whole buffer; output sizes are
 * XV_CRYPTO_MD5_LEN etc. No constant-time promise beyond nettle's; the
 * HMAC comparison is the caller's.
 * Thread safety: reentrant; contexts live on the caller's stack.
 */
#include "crypto/digest.h"

#include <nettle/hmac.h>
#include <nettle/md5.h>
#include <nettle/nettle-meta.h>
#include <nettle/sha1.h>
#include <nettle/sha2.h>
#include <stdlib.h>
#include <string.h>

/* The nettle hash behind each algorithm (SHA-256: the project's own). */
static const struct nettle_hash *hash_of(enum xv_crypto_hash alg)
{
    switch (alg) {
    case XV_CRYPTO_MD5: return &nettle_md5;
    case XV_CRYPTO_SHA1: return &nettle_sha1;
    case XV_CRYPTO_SHA256: return &xv_crypto_sha256_hash;
    case XV_CRYPTO_SHA384: return &nettle_sha384;
    default: return &nettle_sha512;
    }
}

/* Largest context of the hashes above, for stack buffers. */
union any_ctx {
    struct md5_ctx md5;
    struct sha1_ctx sha1;
    struct sha512_ctx sha512; /* also sha384 */
    uint64_t align;
    unsigned char sha256[128]; /* common/'s context (checked at run time) */
};

static void run(const struct nettle_hash *h, const void *m, size_t n, unsigned char *out)
{
    union any_ctx c;
    if (h->context_size > sizeof c) { /* cannot happen: union covers all */
        memset(out, 0, h->digest_size);
        return;
    }
    h->init(&c);
    h->update(&c, n, m);
    h->digest(&c, h->digest_size, out);
}

void xv_crypto_md5(const void *m, size_t n, unsigned char out[XV_CRYPTO_MD5_LEN])
{
    run(&nettle_md5, m, n, out);
}

void xv_crypto_sha1(const void *m, size_t n, unsigned char out[XV_CRYPTO_SHA1_LEN])
{
    run(&nettle_sha1, m, n, out);
}

void xv_crypto_sha256(const void *m, size_t n, unsigned char out[XV_CRYPTO_SHA256_LEN])
{
    run(&xv_crypto_sha256_hash, m, n, out);
}

void xv_crypto_sha512(const void *m, size_t n, unsigned char out[XV_CRYPTO_SHA512_LEN])
{
    run(&nettle_sha512, m, n, out);
}

void xv_crypto_sha384(const void *m, size_t n, unsigned char out[XV_CRYPTO_SHA384_LEN])
{
    run(&nettle_sha384, m, n, out);
}

void xv_crypto_digest(enum xv_crypto_hash alg, const void *m, size_t n, unsigned char *out,
                      size_t *outlen)
{
    const struct nettle_hash *h = hash_of(alg);
    run(h, m, n, out);
    *outlen = h->digest_size;
}

/* ---- HMAC ---- */

int xv_crypto_hmac(enum xv_crypto_hash alg, const void *key, size_t kn, const void *m, size_t n,
                   unsigned char *out, size_t *outlen)
{
    const struct nettle_hash *h = hash_of(alg);
    union any_ctx outer, inner, state;
    if (h->context_size > sizeof outer)
        return -1;
    hmac_set_key(&outer, &inner, &state, h, kn, key);
    hmac_update(&state, h, n, m);
    hmac_digest(&outer, &inner, &state, h, h->digest_size, out);
    *outlen = h->digest_size;
    return 0;
}
