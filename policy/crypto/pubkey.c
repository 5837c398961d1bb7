/*
 * crypto/pubkey.c — public keys for io.jwt.* and crypto.x509.*: PEM/DER key
 * parsing (RFC 7468, RFC 5280, RFC 8017 key syntax; written here, as nettle
 * has no X.509 reader), and the signatures: RSA PKCS#1 v1.5 verification,
 * ECDSA (P-256/384/521) and Ed25519 from Debian's hogweed; RSA-PSS
 * verification with any salt length (Go's PSSSaltLengthAuto, which hogweed's
 * fixed-salt rsa_pss_*_verify_digest cannot express) and PKCS#1 v1.5
 * signing with a bare private exponent (JWKs without CRT primes, which
 * hogweed's rsa_private_key needs) on GMP here.
 *
 * Invariant: every DER read is bounds-checked against its enclosing element.
 * Thread safety: reentrant.
 */
#include "crypto/pubkey.h"
#include "value/buf.h"

#include <nettle/ecc-curve.h>
#include <nettle/ecc.h>
#include <nettle/ecdsa.h>
#include <nettle/eddsa.h>
#include <nettle/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void xv_crypto_key_init(struct xv_crypto_key *k)
{
    memset(k, 0, sizeof *k);
    mpz_inits(k->n, k->e, k->d, k->x, k->y, NULL);
}

void xv_crypto_key_clear(struct xv_crypto_key *k)
{
    mpz_clears(k->n, k->e, k->d, k->x, k->y, NULL);
}

/* ---- PEM ---- */

static int b64v(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int xv_crypto_pem_decode(const char *s, size_t n, char **type, unsigned char **der,
                            size_t *derlen, size_t *rest)
{
    *type = NULL;
    *der = NULL;
    const char *b = memmem(s, n, "-----BEGIN ", 11);
    if (!b)
        return -1;
    const char *lab = b + 11, *e = s + n;
    const char *le = memmem(lab, (size_t)(e - lab), "-----", 5);
    if (!le)
        return -1;
    size_t ll = (size_t)(le - lab);
    const char *body = le + 5;
    char endm[128];
    if (ll > 100)
        return -1;
    int em = snprintf(endm, sizeof endm, "-----END %.*s-----", (int)ll, lab);
    const char *end = memmem(body, (size_t)(e - body), endm, (size_t)em);
    if (!end)
        return -1;
    unsigned char *out = malloc((size_t)(end - body) + 1);
    if (!out)
        return -1;
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (const char *p = body; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '=' || c == ' ' || c == '\n' || c == '\r' || c == '\t')
            continue;
        int v = b64v(c);
        if (v < 0) {
            /* PEM headers ("Proc-Type: ...") are not supported */
            free(out);
            return -1;
        }
        acc = acc << 6 | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    *type = strndup(lab, ll);
    if (!*type) {
        free(out);
        return -1;
    }
    *der = out;
    *derlen = o;
    const char *r = end + em;
    if (r < e && *r == '\r')
        r++;
    if (r < e && *r == '\n')
        r++;
    *rest = (size_t)(r - s);
    return 0;
}

/* ---- DER ---- */

/* Read the element at *pp (< end); advances *pp past it. */
bool xv_crypto_der_read(const unsigned char **pp, const unsigned char *end, struct xv_crypto_der *d)
{
    const unsigned char *p = *pp;
    if (end - p < 2)
        return false;
    d->tag = *p++;
    size_t len = *p++;
    if (len & 0x80) {
        int nb = (int)(len & 0x7F);
        if (nb == 0 || nb > 4 || end - p < nb)
            return false;
        len = 0;
        for (int i = 0; i < nb; i++)
            len = len << 8 | *p++;
    }
    if ((size_t)(end - p) < len)
        return false;
    d->p = p;
    d->len = len;
    *pp = p + len;
    return true;
}

bool xv_crypto_der_int(const struct xv_crypto_der *d, mpz_t out)
{
    if (d->tag != 0x02 || d->len == 0)
        return false;
    mpz_import(out, d->len, 1, 1, 0, 0, d->p);
    return true;
}

static bool oid_is(const struct xv_crypto_der *d, const unsigned char *oid, size_t n)
{
    return d->tag == 0x06 && d->len == n && memcmp(d->p, oid, n) == 0;
}

static const unsigned char OID_RSA[] = {0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01};
static const unsigned char OID_RSA_PSS[] = {0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0A};
static const unsigned char OID_EC[] = {0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01};
static const unsigned char OID_P256[] = {0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07};
static const unsigned char OID_P384[] = {0x2B, 0x81, 0x04, 0x00, 0x22};
static const unsigned char OID_P521[] = {0x2B, 0x81, 0x04, 0x00, 0x23};
static const unsigned char OID_ED25519[] = {0x2B, 0x65, 0x70};

static int rsa_pkcs1(const unsigned char *p, size_t n, struct xv_crypto_key *k)
{
    const unsigned char *q = p, *end = p + n;
    struct xv_crypto_der seq, dn, de;
    if (!xv_crypto_der_read(&q, end, &seq) || seq.tag != 0x30)
        return -1;
    const unsigned char *r = seq.p, *re = seq.p + seq.len;
    if (!xv_crypto_der_read(&r, re, &dn) || !xv_crypto_der_int(&dn, k->n) || !xv_crypto_der_read(&r, re, &de) ||
        !xv_crypto_der_int(&de, k->e))
        return -1;
    k->type = XV_CRYPTO_KEY_RSA;
    return 0;
}

int xv_crypto_key_from_spki(const unsigned char *der, size_t n, struct xv_crypto_key *k,
                               const char **err)
{
    const unsigned char *p = der, *end = der + n;
    struct xv_crypto_der spki, alg, bits, oid, params;
    *err = "x509: malformed public key";
    if (!xv_crypto_der_read(&p, end, &spki) || spki.tag != 0x30)
        return -1;
    const unsigned char *q = spki.p, *qe = spki.p + spki.len;
    if (!xv_crypto_der_read(&q, qe, &alg) || alg.tag != 0x30 || !xv_crypto_der_read(&q, qe, &bits) ||
        bits.tag != 0x03 || bits.len < 1 || bits.p[0] != 0)
        return -1;
    const unsigned char *a = alg.p, *ae = alg.p + alg.len;
    if (!xv_crypto_der_read(&a, ae, &oid))
        return -1;
    const unsigned char *kb = bits.p + 1;
    size_t kl = bits.len - 1;
    if (oid_is(&oid, OID_RSA, sizeof OID_RSA) || oid_is(&oid, OID_RSA_PSS, sizeof OID_RSA_PSS))
        return rsa_pkcs1(kb, kl, k);
    if (oid_is(&oid, OID_EC, sizeof OID_EC)) {
        if (!xv_crypto_der_read(&a, ae, &params))
            return -1;
        int curve = oid_is(&params, OID_P256, sizeof OID_P256)   ? 256
                    : oid_is(&params, OID_P384, sizeof OID_P384) ? 384
                    : oid_is(&params, OID_P521, sizeof OID_P521) ? 521
                                                                  : 0;
        size_t cb = xv_crypto_ec_bytes(curve);
        if (!curve) {
            *err = "x509: unsupported elliptic curve";
            return -1;
        }
        if (kl != 1 + 2 * cb || kb[0] != 0x04)
            return -1;
        mpz_import(k->x, cb, 1, 1, 0, 0, kb + 1);
        mpz_import(k->y, cb, 1, 1, 0, 0, kb + 1 + cb);
        k->curve = curve;
        k->type = XV_CRYPTO_KEY_EC;
        return 0;
    }
    if (oid_is(&oid, OID_ED25519, sizeof OID_ED25519)) {
        if (kl != 32)
            return -1;
        memcpy(k->okp, kb, 32);
        k->type = XV_CRYPTO_KEY_OKP;
        return 0;
    }
    *err = "x509: unknown public key algorithm";
    return -1;
}

int xv_crypto_key_from_cert(const unsigned char *der, size_t n, struct xv_crypto_key *k,
                               const char **err)
{
    const unsigned char *p = der, *end = der + n;
    struct xv_crypto_der cert, tbs, el;
    *err = "x509: malformed certificate";
    if (!xv_crypto_der_read(&p, end, &cert) || cert.tag != 0x30)
        return -1;
    const unsigned char *c = cert.p, *ce = cert.p + cert.len;
    if (!xv_crypto_der_read(&c, ce, &tbs) || tbs.tag != 0x30)
        return -1;
    const unsigned char *t = tbs.p, *te = tbs.p + tbs.len;
    if (!xv_crypto_der_read(&t, te, &el))
        return -1;
    if (el.tag == 0xA0 && !xv_crypto_der_read(&t, te, &el))   /* version, then serial */
        return -1;
    /* signature, issuer, validity, subject */
    for (int i = 0; i < 4; i++)
        if (!xv_crypto_der_read(&t, te, &el))
            return -1;
    const unsigned char *spki_start = t;
    if (!xv_crypto_der_read(&t, te, &el) || el.tag != 0x30)
        return -1;
    return xv_crypto_key_from_spki(spki_start, (size_t)(t - spki_start), k, err);
}

/* ---- RSA ---- */

static const unsigned char *digest_info(enum xv_crypto_hash h, size_t *n)
{
    static const unsigned char s256[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                         0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
    static const unsigned char s384[] = {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                         0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30};
    static const unsigned char s512[] = {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                         0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40};
    *n = 19;
    return h == XV_CRYPTO_SHA256 ? s256 : h == XV_CRYPTO_SHA384 ? s384 : s512;
}

static size_t hash_len(enum xv_crypto_hash h)
{
    return h == XV_CRYPTO_SHA256 ? 32 : h == XV_CRYPTO_SHA384 ? 48 : h == XV_CRYPTO_SHA1 ? 20 : 64;
}

/* s^e mod n as a k-byte big-endian buffer (caller frees); NULL if s >= n. */
static unsigned char *rsa_public(const struct xv_crypto_key *k, const unsigned char *sig,
                                 size_t siglen, size_t *klen)
{
    size_t kb = (mpz_sizeinbase(k->n, 2) + 7) / 8;
    if (siglen != kb || mpz_sgn(k->n) <= 0)
        return NULL;
    mpz_t s, m;
    mpz_inits(s, m, NULL);
    mpz_import(s, siglen, 1, 1, 0, 0, sig);
    unsigned char *em = NULL;
    if (mpz_cmp(s, k->n) < 0) {
        mpz_powm(m, s, k->e, k->n);
        em = calloc(kb, 1);
        if (em) {
            size_t cnt = 0;
            unsigned char *tmp = mpz_export(NULL, &cnt, 1, 1, 0, 0, m);
            if (cnt <= kb)
                memcpy(em + kb - cnt, tmp, cnt);
            free(tmp);
        }
    }
    mpz_clears(s, m, NULL);
    *klen = kb;
    return em;
}

bool xv_crypto_rsa_verify_pkcs1(const struct xv_crypto_key *k, enum xv_crypto_hash h,
                                const unsigned char *digest, const unsigned char *sig,
                                size_t siglen)
{
    if (k->type != XV_CRYPTO_KEY_RSA || h == XV_CRYPTO_SHA1 || h == XV_CRYPTO_MD5)
        return false;
    size_t dil, hl = hash_len(h);
    const unsigned char *di = digest_info(h, &dil);
    unsigned char info[19 + XV_CRYPTO_SHA512_LEN];
    memcpy(info, di, dil);
    memcpy(info + dil, digest, hl);
    struct rsa_public_key pub;
    rsa_public_key_init(&pub);
    mpz_set(pub.n, k->n);
    mpz_set(pub.e, k->e);
    bool ok = false;
    /* The signature is exactly the modulus' length (RFC 8017 8.2.2 step 1);
     * rsa_pkcs1_verify checks s < n and the whole EMSA-PKCS1-v1_5 block. */
    if (rsa_public_key_prepare(&pub) && siglen == pub.size) {
        mpz_t s;
        mpz_init(s);
        mpz_import(s, siglen, 1, 1, 0, 0, sig);
        ok = rsa_pkcs1_verify(&pub, dil + hl, info, s) != 0;
        mpz_clear(s);
    }
    rsa_public_key_clear(&pub);
    return ok;
}

/* MGF1 with hash h: mask of length n from seed. */
static void mgf1(enum xv_crypto_hash h, const unsigned char *seed, size_t sl, unsigned char *mask,
                 size_t n)
{
    unsigned char buf[64 + 4], d[64];
    size_t hl, done = 0;
    memcpy(buf, seed, sl);
    for (uint32_t c = 0; done < n; c++) {
        buf[sl] = (unsigned char)(c >> 24);
        buf[sl + 1] = (unsigned char)(c >> 16);
        buf[sl + 2] = (unsigned char)(c >> 8);
        buf[sl + 3] = (unsigned char)c;
        xv_crypto_digest(h, buf, sl + 4, d, &hl);
        size_t take = n - done < hl ? n - done : hl;
        memcpy(mask + done, d, take);
        done += take;
    }
}

bool xv_crypto_rsa_verify_pss(const struct xv_crypto_key *k, enum xv_crypto_hash h,
                                 const unsigned char *digest, const unsigned char *sig,
                                 size_t siglen)
{
    if (k->type != XV_CRYPTO_KEY_RSA)
        return false;
    size_t kb, hl = hash_len(h);
    unsigned char *emfull = rsa_public(k, sig, siglen, &kb);
    if (!emfull)
        return false;
    size_t embits = mpz_sizeinbase(k->n, 2) - 1, emlen = (embits + 7) / 8;
    unsigned char *em = emfull + (kb - emlen);
    bool ok = (kb == emlen || emfull[0] == 0) && emlen >= hl + 2 && em[emlen - 1] == 0xBC;
    unsigned char *db = NULL;
    if (ok) {
        size_t dbl = emlen - hl - 1;
        const unsigned char *hh = em + dbl;
        unsigned topmask = 0xFF >> (8 * emlen - embits);
        ok = (em[0] & ~topmask) == 0;
        db = malloc(dbl);
        if (!db)
            ok = false;
        if (ok) {
            mgf1(h, hh, hl, db, dbl);
            for (size_t i = 0; i < dbl; i++)
                db[i] ^= em[i];
            db[0] &= (unsigned char)topmask;
            size_t i = 0;
            while (i < dbl && db[i] == 0)
                i++;
            ok = i < dbl && db[i] == 1;
            if (ok) {
                size_t saltlen = dbl - i - 1;
                unsigned char *mp = malloc(8 + hl + saltlen), h2[64];
                size_t h2l;
                if (!mp) {
                    ok = false;
                } else {
                    memset(mp, 0, 8);
                    memcpy(mp + 8, digest, hl);
                    memcpy(mp + 8 + hl, db + i + 1, saltlen);
                    xv_crypto_digest(h, mp, 8 + hl + saltlen, h2, &h2l);
                    ok = memcmp(h2, hh, hl) == 0;
                    free(mp);
                }
            }
        }
    }
    free(db);
    free(emfull);
    return ok;
}

int xv_crypto_rsa_sign_pkcs1(const struct xv_crypto_key *k, enum xv_crypto_hash h,
                                const unsigned char *digest, unsigned char **sig, size_t *siglen)
{
    if (k->type != XV_CRYPTO_KEY_RSA || !k->has_d)
        return -1;
    size_t kb = (mpz_sizeinbase(k->n, 2) + 7) / 8, dil, hl = hash_len(h);
    const unsigned char *di = digest_info(h, &dil);
    if (kb < dil + hl + 11)
        return -1;
    unsigned char *em = malloc(kb), *out = calloc(kb, 1);
    if (!em || !out) {
        free(em);
        free(out);
        return -1;
    }
    size_t ps = kb - dil - hl - 3;
    em[0] = 0;
    em[1] = 1;
    memset(em + 2, 0xFF, ps);
    em[2 + ps] = 0;
    memcpy(em + 3 + ps, di, dil);
    memcpy(em + 3 + ps + dil, digest, hl);
    mpz_t m, s;
    mpz_inits(m, s, NULL);
    mpz_import(m, kb, 1, 1, 0, 0, em);
    mpz_powm(s, m, k->d, k->n);
    size_t cnt = 0;
    unsigned char *tmp = mpz_export(NULL, &cnt, 1, 1, 0, 0, s);
    if (cnt <= kb)
        memcpy(out + kb - cnt, tmp, cnt);
    free(tmp);
    mpz_clears(m, s, NULL);
    free(em);
    *sig = out;
    *siglen = kb;
    return 0;
}

/* ---- ECDSA and Ed25519: hogweed ---- */

size_t xv_crypto_ec_bytes(int curve)
{
    return curve == 256 ? 32 : curve == 384 ? 48 : curve == 521 ? 66 : 0;
}

static const struct ecc_curve *ecc_curve_of(int curve)
{
    return curve == 256 ? nettle_get_secp_256r1()
         : curve == 384 ? nettle_get_secp_384r1()
         : curve == 521 ? nettle_get_secp_521r1() : NULL;
}

bool xv_crypto_ecdsa_verify(const struct xv_crypto_key *k, const unsigned char *digest,
                            size_t dlen, const unsigned char *sig, size_t siglen)
{
    if (k->type != XV_CRYPTO_KEY_EC)
        return false;
    const struct ecc_curve *c = ecc_curve_of(k->curve);
    size_t cb = xv_crypto_ec_bytes(k->curve);
    if (!c || siglen != 2 * cb)
        return false;
    struct ecc_point pub;
    struct dsa_signature rs;
    ecc_point_init(&pub, c);
    dsa_signature_init(&rs);
    mpz_import(rs.r, cb, 1, 1, 0, 0, sig);
    mpz_import(rs.s, cb, 1, 1, 0, 0, sig + cb);
    /* ecc_point_set refuses a point off the curve; ecdsa_verify checks
     * 0 < r, s < n and takes the digest's leftmost bits as SEC 1 says. */
    bool ok = ecc_point_set(&pub, k->x, k->y) && ecdsa_verify(&pub, dlen, digest, &rs);
    dsa_signature_clear(&rs);
    ecc_point_clear(&pub);
    return ok;
}

bool xv_crypto_ed25519_verify(const unsigned char pub[32], const void *msg, size_t n,
                              const unsigned char sig[64])
{
    return ed25519_sha512_verify(pub, n, msg, sig) != 0;
}

int xv_crypto_ed25519_sign(const unsigned char seed[32], const void *msg, size_t n,
                           unsigned char sig[64])
{
    unsigned char pub[ED25519_KEY_SIZE];
    ed25519_sha512_public_key(pub, seed);
    ed25519_sha512_sign(pub, seed, n, msg, sig);
    return 0;
}
