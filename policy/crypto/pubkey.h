/*
 * crypto/pubkey.h — public-key primitives for the io.jwt.* builtins: PEM and DER
 * parsing (X.509 certificates, SubjectPublicKeyInfo, PKCS#1), RSA
 * PKCS#1 v1.5 and PSS verification, RSA PKCS#1 v1.5 signing, and ECDSA
 * verification on P-256, P-384 and P-521, all on GMP integers.
 *
 * Invariant: keys are plain values owned by the caller (xv_crypto_key_clear
 * releases them); nothing here keeps global state.
 * Thread safety: reentrant. Not constant-time: these functions verify public
 * signatures of policy inputs; the only secret-key operation (RSA signing for
 * io.jwt.encode_sign) runs on keys the policy itself supplies.
 */
#ifndef XV_POLICY_CRYPTO_PUBKEY_H
#define XV_POLICY_CRYPTO_PUBKEY_H

#include <gmp.h>
#include <stdbool.h>
#include <stddef.h>

#include "crypto/digest.h"

enum xv_crypto_keytype { XV_CRYPTO_KEY_NONE, XV_CRYPTO_KEY_RSA, XV_CRYPTO_KEY_EC, XV_CRYPTO_KEY_OKP };

struct xv_crypto_key {
    enum xv_crypto_keytype type;  /* which fields below are set */
    mpz_t n, e, d;            /* RSA modulus, public and (optional) private exponent */
    int curve;                /* EC: 256, 384 or 521 */
    mpz_t x, y;               /* EC public point */
    char alg[16];             /* JWK "alg" or "" */
    char kid[128];            /* JWK "kid" or "" */
    bool has_d;               /* RSA private exponent present */
    unsigned char okp[32];    /* Ed25519 public key (encoded point) */
    unsigned char okp_d[32];  /* Ed25519 private seed, when has_okp_d */
    bool has_okp_d;
};

void xv_crypto_key_init(struct xv_crypto_key *k);
void xv_crypto_key_clear(struct xv_crypto_key *k);

/* Decode one PEM block: *type receives the label ("CERTIFICATE", ...) and
 * *der the decoded bytes (caller frees both); *rest the offset after the
 * block. Returns 0, or -1 when s holds no PEM block. */
int xv_crypto_pem_decode(const char *s, size_t n, char **type, unsigned char **der,
                            size_t *derlen, size_t *rest);
/* One DER element: content span and identifier octet. */
struct xv_crypto_der {
    const unsigned char *p;   /* content start */
    size_t len;               /* content length */
    unsigned tag;             /* identifier octet */
};
/* Read the element at *pp (< end) into d and advance *pp past it. */
bool xv_crypto_der_read(const unsigned char **pp, const unsigned char *end,
                           struct xv_crypto_der *d);
/* INTEGER content into out. */
bool xv_crypto_der_int(const struct xv_crypto_der *d, mpz_t out);

/* Public key from a DER X.509 certificate / SPKI / PKCS#1 RSA key.
 * 0, or -1 with a static message in *err. */
int xv_crypto_key_from_cert(const unsigned char *der, size_t n, struct xv_crypto_key *k,
                               const char **err);
int xv_crypto_key_from_spki(const unsigned char *der, size_t n, struct xv_crypto_key *k,
                               const char **err);

/* RSA PKCS#1 v1.5 / PSS (any salt length) verification of digest. */
bool xv_crypto_rsa_verify_pkcs1(const struct xv_crypto_key *k, enum xv_crypto_hash h,
                                   const unsigned char *digest, const unsigned char *sig,
                                   size_t siglen);
bool xv_crypto_rsa_verify_pss(const struct xv_crypto_key *k, enum xv_crypto_hash h,
                                 const unsigned char *digest, const unsigned char *sig,
                                 size_t siglen);
/* RSA PKCS#1 v1.5 signature (k->has_d required); *sig malloc'd. 0 or -1. */
int xv_crypto_rsa_sign_pkcs1(const struct xv_crypto_key *k, enum xv_crypto_hash h,
                                const unsigned char *digest, unsigned char **sig, size_t *siglen);
/* ECDSA verification; sig is r||s as in JWS. */
bool xv_crypto_ecdsa_verify(const struct xv_crypto_key *k, const unsigned char *digest,
                               size_t dlen, const unsigned char *sig, size_t siglen);
/* Ed25519 (RFC 8032): verify sig (R||S, 64 bytes) of msg under pub;
 * sign msg with the 32-byte seed into sig. */
bool xv_crypto_ed25519_verify(const unsigned char pub[32], const void *msg, size_t n,
                                 const unsigned char sig[64]);
int xv_crypto_ed25519_sign(const unsigned char seed[32], const void *msg, size_t n,
                              unsigned char sig[64]);
/* Curve size in bytes for a curve id (32, 48, 66), 0 if unknown. */
size_t xv_crypto_ec_bytes(int curve);

#endif
