/*
 * crypto/digest.h — message digests and HMAC for the crypto.* builtins
 * (crypto/digest.c: nettle, and the project's one SHA-256 from common/).
 * Invariant: one-shot over a whole buffer; `out` must hold the digest size.
 * Thread safety: reentrant.
 */
#ifndef XV_POLICY_CRYPTO_DIGEST_H
#define XV_POLICY_CRYPTO_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XV_CRYPTO_MD5_LEN 16
#define XV_CRYPTO_SHA1_LEN 20
#define XV_CRYPTO_SHA256_LEN 32
#define XV_CRYPTO_SHA384_LEN 48
#define XV_CRYPTO_SHA512_LEN 64

enum xv_crypto_hash { XV_CRYPTO_MD5, XV_CRYPTO_SHA1, XV_CRYPTO_SHA256, XV_CRYPTO_SHA384, XV_CRYPTO_SHA512 };

void xv_crypto_md5(const void *m, size_t n, unsigned char out[XV_CRYPTO_MD5_LEN]);
void xv_crypto_sha1(const void *m, size_t n, unsigned char out[XV_CRYPTO_SHA1_LEN]);
void xv_crypto_sha256(const void *m, size_t n, unsigned char out[XV_CRYPTO_SHA256_LEN]);
void xv_crypto_sha384(const void *m, size_t n, unsigned char out[XV_CRYPTO_SHA384_LEN]);
void xv_crypto_sha512(const void *m, size_t n, unsigned char out[XV_CRYPTO_SHA512_LEN]);
/* Digest with alg into out (>= XV_CRYPTO_SHA512_LEN bytes); *outlen set. */
void xv_crypto_digest(enum xv_crypto_hash alg, const void *m, size_t n, unsigned char *out,
                         size_t *outlen);
/* HMAC with alg; out holds at least XV_CRYPTO_SHA512_LEN bytes; *outlen set.
 * 0, or -1 on allocation failure. */
int xv_crypto_hmac(enum xv_crypto_hash alg, const void *key, size_t kn, const void *m, size_t n,
                      unsigned char *out, size_t *outlen);

/* common/'s SHA-256 as a nettle hash (crypto/sha256.c). */
struct nettle_hash;
extern const struct nettle_hash xv_crypto_sha256_hash;

#endif
