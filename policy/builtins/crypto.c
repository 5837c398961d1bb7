/*
 * builtins/crypto.c — crypto.md5, crypto.sha1, crypto.sha256 and
 * crypto.hmac.* (md5, sha1, sha256, sha512, equal) over policy/crypto/
 * (nettle, and the project's one SHA-256); crypto.x509.* is
 * builtins/x509.c's.
 *
 * Invariant: digests and MACs come back as lower-case hex text, as OPA's.
 * Thread safety: reentrant.
 */
#include "builtins/helpers.h"
#include "crypto/digest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(v) XV_STR(v)
#define SL(v) XV_STRLEN(v)
#define OOM(ctx) xv_bi_error((ctx), "out of memory")

static int digest(struct xv_bctx *ctx, struct xv_value *const *a, enum xv_crypto_hash h,
                  struct xv_value **out)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING))
        return XV_BI_ERROR;
    unsigned char d[XV_CRYPTO_SHA512_LEN];
    size_t dl;
    switch (h) {
    case XV_CRYPTO_MD5: xv_crypto_md5(S(a[0]), SL(a[0]), d); dl = XV_CRYPTO_MD5_LEN; break;
    case XV_CRYPTO_SHA1: xv_crypto_sha1(S(a[0]), SL(a[0]), d); dl = XV_CRYPTO_SHA1_LEN; break;
    default: xv_crypto_sha256(S(a[0]), SL(a[0]), d); dl = XV_CRYPTO_SHA256_LEN; break;
    }
    struct xv_val_buf b = {0};
    xv_bi_hex_bytes(&b, d, dl);
    return xv_bi_ret_buf(ctx, &b, out);
}

BI_FN(bi_md5) { return digest(ctx, a, XV_CRYPTO_MD5, out); }
BI_FN(bi_sha1) { return digest(ctx, a, XV_CRYPTO_SHA1, out); }
BI_FN(bi_sha256) { return digest(ctx, a, XV_CRYPTO_SHA256, out); }

static int hmac(struct xv_bctx *ctx, struct xv_value *const *a, enum xv_crypto_hash h,
                struct xv_value **out)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING) || xv_bi_want(ctx, a, 2, XV_T_STRING))
        return XV_BI_ERROR;
    unsigned char d[XV_CRYPTO_SHA512_LEN];
    size_t dl;
    if (xv_crypto_hmac(h, S(a[1]), SL(a[1]), S(a[0]), SL(a[0]), d, &dl))
        return OOM(ctx);
    struct xv_val_buf b = {0};
    xv_bi_hex_bytes(&b, d, dl);
    return xv_bi_ret_buf(ctx, &b, out);
}

BI_FN(bi_hmac_md5) { return hmac(ctx, a, XV_CRYPTO_MD5, out); }
BI_FN(bi_hmac_sha1) { return hmac(ctx, a, XV_CRYPTO_SHA1, out); }
BI_FN(bi_hmac_sha256) { return hmac(ctx, a, XV_CRYPTO_SHA256, out); }
BI_FN(bi_hmac_sha512) { return hmac(ctx, a, XV_CRYPTO_SHA512, out); }

BI_FN(bi_hmac_equal)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING) || xv_bi_want(ctx, a, 2, XV_T_STRING))
        return XV_BI_ERROR;
    /* constant time in the length of the inputs, like hmac.Equal */
    size_t n1 = SL(a[0]), n2 = SL(a[1]);
    unsigned diff = n1 != n2;
    size_t n = n1 < n2 ? n1 : n2;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)S(a[0])[i] ^ (unsigned char)S(a[1])[i];
    *out = xv_val_bool(diff == 0);
    return XV_BI_OK;
}

const struct xv_builtin_def xv_bi_crypto[] = {
    {"crypto.md5", 1, bi_md5, 0},
    {"crypto.sha1", 1, bi_sha1, 0},
    {"crypto.sha256", 1, bi_sha256, 0},
    {"crypto.hmac.md5", 2, bi_hmac_md5, 0},
    {"crypto.hmac.sha1", 2, bi_hmac_sha1, 0},
    {"crypto.hmac.sha256", 2, bi_hmac_sha256, 0},
    {"crypto.hmac.sha512", 2, bi_hmac_sha512, 0},
    {"crypto.hmac.equal", 2, bi_hmac_equal, 0},
    {NULL, 0, NULL, 0},
};
