/*
 * crypto/pubkey.c — PEM/DER key parsing, RSA (PKCS#1 v1.5, PSS) and ECDSA on GMP
 * (see bi_pk.h). Written from RFC 8017 (PKCS#1), RFC 5280 (X.509), SEC 1 and
 * FIPS 186-4; curve constants as published in FIPS 186-4 / SEC 2.
 *
 * Invariant: every DER read is bounds-checked against its enclosing element.
 * Thread safety: reentrant.
 */
#include "crypto/pubkey.h"
#include "value/buf.h"

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
    if (k->type != XV_CRYPTO_KEY_RSA)
        return false;
    size_t kb, dil, hl = hash_len(h);
    unsigned char *em = rsa_public(k, sig, siglen, &kb);
    if (!em)
        return false;
    const unsigned char *di = digest_info(h, &dil);
    bool ok = kb >= dil + hl + 11 && em[0] == 0 && em[1] == 1;
    size_t ps = kb - dil - hl - 3;
    for (size_t i = 0; ok && i < ps; i++)
        ok = em[2 + i] == 0xFF;
    ok = ok && em[2 + ps] == 0 && memcmp(em + 3 + ps, di, dil) == 0 &&
         memcmp(em + 3 + ps + dil, digest, hl) == 0;
    free(em);
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

/* ---- ECDSA ---- */

struct curve {
    int id;
    const char *p, *b, *gx, *gy, *n;   /* hex; a = -3 for all three */
};

static const struct curve curves[] = {
    {256, "FFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF",
     "5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B",
     "6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296",
     "4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5",
     "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551"},
    {384,
     "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFF0000000000000000FFFFFFFF",
     "B3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875AC656398D8A2ED19D2A85C8EDD3EC2AEF",
     "AA87CA22BE8B05378EB1C71EF320AD746E1D3B628BA79B9859F741E082542A385502F25DBF55296C3A545E3872760AB7",
     "3617DE4A96262C6F5D9E98BF9292DC29F8F41DBD289A147CE9DA3113B5F0B8C00A60B1CE1D7E819D7A431D7C90EA0E5F",
     "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973"},
    {521,
     "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
     "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
     "0051953EB9618E1C9A1F929A21A0B68540EEA2DA725B99B315F3B8B489918EF109"
     "E156193951EC7E937B1652C0BD3BB1BF073573DF883D2C34F1EF451FD46B503F00",
     "00C6858E06B70404E9CD9E3ECB662395B4429C648139053FB521F828AF606B4D3D"
     "BAA14B5E77EFE75928FE1DC127A2FFA8DE3348B3C1856A429BF97E7E31C2E5BD66",
     "011839296A789A3BC0045C8A5FB42C7D1BD998F54449579B446817AFBD17273E66"
     "2C97EE72995EF42640C550B9013FAD0761353C7086A272C24088BE94769FD16650",
     "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
     "FA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409"},
};

size_t xv_crypto_ec_bytes(int curve)
{
    return curve == 256 ? 32 : curve == 384 ? 48 : curve == 521 ? 66 : 0;
}

/* affine point; inf marks the point at infinity */
struct pt {
    mpz_t x, y;
    bool inf;
};

static void pt_add(struct pt *r, const struct pt *a, const struct pt *b, const mpz_t p)
{
    if (a->inf) {
        mpz_set(r->x, b->x);
        mpz_set(r->y, b->y);
        r->inf = b->inf;
        return;
    }
    if (b->inf) {
        mpz_set(r->x, a->x);
        mpz_set(r->y, a->y);
        r->inf = a->inf;
        return;
    }
    mpz_t l, t, x3;
    mpz_inits(l, t, x3, NULL);
    if (mpz_cmp(a->x, b->x) == 0) {
        mpz_add(t, a->y, b->y);
        mpz_mod(t, t, p);
        if (mpz_sgn(t) == 0) {
            r->inf = true;
            mpz_clears(l, t, x3, NULL);
            return;
        }
        /* doubling: l = (3x^2 - 3) / 2y */
        mpz_mul(l, a->x, a->x);
        mpz_sub_ui(l, l, 1);
        mpz_mul_ui(l, l, 3);
        mpz_mul_2exp(t, a->y, 1);
    } else {
        mpz_sub(l, b->y, a->y);
        mpz_sub(t, b->x, a->x);
    }
    mpz_mod(t, t, p);
    mpz_invert(t, t, p);
    mpz_mul(l, l, t);
    mpz_mod(l, l, p);
    mpz_mul(x3, l, l);
    mpz_sub(x3, x3, a->x);
    mpz_sub(x3, x3, b->x);
    mpz_mod(x3, x3, p);
    mpz_sub(t, a->x, x3);
    mpz_mul(t, t, l);
    mpz_sub(t, t, a->y);
    mpz_mod(r->y, t, p);
    mpz_set(r->x, x3);
    r->inf = false;
    mpz_clears(l, t, x3, NULL);
}

/* r = k1*P + k2*Q (Shamir's trick). */
static void pt_mul2(struct pt *r, const mpz_t k1, const struct pt *P, const mpz_t k2,
                    const struct pt *Q, const mpz_t p)
{
    struct pt acc, tmp, pq;
    mpz_inits(acc.x, acc.y, tmp.x, tmp.y, pq.x, pq.y, NULL);
    acc.inf = true;
    pt_add(&pq, P, Q, p);
    size_t bits = mpz_sizeinbase(k1, 2);
    if (mpz_sizeinbase(k2, 2) > bits)
        bits = mpz_sizeinbase(k2, 2);
    for (size_t i = bits; i-- > 0;) {
        pt_add(&tmp, &acc, &acc, p);
        int b1 = mpz_tstbit(k1, i), b2 = mpz_tstbit(k2, i);
        if (b1 && b2)
            pt_add(&acc, &tmp, &pq, p);
        else if (b1)
            pt_add(&acc, &tmp, P, p);
        else if (b2)
            pt_add(&acc, &tmp, Q, p);
        else {
            mpz_set(acc.x, tmp.x);
            mpz_set(acc.y, tmp.y);
            acc.inf = tmp.inf;
        }
    }
    mpz_set(r->x, acc.x);
    mpz_set(r->y, acc.y);
    r->inf = acc.inf;
    mpz_clears(acc.x, acc.y, tmp.x, tmp.y, pq.x, pq.y, NULL);
}

bool xv_crypto_ecdsa_verify(const struct xv_crypto_key *k, const unsigned char *digest,
                               size_t dlen, const unsigned char *sig, size_t siglen)
{
    if (k->type != XV_CRYPTO_KEY_EC)
        return false;
    const struct curve *c = NULL;
    for (size_t i = 0; i < sizeof curves / sizeof curves[0]; i++)
        if (curves[i].id == k->curve)
            c = &curves[i];
    size_t cb = xv_crypto_ec_bytes(k->curve);
    if (!c || siglen != 2 * cb)
        return false;
    mpz_t p, b, n, r, s, e, w, u1, u2, t;
    mpz_inits(p, b, n, r, s, e, w, u1, u2, t, NULL);
    struct pt G, Q, X;
    mpz_inits(G.x, G.y, Q.x, Q.y, X.x, X.y, NULL);
    G.inf = Q.inf = X.inf = false;
    mpz_set_str(p, c->p, 16);
    mpz_set_str(b, c->b, 16);
    mpz_set_str(n, c->n, 16);
    mpz_set_str(G.x, c->gx, 16);
    mpz_set_str(G.y, c->gy, 16);
    mpz_set(Q.x, k->x);
    mpz_set(Q.y, k->y);
    mpz_import(r, cb, 1, 1, 0, 0, sig);
    mpz_import(s, cb, 1, 1, 0, 0, sig + cb);
    bool ok = mpz_sgn(r) > 0 && mpz_cmp(r, n) < 0 && mpz_sgn(s) > 0 && mpz_cmp(s, n) < 0;
    /* the public point must lie on the curve: y^2 = x^3 - 3x + b */
    if (ok) {
        mpz_powm_ui(t, Q.x, 3, p);
        mpz_submul_ui(t, Q.x, 3);
        mpz_add(t, t, b);
        mpz_mod(t, t, p);
        mpz_powm_ui(w, Q.y, 2, p);
        ok = mpz_cmp(t, w) == 0;
    }
    if (ok) {
        /* e: the leftmost bits of the digest, as many as n has */
        size_t nbits = mpz_sizeinbase(n, 2);
        mpz_import(e, dlen, 1, 1, 0, 0, digest);
        if (dlen * 8 > nbits)
            mpz_fdiv_q_2exp(e, e, dlen * 8 - nbits);
        mpz_invert(w, s, n);
        mpz_mul(u1, e, w);
        mpz_mod(u1, u1, n);
        mpz_mul(u2, r, w);
        mpz_mod(u2, u2, n);
        pt_mul2(&X, u1, &G, u2, &Q, p);
        if (X.inf) {
            ok = false;
        } else {
            mpz_mod(t, X.x, n);
            ok = mpz_cmp(t, r) == 0;
        }
    }
    mpz_clears(p, b, n, r, s, e, w, u1, u2, t, NULL);
    mpz_clears(G.x, G.y, Q.x, Q.y, X.x, X.y, NULL);
    return ok;
}

/* ---- Ed25519 (RFC 8032, section 5.1) ---- */

struct ed {
    mpz_t p, d, L, sqrtm1;   /* field prime, curve constant, group order, sqrt(-1) */
    mpz_t bx, by;            /* base point */
};

static void ed_init(struct ed *e)
{
    mpz_inits(e->p, e->d, e->L, e->sqrtm1, e->bx, e->by, NULL);
    mpz_ui_pow_ui(e->p, 2, 255);
    mpz_sub_ui(e->p, e->p, 19);
    /* d = -121665 / 121666 */
    mpz_t t;
    mpz_init_set_ui(t, 121666);
    mpz_invert(t, t, e->p);
    mpz_mul_si(e->d, t, -121665);
    mpz_mod(e->d, e->d, e->p);
    mpz_set_str(e->L, "7237005577332262213973186563042994240857116359379907606001950938285454250989", 10);
    /* sqrt(-1) = 2^((p-1)/4) */
    mpz_sub_ui(t, e->p, 1);
    mpz_fdiv_q_2exp(t, t, 2);
    mpz_set_ui(e->sqrtm1, 2);
    mpz_powm(e->sqrtm1, e->sqrtm1, t, e->p);
    mpz_set_str(e->bx, "15112221349535400772501151409588531511454012693041857206046113283949847762202", 10);
    mpz_set_str(e->by, "46316835694926478169428394003475163141307993866256225615783033603165251855960", 10);
    mpz_clear(t);
}

static void ed_clear(struct ed *e)
{
    mpz_clears(e->p, e->d, e->L, e->sqrtm1, e->bx, e->by, NULL);
}

/* (x3, y3) = (x1, y1) + (x2, y2) on -x^2 + y^2 = 1 + d x^2 y^2 (complete). */
static void ed_add(const struct ed *e, mpz_t x3, mpz_t y3, const mpz_t x1, const mpz_t y1,
                   const mpz_t x2, const mpz_t y2)
{
    mpz_t t, xn, yn, den1, den2;
    mpz_inits(t, xn, yn, den1, den2, NULL);
    mpz_mul(t, x1, x2);
    mpz_mul(t, t, y1);
    mpz_mul(t, t, y2);
    mpz_mul(t, t, e->d);
    mpz_mod(t, t, e->p);                 /* d x1 x2 y1 y2 */
    mpz_add_ui(den1, t, 1);
    mpz_ui_sub(den2, 1, t);
    mpz_mod(den2, den2, e->p);
    mpz_mul(xn, x1, y2);
    mpz_addmul(xn, x2, y1);
    mpz_mul(yn, y1, y2);
    mpz_addmul(yn, x1, x2);
    mpz_invert(den1, den1, e->p);
    mpz_invert(den2, den2, e->p);
    mpz_mul(x3, xn, den1);
    mpz_mod(x3, x3, e->p);
    mpz_mul(y3, yn, den2);
    mpz_mod(y3, y3, e->p);
    mpz_clears(t, xn, yn, den1, den2, NULL);
}

static void ed_mul(const struct ed *e, mpz_t rx, mpz_t ry, const mpz_t k, const mpz_t px,
                   const mpz_t py)
{
    mpz_t ax, ay, qx, qy;
    mpz_inits(ax, ay, qx, qy, NULL);
    mpz_set_ui(ax, 0);   /* neutral element (0, 1) */
    mpz_set_ui(ay, 1);
    mpz_set(qx, px);
    mpz_set(qy, py);
    size_t bits = mpz_sizeinbase(k, 2);
    for (size_t i = bits; i-- > 0;) {
        ed_add(e, ax, ay, ax, ay, ax, ay);
        if (mpz_tstbit(k, i))
            ed_add(e, ax, ay, ax, ay, qx, qy);
    }
    mpz_set(rx, ax);
    mpz_set(ry, ay);
    mpz_clears(ax, ay, qx, qy, NULL);
}

static void le_import(mpz_t z, const unsigned char *b, size_t n)
{
    mpz_import(z, n, -1, 1, 0, 0, b);
}

static void ed_encode(const mpz_t x, const mpz_t y, unsigned char out[32])
{
    memset(out, 0, 32);
    size_t cnt = 0;
    mpz_export(out, &cnt, -1, 1, 0, 0, y);
    if (mpz_odd_p(x))
        out[31] |= 0x80;
}

static bool ed_decode(const struct ed *e, const unsigned char in[32], mpz_t x, mpz_t y)
{
    unsigned char b[32];
    memcpy(b, in, 32);
    int sign = b[31] >> 7;
    b[31] &= 0x7F;
    le_import(y, b, 32);
    if (mpz_cmp(y, e->p) >= 0)
        return false;
    mpz_t u, v, t, v3;
    mpz_inits(u, v, t, v3, NULL);
    mpz_mul(u, y, y);
    mpz_sub_ui(u, u, 1);
    mpz_mod(u, u, e->p);                 /* y^2 - 1 */
    mpz_mul(v, y, y);
    mpz_mul(v, v, e->d);
    mpz_add_ui(v, v, 1);
    mpz_mod(v, v, e->p);                 /* d y^2 + 1 */
    /* x = u v^3 (u v^7)^((p-5)/8) */
    mpz_powm_ui(v3, v, 3, e->p);
    mpz_powm_ui(t, v, 7, e->p);
    mpz_mul(t, t, u);
    mpz_mod(t, t, e->p);
    mpz_t ex;
    mpz_init(ex);
    mpz_sub_ui(ex, e->p, 5);
    mpz_fdiv_q_2exp(ex, ex, 3);
    mpz_powm(t, t, ex, e->p);
    mpz_mul(x, u, v3);
    mpz_mul(x, x, t);
    mpz_mod(x, x, e->p);
    /* check v x^2 == u, or == -u (then multiply by sqrt(-1)) */
    mpz_mul(t, x, x);
    mpz_mul(t, t, v);
    mpz_mod(t, t, e->p);
    bool ok = true;
    if (mpz_cmp(t, u) != 0) {
        mpz_add(t, t, u);
        mpz_mod(t, t, e->p);
        if (mpz_sgn(t) == 0) {
            mpz_mul(x, x, e->sqrtm1);
            mpz_mod(x, x, e->p);
        } else {
            ok = false;
        }
    }
    if (ok && mpz_sgn(x) == 0 && sign)
        ok = false;
    if (ok && (int)mpz_odd_p(x) != sign)
        mpz_sub(x, e->p, x);
    mpz_clears(u, v, t, v3, ex, NULL);
    return ok;
}

/* SHA-512 of the concatenation of up to three parts, as an integer mod L. */
static void ed_hash(const struct ed *e, mpz_t out, const void *a, size_t an, const void *b,
                    size_t bn, const void *c, size_t cn)
{
    unsigned char *buf = malloc(an + bn + cn + 1), d[64];
    if (!buf) {
        mpz_set_ui(out, 0);
        return;
    }
    memcpy(buf, a, an);
    memcpy(buf + an, b, bn);
    if (cn)
        memcpy(buf + an + bn, c, cn);
    xv_crypto_sha512(buf, an + bn + cn, d);
    free(buf);
    le_import(out, d, 64);
    mpz_mod(out, out, e->L);
}

bool xv_crypto_ed25519_verify(const unsigned char pub[32], const void *msg, size_t n,
                                 const unsigned char sig[64])
{
    struct ed e;
    ed_init(&e);
    mpz_t ax, ay, rx, ry, s, h, lx, ly, tx, ty;
    mpz_inits(ax, ay, rx, ry, s, h, lx, ly, tx, ty, NULL);
    bool ok = ed_decode(&e, pub, ax, ay) && ed_decode(&e, sig, rx, ry);
    if (ok) {
        le_import(s, sig + 32, 32);
        ok = mpz_cmp(s, e.L) < 0;
    }
    if (ok) {
        ed_hash(&e, h, sig, 32, pub, 32, msg, n);
        ed_mul(&e, lx, ly, s, e.bx, e.by);     /* [S]B */
        ed_mul(&e, tx, ty, h, ax, ay);         /* [h]A */
        ed_add(&e, tx, ty, tx, ty, rx, ry);    /* R + [h]A */
        ok = mpz_cmp(lx, tx) == 0 && mpz_cmp(ly, ty) == 0;
    }
    mpz_clears(ax, ay, rx, ry, s, h, lx, ly, tx, ty, NULL);
    ed_clear(&e);
    return ok;
}

int xv_crypto_ed25519_sign(const unsigned char seed[32], const void *msg, size_t n,
                              unsigned char sig[64])
{
    struct ed e;
    ed_init(&e);
    unsigned char h[64], A[32], R[32];
    xv_crypto_sha512(seed, 32, h);
    h[0] &= 248;
    h[31] &= 127;
    h[31] |= 64;
    mpz_t a, r, k, s, x, y;
    mpz_inits(a, r, k, s, x, y, NULL);
    le_import(a, h, 32);
    ed_mul(&e, x, y, a, e.bx, e.by);
    ed_encode(x, y, A);
    ed_hash(&e, r, h + 32, 32, msg, n, NULL, 0);
    ed_mul(&e, x, y, r, e.bx, e.by);
    ed_encode(x, y, R);
    ed_hash(&e, k, R, 32, A, 32, msg, n);
    mpz_mul(s, k, a);
    mpz_add(s, s, r);
    mpz_mod(s, s, e.L);
    memcpy(sig, R, 32);
    memset(sig + 32, 0, 32);
    size_t cnt = 0;
    mpz_export(sig + 32, &cnt, -1, 1, 0, 0, s);
    mpz_clears(a, r, k, s, x, y, NULL);
    ed_clear(&e);
    return 0;
}
