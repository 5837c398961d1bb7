/*
 * builtins/jwt.c — io.jwt.decode, io.jwt.decode_verify, io.jwt.verify_*
 * (HS, RS, PS, ES families and EdDSA) and io.jwt.encode_sign /
 * encode_sign_raw (HS, RS and EdDSA), following OPA's topdown/tokens.go
 * behaviour and error texts.
 *
 * Invariant: a signature is checked only with the algorithm the caller (or
 * the token header, for decode_verify) names; keys come from a PEM
 * certificate or public key, or a JWK / JWK set.
 * Thread safety: reentrant.
 */
#include "builtins/helpers.h"
#include "crypto/digest.h"
#include "crypto/pubkey.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(v) XV_STR(v)
#define SL(v) XV_STRLEN(v)
#define MAXKEYS 16

/* ---- token parts ---- */

struct jwt {
    const char *h, *p, *s;  /* the three base64url parts */
    size_t hn, pn, sn;      /* their lengths */
};

static int split_jwt(struct xv_bctx *ctx, const struct xv_value *v, int pos, struct jwt *t)
{
    if (!XV_IS(v, XV_T_STRING))
        return xv_bi_type_error(ctx, pos, "string", v);
    const char *s = S(v), *e = s + SL(v);
    if (!memchr(s, '.', SL(v)))
        return xv_bi_error(ctx, "encoded JWT had no period separators");
    int dots = 0;
    for (const char *p = s; p < e; p++)
        dots += *p == '.';
    if (dots != 2)
        return xv_bi_error(ctx, "encoded JWT must have 3 sections, found %d", dots + 1);
    const char *d1 = memchr(s, '.', SL(v)), *d2 = memchr(d1 + 1, '.', (size_t)(e - d1 - 1));
    t->h = s;
    t->hn = (size_t)(d1 - s);
    t->p = d1 + 1;
    t->pn = (size_t)(d2 - d1 - 1);
    t->s = d2 + 1;
    t->sn = (size_t)(e - d2 - 1);
    return 0;
}

/* base64url with optional padding (OPA's B64UrlDecode). NULL + msg on error. */
static char *b64url(const char *s, size_t n, size_t *outlen, char *msg, size_t ml)
{
    char *tmp = malloc(n + 3);
    if (!tmp) {
        snprintf(msg, ml, "out of memory");
        return NULL;
    }
    memcpy(tmp, s, n);
    size_t tn = n;
    if (!(n > 0 && s[n - 1] == '=')) {
        if (n % 4 == 2) {
            tmp[tn++] = '=';
            tmp[tn++] = '=';
        } else if (n % 4 == 3) {
            tmp[tn++] = '=';
        } else if (n % 4 == 1) {
            free(tmp);
            snprintf(msg, ml, "illegal base64url string: %.*s", (int)(n > 100 ? 100 : n), s);
            return NULL;
        }
    }
    struct xv_val_buf b = {0};
    long bad = xv_bi_b64_decode(&b, tmp, tn, true);
    free(tmp);
    if (bad >= 0) {
        xv_val_buf_free(&b);
        snprintf(msg, ml, "illegal base64 data at input byte %ld", bad);
        return NULL;
    }
    return xv_val_buf_take(&b, outlen);
}

static const char *field_str(const struct xv_value *o, const char *k)
{
    long at = XV_IS(o, XV_T_OBJECT) ? xv_val_object_find_str(o, k, strlen(k)) : -1;
    return at >= 0 && XV_IS(XV_OBJ_VAL(o, at), XV_T_STRING) ? S(XV_OBJ_VAL(o, at)) : NULL;
}

/* Decode and parse the header; *hdr is a new object. */
static int decode_header(struct xv_bctx *ctx, const struct jwt *t, struct xv_value **hdr)
{
    char msg[256];
    size_t n;
    char *h = b64url(t->h, t->hn, &n, msg, sizeof msg);
    if (!h)
        return xv_bi_error(ctx, "JWT header had invalid encoding: %s", msg);
    char err[256] = "";
    struct xv_value *v = NULL;
    int rc = xv_val_json_parse(h, n, &v, err, sizeof err);
    free(h);
    if (rc || !v || !XV_IS(v, XV_T_OBJECT)) {
        xv_val_decref(v);
        return xv_bi_error(ctx, "JWT header had invalid encoding: %s", err[0] ? err : "not an object");
    }
    if (xv_val_object_find_str(v, "enc", 3) >= 0) {
        xv_val_decref(v);
        return xv_bi_error(ctx, "JWT is a JWE object, which is not supported");
    }
    *hdr = v;
    return 0;
}

static int decode_sig(struct xv_bctx *ctx, const struct jwt *t, char **sig, size_t *sl)
{
    char msg[256];
    *sig = b64url(t->s, t->sn, sl, msg, sizeof msg);
    if (!*sig)
        return xv_bi_error(ctx, "JWT signature had invalid encoding: %s", msg);
    return 0;
}

/* ---- io.jwt.decode ---- */

BI_FN(bi_jwt_decode)
{
    struct xv_value *cur = xv_val_incref(a[0]);
    for (int depth = 0; depth < 16; depth++) {
        struct jwt t;
        struct xv_value *hdr = NULL;
        if (split_jwt(ctx, cur, 1, &t) || decode_header(ctx, &t, &hdr)) {
            xv_val_decref(cur);
            return XV_BI_ERROR;
        }
        char msg[256];
        size_t pn, sl;
        char *p = b64url(t.p, t.pn, &pn, msg, sizeof msg);
        if (!p) {
            xv_val_decref(hdr);
            xv_val_decref(cur);
            return xv_bi_error(ctx, "JWT payload had invalid encoding: %s", msg);
        }
        char *sig;
        if (decode_sig(ctx, &t, &sig, &sl)) {
            free(p);
            xv_val_decref(hdr);
            xv_val_decref(cur);
            return XV_BI_ERROR;
        }
        const char *cty = field_str(hdr, "cty");
        char err[256] = "";
        struct xv_value *pv = NULL;
        int rc = xv_val_json_parse(p, pn, &pv, err, sizeof err);
        if (cty && strcasecmp(cty, "JWT") == 0) {
            /* nested: the payload is the inner token, possibly JSON-quoted */
            xv_val_decref(cur);
            cur = (rc == 0 && XV_IS(pv, XV_T_STRING)) ? xv_val_incref(pv) : xv_val_string(p, pn);
            xv_val_decref(pv);
            free(p);
            free(sig);
            xv_val_decref(hdr);
            if (!cur)
                return xv_bi_error(ctx, "out of memory");
            continue;
        }
        free(p);
        xv_val_decref(cur);
        if (rc || !pv || !XV_IS(pv, XV_T_OBJECT)) {
            xv_val_decref(pv);
            free(sig);
            xv_val_decref(hdr);
            return xv_bi_error(ctx, "JWT payload had invalid encoding: %s",
                               err[0] ? err : "not an object");
        }
        struct xv_val_buf hx = {0};
        static const char dg[] = "0123456789abcdef";
        for (size_t i = 0; i < sl; i++) {
            xv_val_buf_addc(&hx, dg[(unsigned char)sig[i] >> 4]);
            xv_val_buf_addc(&hx, dg[(unsigned char)sig[i] & 15]);
        }
        xv_val_buf_add(&hx, "", 0);
        free(sig);
        struct xv_value *sv = hx.p ? xv_val_string(hx.p, hx.len) : NULL;
        xv_val_buf_free(&hx);
        struct xv_value *arr = xv_val_array_new(3);
        if (!arr || !sv || xv_val_array_push(arr, hdr) || xv_val_array_push(arr, pv) ||
            xv_val_array_push(arr, sv)) {
            xv_val_decref(arr);
            arr = NULL;
        }
        xv_val_decref(hdr);
        xv_val_decref(pv);
        xv_val_decref(sv);
        return xv_bi_ret(ctx, arr, out);
    }
    xv_val_decref(cur);
    return xv_bi_error(ctx, "JWT nesting too deep");
}

/* ---- keys ---- */

struct keyset {
    struct xv_crypto_key k[MAXKEYS];   /* parsed keys */
    int n;                         /* how many */
};

static void keyset_clear(struct keyset *ks)
{
    for (int i = 0; i < ks->n; i++)
        xv_crypto_key_clear(&ks->k[i]);
    ks->n = 0;
}

static bool b64url_mpz(const struct xv_value *o, const char *f, mpz_t out)
{
    const char *s = field_str(o, f);
    if (!s)
        return false;
    char msg[128];
    size_t n;
    char *raw = b64url(s, strlen(s), &n, msg, sizeof msg);
    if (!raw)
        return false;
    mpz_import(out, n, 1, 1, 0, 0, raw);
    free(raw);
    return n > 0;
}

static bool jwk_one(const struct xv_value *o, struct xv_crypto_key *k)
{
    const char *kty = field_str(o, "kty");
    if (!kty)
        return false;
    const char *alg = field_str(o, "alg"), *kid = field_str(o, "kid");
    if (alg)
        snprintf(k->alg, sizeof k->alg, "%s", alg);
    if (kid)
        snprintf(k->kid, sizeof k->kid, "%s", kid);
    if (strcmp(kty, "RSA") == 0) {
        if (!b64url_mpz(o, "n", k->n) || !b64url_mpz(o, "e", k->e))
            return false;
        k->has_d = b64url_mpz(o, "d", k->d);
        k->type = XV_CRYPTO_KEY_RSA;
        return true;
    }
    if (strcmp(kty, "OKP") == 0) {
        const char *crv = field_str(o, "crv"), *x = field_str(o, "x"), *d = field_str(o, "d");
        char msg[64];
        size_t n;
        if (!crv || strcmp(crv, "Ed25519") != 0 || !x)
            return false;
        char *raw = b64url(x, strlen(x), &n, msg, sizeof msg);
        bool ok = raw && n == 32;
        if (ok)
            memcpy(k->okp, raw, 32);
        free(raw);
        if (ok && d) {
            raw = b64url(d, strlen(d), &n, msg, sizeof msg);
            if (raw && n == 32) {
                memcpy(k->okp_d, raw, 32);
                k->has_okp_d = true;
            }
            free(raw);
        }
        k->type = XV_CRYPTO_KEY_OKP;
        return ok;
    }
    if (strcmp(kty, "EC") == 0) {
        const char *crv = field_str(o, "crv");
        k->curve = !crv ? 0 : strcmp(crv, "P-256") == 0 ? 256 : strcmp(crv, "P-384") == 0 ? 384
                             : strcmp(crv, "P-521") == 0 ? 521 : 0;
        if (!k->curve || !b64url_mpz(o, "x", k->x) || !b64url_mpz(o, "y", k->y))
            return false;
        k->type = XV_CRYPTO_KEY_EC;
        return true;
    }
    return false;
}

/* OPA's getKeysFromCertOrJWK. */
static int parse_keys(struct xv_bctx *ctx, const char *s, size_t n, struct keyset *ks)
{
    ks->n = 0;
    char *type;
    unsigned char *der;
    size_t dl, rest;
    if (xv_crypto_pem_decode(s, n, &type, &der, &dl, &rest) == 0) {
        int rc = 0;
        const char *err = NULL;
        if (rest < n) {
            rc = xv_bi_error(ctx, "extra data after a PEM certificate block");
        } else {
            xv_crypto_key_init(&ks->k[0]);
            if (strcmp(type, "CERTIFICATE") == 0) {
                if (xv_crypto_key_from_cert(der, dl, &ks->k[0], &err))
                    rc = xv_bi_error(ctx, "failed to parse a PEM certificate: %s", err);
            } else if (strcmp(type, "PUBLIC KEY") == 0) {
                if (xv_crypto_key_from_spki(der, dl, &ks->k[0], &err))
                    rc = xv_bi_error(ctx, "failed to parse a PEM public key: %s", err);
            } else {
                rc = xv_bi_error(ctx, "failed to extract a Key from the PEM certificate");
            }
            if (rc)
                xv_crypto_key_clear(&ks->k[0]);
            else
                ks->n = 1;
        }
        free(type);
        free(der);
        return rc;
    }
    char err[256] = "";
    struct xv_value *v = NULL;
    if (xv_val_json_parse(s, n, &v, err, sizeof err) || !XV_IS(v, XV_T_OBJECT)) {
        xv_val_decref(v);
        return xv_bi_error(ctx, "failed to parse a JWK key (set): %s", err[0] ? err : "not an object");
    }
    long at = xv_val_object_find_str(v, "keys", 4);
    const struct xv_value *list = at >= 0 ? XV_OBJ_VAL(v, at) : NULL;
    size_t cnt = list && XV_IS(list, XV_T_ARRAY) ? XV_ARR_LEN(list) : 1;
    for (size_t i = 0; i < cnt && ks->n < MAXKEYS; i++) {
        const struct xv_value *o = list ? XV_ARR_ITEM(list, i) : v;
        xv_crypto_key_init(&ks->k[ks->n]);
        if (jwk_one(o, &ks->k[ks->n]))
            ks->n++;
        else
            xv_crypto_key_clear(&ks->k[ks->n]);
    }
    xv_val_decref(v);
    if (ks->n == 0)
        return xv_bi_error(ctx, "failed to parse a JWK key (set): no usable key");
    return 0;
}

/* ---- algorithms ---- */

enum family { F_HS, F_RS, F_PS, F_ES, F_ED };

struct alg {
    const char *name;
    enum family fam;
    enum xv_crypto_hash hash;
    int curve;   /* ES: the curve the key must be on */
};

static const struct alg algs[] = {
    {"HS256", F_HS, XV_CRYPTO_SHA256, 0}, {"HS384", F_HS, XV_CRYPTO_SHA384, 0},
    {"HS512", F_HS, XV_CRYPTO_SHA512, 0}, {"RS256", F_RS, XV_CRYPTO_SHA256, 0},
    {"RS384", F_RS, XV_CRYPTO_SHA384, 0}, {"RS512", F_RS, XV_CRYPTO_SHA512, 0},
    {"PS256", F_PS, XV_CRYPTO_SHA256, 0}, {"PS384", F_PS, XV_CRYPTO_SHA384, 0},
    {"PS512", F_PS, XV_CRYPTO_SHA512, 0}, {"ES256", F_ES, XV_CRYPTO_SHA256, 256},
    {"ES384", F_ES, XV_CRYPTO_SHA384, 384}, {"ES512", F_ES, XV_CRYPTO_SHA512, 521},
    {"EdDSA", F_ED, XV_CRYPTO_SHA512, 0},
};

static const struct alg *find_alg(const char *name)
{
    for (size_t i = 0; name && i < sizeof algs / sizeof algs[0]; i++)
        if (strcmp(algs[i].name, name) == 0)
            return &algs[i];
    return NULL;
}

/* Signing input of token t: header "." payload. */
static char *signing_input(const struct jwt *t, size_t *n)
{
    *n = t->hn + 1 + t->pn;
    char *s = malloc(*n + 1);
    if (s) {
        memcpy(s, t->h, t->hn);
        s[t->hn] = '.';
        memcpy(s + t->hn + 1, t->p, t->pn);
        s[*n] = '\0';
    }
    return s;
}

static bool verify_key(const struct alg *al, const struct xv_crypto_key *k, const char *msg, size_t mn,
                       const unsigned char *sig, size_t sl)
{
    if (al->fam == F_ED)
        return k->type == XV_CRYPTO_KEY_OKP && sl == 64 &&
               xv_crypto_ed25519_verify(k->okp, msg, mn, sig);
    unsigned char d[XV_CRYPTO_SHA512_LEN];
    size_t dl;
    xv_crypto_digest(al->hash, msg, mn, d, &dl);
    switch (al->fam) {
    case F_RS: return xv_crypto_rsa_verify_pkcs1(k, al->hash, d, sig, sl);
    case F_PS: return xv_crypto_rsa_verify_pss(k, al->hash, d, sig, sl);
    case F_ES: return k->curve == al->curve && xv_crypto_ecdsa_verify(k, d, dl, sig, sl);
    default: return false;
    }
}

static bool verify_hmac(const struct alg *al, const char *secret, size_t kn, const char *msg,
                        size_t mn, const unsigned char *sig, size_t sl)
{
    unsigned char mac[XV_CRYPTO_SHA512_LEN];
    size_t ml;
    if (xv_crypto_hmac(al->hash, secret, kn, msg, mn, mac, &ml))
        return false;
    unsigned diff = sl != ml;
    for (size_t i = 0; i < ml && i < sl; i++)
        diff |= mac[i] ^ sig[i];
    return diff == 0;
}

/* Verify with a key set: a kid match decides alone, otherwise any key whose
 * JWK alg (if any) matches. */
static bool verify_keys(const struct alg *al, const struct keyset *ks, const char *kid,
                        const char *msg, size_t mn, const unsigned char *sig, size_t sl)
{
    if (kid && kid[0])
        for (int i = 0; i < ks->n; i++)
            if (strcmp(ks->k[i].kid, kid) == 0)
                return verify_key(al, &ks->k[i], msg, mn, sig, sl);
    for (int i = 0; i < ks->n; i++)
        if ((!ks->k[i].alg[0] || strcmp(ks->k[i].alg, al->name) == 0) &&
            verify_key(al, &ks->k[i], msg, mn, sig, sl))
            return true;
    return false;
}

/* ---- io.jwt.verify_* ---- */

static int verify_builtin(struct xv_bctx *ctx, struct xv_value *const *a, const char *algname,
                          struct xv_value **out)
{
    const struct alg *al = find_alg(algname);
    struct jwt t;
    if (split_jwt(ctx, a[0], 1, &t) || xv_bi_want(ctx, a, 2, XV_T_STRING))
        return XV_BI_ERROR;
    char *sig;
    size_t sl, mn;
    if (al->fam == F_HS) {
        if (decode_sig(ctx, &t, &sig, &sl))
            return XV_BI_ERROR;
        char *msg = signing_input(&t, &mn);
        bool ok = msg && verify_hmac(al, S(a[1]), SL(a[1]), msg, mn, (unsigned char *)sig, sl);
        free(msg);
        free(sig);
        *out = xv_val_bool(ok);
        return XV_BI_OK;
    }
    struct keyset ks;
    if (parse_keys(ctx, S(a[1]), SL(a[1]), &ks))
        return XV_BI_ERROR;
    struct xv_value *hdr = NULL;
    if (decode_sig(ctx, &t, &sig, &sl)) {
        keyset_clear(&ks);
        return XV_BI_ERROR;
    }
    if (decode_header(ctx, &t, &hdr)) {
        free(sig);
        keyset_clear(&ks);
        return XV_BI_ERROR;
    }
    char *msg = signing_input(&t, &mn);
    bool ok = msg && verify_keys(al, &ks, field_str(hdr, "kid"), msg, mn, (unsigned char *)sig, sl);
    free(msg);
    free(sig);
    xv_val_decref(hdr);
    keyset_clear(&ks);
    *out = xv_val_bool(ok);
    return XV_BI_OK;
}

#define VERIFY_FN(fname, alg) \
    BI_FN(fname) { return verify_builtin(ctx, a, alg, out); }
VERIFY_FN(bi_verify_hs256, "HS256")
VERIFY_FN(bi_verify_hs384, "HS384")
VERIFY_FN(bi_verify_hs512, "HS512")
VERIFY_FN(bi_verify_rs256, "RS256")
VERIFY_FN(bi_verify_rs384, "RS384")
VERIFY_FN(bi_verify_rs512, "RS512")
VERIFY_FN(bi_verify_ps256, "PS256")
VERIFY_FN(bi_verify_ps384, "PS384")
VERIFY_FN(bi_verify_ps512, "PS512")
VERIFY_FN(bi_verify_es256, "ES256")
VERIFY_FN(bi_verify_es384, "ES384")
VERIFY_FN(bi_verify_es512, "ES512")
VERIFY_FN(bi_verify_eddsa, "EdDSA")

/* ---- io.jwt.decode_verify ---- */

static struct xv_value *unverified(void)
{
    struct xv_value *arr = xv_val_array_new(3), *h = xv_val_object_new(0), *p = xv_val_object_new(0);
    if (!arr || !h || !p || xv_val_array_push(arr, xv_val_bool(0)) || xv_val_array_push(arr, h) ||
        xv_val_array_push(arr, p)) {
        xv_val_decref(arr);
        arr = NULL;
    }
    xv_val_decref(h);
    xv_val_decref(p);
    return arr;
}

struct constraints {
    struct keyset ks;       /* "cert" keys */
    const char *secret;     /* "secret" */
    size_t secretlen;
    const char *alg, *iss, *aud;  /* borrowed from the constraints object */
    double time;            /* seconds */
};

static bool valid_aud(const struct constraints *c, const struct xv_value *aud)
{
    if (XV_IS(aud, XV_T_STRING))
        return c->aud && strcmp(S(aud), c->aud) == 0;
    if (!XV_IS(aud, XV_T_ARRAY))
        return false;
    for (size_t i = 0; i < XV_ARR_LEN(aud); i++)
        if (XV_IS(XV_ARR_ITEM(aud, i), XV_T_STRING) && c->aud &&
            strcmp(S(XV_ARR_ITEM(aud, i)), c->aud) == 0)
            return true;
    return false;
}

/* The constraints object of io.jwt.decode_verify into c (a "cert" parsed
 * into c->ks; *have_cert then). 0, or XV_BI_ERROR with the error recorded. */
static int parse_constraints(struct xv_bctx *ctx, const struct xv_value *co,
                             struct constraints *c, bool *have_cert)
{
    int rc = 0;
    for (size_t i = 0; i < XV_OBJ_LEN(co) && !rc; i++) {
        const struct xv_value *k = XV_OBJ_KEY(co, i), *v = XV_OBJ_VAL(co, i);
        const char *name = XV_IS(k, XV_T_STRING) ? S(k) : "";
        if (strcmp(name, "time") == 0) {
            if (!XV_IS(v, XV_T_NUMBER))
                rc = xv_bi_error(ctx, "token time constraint: must be a number");
            else
                c->time = xv_val_number_get_double(v);
            continue;
        }
        if (strcmp(name, "cert") && strcmp(name, "secret") && strcmp(name, "alg") &&
            strcmp(name, "iss") && strcmp(name, "aud")) {
            struct xv_val_buf kb = {0};
            xv_bi_rego_text(&kb, k);
            rc = xv_bi_error(ctx, "unknown token validation constraint: %s", kb.p ? kb.p : "");
            xv_val_buf_free(&kb);
            continue;
        }
        if (!XV_IS(v, XV_T_STRING)) {
            rc = xv_bi_error(ctx, "%s constraint: must be a string", name);
            continue;
        }
        if (strcmp(name, "cert") == 0) {
            rc = parse_keys(ctx, S(v), SL(v), &c->ks);
            *have_cert = rc == 0;
        } else if (strcmp(name, "secret") == 0) {
            c->secret = S(v);
            c->secretlen = SL(v);
        } else if (strcmp(name, "alg") == 0) {
            c->alg = S(v);
        } else if (strcmp(name, "iss") == 0) {
            c->iss = S(v);
        } else {
            c->aud = S(v);
        }
    }
    return rc;
}

/* The registered claims (iss, aud, exp, nbf) of payload against c: *valid
 * false when one fails. 0, or XV_BI_ERROR for a malformed exp/nbf. */
static int check_claims(struct xv_bctx *ctx, const struct constraints *c,
                        const struct xv_value *payload, bool *valid)
{
    double now = c->time / 1e9;
    long at;
    if (c->iss) {
        const char *iss = field_str(payload, "iss");
        if (!iss || strcmp(iss, c->iss) != 0) {
            *valid = false;
            return 0;
        }
    }
    at = xv_val_object_find_str(payload, "aud", 3);
    if (at >= 0 ? !valid_aud(c, XV_OBJ_VAL(payload, at)) : (c->aud && c->aud[0])) {
        *valid = false;
        return 0;
    }
    at = xv_val_object_find_str(payload, "exp", 3);
    if (at >= 0) {
        const struct xv_value *e = XV_OBJ_VAL(payload, at);
        if (!XV_IS(e, XV_T_NUMBER))
            return xv_bi_error(ctx, "exp value must be a number");
        if (now >= xv_val_number_get_double(e)) {
            *valid = false;
            return 0;
        }
    }
    at = xv_val_object_find_str(payload, "nbf", 3);
    if (at >= 0) {
        const struct xv_value *e = XV_OBJ_VAL(payload, at);
        if (!XV_IS(e, XV_T_NUMBER))
            return xv_bi_error(ctx, "nbf value must be a number");
        if (now < xv_val_number_get_double(e)) {
            *valid = false;
            return 0;
        }
    }
    return 0;
}

BI_FN(bi_jwt_decode_verify)
{
    if (!XV_IS(a[0], XV_T_STRING))
        return xv_bi_type_error(ctx, 1, "string", a[0]);
    if (xv_bi_want(ctx, a, 2, XV_T_OBJECT))
        return XV_BI_ERROR;
    struct constraints c = {0};
    c.time = (double)xv_bi_ctx_now_ns(ctx);
    const struct xv_value *co = a[1];
    bool have_cert = false;
    int rc = parse_constraints(ctx, co, &c, &have_cert);
    if (!rc && have_cert && c.secret)
        rc = xv_bi_error(ctx, "duplicate key constraints");
    if (!rc && !have_cert && !c.secret)
        rc = xv_bi_error(ctx, "no key constraint");
    if (rc) {
        keyset_clear(&c.ks);
        return XV_BI_ERROR;
    }
    struct xv_value *cur = xv_val_incref(a[0]), *hdr = NULL, *payload = NULL, *result = NULL;
    char *p = NULL;
    size_t pn = 0;
    for (int depth = 0; depth < 16 && !result && !rc; depth++) {
        struct jwt t;
        xv_val_decref(hdr);
        hdr = NULL;
        if (split_jwt(ctx, cur, 1, &t) || decode_header(ctx, &t, &hdr)) {
            rc = XV_BI_ERROR;
            break;
        }
        const char *alg = field_str(hdr, "alg");
        /* RFC 7515 4.1.11: no "crit" extension is understood here */
        if (!alg || (c.alg && strcmp(c.alg, alg) != 0) || xv_val_object_find_str(hdr, "crit", 4) >= 0) {
            result = unverified();
            break;
        }
        const struct alg *al = find_alg(alg);
        if (!al) {
            rc = xv_bi_error(ctx, "unknown JWS algorithm: %s", alg);
            break;
        }
        char *sig;
        size_t sl, mn;
        if (decode_sig(ctx, &t, &sig, &sl)) {
            rc = XV_BI_ERROR;
            break;
        }
        char *msg = signing_input(&t, &mn);
        bool ok;
        if (have_cert)
            ok = al->fam != F_HS && msg &&
                 verify_keys(al, &c.ks, field_str(hdr, "kid"), msg, mn, (unsigned char *)sig, sl);
        else if (al->fam == F_HS)
            ok = msg && verify_hmac(al, c.secret, c.secretlen, msg, mn, (unsigned char *)sig, sl);
        else
            ok = false;
        free(msg);
        free(sig);
        if (!ok) {
            result = unverified();
            break;
        }
        char em[256];
        free(p);
        p = b64url(t.p, t.pn, &pn, em, sizeof em);
        if (!p) {
            rc = xv_bi_error(ctx, "JWT payload had invalid encoding: %s", em);
            break;
        }
        const char *cty = field_str(hdr, "cty");
        if (cty && strcasecmp(cty, "JWT") == 0) {
            xv_val_decref(cur);
            cur = xv_val_string(p, pn);
            if (!cur) {
                rc = xv_bi_error(ctx, "out of memory");
                break;
            }
            continue;
        }
        char err[256] = "";
        if (xv_val_json_parse(p, pn, &payload, err, sizeof err) || !XV_IS(payload, XV_T_OBJECT)) {
            rc = xv_bi_error(ctx, "JWT payload had invalid encoding: %s", err[0] ? err : "not an object");
            break;
        }
        /* registered claims */
        bool valid = true;
        if ((rc = check_claims(ctx, &c, payload, &valid)) != 0)
            break;
        if (!valid) {
            result = unverified();
            break;
        }
        result = xv_val_array_new(3);
        if (!result || xv_val_array_push(result, xv_val_bool(1)) || xv_val_array_push(result, hdr) ||
            xv_val_array_push(result, payload)) {
            xv_val_decref(result);
            result = NULL;
            rc = xv_bi_error(ctx, "out of memory");
        }
    }
    free(p);
    xv_val_decref(cur);
    xv_val_decref(hdr);
    xv_val_decref(payload);
    keyset_clear(&c.ks);
    if (rc) {
        xv_val_decref(result);
        return XV_BI_ERROR;
    }
    if (!result)
        return xv_bi_error(ctx, "JWT nesting too deep");
    *out = result;
    return XV_BI_OK;
}

/* ---- io.jwt.encode_sign / encode_sign_raw ---- */

static int encode_common(struct xv_bctx *ctx, const char *hs, size_t hn, const char *ps,
                         size_t pn, const char *ks, size_t kn, struct xv_value **out)
{
    /* header: must be a JSON object naming a known alg */
    size_t i = 0;
    while (i < hn && (hs[i] == ' ' || hs[i] == '\t' || hs[i] == '\r' || hs[i] == '\n'))
        i++;
    if (hn == 0)
        return xv_bi_error(ctx, "missing or invalid 'alg' header: cannot parse JSON: cannot "
                                "parse empty string");
    char err[256] = "";
    struct xv_value *hdr = NULL;
    if (xv_val_json_parse(hs, hn, &hdr, err, sizeof err) || !hdr) {
        xv_val_decref(hdr);
        if (i < hn && hs[i] == '{')
            return xv_bi_error(ctx, "missing or invalid 'alg' header: cannot parse JSON");
        return xv_bi_error(ctx, "missing or invalid 'alg' header: jwsbb: header \"alg\" not found");
    }
    const char *algname = field_str(hdr, "alg");
    if (!algname) {
        xv_val_decref(hdr);
        return xv_bi_error(ctx, "missing or invalid 'alg' header: jwsbb: header \"alg\" not found");
    }
    const struct alg *al = find_alg(algname);
    if (!al) {
        int rc = xv_bi_error(ctx, "unknown JWS algorithm: %s", algname);
        xv_val_decref(hdr);
        return rc;
    }
    const char *typ = field_str(hdr, "typ");
    if (!typ || strcmp(typ, "JWT") == 0) {
        struct xv_value *pv = NULL;
        if (xv_val_json_parse(ps, pn, &pv, err, sizeof err) || !pv) {
            xv_val_decref(pv);
            xv_val_decref(hdr);
            return xv_bi_error(ctx, "type is JWT but payload is not JSON");
        }
        xv_val_decref(pv);
    }
    xv_val_decref(hdr);
    /* key: a JWK */
    struct xv_value *kv = NULL;
    if (xv_val_json_parse(ks, kn, &kv, err, sizeof err) || !XV_IS(kv, XV_T_OBJECT)) {
        xv_val_decref(kv);
        return xv_bi_error(ctx, "failed to parse a JWK key (set): %s", err[0] ? err : "not an object");
    }
    long at = xv_val_object_find_str(kv, "keys", 4);
    const struct xv_value *jwk = kv;
    if (at >= 0 && XV_IS(XV_OBJ_VAL(kv, at), XV_T_ARRAY) && XV_ARR_LEN(XV_OBJ_VAL(kv, at)) > 0)
        jwk = XV_ARR_ITEM(XV_OBJ_VAL(kv, at), 0);
    struct xv_val_buf in = {0};
    xv_bi_b64_encode(&in, (const unsigned char *)hs, hn, true, false);
    xv_val_buf_addc(&in, '.');
    xv_bi_b64_encode(&in, (const unsigned char *)ps, pn, true, false);
    unsigned char sigbuf[XV_CRYPTO_SHA512_LEN], *sig = NULL;
    size_t sl = 0;
    int rc = 0;
    if (al->fam == F_HS) {
        const char *kty = field_str(jwk, "kty"), *k = field_str(jwk, "k");
        char msg[128];
        size_t klen;
        char *secret = (kty && strcmp(kty, "oct") == 0 && k) ? b64url(k, strlen(k), &klen, msg, sizeof msg)
                                                            : NULL;
        if (!secret)
            rc = xv_bi_error(ctx, "invalid key for %s: an \"oct\" JWK is required", al->name);
        else if (xv_crypto_hmac(al->hash, secret, klen, in.p, in.len, sigbuf, &sl))
            rc = xv_bi_error(ctx, "out of memory");
        else
            sig = sigbuf;
        free(secret);
    } else if (al->fam == F_RS) {
        struct xv_crypto_key key;
        xv_crypto_key_init(&key);
        unsigned char d[XV_CRYPTO_SHA512_LEN];
        size_t dl;
        xv_crypto_digest(al->hash, in.p, in.len, d, &dl);
        if (!jwk_one(jwk, &key) || key.type != XV_CRYPTO_KEY_RSA || !key.has_d ||
            xv_crypto_rsa_sign_pkcs1(&key, al->hash, d, &sig, &sl))
            rc = xv_bi_error(ctx, "invalid key for %s: an RSA private JWK is required", al->name);
        xv_crypto_key_clear(&key);
    } else if (al->fam == F_ED) {
        struct xv_crypto_key key;
        xv_crypto_key_init(&key);
        sig = malloc(64);
        sl = 64;
        if (!sig || !jwk_one(jwk, &key) || key.type != XV_CRYPTO_KEY_OKP || !key.has_okp_d ||
            xv_crypto_ed25519_sign(key.okp_d, in.p, in.len, sig)) {
            free(sig);
            sig = NULL;
            rc = xv_bi_error(ctx, "invalid key for EdDSA: an Ed25519 private JWK is required");
        }
        xv_crypto_key_clear(&key);
    } else {
        rc = xv_bi_error(ctx, "signing with %s is not supported", al->name);
    }
    xv_val_decref(kv);
    if (rc) {
        xv_val_buf_free(&in);
        return rc;
    }
    xv_val_buf_addc(&in, '.');
    xv_bi_b64_encode(&in, sig, sl, true, false);
    if (sig != sigbuf)
        free(sig);
    return xv_bi_ret_buf(ctx, &in, out);
}

BI_FN(bi_encode_sign_raw)
{
    for (int i = 1; i <= 3; i++)
        if (xv_bi_want(ctx, a, i, XV_T_STRING))
            return XV_BI_ERROR;
    return encode_common(ctx, S(a[0]), SL(a[0]), S(a[1]), SL(a[1]), S(a[2]), SL(a[2]), out);
}

BI_FN(bi_encode_sign)
{
    for (int i = 1; i <= 3; i++)
        if (xv_bi_want(ctx, a, i, XV_T_OBJECT))
            return XV_BI_ERROR;
    struct xv_val_buf h = {0}, p = {0}, k = {0};
    int rc = XV_BI_ERROR;
    if (xv_bi_json_text(&h, a[0], XV_JSON_HTML_ESCAPE) == 0 &&
        xv_bi_json_text(&p, a[1], XV_JSON_HTML_ESCAPE) == 0 &&
        xv_bi_json_text(&k, a[2], 0) == 0 && !h.oom && !p.oom && !k.oom)
        rc = encode_common(ctx, h.p ? h.p : "", h.len, p.p ? p.p : "", p.len, k.p ? k.p : "",
                           k.len, out);
    else
        rc = xv_bi_error(ctx, "json: unsupported value");
    xv_val_buf_free(&h);
    xv_val_buf_free(&p);
    xv_val_buf_free(&k);
    return rc;
}

const struct xv_builtin_def xv_bi_jwt[] = {
    {"io.jwt.decode", 1, bi_jwt_decode, 0},
    {"io.jwt.decode_verify", 2, bi_jwt_decode_verify, XV_BIF_NONDET},
    {"io.jwt.verify_hs256", 2, bi_verify_hs256, 0},
    {"io.jwt.verify_hs384", 2, bi_verify_hs384, 0},
    {"io.jwt.verify_hs512", 2, bi_verify_hs512, 0},
    {"io.jwt.verify_rs256", 2, bi_verify_rs256, 0},
    {"io.jwt.verify_rs384", 2, bi_verify_rs384, 0},
    {"io.jwt.verify_rs512", 2, bi_verify_rs512, 0},
    {"io.jwt.verify_ps256", 2, bi_verify_ps256, 0},
    {"io.jwt.verify_ps384", 2, bi_verify_ps384, 0},
    {"io.jwt.verify_ps512", 2, bi_verify_ps512, 0},
    {"io.jwt.verify_es256", 2, bi_verify_es256, 0},
    {"io.jwt.verify_es384", 2, bi_verify_es384, 0},
    {"io.jwt.verify_es512", 2, bi_verify_es512, 0},
    {"io.jwt.verify_eddsa", 2, bi_verify_eddsa, 0},
    {"io.jwt.encode_sign", 3, bi_encode_sign, XV_BIF_NONDET},
    {"io.jwt.encode_sign_raw", 3, bi_encode_sign_raw, XV_BIF_NONDET},
    {NULL, 0, NULL, 0},
};
