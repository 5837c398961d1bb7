/*
 * builtins/regex.c — regex.* builtins over go/regexp.c (Go regexp
 * syntax on PCRE2); regex.globs_match over go/glob.c. glob.* is builtins/glob.c.
 *
 * Invariant: a pattern that does not compile is a builtin error carrying
 * Go's message; regex.is_valid is the only builtin that turns it into a
 * value.
 * Thread safety: reentrant; compiled regexes come from go/regexp.c's locked
 * cache.
 */
#include "builtins/helpers.h"

#include <stdlib.h>
#include <string.h>

#define S(v) XV_STR(v)
#define SL(v) XV_STRLEN(v)

static int get_re(struct xv_bctx *ctx, const struct xv_value *p, struct xv_go_re **re)
{
    char *err = NULL;
    if (xv_go_re_get(S(p), SL(p), re, &err) == 0)
        return 0;
    int rc = xv_bi_error(ctx, "%s", err ? err : "error parsing regexp");
    free(err);
    return rc;
}

BI_FN(bi_regex_match)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING) || xv_bi_want(ctx, a, 2, XV_T_STRING))
        return XV_BI_ERROR;
    char *err = NULL;
    int r = xv_go_re_match(S(a[0]), SL(a[0]), S(a[1]), SL(a[1]), &err);
    if (r == -1) {
        int rc = xv_bi_error(ctx, "%s", err ? err : "error parsing regexp");
        free(err);
        return rc;
    }
    if (r < 0)
        return xv_bi_error(ctx, "regular expression match failed (resource limit)");
    *out = xv_val_bool(r);
    return XV_BI_OK;
}

BI_FN(bi_regex_is_valid)
{
    if (!XV_IS(a[0], XV_T_STRING)) {
        *out = xv_val_bool(0);
        return XV_BI_OK;
    }
    struct xv_go_re *re;
    int ok = xv_go_re_get(S(a[0]), SL(a[0]), &re, NULL) == 0;
    if (ok)
        xv_go_re_release(re);
    *out = xv_val_bool(ok);
    return XV_BI_OK;
}

struct collect {
    struct xv_value *arr;   /* result array */
    const char *s;          /* subject */
    int ngroups;            /* groups to report (-1: whole match only) */
};

static int push_str(struct xv_value *arr, const char *s, size_t n)
{
    struct xv_value *e = xv_val_string(s, n);
    int rc = (!e || xv_val_array_push(arr, e)) ? -2 : 0;
    xv_val_decref(e);
    return rc;
}

static int collect_cb(const long *ov, void *ud)
{
    struct collect *c = ud;
    if (c->ngroups < 0)
        return push_str(c->arr, c->s + ov[0], (size_t)(ov[1] - ov[0]));
    struct xv_value *row = xv_val_array_new((size_t)c->ngroups + 1);
    if (!row)
        return -2;
    for (int g = 0; g <= c->ngroups; g++) {
        int rc = ov[2 * g] >= 0 ? push_str(row, c->s + ov[2 * g], (size_t)(ov[2 * g + 1] - ov[2 * g]))
                                : push_str(row, "", 0);
        if (rc) {
            xv_val_decref(row);
            return rc;
        }
    }
    int rc = xv_val_array_push(c->arr, row) ? -2 : 0;
    xv_val_decref(row);
    return rc;
}

static int find_common(struct xv_bctx *ctx, struct xv_value *const *a, bool groups,
                       struct xv_value **out)
{
    int64_t n;
    if (xv_bi_want(ctx, a, 1, XV_T_STRING) || xv_bi_want(ctx, a, 2, XV_T_STRING) ||
        xv_bi_int_arg(ctx, a, 3, &n))
        return XV_BI_ERROR;
    struct xv_go_re *re;
    if (get_re(ctx, a[0], &re))
        return XV_BI_ERROR;
    struct collect c = { xv_val_array_new(4), S(a[1]), groups ? xv_go_re_ngroups(re) : -1 };
    int rc = c.arr ? xv_go_re_find_all(re, S(a[1]), SL(a[1]), n, collect_cb, &c) : -2;
    xv_go_re_release(re);
    if (rc) {
        xv_val_decref(c.arr);
        return rc == -2 ? xv_bi_error(ctx, "out of memory")
                        : xv_bi_error(ctx, "regular expression match failed (resource limit)");
    }
    *out = c.arr;
    return XV_BI_OK;
}

BI_FN(bi_regex_find_n) { return find_common(ctx, a, false, out); }
BI_FN(bi_regex_find_all_submatch) { return find_common(ctx, a, true, out); }

struct splitter {
    size_t beg, end;        /* Go's Split loop state */
    struct xv_value *arr;   /* pieces */
    const char *s;          /* subject */
};

static int split_cb(const long *ov, void *ud)
{
    struct splitter *sp = ud;
    sp->end = (size_t)ov[0];
    int rc = 0;
    if (ov[1] != 0)
        rc = push_str(sp->arr, sp->s + sp->beg, sp->end - sp->beg);
    sp->beg = (size_t)ov[1];
    return rc;
}

BI_FN(bi_regex_split)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING) || xv_bi_want(ctx, a, 2, XV_T_STRING))
        return XV_BI_ERROR;
    struct xv_go_re *re;
    if (get_re(ctx, a[0], &re))
        return XV_BI_ERROR;
    struct splitter sp = { 0, 0, xv_val_array_new(4), S(a[1]) };
    int rc;
    if (!sp.arr) {
        rc = -2;
    } else if (SL(a[0]) > 0 && SL(a[1]) == 0) {
        rc = push_str(sp.arr, "", 0);   /* Go: a non-empty pattern splits "" into [""] */
    } else {
        rc = xv_go_re_find_all(re, S(a[1]), SL(a[1]), -1, split_cb, &sp);
        if (rc == 0 && sp.end != SL(a[1]))
            rc = push_str(sp.arr, S(a[1]) + sp.beg, SL(a[1]) - sp.beg);
    }
    xv_go_re_release(re);
    if (rc) {
        xv_val_decref(sp.arr);
        return xv_bi_error(ctx, rc == -2 ? "out of memory" : "regular expression match failed");
    }
    *out = sp.arr;
    return XV_BI_OK;
}

BI_FN(bi_regex_replace)
{
    /* regex.replace(s, pattern, value) */
    if (xv_bi_want(ctx, a, 1, XV_T_STRING) || xv_bi_want(ctx, a, 2, XV_T_STRING) ||
        xv_bi_want(ctx, a, 3, XV_T_STRING))
        return XV_BI_ERROR;
    struct xv_go_re *re;
    if (get_re(ctx, a[1], &re))
        return XV_BI_ERROR;
    size_t len;
    char *r = xv_go_re_replace_all(re, S(a[0]), SL(a[0]), S(a[2]), SL(a[2]), &len);
    xv_go_re_release(re);
    return xv_bi_ret_owned(ctx, r, len, out);
}

/* regex.template_match(template, value, delim_start, delim_end): literal text
 * outside the delimiters, regexes inside, anchored at both ends (OPA's
 * port of gorilla/mux's template regexps). */
BI_FN(bi_regex_template_match)
{
    for (int i = 1; i <= 4; i++)
        if (xv_bi_want(ctx, a, i, XV_T_STRING))
            return XV_BI_ERROR;
    const char *t = S(a[0]);
    size_t tn = SL(a[0]);
    uint32_t ds, de;
    if (SL(a[2]) == 0 || SL(a[3]) == 0)
        return xv_bi_error(ctx, "delimiters must be non-empty");
    xv_val_utf8_decode(S(a[2]), SL(a[2]), &ds);
    xv_val_utf8_decode(S(a[3]), SL(a[3]), &de);
    struct xv_val_buf p = {0};
    xv_val_buf_addc(&p, '^');
    size_t i = 0, lit = 0;
    int level = 0;
    size_t open = 0;
    while (i < tn) {
        uint32_t cp;
        size_t k = xv_val_utf8_decode(t + i, tn - i, &cp);
        if (cp == ds) {
            if (level++ == 0) {
                size_t ql;
                char *q = xv_go_re_quote_meta(t + lit, i - lit, &ql);
                if (q)
                    xv_val_buf_add(&p, q, ql);
                free(q);
                open = i + k;
            }
        } else if (cp == de && level > 0) {
            if (--level == 0) {
                xv_val_buf_addc(&p, '(');
                xv_val_buf_add(&p, t + open, i - open);
                xv_val_buf_addc(&p, ')');
                lit = i + k;
            }
        } else if (cp == de) {
            level = -1;
            break;
        }
        i += k;
    }
    if (level != 0) {
        xv_val_buf_free(&p);
        return xv_bi_error(ctx, "unbalanced braces in \"%.*s\"", (int)(tn > 200 ? 200 : tn), t);
    }
    size_t ql;
    char *q = xv_go_re_quote_meta(t + lit, tn - lit, &ql);
    if (q)
        xv_val_buf_add(&p, q, ql);
    free(q);
    xv_val_buf_addc(&p, '$');
    size_t pl;
    char *pat = xv_val_buf_take(&p, &pl);
    if (!pat)
        return xv_bi_error(ctx, "out of memory");
    struct xv_go_re *re;
    char *err = NULL;
    int rc = xv_go_re_get(pat, pl, &re, &err);
    free(pat);
    if (rc) {
        rc = xv_bi_error(ctx, "%s", err ? err : "error parsing regexp");
        free(err);
        return rc;
    }
    long *ov = malloc(sizeof(long) * 2 * ((size_t)xv_go_re_ngroups(re) + 1));
    int r = ov ? xv_go_re_exec(re, S(a[1]), SL(a[1]), 0, ov) : -1;
    free(ov);
    xv_go_re_release(re);
    if (r < 0)
        return xv_bi_error(ctx, "regular expression match failed");
    *out = xv_val_bool(r);
    return XV_BI_OK;
}

BI_FN(bi_regex_globs_match)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING) || xv_bi_want(ctx, a, 2, XV_T_STRING))
        return XV_BI_ERROR;
    char *err = NULL;
    int r = xv_go_globs_intersect(S(a[0]), SL(a[0]), S(a[1]), SL(a[1]), &err);
    if (r < 0) {
        int rc = xv_bi_error(ctx, "%s", err ? err : "out of memory");
        free(err);
        return rc;
    }
    *out = xv_val_bool(r);
    return XV_BI_OK;
}

const struct xv_builtin_def xv_bi_regex[] = {
    {"regex.match", 2, bi_regex_match, 0},
    {"re_match", 2, bi_regex_match, 0},
    {"regex.is_valid", 1, bi_regex_is_valid, 0},
    {"regex.find_n", 3, bi_regex_find_n, 0},
    {"regex.find_all_string_submatch_n", 3, bi_regex_find_all_submatch, 0},
    {"regex.split", 2, bi_regex_split, 0},
    {"regex.replace", 3, bi_regex_replace, 0},
    {"regex.template_match", 4, bi_regex_template_match, 0},
    {"regex.globs_match", 2, bi_regex_globs_match, 0},
    {NULL, 0, NULL, 0},
};
