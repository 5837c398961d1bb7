/*
 * builtins/aws.c — providers.aws.sign_req: AWS Signature Version 4 for a
 * Rego HTTP request object, as OPA's internal/providers/aws does it (the
 * S3 flavour with x-amz-content-sha256 for s3 and glacier, UNSIGNED-PAYLOAD
 * when payload signing is disabled, x-amz-security-token for session
 * credentials).
 *
 * Invariant: the request object is returned with its "headers" replaced by
 * the signed header set; nothing else changes. raw_body wins over body.
 * Thread safety: reentrant.
 */
#include "builtins/helpers.h"
#include "crypto/digest.h"
#include "go/time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(v) XV_STR(v)
#define SL(v) XV_STRLEN(v)

static const struct xv_value *get(const struct xv_value *o, const char *k)
{
    long at = xv_val_object_find_str(o, k, strlen(k));
    return at < 0 ? NULL : XV_OBJ_VAL(o, at);
}

/* "missing/invalid ... parameters(s): {"a", "b"}" over the listed keys */
static int check_keys(struct xv_bctx *ctx, const struct xv_value *o, int pos,
                      const char *const *keys, const char *what)
{
    struct xv_val_buf miss = {0}, bad = {0};
    for (int i = 0; keys[i]; i++) {
        const struct xv_value *v = get(o, keys[i]);
        struct xv_val_buf *b = !v ? &miss : !XV_IS(v, XV_T_STRING) ? &bad : NULL;
        if (!b)
            continue;
        xv_val_buf_adds(b, b->len ? ", \"" : "{\"");
        xv_val_buf_adds(b, keys[i]);
        xv_val_buf_addc(b, '"');
    }
    int rc = 0;
    if (miss.len)
        rc = xv_bi_operand_err(ctx, pos, "missing required %s parameters(s): %s}", what,
                                      miss.p);
    else if (bad.len)
        rc = xv_bi_operand_err(ctx, pos, "invalid values for required %s parameters(s): %s}",
                                      what, bad.p);
    xv_val_buf_free(&miss);
    xv_val_buf_free(&bad);
    return rc;
}

static void hexs(struct xv_val_buf *b, const unsigned char *d, size_t n)
{
    static const char dg[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        xv_val_buf_addc(b, dg[d[i] >> 4]);
        xv_val_buf_addc(b, dg[d[i] & 15]);
    }
}

static void mac(const unsigned char *key, size_t kn, const char *msg, size_t mn, unsigned char *out)
{
    size_t ol;
    xv_crypto_hmac(XV_CRYPTO_SHA256, key, kn, msg, mn, out, &ol);
}

/* Go's url.PathEscape-style escaping of a path (what EscapedPath yields for
 * a path without a valid RawPath). */
static void escape_path(struct xv_val_buf *b, const char *p, size_t n)
{
    static const char dg[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-_.~/!$&'()*+,;=:@", c)) {
            xv_val_buf_addc(b, (char)c);
        } else {
            char e[3] = {'%', dg[c >> 4], dg[c & 15]};
            xv_val_buf_add(b, e, 3);
        }
    }
}

struct hdr {
    char *name;              /* lower-case */
    const char *val;         /* borrowed or owned via own */
    size_t vlen;
    char *own;               /* owned value, if any */
};

static int cmp_hdr(const void *a, const void *b)
{
    return strcmp(((const struct hdr *)a)->name, ((const struct hdr *)b)->name);
}

static void set_hdr(struct hdr *h, size_t *n, const char *name, const char *val, size_t vl,
                    char *own)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(h[i].name, name) == 0) {
            free(h[i].own);
            h[i].val = val;
            h[i].vlen = vl;
            h[i].own = own;
            return;
        }
    h[*n].name = strdup(name);
    h[*n].val = val;
    h[*n].vlen = vl;
    h[*n].own = own;
    (*n)++;
}

/* The hex SHA-256 of the request's payload: raw_body, else the JSON of
 * body, else empty. */
static void payload_hash(const struct xv_value *req, char sha_hex[65])
{
    struct xv_val_buf body = {0};
    const struct xv_value *raw = get(req, "raw_body"), *bv = get(req, "body");
    if (raw && XV_IS(raw, XV_T_STRING))
        xv_val_buf_add(&body, S(raw), SL(raw));
    else if (bv)
        xv_bi_json_text(&body, bv, XV_JSON_HTML_ESCAPE);
    unsigned char d[32];
    struct xv_val_buf t = {0};
    xv_crypto_sha256(body.p ? body.p : "", body.len, d);
    hexs(&t, d, 32);
    snprintf(sha_hex, 65, "%s", t.p ? t.p : "");
    xv_val_buf_free(&t);
    xv_val_buf_free(&body);
}

/* The request's own headers (lower-cased; authorization, user-agent and
 * x-amzn-trace-id left out, as OPA does) over the AWS ones in h. */
static void add_request_headers(struct hdr *h, size_t *pnh, const struct xv_value *rh)
{
    size_t nh = *pnh;
    for (size_t i = 0; rh && XV_IS(rh, XV_T_OBJECT) && i < XV_OBJ_LEN(rh); i++) {
        const struct xv_value *k = XV_OBJ_KEY(rh, i), *v = XV_OBJ_VAL(rh, i);
        if (!XV_IS(k, XV_T_STRING) || !XV_IS(v, XV_T_STRING))
            continue;
        char *lk = strdup(S(k));
        for (char *c = lk; c && *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c + 32);
        if (lk && strcmp(lk, "authorization") && strcmp(lk, "user-agent") &&
            strcmp(lk, "x-amzn-trace-id"))
            set_hdr(h, &nh, lk, S(v), SL(v), NULL);
        free(lk);
    }
    *pnh = nh;
}

BI_FN(bi_aws_sign_req)
{
    if (xv_bi_want(ctx, a, 1, XV_T_OBJECT) || xv_bi_want(ctx, a, 2, XV_T_OBJECT))
        return XV_BI_ERROR;
    const struct xv_value *req = a[0], *cfg = a[1];
    int64_t ts;
    if (!XV_IS(a[2], XV_T_NUMBER) || xv_bi_num_is_float_text(a[2]) ||
        xv_val_number_get_int64(a[2], &ts) != 0)
        return xv_bi_operand_err(ctx, 3, "could not convert time_ns value into a unix "
                                                "timestamp");
    static const char *const req_keys[] = {"method", "url", NULL};
    static const char *const cfg_keys[] = {"aws_access_key", "aws_region",
                                           "aws_secret_access_key", "aws_service", NULL};
    if (check_keys(ctx, req, 1, req_keys, "request") || check_keys(ctx, cfg, 2, cfg_keys, "AWS config"))
        return XV_BI_ERROR;
    const struct xv_value *dps = get(cfg, "disable_payload_signing");
    if (dps && !XV_IS(dps, XV_T_BOOL))
        return xv_bi_operand_err(ctx, 2, "invalid value for 'disable_payload_signing' in "
                                                "AWS config");
    bool unsigned_payload = dps && XV_BOOLV(dps);
    const char *access = S(get(cfg, "aws_access_key")), *secret = S(get(cfg, "aws_secret_access_key"));
    const char *region = S(get(cfg, "aws_region")), *service = S(get(cfg, "aws_service"));
    const struct xv_value *tok = get(cfg, "aws_session_token");
    const char *token = tok && XV_IS(tok, XV_T_STRING) && SL(tok) ? S(tok) : NULL;
    /* url: scheme://host/path?query */
    const char *url = S(get(req, "url")), *hs = strstr(url, "://");
    hs = hs ? hs + 3 : url;
    const char *pathp = hs + strcspn(hs, "/?#");
    char *host = strndup(hs, (size_t)(pathp - hs));
    const char *q = strchr(pathp, '?'), *frag = strchr(pathp, '#');
    size_t plen = q ? (size_t)(q - pathp) : frag ? (size_t)(frag - pathp) : strlen(pathp);
    const char *query = q ? q + 1 : "";
    size_t qlen = q ? (frag && frag > q ? (size_t)(frag - q - 1) : strlen(q + 1)) : 0;
    char sha_hex[65] = "UNSIGNED-PAYLOAD";
    if (!unsigned_payload)
        payload_hash(req, sha_hex);
    struct xv_go_tm tm;
    int64_t sec = ts / 1000000000;
    xv_go_time_split(sec - (ts % 1000000000 < 0), 0, NULL, &tm);
    char date[16], stamp[24];
    snprintf(date, sizeof date, "%04lld%02d%02d", (long long)tm.year, tm.month, tm.day);
    snprintf(stamp, sizeof stamp, "%sT%02d%02d%02dZ", date, tm.hour, tm.min, tm.sec);
    /* headers to sign: AWS's, then the request's (minus ignored ones) on top,
     * as OPA does: a request header overrides an AWS header in the signature
     * while the returned headers carry AWS's values */
    const struct xv_value *rh = get(req, "headers");
    size_t nh = 0, cap = (rh && XV_IS(rh, XV_T_OBJECT) ? XV_OBJ_LEN(rh) : 0) + 5;
    struct hdr *h = calloc(cap, sizeof *h);
    if (!h || !host) {
        free(h);
        free(host);
        return xv_bi_error(ctx, "out of memory");
    }
    set_hdr(h, &nh, "host", host, strlen(host), NULL);
    set_hdr(h, &nh, "x-amz-date", stamp, strlen(stamp), NULL);
    bool s3 = strcmp(service, "s3") == 0 || strcmp(service, "glacier") == 0;
    if (s3)
        set_hdr(h, &nh, "x-amz-content-sha256", sha_hex, strlen(sha_hex), NULL);
    if (token)
        set_hdr(h, &nh, "x-amz-security-token", token, strlen(token), NULL);
    add_request_headers(h, &nh, rh);
    qsort(h, nh, sizeof *h, cmp_hdr);
    /* canonical request */
    struct xv_val_buf cr = {0}, signed_list = {0};
    /* OPA signs the method as given and Go's EscapedPath ("" for no path) */
    xv_val_buf_adds(&cr, S(get(req, "method")));
    xv_val_buf_addc(&cr, '\n');
    escape_path(&cr, pathp, plen);
    xv_val_buf_addc(&cr, '\n');
    xv_val_buf_add(&cr, query, qlen);
    xv_val_buf_addc(&cr, '\n');
    for (size_t i = 0; i < nh; i++) {
        xv_val_buf_adds(&cr, h[i].name);
        xv_val_buf_addc(&cr, ':');
        xv_val_buf_add(&cr, h[i].val, h[i].vlen);
        xv_val_buf_addc(&cr, '\n');
        if (i)
            xv_val_buf_addc(&signed_list, ';');
        xv_val_buf_adds(&signed_list, h[i].name);
    }
    xv_val_buf_addc(&cr, '\n');
    xv_val_buf_adds(&cr, signed_list.p ? signed_list.p : "");
    xv_val_buf_addc(&cr, '\n');
    xv_val_buf_adds(&cr, sha_hex);
    /* string to sign and signature */
    struct xv_val_buf sts = {0};
    xv_val_buf_printf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n", stamp, date,
                            region, service);
    unsigned char d[32];
    xv_crypto_sha256(cr.p ? cr.p : "", cr.len, d);
    hexs(&sts, d, 32);
    struct xv_val_buf k0 = {0};
    xv_val_buf_adds(&k0, "AWS4");
    xv_val_buf_adds(&k0, secret);
    unsigned char key[32], sig[32];
    mac((unsigned char *)k0.p, k0.len, date, strlen(date), key);
    mac(key, 32, region, strlen(region), key);
    mac(key, 32, service, strlen(service), key);
    mac(key, 32, "aws4_request", 12, key);
    mac(key, 32, sts.p, sts.len, sig);
    xv_val_buf_free(&k0);
    struct xv_val_buf auth = {0};
    xv_val_buf_printf(&auth, "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request,"
                                   "SignedHeaders=%s,Signature=",
                            access, date, region, service, signed_list.p ? signed_list.p : "");
    hexs(&auth, sig, 32);
    /* result: the request with headers = request headers + AWS headers */
    struct xv_value *out_h = rh && XV_IS(rh, XV_T_OBJECT) ? xv_val_copy(rh) : xv_val_object_new(4);
    struct xv_value *r = xv_val_copy(req);
    int rc = (!out_h || !r) ? -1 : 0;
    struct {
        const char *k, *v;
    } add[] = {{"Authorization", auth.p}, {"host", host}, {"x-amz-date", stamp},
               {"x-amz-content-sha256", s3 ? sha_hex : NULL},
               {"x-amz-security-token", token}};
    for (size_t i = 0; !rc && i < sizeof add / sizeof add[0]; i++) {
        if (!add[i].v)
            continue;
        struct xv_value *v = xv_val_cstring(add[i].v);
        rc = v ? xv_val_object_set_str(out_h, add[i].k, v) : -1;
        xv_val_decref(v);
    }
    if (!rc)
        rc = xv_val_object_set_str(r, "headers", out_h);
    xv_val_decref(out_h);
    for (size_t i = 0; i < nh; i++) {
        free(h[i].name);
        free(h[i].own);
    }
    free(h);
    free(host);
    xv_val_buf_free(&cr);
    xv_val_buf_free(&signed_list);
    xv_val_buf_free(&sts);
    xv_val_buf_free(&auth);
    if (rc) {
        xv_val_decref(r);
        return xv_bi_error(ctx, "out of memory");
    }
    *out = r;
    return XV_BI_OK;
}

const struct xv_builtin_def xv_bi_aws[] = {
    {"providers.aws.sign_req", 3, bi_aws_sign_req, 0},
    {NULL, 0, NULL, 0},
};
