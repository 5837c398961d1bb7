/*
 * builtins/yaml.c — yaml.marshal, yaml.unmarshal and yaml.is_valid.
 *
 * OPA converts between YAML and JSON with sigs.k8s.io/yaml (go-yaml v2).
 * Reading is value/yaml.c's (the project's one YAML reader, also used for
 * METADATA annotations); this file marshals in go-yaml's block style
 * (sorted keys, sequences not indented under keys) and holds the builtins.
 *
 * Invariant: marshalling is bounded by the value's (already bounded) depth.
 * Thread safety: reentrant.
 */
#include "builtins/helpers.h"
#include "value/yaml.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S(v) XV_STR(v)
#define SL(v) XV_STRLEN(v)

/* ---- marshal ---- */

static bool needs_quotes(const char *s, size_t n)
{
    if (n == 0 || s[0] == ' ' || s[n - 1] == ' ')
        return true;
    struct xv_value *r = xv_val_yaml_resolve_plain(s, n);
    bool other = !XV_IS(r, XV_T_STRING);
    xv_val_decref(r);
    if (other)
        return true;
    if (strchr("-?:,[]{}#&*!|>'\"%@`", s[0]))
        return true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7F)
            return true;
        if ((c == ':' && (i + 1 == n || s[i + 1] == ' ')) || (c == '#' && i > 0 && s[i - 1] == ' '))
            return true;
    }
    return false;
}

static void put_scalar(struct xv_val_buf *b, const struct xv_value *v)
{
    if (XV_IS(v, XV_T_STRING)) {
        if (needs_quotes(S(v), SL(v)))
            xv_bi_json_text(b, v, 0);
        else
            xv_val_buf_add(b, S(v), SL(v));
    } else {
        xv_bi_json_text(b, v, 0);
    }
}

static bool is_coll(const struct xv_value *v)
{
    return (XV_IS(v, XV_T_OBJECT) && XV_OBJ_LEN(v)) ||
           ((XV_IS(v, XV_T_ARRAY) || XV_IS(v, XV_T_SET)) && v->u.arr.len);
}

static void emit(struct xv_val_buf *b, const struct xv_value *v, int ind, bool inline_first,
                 int depth)
{
    if (depth > XV_VAL_YAML_MAX_DEPTH) {
        b->oom = true;
        return;
    }
    if (XV_IS(v, XV_T_OBJECT) && XV_OBJ_LEN(v)) {
        for (size_t i = 0; i < XV_OBJ_LEN(v); i++) {
            if (i || !inline_first)
                for (int k = 0; k < ind; k++)
                    xv_val_buf_addc(b, ' ');
            const struct xv_value *k = XV_OBJ_KEY(v, i), *val = XV_OBJ_VAL(v, i);
            if (XV_IS(k, XV_T_STRING))
                put_scalar(b, k);
            else {
                struct xv_val_buf kb = {0};
                xv_bi_json_text(&kb, k, 0);
                struct xv_value *ks = kb.p ? xv_val_string(kb.p, kb.len) : NULL;
                if (ks)
                    put_scalar(b, ks);
                xv_val_decref(ks);
                xv_val_buf_free(&kb);
            }
            xv_val_buf_addc(b, ':');
            if (is_coll(val)) {
                xv_val_buf_addc(b, '\n');
                /* go-yaml v2 does not indent a sequence under its key */
                emit(b, val, XV_IS(val, XV_T_OBJECT) ? ind + 2 : ind, false, depth + 1);
            } else {
                xv_val_buf_addc(b, ' ');
                emit(b, val, ind, true, depth + 1);
            }
        }
        return;
    }
    if ((XV_IS(v, XV_T_ARRAY) || XV_IS(v, XV_T_SET)) && v->u.arr.len) {
        for (size_t i = 0; i < v->u.arr.len; i++) {
            if (i || !inline_first)
                for (int k = 0; k < ind; k++)
                    xv_val_buf_addc(b, ' ');
            xv_val_buf_adds(b, "- ");
            emit(b, v->u.arr.items[i], ind + 2, true, depth + 1);
        }
        return;
    }
    if (XV_IS(v, XV_T_OBJECT))
        xv_val_buf_adds(b, "{}");
    else if (XV_IS(v, XV_T_ARRAY) || XV_IS(v, XV_T_SET))
        xv_val_buf_adds(b, "[]");
    else
        put_scalar(b, v);
    xv_val_buf_addc(b, '\n');
}

BI_FN(bi_yaml_marshal)
{
    struct xv_val_buf b = {0};
    emit(&b, a[0], 0, false, 0);
    return xv_bi_ret_buf(ctx, &b, out);
}

BI_FN(bi_yaml_unmarshal)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING))
        return XV_BI_ERROR;
    char err[300];
    struct xv_value *v = xv_val_yaml_parse(S(a[0]), SL(a[0]), err, sizeof err);
    if (!v)
        return xv_bi_error(ctx, "%s", err);
    *out = v;
    return XV_BI_OK;
}

BI_FN(bi_yaml_is_valid)
{
    if (!XV_IS(a[0], XV_T_STRING)) {
        *out = xv_val_bool(0);
        return XV_BI_OK;
    }
    char err[300];
    struct xv_value *v = xv_val_yaml_parse(S(a[0]), SL(a[0]), err, sizeof err);
    *out = xv_val_bool(v != NULL);
    xv_val_decref(v);
    return XV_BI_OK;
}

const struct xv_builtin_def xv_bi_yaml[] = {
    {"yaml.marshal", 1, bi_yaml_marshal, 0},
    {"yaml.unmarshal", 1, bi_yaml_unmarshal, 0},
    {"yaml.is_valid", 1, bi_yaml_is_valid, 0},
    {NULL, 0, NULL, 0},
};
