/*
 * builtins/x509.c — crypto.x509.parse_certificates,
 * crypto.x509.parse_and_verify_certificates,
 * crypto.x509.parse_certificate_request, crypto.x509.parse_keypair,
 * crypto.x509.parse_rsa_private_key and crypto.parse_private_keys.
 *
 * Certificates are returned as objects with the commonly used fields of
 * Go's x509.Certificate as OPA serialises it (Raw, Version, SerialNumber,
 * Issuer, Subject, NotBefore, NotAfter, IsCA, DNSNames, EmailAddresses,
 * IPAddresses, URIStrings, ...): names carry Go's pkix.Name fields (the
 * string lists are null when empty). Chain verification checks each
 * signature (RSA PKCS#1 v1.5 and ECDSA with SHA-256/384/512), validity
 * periods against the evaluation time and that issuers are CAs.
 *
 * Invariant: every DER access goes through the bounds-checked reader.
 * Thread safety: reentrant.
 */
#include "builtins/helpers.h"
#include "crypto/pubkey.h"
#include "go/time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(v) XV_STR(v)
#define SL(v) XV_STRLEN(v)
#define MAXCERTS 32

typedef struct xv_crypto_der der_t;

struct cert {
    const unsigned char *raw;  /* whole certificate DER */
    size_t rawlen;
    der_t tbs, sigalg, sig;    /* top-level parts */
    der_t tbs_full;            /* tbs including its header (signed bytes) */
    const unsigned char *tbs_start;
    size_t tbs_len;
    int version;
    der_t serial, issuer, validity, subject, spki_el;
    const unsigned char *spki_start;
    size_t spki_len;
    der_t exts;                /* [3] extensions content, len 0 when absent */
    int64_t not_before, not_after; /* Unix seconds */
    bool is_ca;
};

/* ---- input forms: PEM text, base64 of PEM, base64 of DER ---- */

/* Decode the input into a list of DER blobs. Returns count, or -1 with an
 * error recorded. *bufs receives allocations to free. */
static int input_ders(struct xv_bctx *ctx, const char *s, size_t n, const char *want_type,
                      unsigned char **ders, size_t *lens, int max, char **hold)
{
    *hold = NULL;
    char *text = NULL;
    size_t tn = n;
    if (!(n >= 10 && memcmp(s, "-----BEGIN", 10) == 0)) {
        struct xv_val_buf b = {0};
        long bad = xv_bi_b64_decode(&b, s, n, false);
        if (bad >= 0) {
            xv_val_buf_free(&b);
            return xv_bi_error(ctx, "illegal base64 data at input byte %ld", bad);
        }
        text = xv_val_buf_take(&b, &tn);
        if (!text)
            return xv_bi_error(ctx, "out of memory");
        *hold = text;
        if (!(tn >= 10 && memcmp(text, "-----BEGIN", 10) == 0)) {
            ders[0] = (unsigned char *)text;
            lens[0] = tn;
            *hold = NULL;   /* ownership passes to ders[0] */
            return 1;
        }
        s = text;
        n = tn;
    }
    int cnt = 0;
    size_t off = 0;
    while (off < n && cnt < max) {
        char *type;
        unsigned char *der;
        size_t dl, rest;
        if (xv_crypto_pem_decode(s + off, n - off, &type, &der, &dl, &rest))
            break;
        if (!want_type || strcmp(type, want_type) == 0 ||
            (strcmp(want_type, "CERTIFICATE REQUEST") == 0 &&
             strcmp(type, "NEW CERTIFICATE REQUEST") == 0)) {
            ders[cnt] = der;
            lens[cnt++] = dl;
        } else {
            free(der);
        }
        free(type);
        off += rest;
    }
    return cnt;
}

/* ---- certificate parsing ---- */

static int64_t parse_time(const der_t *d)
{
    /* UTCTime YYMMDDHHMMSSZ or GeneralizedTime YYYYMMDDHHMMSSZ */
    char buf[32];
    if (d->len >= sizeof buf)
        return 0;
    memcpy(buf, d->p, d->len);
    buf[d->len] = '\0';
    int y, mo, da, h, mi, se = 0;
    if (d->tag == 0x17) {
        if (sscanf(buf, "%2d%2d%2d%2d%2d%2d", &y, &mo, &da, &h, &mi, &se) < 5)
            return 0;
        y += y >= 50 ? 1900 : 2000;
    } else if (sscanf(buf, "%4d%2d%2d%2d%2d%2d", &y, &mo, &da, &h, &mi, &se) < 5) {
        return 0;
    }
    return xv_go_days_from_civil(y, mo, da) * 86400 + h * 3600 + mi * 60 + se;
}

static bool parse_cert(const unsigned char *p, size_t n, struct cert *c)
{
    memset(c, 0, sizeof *c);
    const unsigned char *q = p, *end = p + n;
    der_t top;
    if (!xv_crypto_der_read(&q, end, &top) || top.tag != 0x30)
        return false;
    c->raw = p;
    c->rawlen = (size_t)(q - p);
    const unsigned char *t = top.p, *te = top.p + top.len;
    c->tbs_start = t;
    if (!xv_crypto_der_read(&t, te, &c->tbs) || c->tbs.tag != 0x30)
        return false;
    c->tbs_len = (size_t)(t - c->tbs_start);
    if (!xv_crypto_der_read(&t, te, &c->sigalg) || !xv_crypto_der_read(&t, te, &c->sig) ||
        c->sig.tag != 0x03)
        return false;
    const unsigned char *b = c->tbs.p, *be = c->tbs.p + c->tbs.len;
    der_t el;
    if (!xv_crypto_der_read(&b, be, &el))
        return false;
    c->version = 1;
    if (el.tag == 0xA0) {
        der_t v;
        const unsigned char *vp = el.p;
        if (xv_crypto_der_read(&vp, el.p + el.len, &v) && v.tag == 0x02 && v.len == 1)
            c->version = v.p[0] + 1;
        if (!xv_crypto_der_read(&b, be, &el))
            return false;
    }
    c->serial = el;
    der_t sa;
    if (!xv_crypto_der_read(&b, be, &sa) || !xv_crypto_der_read(&b, be, &c->issuer) ||
        !xv_crypto_der_read(&b, be, &c->validity) || !xv_crypto_der_read(&b, be, &c->subject))
        return false;
    c->spki_start = b;
    if (!xv_crypto_der_read(&b, be, &c->spki_el))
        return false;
    c->spki_len = (size_t)(b - c->spki_start);
    const unsigned char *vp = c->validity.p, *ve = c->validity.p + c->validity.len;
    der_t nb, na;
    if (!xv_crypto_der_read(&vp, ve, &nb) || !xv_crypto_der_read(&vp, ve, &na))
        return false;
    c->not_before = parse_time(&nb);
    c->not_after = parse_time(&na);
    while (b < be) {
        if (!xv_crypto_der_read(&b, be, &el))
            return false;
        if (el.tag == 0xA3) {
            const unsigned char *xp = el.p;
            der_t seq;
            if (xv_crypto_der_read(&xp, el.p + el.len, &seq) && seq.tag == 0x30)
                c->exts = seq;
        }
    }
    return true;
}

static const unsigned char OID_SAN[] = {0x55, 0x1D, 0x11};
static const unsigned char OID_BC[] = {0x55, 0x1D, 0x13};

/* Extension value (OCTET STRING content) for oid, or false. */
static bool find_ext(const struct cert *c, const unsigned char *oid, size_t on, der_t *val)
{
    const unsigned char *p = c->exts.p, *e = c->exts.p + c->exts.len;
    der_t ext;
    while (c->exts.len && p < e && xv_crypto_der_read(&p, e, &ext)) {
        const unsigned char *q = ext.p, *qe = ext.p + ext.len;
        der_t id, x;
        if (!xv_crypto_der_read(&q, qe, &id) || id.tag != 0x06)
            continue;
        if (!xv_crypto_der_read(&q, qe, &x))
            continue;
        if (x.tag == 0x01 && !xv_crypto_der_read(&q, qe, &x))   /* critical flag */
            continue;
        if (id.len == on && memcmp(id.p, oid, on) == 0 && x.tag == 0x04) {
            *val = x;
            return true;
        }
    }
    return false;
}

/* ---- values ---- */

static int put(struct xv_value *o, const char *k, struct xv_value *v)
{
    int rc = v ? xv_val_object_set_str(o, k, v) : -1;
    xv_val_decref(v);
    return rc;
}

static struct xv_value *b64_value(const unsigned char *p, size_t n)
{
    struct xv_val_buf b = {0};
    xv_bi_b64_encode(&b, p, n, false, true);
    size_t len;
    char *s = xv_val_buf_take(&b, &len);
    struct xv_value *v = s ? xv_val_string(s, len) : NULL;
    free(s);
    return v;
}

static struct xv_value *time_value(int64_t sec)
{
    struct xv_go_tm tm;
    xv_go_time_split(sec, 0, NULL, &tm);
    return xv_val_string_fmt("%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long)tm.year, tm.month,
                         tm.day, tm.hour, tm.min, tm.sec);
}

/* Go's pkix.Name as JSON. */
static struct xv_value *name_value(const der_t *name)
{
    static const struct {
        unsigned char last;   /* 2.5.4.<last> */
        const char *field;
    } attrs[] = {{6, "Country"}, {10, "Organization"}, {11, "OrganizationalUnit"},
                 {7, "Locality"}, {8, "Province"}, {9, "StreetAddress"}, {17, "PostalCode"}};
    struct xv_value *o = xv_val_object_new(12), *lists[7] = {0}, *names = xv_val_array_new(4);
    struct xv_value *cn = NULL, *sn = NULL;
    const unsigned char *p = name->p, *e = name->p + name->len;
    der_t set;
    while (o && names && p < e && xv_crypto_der_read(&p, e, &set)) {
        const unsigned char *q = set.p, *qe = set.p + set.len;
        der_t atv;
        while (q < qe && xv_crypto_der_read(&q, qe, &atv)) {
            const unsigned char *r = atv.p, *re = atv.p + atv.len;
            der_t oid, val;
            if (!xv_crypto_der_read(&r, re, &oid) || !xv_crypto_der_read(&r, re, &val) ||
                oid.tag != 0x06)
                continue;
            struct xv_value *sv = xv_val_string((const char *)val.p, val.len);
            /* Names entry: {"Type": [oid arcs], "Value": "..."} */
            struct xv_value *ent = xv_val_object_new(2), *arcs = xv_val_array_new(4);
            unsigned long arc = 0;
            for (size_t i = 0; arcs && i < oid.len; i++) {
                arc = arc << 7 | (oid.p[i] & 0x7F);
                if (oid.p[i] & 0x80)
                    continue;
                if (XV_ARR_LEN(arcs) == 0) {
                    /* the first subidentifier packs two arcs: 40*X + Y */
                    unsigned long first = arc < 80 ? arc / 40 : 2;
                    struct xv_value *a1 = xv_val_int((int64_t)first), *a2 = xv_val_int((int64_t)(arc - first * 40));
                    xv_val_array_push(arcs, a1);
                    xv_val_array_push(arcs, a2);
                    xv_val_decref(a1);
                    xv_val_decref(a2);
                } else {
                    struct xv_value *ai = xv_val_int((int64_t)arc);
                    xv_val_array_push(arcs, ai);
                    xv_val_decref(ai);
                }
                arc = 0;
            }
            if (ent && arcs && sv) {
                xv_val_object_set_str(ent, "Type", arcs);
                xv_val_object_set_str(ent, "Value", sv);
                xv_val_array_push(names, ent);
            }
            xv_val_decref(ent);
            xv_val_decref(arcs);
            if (oid.len == 3 && oid.p[0] == 0x55 && oid.p[1] == 0x04) {
                unsigned char last = oid.p[2];
                if (last == 3) {
                    xv_val_decref(cn);
                    cn = xv_val_incref(sv);
                } else if (last == 5) {
                    xv_val_decref(sn);
                    sn = xv_val_incref(sv);
                }
                for (int k = 0; k < 7; k++)
                    if (attrs[k].last == last && sv) {
                        if (!lists[k])
                            lists[k] = xv_val_array_new(1);
                        if (lists[k])
                            xv_val_array_push(lists[k], sv);
                    }
            }
            xv_val_decref(sv);
        }
    }
    if (!o || !names) {
        xv_val_decref(o);
        xv_val_decref(names);
        for (int k = 0; k < 7; k++)
            xv_val_decref(lists[k]);
        xv_val_decref(cn);
        xv_val_decref(sn);
        return NULL;
    }
    int rc = 0;
    for (int k = 0; k < 7; k++)
        rc |= put(o, attrs[k].field, lists[k] ? lists[k] : xv_val_null());
    rc |= put(o, "CommonName", cn ? cn : xv_val_cstring(""));
    rc |= put(o, "SerialNumber", sn ? sn : xv_val_cstring(""));
    rc |= put(o, "Names", names);
    rc |= put(o, "ExtraNames", xv_val_null());
    if (rc) {
        xv_val_decref(o);
        return NULL;
    }
    return o;
}

/* SAN lists: DNS (2), email (1), URI (6), IP (7). */
static int san_values(const struct cert *c, struct xv_value *o)
{
    struct xv_value *dns = NULL, *email = NULL, *uri = NULL, *ip = NULL;
    der_t val;
    if (find_ext(c, OID_SAN, sizeof OID_SAN, &val)) {
        const unsigned char *p = val.p, *e = val.p + val.len;
        der_t seq, gn;
        if (xv_crypto_der_read(&p, e, &seq) && seq.tag == 0x30) {
            const unsigned char *q = seq.p, *qe = seq.p + seq.len;
            while (q < qe && xv_crypto_der_read(&q, qe, &gn)) {
                struct xv_value **dst = gn.tag == 0x82 ? &dns : gn.tag == 0x81 ? &email
                                        : gn.tag == 0x86 ? &uri : gn.tag == 0x87 ? &ip : NULL;
                if (!dst)
                    continue;
                if (!*dst)
                    *dst = xv_val_array_new(2);
                struct xv_value *s;
                if (gn.tag == 0x87) {
                    char buf[64] = "";
                    if (gn.len == 4)
                        snprintf(buf, sizeof buf, "%u.%u.%u.%u", gn.p[0], gn.p[1], gn.p[2], gn.p[3]);
                    else
                        for (size_t i = 0; i + 1 < gn.len && i < 16; i += 2)
                            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%x",
                                     i ? ":" : "", gn.p[i] << 8 | gn.p[i + 1]);
                    s = xv_val_cstring(buf);
                } else {
                    s = xv_val_string((const char *)gn.p, gn.len);
                }
                if (*dst && s)
                    xv_val_array_push(*dst, s);
                xv_val_decref(s);
            }
        }
    }
    int rc = put(o, "DNSNames", dns ? dns : xv_val_null());
    rc |= put(o, "EmailAddresses", email ? email : xv_val_null());
    rc |= put(o, "URIStrings", uri ? uri : xv_val_null());
    rc |= put(o, "IPAddresses", ip ? ip : xv_val_null());
    return rc;
}

static bool cert_is_ca(const struct cert *c)
{
    der_t val;
    if (!find_ext(c, OID_BC, sizeof OID_BC, &val))
        return false;
    const unsigned char *p = val.p, *e = val.p + val.len;
    der_t seq, b;
    if (!xv_crypto_der_read(&p, e, &seq) || seq.tag != 0x30)
        return false;
    const unsigned char *q = seq.p;
    return xv_crypto_der_read(&q, seq.p + seq.len, &b) && b.tag == 0x01 && b.len == 1 &&
           b.p[0] != 0;
}

static struct xv_value *cert_value(const struct cert *c)
{
    struct xv_value *o = xv_val_object_new(16);
    if (!o)
        return NULL;
    mpz_t z;
    mpz_init(z);
    xv_crypto_der_int(&c->serial, z);
    int rc = put(o, "Raw", b64_value(c->raw, c->rawlen));
    rc |= put(o, "RawTBSCertificate", b64_value(c->tbs_start, c->tbs_len));
    rc |= put(o, "RawSubjectPublicKeyInfo", b64_value(c->spki_start, c->spki_len));
    rc |= put(o, "Signature", b64_value(c->sig.len ? c->sig.p + 1 : c->sig.p,
                                        c->sig.len ? c->sig.len - 1 : 0));
    rc |= put(o, "Version", xv_val_int(c->version));
    rc |= put(o, "SerialNumber", xv_val_number_from_mpz(z));
    rc |= put(o, "Issuer", name_value(&c->issuer));
    rc |= put(o, "Subject", name_value(&c->subject));
    rc |= put(o, "NotBefore", time_value(c->not_before));
    rc |= put(o, "NotAfter", time_value(c->not_after));
    rc |= put(o, "IsCA", xv_val_bool(cert_is_ca(c)));
    rc |= put(o, "BasicConstraintsValid", xv_val_bool(find_ext(c, OID_BC, sizeof OID_BC, &(der_t){0})));
    rc |= san_values(c, o);
    mpz_clear(z);
    if (rc) {
        xv_val_decref(o);
        return NULL;
    }
    return o;
}

static int parse_certs(struct xv_bctx *ctx, const struct xv_value *in, struct cert *certs,
                       unsigned char **ders, int *nders, bool *ok_out)
{
    char *hold;
    size_t lens[MAXCERTS];
    int n = input_ders(ctx, S(in), SL(in), "CERTIFICATE", ders, lens, MAXCERTS, &hold);
    free(hold);
    *nders = n < 0 ? 0 : n;
    if (n < 0)
        return -1;
    int cnt = 0;
    for (int i = 0; i < n; i++) {
        /* a DER blob may hold several concatenated certificates */
        const unsigned char *p = ders[i], *e = ders[i] + lens[i];
        while (p < e && cnt < MAXCERTS) {
            if (!parse_cert(p, (size_t)(e - p), &certs[cnt])) {
                *ok_out = false;
                return xv_bi_error(ctx, "x509: malformed certificate");
            }
            p += certs[cnt].rawlen;
            cnt++;
        }
    }
    *ok_out = true;
    return cnt;
}

BI_FN(bi_parse_certificates)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING))
        return XV_BI_ERROR;
    struct cert *certs = calloc(MAXCERTS, sizeof *certs);
    unsigned char *ders[MAXCERTS];
    int nd = 0;
    bool ok;
    if (!certs)
        return xv_bi_error(ctx, "out of memory");
    int n = parse_certs(ctx, a[0], certs, ders, &nd, &ok);
    struct xv_value *arr = n >= 0 ? xv_val_array_new((size_t)n) : NULL;
    int rc = n < 0 ? XV_BI_ERROR : XV_BI_OK;
    for (int i = 0; rc == XV_BI_OK && i < n; i++) {
        struct xv_value *v = cert_value(&certs[i]);
        if (!v || !arr || xv_val_array_push(arr, v))
            rc = xv_bi_error(ctx, "out of memory");
        xv_val_decref(v);
    }
    for (int i = 0; i < nd; i++)
        free(ders[i]);
    free(certs);
    if (rc != XV_BI_OK) {
        xv_val_decref(arr);
        return rc;
    }
    *out = arr;
    return XV_BI_OK;
}

/* Does issuer's key verify c's signature? */
static bool verify_sig(const struct cert *c, const struct cert *issuer)
{
    struct xv_crypto_key k;
    const char *err;
    xv_crypto_key_init(&k);
    bool ok = false;
    if (xv_crypto_key_from_spki(issuer->spki_start, issuer->spki_len, &k, &err) == 0) {
        const unsigned char *p = c->sigalg.p;
        der_t oid;
        if (xv_crypto_der_read(&p, c->sigalg.p + c->sigalg.len, &oid) && oid.tag == 0x06 &&
            c->sig.len > 1) {
            static const unsigned char rsa[] = {0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01};
            static const unsigned char ec[] = {0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03};
            enum xv_crypto_hash h = XV_CRYPTO_SHA256;
            int fam = 0;
            if (oid.len == 9 && memcmp(oid.p, rsa, 8) == 0) {
                fam = 1;
                h = oid.p[8] == 0x0B ? XV_CRYPTO_SHA256 : oid.p[8] == 0x0C ? XV_CRYPTO_SHA384
                    : oid.p[8] == 0x0D ? XV_CRYPTO_SHA512 : oid.p[8] == 0x05 ? XV_CRYPTO_SHA1 : -1;
            } else if (oid.len == 8 && memcmp(oid.p, ec, 7) == 0) {
                fam = 2;
                h = oid.p[7] == 2 ? XV_CRYPTO_SHA256 : oid.p[7] == 3 ? XV_CRYPTO_SHA384
                    : oid.p[7] == 4 ? XV_CRYPTO_SHA512 : -1;
            }
            unsigned char d[XV_CRYPTO_SHA512_LEN];
            size_t dl;
            if (fam && (int)h >= 0) {
                xv_crypto_digest(h, c->tbs_start, c->tbs_len, d, &dl);
                const unsigned char *sig = c->sig.p + 1;
                size_t sl = c->sig.len - 1;
                if (fam == 1 && h != XV_CRYPTO_SHA1) {
                    ok = xv_crypto_rsa_verify_pkcs1(&k, h, d, sig, sl);
                } else if (fam == 2) {
                    /* DER SEQUENCE { r, s } to fixed-width r || s */
                    size_t cb = xv_crypto_ec_bytes(k.curve);
                    const unsigned char *q = sig;
                    der_t seq, r, s;
                    unsigned char rs[2 * 66];
                    if (cb && xv_crypto_der_read(&q, sig + sl, &seq) && seq.tag == 0x30) {
                        const unsigned char *t = seq.p, *te = seq.p + seq.len;
                        if (xv_crypto_der_read(&t, te, &r) && xv_crypto_der_read(&t, te, &s) &&
                            r.tag == 2 && s.tag == 2) {
                            while (r.len > 0 && r.p[0] == 0) { r.p++; r.len--; }
                            while (s.len > 0 && s.p[0] == 0) { s.p++; s.len--; }
                            if (r.len <= cb && s.len <= cb) {
                                memset(rs, 0, 2 * cb);
                                memcpy(rs + cb - r.len, r.p, r.len);
                                memcpy(rs + 2 * cb - s.len, s.p, s.len);
                                ok = xv_crypto_ecdsa_verify(&k, d, dl, rs, 2 * cb);
                            }
                        }
                    }
                }
            }
        }
    }
    xv_crypto_key_clear(&k);
    return ok;
}

BI_FN(bi_parse_and_verify)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING))
        return XV_BI_ERROR;
    struct cert *certs = calloc(MAXCERTS, sizeof *certs);
    unsigned char *ders[MAXCERTS];
    int nd = 0;
    bool ok = false;
    if (!certs)
        return xv_bi_error(ctx, "out of memory");
    int n = parse_certs(ctx, a[0], certs, ders, &nd, &ok);
    bool valid = n >= 2;
    /* certs[0] is the root, certs[n-1] the leaf; each is signed by the one before */
    int64_t now = xv_bi_ctx_now_ns(ctx) / 1000000000;
    for (int i = 0; valid && i < n; i++) {
        valid = now >= certs[i].not_before && now <= certs[i].not_after;
        if (valid && i > 0)
            valid = cert_is_ca(&certs[i - 1]) && verify_sig(&certs[i], &certs[i - 1]);
        if (valid && i == 0)
            valid = verify_sig(&certs[0], &certs[0]);
    }
    struct xv_value *list = xv_val_array_new(n > 0 ? (size_t)n : 0);
    for (int i = n - 1; valid && list && i >= 0; i--) {
        struct xv_value *v = cert_value(&certs[i]);
        if (!v || xv_val_array_push(list, v)) {
            xv_val_decref(list);
            list = NULL;
        }
        xv_val_decref(v);
    }
    for (int i = 0; i < nd; i++)
        free(ders[i]);
    free(certs);
    if (!valid) {
        xv_val_decref(list);
        list = xv_val_array_new(0);
    }
    struct xv_value *r = xv_val_array_new(2);
    if (!r || !list || xv_val_array_push(r, xv_val_bool(valid)) || xv_val_array_push(r, list)) {
        xv_val_decref(r);
        r = NULL;
    }
    xv_val_decref(list);
    return xv_bi_ret(ctx, r, out);
}

BI_FN(bi_parse_csr)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING))
        return XV_BI_ERROR;
    unsigned char *ders[1];
    size_t lens[1];
    char *hold;
    int n = input_ders(ctx, S(a[0]), SL(a[0]), "CERTIFICATE REQUEST", ders, lens, 1, &hold);
    free(hold);
    if (n < 0)
        return XV_BI_ERROR;
    if (n == 0)
        return xv_bi_error(ctx, "asn1: structure error: no certificate request found");
    const unsigned char *p = ders[0], *e = ders[0] + lens[0];
    der_t top, info, ver, subj;
    struct xv_value *o = NULL;
    if (xv_crypto_der_read(&p, e, &top) && top.tag == 0x30) {
        const unsigned char *q = top.p, *qe = top.p + top.len;
        if (xv_crypto_der_read(&q, qe, &info) && info.tag == 0x30) {
            const unsigned char *r = info.p, *re = info.p + info.len;
            if (xv_crypto_der_read(&r, re, &ver) && ver.tag == 0x02 &&
                xv_crypto_der_read(&r, re, &subj) && subj.tag == 0x30) {
                o = xv_val_object_new(4);
                if (o && (put(o, "Raw", b64_value(ders[0], (size_t)(p - ders[0]))) ||
                          put(o, "Version", xv_val_int(ver.len == 1 ? ver.p[0] : 0)) ||
                          put(o, "Subject", name_value(&subj)))) {
                    xv_val_decref(o);
                    o = NULL;
                }
            }
        }
    }
    free(ders[0]);
    if (!o)
        return xv_bi_error(ctx, "asn1: structure error: tags don't match");
    *out = o;
    return XV_BI_OK;
}

/* ---- private keys ---- */

static struct xv_value *b64url_mpz(const mpz_t z)
{
    size_t cnt = 0;
    unsigned char *raw = mpz_export(NULL, &cnt, 1, 1, 0, 0, z);
    struct xv_val_buf b = {0};
    xv_bi_b64_encode(&b, raw ? raw : (const unsigned char *)"", cnt, true, false);
    free(raw);
    size_t len;
    char *s = xv_val_buf_take(&b, &len);
    struct xv_value *v = s ? xv_val_string(s, len) : NULL;
    free(s);
    return v;
}

/* PKCS#1 RSAPrivateKey, or PKCS#8 wrapping one, as a JWK object. */
static struct xv_value *rsa_jwk(const unsigned char *p, size_t n)
{
    const unsigned char *q = p, *e = p + n;
    der_t seq;
    if (!xv_crypto_der_read(&q, e, &seq) || seq.tag != 0x30)
        return NULL;
    const unsigned char *r = seq.p, *re = seq.p + seq.len;
    der_t el[9];
    int cnt = 0;
    while (r < re && cnt < 9 && xv_crypto_der_read(&r, re, &el[cnt]))
        cnt++;
    if (cnt >= 3 && el[1].tag == 0x30 && el[2].tag == 0x04)   /* PKCS#8 */
        return rsa_jwk(el[2].p, el[2].len);
    if (cnt < 9)
        return NULL;
    static const char *const names[] = {"n", "e", "d", "p", "q", "dp", "dq", "qi"};
    struct xv_value *o = xv_val_object_new(9);
    int rc = o ? put(o, "kty", xv_val_cstring("RSA")) : -1;
    for (int i = 0; !rc && i < 8; i++) {
        mpz_t z;
        mpz_init(z);
        if (!xv_crypto_der_int(&el[i + 1], z))
            rc = -1;
        else
            rc = put(o, names[i], b64url_mpz(z));
        mpz_clear(z);
    }
    if (rc) {
        xv_val_decref(o);
        return NULL;
    }
    return o;
}

static int pem_or_b64(struct xv_bctx *ctx, const struct xv_value *v, char **text, size_t *tn)
{
    if (SL(v) >= 10 && memcmp(S(v), "-----BEGIN", 10) == 0) {
        *text = strndup(S(v), SL(v));
        *tn = SL(v);
        return *text ? 0 : xv_bi_error(ctx, "out of memory");
    }
    struct xv_val_buf b = {0};
    long bad = xv_bi_b64_decode(&b, S(v), SL(v), false);
    if (bad >= 0) {
        xv_val_buf_free(&b);
        return xv_bi_error(ctx, "illegal base64 data at input byte %ld", bad);
    }
    *text = xv_val_buf_take(&b, tn);
    return *text ? 0 : xv_bi_error(ctx, "out of memory");
}

BI_FN(bi_parse_rsa_private_key)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING))
        return XV_BI_ERROR;
    char *text;
    size_t tn;
    if (pem_or_b64(ctx, a[0], &text, &tn))
        return XV_BI_ERROR;
    char *type;
    unsigned char *der;
    size_t dl, rest;
    struct xv_value *k = NULL;
    if (xv_crypto_pem_decode(text, tn, &type, &der, &dl, &rest) == 0) {
        k = rsa_jwk(der, dl);
        free(type);
        free(der);
    }
    free(text);
    if (!k)
        return xv_bi_error(ctx, "failed to parse RSA private key");
    *out = k;
    return XV_BI_OK;
}

/* EC private key (SEC 1) as a JWK. */
static struct xv_value *ec_jwk(const unsigned char *p, size_t n)
{
    const unsigned char *q = p, *e = p + n;
    der_t seq, ver, priv, el;
    if (!xv_crypto_der_read(&q, e, &seq) || seq.tag != 0x30)
        return NULL;
    const unsigned char *r = seq.p, *re = seq.p + seq.len;
    if (!xv_crypto_der_read(&r, re, &ver) || !xv_crypto_der_read(&r, re, &priv) ||
        priv.tag != 0x04)
        return NULL;
    const char *crv = NULL;
    der_t pub = {0};
    while (r < re && xv_crypto_der_read(&r, re, &el)) {
        const unsigned char *t = el.p;
        der_t in;
        if (!xv_crypto_der_read(&t, el.p + el.len, &in))
            continue;
        if (el.tag == 0xA0 && in.tag == 0x06)
            crv = in.len == 8 ? "P-256" : (in.len == 5 && in.p[4] == 0x22) ? "P-384" : "P-521";
        else if (el.tag == 0xA1 && in.tag == 0x03)
            pub = in;
    }
    struct xv_value *o = xv_val_object_new(5);
    mpz_t d;
    mpz_init(d);
    mpz_import(d, priv.len, 1, 1, 0, 0, priv.p);
    int rc = !o || !crv;
    if (!rc)
        rc = put(o, "kty", xv_val_cstring("EC")) | put(o, "crv", xv_val_cstring(crv)) |
             put(o, "d", b64url_mpz(d));
    if (!rc && pub.len > 2 && pub.p[1] == 0x04) {
        size_t cb = (pub.len - 2) / 2;
        mpz_t x, y;
        mpz_inits(x, y, NULL);
        mpz_import(x, cb, 1, 1, 0, 0, pub.p + 2);
        mpz_import(y, cb, 1, 1, 0, 0, pub.p + 2 + cb);
        rc = put(o, "x", b64url_mpz(x)) | put(o, "y", b64url_mpz(y));
        mpz_clears(x, y, NULL);
    }
    mpz_clear(d);
    if (rc) {
        xv_val_decref(o);
        return NULL;
    }
    return o;
}

BI_FN(bi_parse_private_keys)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING))
        return XV_BI_ERROR;
    if (SL(a[0]) == 0) {
        *out = xv_val_null();
        return XV_BI_OK;
    }
    char *text = NULL;
    size_t tn;
    if (SL(a[0]) >= 10 && memcmp(S(a[0]), "-----BEGIN", 10) == 0) {
        text = strndup(S(a[0]), SL(a[0]));
        tn = SL(a[0]);
    } else {
        struct xv_val_buf b = {0};
        if (xv_bi_b64_decode(&b, S(a[0]), SL(a[0]), false) >= 0) {
            xv_val_buf_free(&b);
            *out = xv_val_array_new(0);
            return xv_bi_ret(ctx, *out, out);
        }
        text = xv_val_buf_take(&b, &tn);
    }
    struct xv_value *arr = xv_val_array_new(2);
    size_t off = 0;
    while (text && arr && off < tn) {
        char *type;
        unsigned char *der;
        size_t dl, rest;
        if (xv_crypto_pem_decode(text + off, tn - off, &type, &der, &dl, &rest))
            break;
        struct xv_value *k = NULL;
        if (strcmp(type, "RSA PRIVATE KEY") == 0 || strcmp(type, "PRIVATE KEY") == 0)
            k = rsa_jwk(der, dl);
        if (!k && (strcmp(type, "EC PRIVATE KEY") == 0 || strcmp(type, "PRIVATE KEY") == 0))
            k = ec_jwk(der, dl);
        if (k)
            xv_val_array_push(arr, k);
        xv_val_decref(k);
        free(type);
        free(der);
        off += rest;
    }
    free(text);
    return xv_bi_ret(ctx, arr, out);
}

BI_FN(bi_parse_keypair)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING) || xv_bi_want(ctx, a, 2, XV_T_STRING))
        return XV_BI_ERROR;
    char *ct, *kt;
    size_t cn, kn;
    if (pem_or_b64(ctx, a[0], &ct, &cn))
        return XV_BI_ERROR;
    if (pem_or_b64(ctx, a[1], &kt, &kn)) {
        free(ct);
        return XV_BI_ERROR;
    }
    struct xv_value *certs = xv_val_array_new(2), *key = NULL;
    size_t off = 0;
    while (certs && off < cn) {
        char *type;
        unsigned char *der;
        size_t dl, rest;
        if (xv_crypto_pem_decode(ct + off, cn - off, &type, &der, &dl, &rest))
            break;
        if (strcmp(type, "CERTIFICATE") == 0) {
            struct xv_value *v = b64_value(der, dl);
            if (v)
                xv_val_array_push(certs, v);
            xv_val_decref(v);
        }
        free(type);
        free(der);
        off += rest;
    }
    char *type;
    unsigned char *der;
    size_t dl, rest;
    if (xv_crypto_pem_decode(kt, kn, &type, &der, &dl, &rest) == 0) {
        key = rsa_jwk(der, dl);
        if (!key)
            key = ec_jwk(der, dl);
        free(type);
        free(der);
    }
    free(ct);
    free(kt);
    if (!certs || XV_ARR_LEN(certs) == 0 || !key) {
        xv_val_decref(certs);
        xv_val_decref(key);
        return xv_bi_error(ctx, !key ? "tls: failed to find any PEM data in key input"
                                     : "tls: failed to find any PEM data in certificate input");
    }
    struct xv_value *o = xv_val_object_new(2);
    if (!o || xv_val_object_set_str(o, "Certificate", certs) || xv_val_object_set_str(o, "PrivateKey", key)) {
        xv_val_decref(o);
        o = NULL;
    }
    xv_val_decref(certs);
    xv_val_decref(key);
    return xv_bi_ret(ctx, o, out);
}

const struct xv_builtin_def xv_bi_x509[] = {
    {"crypto.x509.parse_certificates", 1, bi_parse_certificates, 0},
    {"crypto.x509.parse_and_verify_certificates", 1, bi_parse_and_verify, XV_BIF_NONDET},
    {"crypto.x509.parse_certificate_request", 1, bi_parse_csr, 0},
    {"crypto.x509.parse_keypair", 2, bi_parse_keypair, 0},
    {"crypto.x509.parse_rsa_private_key", 1, bi_parse_rsa_private_key, 0},
    {"crypto.parse_private_keys", 1, bi_parse_private_keys, 0},
    {NULL, 0, NULL, 0},
};
