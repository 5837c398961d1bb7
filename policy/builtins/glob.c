/*
 * builtins/glob.c — glob.match and glob.quote_meta over go/glob.c (gobwas/glob
 * rules, as OPA's).
 *
 * Invariant: compiled globs come from go/glob.c's bounded cache and are
 * released after each call.
 * Thread safety: reentrant.
 */
#include "builtins/helpers.h"
#include <stdlib.h>
#include <string.h>

#define S(v) XV_STR(v)
#define SL(v) XV_STRLEN(v)

BI_FN(bi_glob_match)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING))
        return XV_BI_ERROR;
    uint32_t dl[64];
    uint32_t *delims = dl;
    size_t nd = 0;
    const struct xv_value *d = a[1];
    if (XV_IS(d, XV_T_NULL)) {
        nd = 0;
    } else if (XV_IS(d, XV_T_ARRAY)) {
        size_t len = XV_ARR_LEN(d);
        if (len > 64 && !(delims = malloc(len * sizeof(uint32_t))))
            return xv_bi_error(ctx, "out of memory");
        for (size_t i = 0; i < len; i++) {
            const struct xv_value *e = XV_ARR_ITEM(d, i);
            if (!XV_IS(e, XV_T_STRING)) {
                if (delims != dl)
                    free(delims);
                return xv_bi_elem_err(ctx, 2, d, e, "string");
            }
            uint32_t cp;
            size_t k = SL(e) ? xv_val_utf8_decode(S(e), SL(e), &cp) : 0;
            if (k == 0 || k != SL(e)) {
                if (delims != dl)
                    free(delims);
                return xv_bi_elem_err(ctx, 2, d, e, "rune");
            }
            delims[nd++] = cp;
        }
        if (nd == 0) {
            delims[0] = '.';   /* OPA: an empty list means the default "." */
            nd = 1;
        }
    } else {
        return xv_bi_type_error(ctx, 2, "one of {array, null}", d);
    }
    if (xv_bi_want(ctx, a, 3, XV_T_STRING)) {
        if (delims != dl)
            free(delims);
        return XV_BI_ERROR;
    }
    struct xv_go_glob *g;
    char *err = NULL;
    int rc = xv_go_glob_compile(S(a[0]), SL(a[0]), delims, nd, &g, &err);
    if (delims != dl)
        free(delims);
    if (rc) {
        rc = xv_bi_error(ctx, "%s", err ? err : "invalid glob");
        free(err);
        return rc;
    }
    *out = xv_val_bool(xv_go_glob_match(g, S(a[2]), SL(a[2])));
    xv_go_glob_free(g);
    return XV_BI_OK;
}

BI_FN(bi_glob_quote_meta)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING))
        return XV_BI_ERROR;
    size_t len;
    char *r = xv_go_glob_quote_meta(S(a[0]), SL(a[0]), &len);
    return xv_bi_ret_owned(ctx, r, len, out);
}

const struct xv_builtin_def xv_bi_glob[] = {
    {"glob.match", 3, bi_glob_match, 0},
    {"glob.quote_meta", 1, bi_glob_quote_meta, 0},
    {NULL, 0, NULL, 0},
};
