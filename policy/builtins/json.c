/*
 * builtins/json.c — json.marshal, json.marshal_with_options, json.unmarshal,
 * json.is_valid, json.filter, json.remove and json.patch.
 *
 * Invariant: marshalling matches Go's encoding/json as OPA calls it
 * (HTML-escaping, sets as sorted arrays, MarshalIndent's prefix/indent
 * layout); filter/remove follow OPA's path trie (a path ends in a null
 * leaf that selects the whole subtree; array indexes are string keys).
 * Thread safety: reentrant.
 */
#include "builtins/helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(v) XV_STR(v)
#define SL(v) XV_STRLEN(v)
#define OOM(ctx) xv_bi_error((ctx), "out of memory")

/* Re-indent compact JSON as Go's MarshalIndent does: the prefix opens
 * every line, empty containers stay "[]"/"{}". */
static void indent_json(struct xv_val_buf *o, const char *s, size_t n, const char *pre, size_t pn,
                        const char *ind, size_t in)
{
    int depth = 0;
    bool instr = false;
    xv_val_buf_add(o, pre, pn);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (instr) {
            xv_val_buf_addc(o, c);
            if (c == '\\' && i + 1 < n)
                xv_val_buf_addc(o, s[++i]);
            else if (c == '"')
                instr = false;
            continue;
        }
        switch (c) {
        case '"':
            instr = true;
            xv_val_buf_addc(o, c);
            break;
        case '[': case '{':
            xv_val_buf_addc(o, c);
            if (i + 1 < n && (s[i + 1] == ']' || s[i + 1] == '}')) {
                xv_val_buf_addc(o, s[++i]);
                break;
            }
            depth++;
            xv_val_buf_addc(o, '\n');
            xv_val_buf_add(o, pre, pn);
            for (int d = 0; d < depth; d++)
                xv_val_buf_add(o, ind, in);
            break;
        case ']': case '}':
            depth--;
            xv_val_buf_addc(o, '\n');
            xv_val_buf_add(o, pre, pn);
            for (int d = 0; d < depth; d++)
                xv_val_buf_add(o, ind, in);
            xv_val_buf_addc(o, c);
            break;
        case ',':
            xv_val_buf_addc(o, c);
            xv_val_buf_addc(o, '\n');
            xv_val_buf_add(o, pre, pn);
            for (int d = 0; d < depth; d++)
                xv_val_buf_add(o, ind, in);
            break;
        case ':':
            xv_val_buf_adds(o, ": ");
            break;
        default:
            xv_val_buf_addc(o, c);
        }
    }
}

BI_FN(bi_json_marshal)
{
    struct xv_val_buf b = {0};
    if (xv_bi_json_text(&b, a[0], XV_JSON_HTML_ESCAPE)) {
        xv_val_buf_free(&b);
        return xv_bi_error(ctx, "json: unsupported value");
    }
    if (b.len == 0 && !b.oom)
        xv_val_buf_add(&b, "", 0);
    return xv_bi_ret_buf(ctx, &b, out);
}

/* json.marshal_with_options: pretty printing with OPA's options (pretty,
 * indent, prefix), checked as OPA checks them. */
BI_FN(bi_json_marshal_opts)
{
    if (xv_bi_want(ctx, a, 2, XV_T_OBJECT))
        return XV_BI_ERROR;
    const struct xv_value *o = a[1];
    const char *pre = "", *ind = "\t";
    size_t pn = 0, in = 1;
    bool implicit = false, explicit_set = false, pretty = false;
    for (size_t i = 0; i < XV_OBJ_LEN(o); i++) {
        const struct xv_value *k = XV_OBJ_KEY(o, i), *v = XV_OBJ_VAL(o, i);
        if (XV_IS(k, XV_T_STRING) && strcmp(S(k), "prefix") == 0) {
            if (!XV_IS(v, XV_T_STRING))
                return xv_bi_operand_err(ctx, 2, "prefix must be a string, but got %s",
                                                xv_val_type_name(v));
            pre = S(v);
            pn = SL(v);
            implicit = true;
        } else if (XV_IS(k, XV_T_STRING) && strcmp(S(k), "indent") == 0) {
            if (!XV_IS(v, XV_T_STRING))
                return xv_bi_operand_err(ctx, 2, "indent must be a string, but got %s",
                                                xv_val_type_name(v));
            ind = S(v);
            in = SL(v);
            implicit = true;
        } else if (XV_IS(k, XV_T_STRING) && strcmp(S(k), "pretty") == 0) {
            if (!XV_IS(v, XV_T_BOOL))
                return xv_bi_operand_err(ctx, 2, "pretty must be a boolean, but got %s",
                                                xv_val_type_name(v));
            explicit_set = true;
            pretty = XV_BOOLV(v);
        } else {
            struct xv_val_buf kb = {0};
            xv_bi_rego_text(&kb, k);
            int rc = xv_bi_operand_err(ctx, 2, "object contained unknown key %s",
                                              kb.p ? kb.p : "");
            xv_val_buf_free(&kb);
            return rc;
        }
    }
    if (!explicit_set)
        pretty = implicit;
    struct xv_val_buf b = {0};
    if (xv_bi_json_text(&b, a[0], XV_JSON_HTML_ESCAPE)) {
        xv_val_buf_free(&b);
        return xv_bi_error(ctx, "json: unsupported value");
    }
    if (!pretty)
        return xv_bi_ret_buf(ctx, &b, out);
    struct xv_val_buf p = {0};
    indent_json(&p, b.p ? b.p : "", b.len, pre, pn, ind, in);
    xv_val_buf_free(&b);
    return xv_bi_ret_buf(ctx, &p, out);
}

BI_FN(bi_json_unmarshal)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING))
        return XV_BI_ERROR;
    char err[256] = "";
    struct xv_value *v = NULL;
    if (xv_val_json_parse(S(a[0]), SL(a[0]), &v, err, sizeof err) != 0 || !v)
        return xv_bi_error(ctx, "%s", err[0] ? err : "invalid JSON");
    *out = v;
    return XV_BI_OK;
}

BI_FN(bi_json_is_valid)
{
    if (!XV_IS(a[0], XV_T_STRING)) {
        *out = xv_val_bool(0);
        return XV_BI_OK;
    }
    char err[64];
    struct xv_value *v = NULL;
    int ok = xv_val_json_parse(S(a[0]), SL(a[0]), &v, err, sizeof err) == 0 && v;
    xv_val_decref(v);
    *out = xv_val_bool(ok);
    return XV_BI_OK;
}

/* ---- paths (OPA's parsePath / pathsToObject) ---- */

/* Parse one path into a fresh array of segments; NULL + error recorded. */
static struct xv_value *parse_path(struct xv_bctx *ctx, const struct xv_value *p, int pos)
{
    if (XV_IS(p, XV_T_ARRAY))
        return xv_val_incref((struct xv_value *)p);
    if (!XV_IS(p, XV_T_STRING)) {
        xv_bi_operand_err(ctx, pos,
                                 "must be one of {set, array} containing string paths or array of "
                                 "path segments but got %s",
                                 xv_val_type_name(p));
        return NULL;
    }
    struct xv_value *arr = xv_val_array_new(4);
    if (!arr) {
        OOM(ctx);
        return NULL;
    }
    if (SL(p) == 0)
        return arr;
    const char *s = S(p);
    size_t n = SL(p), i = 0;
    while (i < n && s[i] == '/')
        i++;
    for (;;) {
        const char *sl = memchr(s + i, '/', n - i);
        size_t e = sl ? (size_t)(sl - s) : n;
        /* ~1 -> '/', then ~0 -> '~' */
        struct xv_val_buf seg = {0};
        for (size_t k = i; k < e; k++) {
            if (s[k] == '~' && k + 1 < e && s[k + 1] == '1') {
                xv_val_buf_addc(&seg, '/');
                k++;
            } else {
                xv_val_buf_addc(&seg, s[k]);
            }
        }
        struct xv_val_buf seg2 = {0};
        for (size_t k = 0; k < seg.len; k++) {
            if (seg.p[k] == '~' && k + 1 < seg.len && seg.p[k + 1] == '0') {
                xv_val_buf_addc(&seg2, '~');
                k++;
            } else {
                xv_val_buf_addc(&seg2, seg.p[k]);
            }
        }
        xv_val_buf_free(&seg);
        struct xv_value *sv = xv_val_string(seg2.p ? seg2.p : "", seg2.len);
        xv_val_buf_free(&seg2);
        if (!sv || xv_val_array_push(arr, sv)) {
            xv_val_decref(sv);
            xv_val_decref(arr);
            OOM(ctx);
            return NULL;
        }
        xv_val_decref(sv);
        if (!sl)
            break;
        i = e + 1;
    }
    return arr;
}

/* Insert path into the trie rooted at *node (an object we own). */
static int trie_insert(struct xv_value **node, const struct xv_value *path, size_t i)
{
    size_t n = XV_ARR_LEN(path);
    struct xv_value *k = XV_ARR_ITEM(path, i);
    if (i + 1 == n)
        return xv_val_object_set(*node, k, xv_val_null());
    long at = xv_val_object_find(*node, k);
    struct xv_value *child;
    if (at < 0) {
        child = xv_val_object_new(2);
    } else {
        struct xv_value *c = XV_OBJ_VAL(*node, at);
        if (XV_IS(c, XV_T_NULL))
            return 0;   /* a shorter path already selects everything below */
        child = xv_val_copy(c);
    }
    if (!child)
        return -1;
    int rc = trie_insert(&child, path, i + 1);
    if (rc == 0)
        rc = xv_val_object_set(*node, k, child);
    xv_val_decref(child);
    return rc;
}

/* The paths argument of json.filter / json.remove (strings "a/b" or
 * arrays of segments) as a trie of nested objects, so one walk of the
 * document serves every path. */
static struct xv_value *paths_trie(struct xv_bctx *ctx, const struct xv_value *paths, int pos)
{
    if (!XV_IS(paths, XV_T_ARRAY) && !XV_IS(paths, XV_T_SET)) {
        xv_bi_type_error(ctx, pos, "one of {set, array}", paths);
        return NULL;
    }
    struct xv_value *root = xv_val_object_new(4);
    if (!root) {
        OOM(ctx);
        return NULL;
    }
    for (size_t i = 0; i < paths->u.arr.len; i++) {
        struct xv_value *p = parse_path(ctx, paths->u.arr.items[i], pos);
        if (!p) {
            xv_val_decref(root);
            return NULL;
        }
        int rc = XV_ARR_LEN(p) == 0 ? 0 : trie_insert(&root, p, 0);
        xv_val_decref(p);
        if (rc) {
            xv_val_decref(root);
            OOM(ctx);
            return NULL;
        }
    }
    return root;
}

static struct xv_value *index_key(size_t i)
{
    char tmp[24];
    int k = snprintf(tmp, sizeof tmp, "%zu", i);
    return xv_val_string(tmp, (size_t)k);
}

/* Lookup of f[key] in a trie node; borrowed or NULL. */
static const struct xv_value *trie_get(const struct xv_value *f, const struct xv_value *key)
{
    long at = xv_val_object_find(f, key);
    return at < 0 ? NULL : XV_OBJ_VAL(f, at);
}

/* OPA's filterObject. Returns a new value, NULL on OOM. */
static struct xv_value *filter_value(const struct xv_value *o, const struct xv_value *f)
{
    if (XV_IS(f, XV_T_NULL) || !XV_IS(f, XV_T_OBJECT))
        return xv_val_incref((struct xv_value *)o);
    switch (XV_TYPE(o)) {
    case XV_T_ARRAY: {
        struct xv_value *r = xv_val_array_new(XV_ARR_LEN(o));
        for (size_t i = 0; r && i < XV_ARR_LEN(o); i++) {
            struct xv_value *k = index_key(i);
            const struct xv_value *sub = k ? trie_get(f, k) : NULL;
            xv_val_decref(k);
            if (!sub)
                continue;
            struct xv_value *e = filter_value(XV_ARR_ITEM(o, i), sub);
            if (!e || xv_val_array_push(r, e)) {
                xv_val_decref(e);
                xv_val_decref(r);
                return NULL;
            }
            xv_val_decref(e);
        }
        return r;
    }
    case XV_T_SET: {
        struct xv_value *r = xv_val_set_new(XV_SET_LEN(o));
        for (size_t i = 0; r && i < XV_SET_LEN(o); i++) {
            const struct xv_value *sub = trie_get(f, XV_SET_ITEM(o, i));
            if (!sub)
                continue;
            struct xv_value *e = filter_value(XV_SET_ITEM(o, i), sub);
            if (!e || xv_val_set_add(r, e)) {
                xv_val_decref(e);
                xv_val_decref(r);
                return NULL;
            }
            xv_val_decref(e);
        }
        return r;
    }
    case XV_T_OBJECT: {
        struct xv_value *r = xv_val_object_new(XV_OBJ_LEN(f));
        for (size_t i = 0; r && i < XV_OBJ_LEN(o); i++) {
            const struct xv_value *sub = trie_get(f, XV_OBJ_KEY(o, i));
            if (!sub)
                continue;
            struct xv_value *e = filter_value(XV_OBJ_VAL(o, i), sub);
            if (!e || xv_val_object_set(r, XV_OBJ_KEY(o, i), e)) {
                xv_val_decref(e);
                xv_val_decref(r);
                return NULL;
            }
            xv_val_decref(e);
        }
        return r;
    }
    default:
        return xv_val_incref((struct xv_value *)o);
    }
}

/* OPA's jsonRemove: *res NULL means "removed". Returns 0 or -1 (OOM). */
static int remove_value(const struct xv_value *o, const struct xv_value *f, struct xv_value **res)
{
    *res = NULL;
    if (!f) {
        *res = xv_val_incref((struct xv_value *)o);
        return 0;
    }
    if (XV_IS(f, XV_T_NULL))
        return 0;
    switch (XV_TYPE(o)) {
    case XV_T_OBJECT: {
        struct xv_value *r = xv_val_object_new(XV_OBJ_LEN(o));
        if (!r)
            return -1;
        for (size_t i = 0; i < XV_OBJ_LEN(o); i++) {
            struct xv_value *e;
            if (remove_value(XV_OBJ_VAL(o, i), trie_get(f, XV_OBJ_KEY(o, i)), &e) ||
                (e && xv_val_object_set(r, XV_OBJ_KEY(o, i), e))) {
                xv_val_decref(e);
                xv_val_decref(r);
                return -1;
            }
            xv_val_decref(e);
        }
        *res = r;
        return 0;
    }
    case XV_T_SET: {
        struct xv_value *r = xv_val_set_new(XV_SET_LEN(o));
        if (!r)
            return -1;
        for (size_t i = 0; i < XV_SET_LEN(o); i++) {
            struct xv_value *e;
            if (remove_value(XV_SET_ITEM(o, i), trie_get(f, XV_SET_ITEM(o, i)), &e) ||
                (e && xv_val_set_add(r, e))) {
                xv_val_decref(e);
                xv_val_decref(r);
                return -1;
            }
            xv_val_decref(e);
        }
        *res = r;
        return 0;
    }
    case XV_T_ARRAY: {
        struct xv_value *r = xv_val_array_new(XV_ARR_LEN(o));
        if (!r)
            return -1;
        for (size_t i = 0; i < XV_ARR_LEN(o); i++) {
            struct xv_value *k = index_key(i), *e = NULL;
            int rc = k ? remove_value(XV_ARR_ITEM(o, i), trie_get(f, k), &e) : -1;
            xv_val_decref(k);
            if (rc || (e && xv_val_array_push(r, e))) {
                xv_val_decref(e);
                xv_val_decref(r);
                return -1;
            }
            xv_val_decref(e);
        }
        *res = r;
        return 0;
    }
    default:
        *res = xv_val_incref((struct xv_value *)o);
        return 0;
    }
}

BI_FN(bi_json_filter)
{
    if (xv_bi_want(ctx, a, 1, XV_T_OBJECT))
        return XV_BI_ERROR;
    struct xv_value *trie = paths_trie(ctx, a[1], 2);
    if (!trie)
        return XV_BI_ERROR;
    struct xv_value *r = filter_value(a[0], trie);
    xv_val_decref(trie);
    return xv_bi_ret(ctx, r, out);
}

/* json.remove: the document without the paths of the trie. */
BI_FN(bi_json_remove)
{
    if (xv_bi_want(ctx, a, 1, XV_T_OBJECT))
        return XV_BI_ERROR;
    struct xv_value *trie = paths_trie(ctx, a[1], 2);
    if (!trie)
        return XV_BI_ERROR;
    struct xv_value *r = NULL;
    int rc = remove_value(a[0], trie, &r);
    xv_val_decref(trie);
    if (rc)
        return OOM(ctx);
    if (!r)
        return XV_BI_UNDEFINED;
    *out = r;
    return XV_BI_OK;
}

/* ---- json.patch (RFC 6902 as OPA applies it) ---- */

/* Array index segment: "-" (append, when allowed) or a decimal index. */
static int seg_index(const struct xv_value *k, size_t len, bool allow_end, size_t *idx)
{
    int64_t v;
    if (XV_IS(k, XV_T_NUMBER)) {
        if (xv_val_number_get_int64(k, &v) != 0)
            return -1;
    } else if (XV_IS(k, XV_T_STRING)) {
        if (allow_end && SL(k) == 1 && S(k)[0] == '-') {
            *idx = len;
            return 0;
        }
        /* RFC 6901: no leading zeros */
        if (SL(k) == 0 || SL(k) > 18 || (SL(k) > 1 && S(k)[0] == '0'))
            return -1;
        v = 0;
        for (size_t i = 0; i < SL(k); i++) {
            if (S(k)[i] < '0' || S(k)[i] > '9')
                return -1;
            v = v * 10 + (S(k)[i] - '0');
        }
    } else {
        return -1;
    }
    if (v < 0 || (size_t)v > len || (!allow_end && (size_t)v == len))
        return -1;
    *idx = (size_t)v;
    return 0;
}

enum patch_op { P_ADD, P_REMOVE, P_REPLACE, P_GET };

/* Apply op at path[i..] inside doc; returns the new document or NULL with
 * *err set. For P_GET, *got receives a new reference to the value found. */
static struct xv_value *patch_at(const struct xv_value *doc, const struct xv_value *path, size_t i,
                                 enum patch_op op, const struct xv_value *val,
                                 struct xv_value **got, const char **err);

/* patch_at on an object: the key path[i]. */
static struct xv_value *patch_object(const struct xv_value *doc, const struct xv_value *path, size_t i,
                                     enum patch_op op, const struct xv_value *val, struct xv_value **got,
                                     const char **err)
{
    const struct xv_value *k = XV_ARR_ITEM(path, i);
    bool last = (i + 1 == XV_ARR_LEN(path));
    long at = xv_val_object_find(doc, k);
    if (last) {
        if (op == P_GET) {
            if (at < 0) {
                *err = "path not found";
                return NULL;
            }
            *got = xv_val_incref(XV_OBJ_VAL(doc, at));
            return xv_val_incref((struct xv_value *)doc);
        }
        if ((op == P_REMOVE || op == P_REPLACE) && at < 0) {
            *err = "path not found";
            return NULL;
        }
        struct xv_value *r = xv_val_copy(doc);
        if (!r)
            return NULL;
        if (op == P_REMOVE) {
            struct xv_value *nr = xv_val_object_new(XV_OBJ_LEN(doc));
            for (size_t j = 0; nr && j < XV_OBJ_LEN(doc); j++)
                if ((long)j != at && xv_val_object_set(nr, XV_OBJ_KEY(doc, j), XV_OBJ_VAL(doc, j))) {
                    xv_val_decref(nr);
                    nr = NULL;
                }
            xv_val_decref(r);
            return nr;
        }
        if (xv_val_object_set(r, (struct xv_value *)k, (struct xv_value *)val)) {
            xv_val_decref(r);
            return NULL;
        }
        return r;
    }
    if (at < 0) {
        *err = "path not found";
        return NULL;
    }
    struct xv_value *sub = patch_at(XV_OBJ_VAL(doc, at), path, i + 1, op, val, got, err);
    if (!sub)
        return NULL;
    struct xv_value *r = xv_val_copy(doc);
    if (!r || xv_val_object_set(r, XV_OBJ_KEY(doc, at), sub)) {
        xv_val_decref(r);
        xv_val_decref(sub);
        return NULL;
    }
    xv_val_decref(sub);
    return r;
}

/* patch_at on an array: the index path[i] ("-" appends). */
static struct xv_value *patch_array(const struct xv_value *doc, const struct xv_value *path, size_t i,
                                    enum patch_op op, const struct xv_value *val, struct xv_value **got,
                                    const char **err)
{
    const struct xv_value *k = XV_ARR_ITEM(path, i);
    bool last = (i + 1 == XV_ARR_LEN(path));
    size_t len = XV_ARR_LEN(doc), idx;
    bool allow_end = last && op == P_ADD;
    if (seg_index(k, len, allow_end, &idx)) {
        *err = "invalid array index";
        return NULL;
    }
    if (last && op == P_GET) {
        *got = xv_val_incref(XV_ARR_ITEM(doc, idx));
        return xv_val_incref((struct xv_value *)doc);
    }
    struct xv_value *sub = NULL;
    if (!last) {
        sub = patch_at(XV_ARR_ITEM(doc, idx), path, i + 1, op, val, got, err);
        if (!sub)
            return NULL;
    }
    struct xv_value *r = xv_val_array_new(len + 1);
    for (size_t j = 0; r && j <= len; j++) {
        int rc = 0;
        if (j == idx) {
            if (!last)
                rc = xv_val_array_push(r, sub);
            else if (op == P_ADD) {
                rc = xv_val_array_push(r, (struct xv_value *)val);
                if (!rc && j < len)
                    rc = xv_val_array_push(r, XV_ARR_ITEM(doc, j));
            } else if (op == P_REPLACE)
                rc = xv_val_array_push(r, (struct xv_value *)val);
            /* P_REMOVE: skip */
        } else if (j < len) {
            rc = xv_val_array_push(r, XV_ARR_ITEM(doc, j));
        }
        if (rc) {
            xv_val_decref(r);
            r = NULL;
        }
    }
    xv_val_decref(sub);
    return r;
}

/* patch_at on a set: the element path[i]. */
static struct xv_value *patch_set(const struct xv_value *doc, const struct xv_value *path, size_t i,
                                  enum patch_op op, const struct xv_value *val, struct xv_value **got,
                                  const char **err)
{
    const struct xv_value *k = XV_ARR_ITEM(path, i);
    bool last = (i + 1 == XV_ARR_LEN(path));
    if (!last) {
        long at = xv_val_set_find(doc, k);
        if (at < 0) {
            *err = "path not found";
            return NULL;
        }
        struct xv_value *sub = patch_at(XV_SET_ITEM(doc, at), path, i + 1, op, val, got, err);
        if (!sub)
            return NULL;
        struct xv_value *r = xv_val_set_new(XV_SET_LEN(doc));
        for (size_t j = 0; r && j < XV_SET_LEN(doc); j++)
            if (xv_val_set_add(r, (long)j == at ? sub : XV_SET_ITEM(doc, j))) {
                xv_val_decref(r);
                r = NULL;
            }
        xv_val_decref(sub);
        return r;
    }
    long at = xv_val_set_find(doc, k);
    if (op == P_GET) {
        if (at < 0) {
            *err = "path not found";
            return NULL;
        }
        *got = xv_val_incref(XV_SET_ITEM(doc, at));
        return xv_val_incref((struct xv_value *)doc);
    }
    if ((op == P_REMOVE || op == P_REPLACE) && at < 0) {
        *err = "path not found";
        return NULL;
    }
    /* a set member is its own key: the value added must be the key */
    if (op == P_ADD && !xv_val_equal(k, val)) {
        *err = "set key and value must match";
        return NULL;
    }
    struct xv_value *r = xv_val_set_new(XV_SET_LEN(doc) + 1);
    for (size_t j = 0; r && j < XV_SET_LEN(doc); j++)
        if ((long)j != at && xv_val_set_add(r, XV_SET_ITEM(doc, j))) {
            xv_val_decref(r);
            r = NULL;
        }
    if (r && op != P_REMOVE && xv_val_set_add(r, (struct xv_value *)val)) {
        xv_val_decref(r);
        r = NULL;
    }
    return r;
}

static struct xv_value *patch_at(const struct xv_value *doc, const struct xv_value *path, size_t i,
                                 enum patch_op op, const struct xv_value *val,
                                 struct xv_value **got, const char **err)
{
    size_t n = XV_ARR_LEN(path);
    if (i == n) {
        /* the whole document */
        if (op == P_GET) {
            *got = xv_val_incref((struct xv_value *)doc);
            return xv_val_incref((struct xv_value *)doc);
        }
        if (op == P_REMOVE) {
            *err = "cannot remove the root document";
            return NULL;
        }
        return xv_val_incref((struct xv_value *)val);
    }
    switch (XV_TYPE(doc)) {
    case XV_T_OBJECT:
        return patch_object(doc, path, i, op, val, got, err);
    case XV_T_ARRAY:
        return patch_array(doc, path, i, op, val, got, err);
    case XV_T_SET:
        return patch_set(doc, path, i, op, val, got, err);
    default:
        *err = "path not found";
        return NULL;
    }
}

static const struct xv_value *field(const struct xv_value *o, const char *name)
{
    long at = xv_val_object_find_str(o, name, strlen(name));
    return at < 0 ? NULL : XV_OBJ_VAL(o, at);
}

/* json.patch: RFC 6902 operations applied in order to a copy (add,
 * remove, replace, move, copy, test); a failing operation is a builtin
 * error (undefined unless the evaluation is strict). */
BI_FN(bi_json_patch)
{
    if (xv_bi_want(ctx, a, 2, XV_T_ARRAY))
        return XV_BI_ERROR;
    struct xv_value *doc = xv_val_incref(a[0]);
    for (size_t i = 0; i < XV_ARR_LEN(a[1]); i++) {
        const struct xv_value *p = XV_ARR_ITEM(a[1], i);
        if (!XV_IS(p, XV_T_OBJECT)) {
            xv_val_decref(doc);
            return xv_bi_error(ctx, "must be an array of JSON-Patch objects, but at least one "
                                    "element is not an object");
        }
        const struct xv_value *opv = field(p, "op"), *pathv = field(p, "path");
        if (!opv || !XV_IS(opv, XV_T_STRING)) {
            xv_val_decref(doc);
            return xv_bi_error(ctx, "missing or invalid \"op\" field");
        }
        if (!pathv) {
            xv_val_decref(doc);
            return xv_bi_error(ctx, "missing \"path\" field");
        }
        struct xv_value *path = parse_path(ctx, pathv, 2);
        if (!path) {
            xv_val_decref(doc);
            return XV_BI_ERROR;
        }
        const char *op = S(opv), *err = "invalid patch";
        const struct xv_value *val = field(p, "value");
        struct xv_value *nd = NULL, *got = NULL;
        if (strcmp(op, "add") == 0 || strcmp(op, "replace") == 0) {
            if (val)
                nd = patch_at(doc, path, 0, op[0] == 'a' ? P_ADD : P_REPLACE, val, NULL, &err);
            else
                err = "missing \"value\" field";
        } else if (strcmp(op, "remove") == 0) {
            nd = patch_at(doc, path, 0, P_REMOVE, NULL, NULL, &err);
        } else if (strcmp(op, "test") == 0) {
            struct xv_value *t = val ? patch_at(doc, path, 0, P_GET, NULL, &got, &err) : NULL;
            if (t && got && xv_val_equal(got, val))
                nd = t;
            else {
                xv_val_decref(t);
                if (t)
                    err = "test failed";
            }
        } else if (strcmp(op, "move") == 0 || strcmp(op, "copy") == 0) {
            const struct xv_value *fromv = field(p, "from");
            struct xv_value *from = fromv ? parse_path(ctx, fromv, 2) : NULL;
            if (from) {
                struct xv_value *t = patch_at(doc, from, 0, P_GET, NULL, &got, &err);
                if (t && got) {
                    struct xv_value *mid = op[0] == 'm'
                                               ? patch_at(t, from, 0, P_REMOVE, NULL, NULL, &err)
                                               : xv_val_incref(t);
                    if (mid)
                        nd = patch_at(mid, path, 0, P_ADD, got, NULL, &err);
                    xv_val_decref(mid);
                }
                xv_val_decref(t);
                xv_val_decref(from);
            } else {
                err = "missing \"from\" field";
            }
        } else {
            err = "unknown op";
        }
        xv_val_decref(got);
        xv_val_decref(path);
        xv_val_decref(doc);
        if (!nd)
            return xv_bi_error(ctx, "%s", err);
        doc = nd;
    }
    *out = doc;
    return XV_BI_OK;
}

const struct xv_builtin_def xv_bi_json[] = {
    {"json.marshal", 1, bi_json_marshal, 0},
    {"json.marshal_with_options", 2, bi_json_marshal_opts, 0},
    {"json.unmarshal", 1, bi_json_unmarshal, 0},
    {"json.is_valid", 1, bi_json_is_valid, 0},
    {"json.filter", 2, bi_json_filter, 0},
    {"json.remove", 2, bi_json_remove, 0},
    {"json.patch", 2, bi_json_patch, 0},
    {NULL, 0, NULL, 0},
};
