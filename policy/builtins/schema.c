/*
 * builtins/schema.c — json.verify_schema and json.match_schema: a JSON
 * Schema (draft 4-7 core) validator producing gojsonschema's error records
 * ({"error", "type", "field", "desc"}), which is what OPA returns.
 *
 * Supported keywords: type, enum, const, properties, required,
 * additionalProperties, patternProperties, minProperties, maxProperties,
 * items (schema or tuple), additionalItems, minItems, maxItems, uniqueItems,
 * contains, minLength, maxLength, pattern, format (date-time, date, time,
 * email, ipv4, ipv6, uri, uuid, hostname, regex), propertyNames,
 * dependencies / dependentRequired, minimum, maximum,
 * exclusiveMinimum, exclusiveMaximum (both drafts' forms), multipleOf,
 * allOf, anyOf, oneOf, not, if/then/else, $ref to "#" and "#/..." pointers,
 * definitions/$defs. Unknown keywords are ignored, as the spec requires.
 *
 * Invariant: validation never modifies its inputs; recursion depth is
 * bounded (XV_SCHEMA_DEPTH) so a self-referencing schema cannot loop.
 * Thread safety: reentrant.
 */
#include "builtins/helpers.h"
#include "go/time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(v) XV_STR(v)
#define SL(v) XV_STRLEN(v)
#define XV_SCHEMA_DEPTH 200

static const struct xv_value *kw(const struct xv_value *o, const char *name)
{
    if (!XV_IS(o, XV_T_OBJECT))
        return NULL;
    long at = xv_val_object_find_str(o, name, strlen(name));
    return at < 0 ? NULL : XV_OBJ_VAL(o, at);
}

static const char *const type_names[] = {"array", "boolean", "integer", "number",
                                         "null", "object", "string", NULL};

/* Schema check: every "type" names a primitive type. Returns a message or NULL. */
static char *check_schema(const struct xv_value *s, int depth)
{
    if (depth > XV_SCHEMA_DEPTH)
        return NULL;
    if (XV_IS(s, XV_T_ARRAY)) {
        for (size_t i = 0; i < XV_ARR_LEN(s); i++) {
            char *m = check_schema(XV_ARR_ITEM(s, i), depth + 1);
            if (m)
                return m;
        }
        return NULL;
    }
    if (!XV_IS(s, XV_T_OBJECT))
        return NULL;
    const struct xv_value *t = kw(s, "type");
    if (t) {
        size_t cnt = XV_IS(t, XV_T_ARRAY) ? XV_ARR_LEN(t) : 1;
        for (size_t i = 0; i < cnt; i++) {
            const struct xv_value *e = XV_IS(t, XV_T_ARRAY) ? XV_ARR_ITEM(t, i) : t;
            bool ok = false;
            for (int k = 0; XV_IS(e, XV_T_STRING) && type_names[k]; k++)
                ok |= strcmp(S(e), type_names[k]) == 0;
            if (!ok) {
                struct xv_val_buf b = {0};
                xv_val_buf_adds(&b, "has a primitive type that is NOT VALID -- given: /");
                if (XV_IS(e, XV_T_STRING))
                    xv_val_buf_add(&b, S(e), SL(e));
                else
                    xv_bi_rego_text(&b, e);
                xv_val_buf_adds(&b, "/ Expected valid values are:[array boolean integer "
                                          "number null object string]");
                return xv_val_buf_take(&b, NULL);
            }
        }
    }
    /* recurse into every subschema-bearing value */
    for (size_t i = 0; i < XV_OBJ_LEN(s); i++) {
        const struct xv_value *k = XV_OBJ_KEY(s, i), *v = XV_OBJ_VAL(s, i);
        if (!XV_IS(k, XV_T_STRING) || strcmp(S(k), "enum") == 0 || strcmp(S(k), "const") == 0 ||
            strcmp(S(k), "required") == 0 || strcmp(S(k), "type") == 0)
            continue;
        if (strcmp(S(k), "properties") == 0 || strcmp(S(k), "definitions") == 0 ||
            strcmp(S(k), "$defs") == 0 || strcmp(S(k), "patternProperties") == 0) {
            for (size_t j = 0; XV_IS(v, XV_T_OBJECT) && j < XV_OBJ_LEN(v); j++) {
                char *m = check_schema(XV_OBJ_VAL(v, j), depth + 1);
                if (m)
                    return m;
            }
            continue;
        }
        char *m = check_schema(v, depth + 1);
        if (m)
            return m;
    }
    return NULL;
}

struct vctx {
    const struct xv_value *root;   /* root schema, for $ref */
    struct xv_value *errs;         /* array of error objects, or NULL when only counting */
    int nerr;                      /* errors found */
    int oom;                       /* allocation failed */
};

static const char *value_type(const struct xv_value *v)
{
    switch (XV_TYPE(v)) {
    case XV_T_NULL: return "null";
    case XV_T_BOOL: return "boolean";
    case XV_T_NUMBER: return xv_val_number_is_int(v) ? "integer" : "number";
    case XV_T_STRING: return "string";
    case XV_T_ARRAY: return "array";
    default: return "object";
    }
}

static void add_err(struct vctx *c, const char *field, const char *type, const char *desc)
{
    c->nerr++;
    if (!c->errs)
        return;
    struct xv_value *o = xv_val_object_new(4);
    struct xv_value *f = xv_val_cstring(field), *t = xv_val_cstring(type), *d = xv_val_cstring(desc);
    struct xv_value *e = xv_val_string_fmt("%s: %s", field, desc);
    if (!o || !f || !t || !d || !e || xv_val_object_set_str(o, "field", f) ||
        xv_val_object_set_str(o, "type", t) || xv_val_object_set_str(o, "desc", d) ||
        xv_val_object_set_str(o, "error", e) || xv_val_array_push(c->errs, o))
        c->oom = 1;
    xv_val_decref(o);
    xv_val_decref(f);
    xv_val_decref(t);
    xv_val_decref(d);
    xv_val_decref(e);
}

static char *num_text(const struct xv_value *v)
{
    struct xv_val_buf b = {0};
    xv_bi_rego_text(&b, v);
    return xv_val_buf_take(&b, NULL);
}

/* A string matching a Go regexp (anchored by the caller's pattern). */
static bool re_full(const char *pat, const char *s, size_t n)
{
    struct xv_go_re *re;
    if (xv_go_re_get(pat, strlen(pat), &re, NULL))
        return true;
    long ov[2 * 8];
    int r = xv_go_re_ngroups(re) < 8 ? xv_go_re_exec(re, s, n, 0, ov) : 1;
    xv_go_re_release(re);
    return r == 1;
}

/* gojsonschema's format checkers for the formats tool schemas use;
 * unknown formats pass, as the spec allows. */
static bool format_ok(const char *f, const char *s, size_t n)
{
    int64_t sec;
    int32_t nsec;
    char err[64];
    if (!strcmp(f, "date-time"))
        return xv_go_time_parse("2006-01-02T15:04:05Z07:00", 25, s, n, &sec, &nsec, err,
                                       sizeof err) == 0;
    if (!strcmp(f, "date"))
        return xv_go_time_parse("2006-01-02", 10, s, n, &sec, &nsec, err, sizeof err) == 0;
    if (!strcmp(f, "time"))
        return xv_go_time_parse("15:04:05Z07:00", 14, s, n, &sec, &nsec, err, sizeof err) == 0;
    if (!strcmp(f, "email"))
        return re_full("^[^@\\s]+@[^@\\s]+$", s, n);
    if (!strcmp(f, "ipv4"))
        return re_full("^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
                       "(\\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$", s, n);
    if (!strcmp(f, "ipv6"))
        return memchr(s, ':', n) && re_full("^[0-9A-Fa-f:.]+$", s, n);
    if (!strcmp(f, "uri"))
        return re_full("^[A-Za-z][A-Za-z0-9+.-]*:[^\\s]*$", s, n);
    if (!strcmp(f, "uuid"))
        return re_full("^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$",
                       s, n);
    if (!strcmp(f, "hostname"))
        return n <= 253 && re_full("^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                                   "(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$", s, n);
    if (!strcmp(f, "regex")) {
        struct xv_go_re *re;
        if (xv_go_re_get(s, n, &re, NULL))
            return false;
        xv_go_re_release(re);
        return true;
    }
    return true;
}

static char *child_path(const char *path, const struct xv_value *key, size_t idx, bool is_idx)
{
    struct xv_val_buf b = {0};
    if (strcmp(path, "(root)") != 0) {
        xv_val_buf_adds(&b, path);
        xv_val_buf_addc(&b, '.');
    }
    if (is_idx)
        xv_val_buf_printf(&b, "%zu", idx);
    else if (XV_IS(key, XV_T_STRING))
        xv_val_buf_add(&b, S(key), SL(key));
    else
        xv_bi_rego_text(&b, key);
    return xv_val_buf_take(&b, NULL);
}

static const struct xv_value *resolve_ref(const struct vctx *c, const struct xv_value *ref)
{
    if (!XV_IS(ref, XV_T_STRING) || SL(ref) == 0 || S(ref)[0] != '#')
        return NULL;
    const struct xv_value *cur = c->root;
    const char *p = S(ref) + 1, *e = S(ref) + SL(ref);
    while (p < e && cur) {
        if (*p != '/')
            return NULL;
        p++;
        const char *sl = memchr(p, '/', (size_t)(e - p));
        size_t n = sl ? (size_t)(sl - p) : (size_t)(e - p);
        char seg[256];
        size_t k = 0;
        for (size_t i = 0; i < n && k + 1 < sizeof seg; i++) {
            if (p[i] == '~' && i + 1 < n && (p[i + 1] == '0' || p[i + 1] == '1')) {
                seg[k++] = p[i + 1] == '0' ? '~' : '/';
                i++;
            } else {
                seg[k++] = p[i];
            }
        }
        seg[k] = '\0';
        if (XV_IS(cur, XV_T_OBJECT)) {
            long at = xv_val_object_find_str(cur, seg, k);
            cur = at < 0 ? NULL : XV_OBJ_VAL(cur, at);
        } else if (XV_IS(cur, XV_T_ARRAY)) {
            size_t idx = (size_t)strtoul(seg, NULL, 10);
            cur = idx < XV_ARR_LEN(cur) ? XV_ARR_ITEM(cur, idx) : NULL;
        } else {
            cur = NULL;
        }
        p += n;
    }
    return cur;
}

static void validate(struct vctx *c, const struct xv_value *s, const struct xv_value *v,
                     const char *path, int depth);

/* Count errors of v against s without recording them. */
static int probe(struct vctx *c, const struct xv_value *s, const struct xv_value *v,
                 const char *path, int depth)
{
    struct vctx p = {c->root, NULL, 0, 0};
    validate(&p, s, v, path, depth);
    return p.nerr;
}

static bool type_matches(const char *t, const struct xv_value *v)
{
    const char *vt = value_type(v);
    if (strcmp(t, vt) == 0)
        return true;
    return strcmp(t, "number") == 0 && strcmp(vt, "integer") == 0;
}

/* "type": false (error recorded) when v has none of the types. */
static bool check_type(struct vctx *c, const struct xv_value *s, const struct xv_value *v,
                       const char *path, int depth)
{
    char msg[512];
    const struct xv_value *t = kw(s, "type");
    if (t) {
        bool ok = false;
        struct xv_val_buf exp = {0};
        size_t cnt = XV_IS(t, XV_T_ARRAY) ? XV_ARR_LEN(t) : 1;
        for (size_t i = 0; i < cnt; i++) {
            const struct xv_value *e = XV_IS(t, XV_T_ARRAY) ? XV_ARR_ITEM(t, i) : t;
            if (!XV_IS(e, XV_T_STRING))
                continue;
            if (exp.len)
                xv_val_buf_adds(&exp, ", ");
            xv_val_buf_add(&exp, S(e), SL(e));
            ok |= type_matches(S(e), v);
        }
        if (!ok) {
            snprintf(msg, sizeof msg, "Invalid type. Expected: %s, given: %s",
                     exp.p ? exp.p : "", value_type(v));
            add_err(c, path, "invalid_type", msg);
            xv_val_buf_free(&exp);
            return false;
        }
        xv_val_buf_free(&exp);
    }
    return true;
}

/* "enum" and "const". */
static void check_values(struct vctx *c, const struct xv_value *s, const struct xv_value *v,
                         const char *path, int depth)
{
    char msg[512];
    (void)depth;
    const struct xv_value *en = kw(s, "enum");
    if (XV_IS(en, XV_T_ARRAY)) {
        bool ok = false;
        for (size_t i = 0; i < XV_ARR_LEN(en) && !ok; i++)
            ok = xv_val_equal(XV_ARR_ITEM(en, i), v);
        if (!ok) {
            struct xv_val_buf b = {0};
            for (size_t i = 0; i < XV_ARR_LEN(en); i++) {
                if (i)
                    xv_val_buf_adds(&b, ", ");
                xv_bi_json_text(&b, XV_ARR_ITEM(en, i), 0);
            }
            snprintf(msg, sizeof msg, "%s must be one of the following: %s", path,
                     b.p ? b.p : "");
            xv_val_buf_free(&b);
            add_err(c, path, "enum", msg);
        }
    }
    const struct xv_value *cn = kw(s, "const");
    if (cn && !xv_val_equal(cn, v)) {
        struct xv_val_buf b = {0};
        xv_bi_json_text(&b, cn, 0);
        snprintf(msg, sizeof msg, "%s does not match: %s", path, b.p ? b.p : "");
        xv_val_buf_free(&b);
        add_err(c, path, "const", msg);
    }
}

/* allOf, anyOf, oneOf, not, if/then/else. */
static void check_combinators(struct vctx *c, const struct xv_value *s, const struct xv_value *v,
                              const char *path, int depth)
{
    /* combinators */
    const struct xv_value *all = kw(s, "allOf");
    if (XV_IS(all, XV_T_ARRAY)) {
        bool ok = true;
        for (size_t i = 0; i < XV_ARR_LEN(all); i++)
            if (probe(c, XV_ARR_ITEM(all, i), v, path, depth + 1)) {
                validate(c, XV_ARR_ITEM(all, i), v, path, depth + 1);
                ok = false;
            }
        if (!ok)
            add_err(c, path, "number_all_of", "Must validate all the schemas (allOf)");
    }
    const struct xv_value *any = kw(s, "anyOf");
    if (XV_IS(any, XV_T_ARRAY)) {
        bool ok = false;
        for (size_t i = 0; i < XV_ARR_LEN(any) && !ok; i++)
            ok = probe(c, XV_ARR_ITEM(any, i), v, path, depth + 1) == 0;
        if (!ok)
            add_err(c, path, "number_any_of", "Must validate at least one schema (anyOf)");
    }
    const struct xv_value *one = kw(s, "oneOf");
    if (XV_IS(one, XV_T_ARRAY)) {
        int n = 0;
        for (size_t i = 0; i < XV_ARR_LEN(one); i++)
            n += probe(c, XV_ARR_ITEM(one, i), v, path, depth + 1) == 0;
        if (n != 1)
            add_err(c, path, "number_one_of", "Must validate one and only one schema (oneOf)");
    }
    const struct xv_value *nt = kw(s, "not");
    if (nt && probe(c, nt, v, path, depth + 1) == 0)
        add_err(c, path, "number_not", "Must not validate the schema (not)");
    const struct xv_value *iff = kw(s, "if");
    if (iff) {
        const struct xv_value *br = probe(c, iff, v, path, depth + 1) == 0 ? kw(s, "then")
                                                                          : kw(s, "else");
        if (br && probe(c, br, v, path, depth + 1)) {
            validate(c, br, v, path, depth + 1);
            add_err(c, path, br == kw(s, "then") ? "condition_then" : "condition_else",
                    br == kw(s, "then") ? "Must validate \"then\" as \"if\" was valid"
                                        : "Must validate \"else\" as \"if\" was not valid");
        }
    }
}

/* The object keywords: required, properties, patternProperties,
 * additionalProperties, propertyNames, dependencies, min/maxProperties. */
static void check_object(struct vctx *c, const struct xv_value *s, const struct xv_value *v,
                         const char *path, int depth)
{
    char msg[512];
    const struct xv_value *req = kw(s, "required");
    for (size_t i = 0; XV_IS(req, XV_T_ARRAY) && i < XV_ARR_LEN(req); i++) {
        const struct xv_value *k = XV_ARR_ITEM(req, i);
        if (XV_IS(k, XV_T_STRING) && xv_val_object_find(v, k) < 0) {
            snprintf(msg, sizeof msg, "%.*s is required", (int)SL(k), S(k));
            add_err(c, path, "required", msg);
        }
    }
    const struct xv_value *props = kw(s, "properties"), *pp = kw(s, "patternProperties"),
                          *ap = kw(s, "additionalProperties");
    for (size_t i = 0; i < XV_OBJ_LEN(v); i++) {
        const struct xv_value *k = XV_OBJ_KEY(v, i), *val = XV_OBJ_VAL(v, i);
        char *cp = child_path(path, k, 0, false);
        if (!cp) {
            c->oom = 1;
            return;
        }
        bool matched = false;
        if (XV_IS(props, XV_T_OBJECT)) {
            long at = xv_val_object_find(props, k);
            if (at >= 0) {
                matched = true;
                validate(c, XV_OBJ_VAL(props, at), val, cp, depth + 1);
            }
        }
        for (size_t j = 0; XV_IS(pp, XV_T_OBJECT) && XV_IS(k, XV_T_STRING) &&
                           j < XV_OBJ_LEN(pp); j++) {
            const struct xv_value *pat = XV_OBJ_KEY(pp, j);
            struct xv_go_re *re;
            if (!XV_IS(pat, XV_T_STRING) || xv_go_re_get(S(pat), SL(pat), &re, NULL))
                continue;
            long ov[2 * 32];
            int r = xv_go_re_ngroups(re) < 31
                        ? xv_go_re_exec(re, S(k), SL(k), 0, ov)
                        : 0;
            xv_go_re_release(re);
            if (r == 1) {
                matched = true;
                validate(c, XV_OBJ_VAL(pp, j), val, cp, depth + 1);
            }
        }
        if (!matched && ap) {
            if (XV_IS(ap, XV_T_BOOL) && !XV_BOOLV(ap)) {
                char kt[300];
                if (XV_IS(k, XV_T_STRING))
                    snprintf(kt, sizeof kt, "%.*s", (int)SL(k), S(k));
                else
                    snprintf(kt, sizeof kt, "?");
                snprintf(msg, sizeof msg, "Additional property %s is not allowed", kt);
                add_err(c, path, "additional_property_not_allowed", msg);
            } else if (XV_IS(ap, XV_T_OBJECT)) {
                validate(c, ap, val, cp, depth + 1);
            }
        }
        free(cp);
    }
    const struct xv_value *pn = kw(s, "propertyNames");
    for (size_t i = 0; pn && i < XV_OBJ_LEN(v); i++)
        if (probe(c, pn, XV_OBJ_KEY(v, i), path, depth + 1)) {
            const struct xv_value *k = XV_OBJ_KEY(v, i);
            snprintf(msg, sizeof msg, "Property name of \"%.*s\" does not match",
                     XV_IS(k, XV_T_STRING) ? (int)SL(k) : 1, XV_IS(k, XV_T_STRING) ? S(k) : "?");
            add_err(c, path, "invalid_property_name", msg);
        }
    const struct xv_value *deps = kw(s, "dependencies");
    if (!deps)
        deps = kw(s, "dependentRequired");
    for (size_t i = 0; XV_IS(deps, XV_T_OBJECT) && i < XV_OBJ_LEN(deps); i++) {
        if (xv_val_object_find(v, XV_OBJ_KEY(deps, i)) < 0)
            continue;
        const struct xv_value *need = XV_OBJ_VAL(deps, i);
        if (XV_IS(need, XV_T_ARRAY)) {
            for (size_t k = 0; k < XV_ARR_LEN(need); k++) {
                const struct xv_value *nk = XV_ARR_ITEM(need, k);
                if (XV_IS(nk, XV_T_STRING) && xv_val_object_find(v, nk) < 0) {
                    snprintf(msg, sizeof msg, "Has a dependency on %.*s", (int)SL(nk), S(nk));
                    add_err(c, path, "missing_dependency", msg);
                }
            }
        } else if (XV_IS(need, XV_T_OBJECT) || XV_IS(need, XV_T_BOOL)) {
            validate(c, need, v, path, depth + 1);
        }
    }
    const struct xv_value *mn = kw(s, "minProperties"), *mx = kw(s, "maxProperties");
    int64_t lim;
    if (XV_IS(mn, XV_T_NUMBER) && xv_val_number_get_int64(mn, &lim) == 0 &&
        (int64_t)XV_OBJ_LEN(v) < lim) {
        snprintf(msg, sizeof msg, "Must have at least %lld properties", (long long)lim);
        add_err(c, path, "array_min_properties", msg);
    }
    if (XV_IS(mx, XV_T_NUMBER) && xv_val_number_get_int64(mx, &lim) == 0 &&
        (int64_t)XV_OBJ_LEN(v) > lim) {
        snprintf(msg, sizeof msg, "Must have at most %lld properties", (long long)lim);
        add_err(c, path, "array_max_properties", msg);
    }
}

/* The array keywords: items, additionalItems, min/maxItems, uniqueItems,
 * contains. */
static void check_array(struct vctx *c, const struct xv_value *s, const struct xv_value *v,
                        const char *path, int depth)
{
    char msg[512];
    const struct xv_value *items = kw(s, "items"), *addl = kw(s, "additionalItems");
    size_t n = XV_ARR_LEN(v);
    for (size_t i = 0; i < n; i++) {
        const struct xv_value *sub = NULL;
        if (XV_IS(items, XV_T_ARRAY))
            sub = i < XV_ARR_LEN(items) ? XV_ARR_ITEM(items, i) : addl;
        else
            sub = items;
        if (XV_IS(items, XV_T_ARRAY) && i >= XV_ARR_LEN(items) && XV_IS(addl, XV_T_BOOL) &&
            !XV_BOOLV(addl)) {
            add_err(c, path, "array_no_additional_items", "No additional items allowed on array");
            break;
        }
        if (!sub)
            continue;
        char *cp = child_path(path, NULL, i, true);
        if (!cp) {
            c->oom = 1;
            return;
        }
        validate(c, sub, XV_ARR_ITEM(v, i), cp, depth + 1);
        free(cp);
    }
    const struct xv_value *mn = kw(s, "minItems"), *mx = kw(s, "maxItems");
    int64_t lim;
    if (XV_IS(mn, XV_T_NUMBER) && xv_val_number_get_int64(mn, &lim) == 0 && (int64_t)n < lim) {
        snprintf(msg, sizeof msg, "Array must have at least %lld items", (long long)lim);
        add_err(c, path, "array_min_items", msg);
    }
    if (XV_IS(mx, XV_T_NUMBER) && xv_val_number_get_int64(mx, &lim) == 0 && (int64_t)n > lim) {
        snprintf(msg, sizeof msg, "Array must have at most %lld items", (long long)lim);
        add_err(c, path, "array_max_items", msg);
    }
    const struct xv_value *uq = kw(s, "uniqueItems");
    if (XV_IS(uq, XV_T_BOOL) && XV_BOOLV(uq)) {
        for (size_t i = 0; i < n; i++)
            for (size_t j = i + 1; j < n; j++)
                if (xv_val_equal(XV_ARR_ITEM(v, i), XV_ARR_ITEM(v, j))) {
                    snprintf(msg, sizeof msg, "array items[%zu,%zu] must be unique", i, j);
                    add_err(c, path, "unique", msg);
                    i = j = n;
                }
    }
    const struct xv_value *co = kw(s, "contains");
    if (co) {
        bool ok = false;
        for (size_t i = 0; i < n && !ok; i++)
            ok = probe(c, co, XV_ARR_ITEM(v, i), path, depth + 1) == 0;
        if (!ok)
            add_err(c, path, "contains", "At least one of the items must match");
    }
}

/* The string keywords: min/maxLength, pattern, format. */
static void check_string(struct vctx *c, const struct xv_value *s, const struct xv_value *v,
                         const char *path, int depth)
{
    char msg[512];
    (void)depth;
    size_t len = xv_val_utf8_count(S(v), SL(v));
    const struct xv_value *mn = kw(s, "minLength"), *mx = kw(s, "maxLength"),
                          *pat = kw(s, "pattern");
    int64_t lim;
    if (XV_IS(mn, XV_T_NUMBER) && xv_val_number_get_int64(mn, &lim) == 0 && (int64_t)len < lim) {
        snprintf(msg, sizeof msg, "String length must be greater than or equal to %lld",
                 (long long)lim);
        add_err(c, path, "string_gte", msg);
    }
    if (XV_IS(mx, XV_T_NUMBER) && xv_val_number_get_int64(mx, &lim) == 0 && (int64_t)len > lim) {
        snprintf(msg, sizeof msg, "String length must be less than or equal to %lld",
                 (long long)lim);
        add_err(c, path, "string_lte", msg);
    }
    struct xv_go_re *re;
    if (XV_IS(pat, XV_T_STRING) && xv_go_re_get(S(pat), SL(pat), &re, NULL) == 0) {
        long *ov = malloc(sizeof(long) * 2 * ((size_t)xv_go_re_ngroups(re) + 1));
        int r = ov ? xv_go_re_exec(re, S(v), SL(v), 0, ov) : 1;
        free(ov);
        xv_go_re_release(re);
        if (r == 0) {
            snprintf(msg, sizeof msg, "Does not match pattern '%.*s'", (int)SL(pat), S(pat));
            add_err(c, path, "pattern", msg);
        }
    }
    const struct xv_value *fmt = kw(s, "format");
    if (XV_IS(fmt, XV_T_STRING) && !format_ok(S(fmt), S(v), SL(v))) {
        snprintf(msg, sizeof msg, "Does not match format '%.*s'", (int)SL(fmt), S(fmt));
        add_err(c, path, "format", msg);
    }
}

/* The number keywords: minimum, maximum, exclusive limits (draft 4
 * booleans and draft 6 numbers), multipleOf. */
static void check_number(struct vctx *c, const struct xv_value *s, const struct xv_value *v,
                         const char *path, int depth)
{
    char msg[512];
    (void)depth;
    static const struct {
        const char *kw, *type, *fmt;
        int sign;    /* violation when cmp(v, limit) has this relation */
    } lims[] = {
        {"minimum", "number_gte", "Must be greater than or equal to %s", -1},
        {"maximum", "number_lte", "Must be less than or equal to %s", 1},
    };
    for (int k = 0; k < 2; k++) {
        const struct xv_value *l = kw(s, lims[k].kw);
        if (!XV_IS(l, XV_T_NUMBER))
            continue;
        int cmp = xv_val_number_cmp(v, l);
        /* draft 4: exclusiveMinimum/Maximum as booleans beside the limit */
        const struct xv_value *ex = kw(s, k == 0 ? "exclusiveMinimum" : "exclusiveMaximum");
        bool excl = XV_IS(ex, XV_T_BOOL) && XV_BOOLV(ex);
        bool bad = lims[k].sign < 0 ? (excl ? cmp <= 0 : cmp < 0) : (excl ? cmp >= 0 : cmp > 0);
        if (bad) {
            char *nt2 = num_text(l);
            if (excl)
                snprintf(msg, sizeof msg, k == 0 ? "Must be greater than %s" : "Must be less than %s",
                         nt2 ? nt2 : "");
            else
                snprintf(msg, sizeof msg, lims[k].fmt, nt2 ? nt2 : "");
            free(nt2);
            add_err(c, path, excl ? (k == 0 ? "number_gt" : "number_lt") : lims[k].type, msg);
        }
    }
    /* draft 6+: exclusive limits as numbers */
    const struct xv_value *exm = kw(s, "exclusiveMinimum"), *exM = kw(s, "exclusiveMaximum");
    if (XV_IS(exm, XV_T_NUMBER) && xv_val_number_cmp(v, exm) <= 0) {
        char *nt2 = num_text(exm);
        snprintf(msg, sizeof msg, "Must be greater than %s", nt2 ? nt2 : "");
        free(nt2);
        add_err(c, path, "number_gt", msg);
    }
    if (XV_IS(exM, XV_T_NUMBER) && xv_val_number_cmp(v, exM) >= 0) {
        char *nt2 = num_text(exM);
        snprintf(msg, sizeof msg, "Must be less than %s", nt2 ? nt2 : "");
        free(nt2);
        add_err(c, path, "number_lt", msg);
    }
    const struct xv_value *mo = kw(s, "multipleOf");
    if (XV_IS(mo, XV_T_NUMBER)) {
        struct xv_value *q = xv_val_num_div(v, mo);
        if (q && !xv_val_number_is_int(q)) {
            char *nt2 = num_text(mo);
            snprintf(msg, sizeof msg, "Must be a multiple of %s", nt2 ? nt2 : "");
            free(nt2);
            add_err(c, path, "multiple_of", msg);
        }
        xv_val_decref(q);
    }
}

static void validate(struct vctx *c, const struct xv_value *s, const struct xv_value *v,
                     const char *path, int depth)
{
    if (depth > XV_SCHEMA_DEPTH || c->oom)
        return;
    if (XV_IS(s, XV_T_BOOL)) {
        if (!XV_BOOLV(s))
            add_err(c, path, "false", "False always fails validation");
        return;
    }
    if (!XV_IS(s, XV_T_OBJECT))
        return;
    const struct xv_value *ref = kw(s, "$ref");
    if (ref) {
        const struct xv_value *target = resolve_ref(c, ref);
        if (target)
            validate(c, target, v, path, depth + 1);
        return;   /* draft 4-7: $ref siblings are ignored */
    }
    if (!check_type(c, s, v, path, depth))
        return;
    check_values(c, s, v, path, depth);
    check_combinators(c, s, v, path, depth);
    switch (XV_TYPE(v)) {
    case XV_T_OBJECT: check_object(c, s, v, path, depth); break;
    case XV_T_ARRAY: check_array(c, s, v, path, depth); break;
    case XV_T_STRING: check_string(c, s, v, path, depth); break;
    case XV_T_NUMBER: check_number(c, s, v, path, depth); break;
    default: break;
    }
}

/* Operand as a value: JSON text is parsed, anything else used as is. */
static int as_value(struct xv_bctx *ctx, const struct xv_value *v, int pos, bool schema,
                    struct xv_value **out)
{
    if (XV_IS(v, XV_T_STRING)) {
        char err[256] = "";
        if (xv_val_json_parse(S(v), SL(v), out, err, sizeof err) != 0 || !*out)
            return xv_bi_error(ctx, "%s", err[0] ? err : "invalid JSON");
        return 0;
    }
    if (schema && !XV_IS(v, XV_T_OBJECT) && !XV_IS(v, XV_T_BOOL))
        return xv_bi_type_error(ctx, pos, "one of {string, object}", v);
    *out = xv_val_incref((struct xv_value *)v);
    return 0;
}

static struct xv_value *pair(struct xv_value *a, struct xv_value *b)
{
    struct xv_value *arr = xv_val_array_new(2);
    if (!arr || !a || !b || xv_val_array_push(arr, a) || xv_val_array_push(arr, b)) {
        xv_val_decref(arr);
        arr = NULL;
    }
    xv_val_decref(a);
    xv_val_decref(b);
    return arr;
}

BI_FN(bi_verify_schema)
{
    struct xv_value *s;
    if (!XV_IS(a[0], XV_T_STRING) && !XV_IS(a[0], XV_T_OBJECT))
        return xv_bi_type_error(ctx, 1, "one of {string, object}", a[0]);
    if (XV_IS(a[0], XV_T_STRING)) {
        char err[256] = "";
        if (xv_val_json_parse(S(a[0]), SL(a[0]), &s, err, sizeof err) != 0 || !s)
            return xv_bi_ret(ctx, pair(xv_val_bool(0), xv_val_string_fmt("jsonschema: %s", err)),
                                    out);
    } else {
        s = xv_val_incref(a[0]);
    }
    char *m = check_schema(s, 0);
    xv_val_decref(s);
    if (m) {
        struct xv_value *r = pair(xv_val_bool(0), xv_val_string_fmt("jsonschema: %s", m));
        free(m);
        return xv_bi_ret(ctx, r, out);
    }
    return xv_bi_ret(ctx, pair(xv_val_bool(1), xv_val_null()), out);
}

BI_FN(bi_match_schema)
{
    struct xv_value *doc, *s;
    if (as_value(ctx, a[0], 1, false, &doc))
        return XV_BI_ERROR;
    if (as_value(ctx, a[1], 2, true, &s)) {
        xv_val_decref(doc);
        return XV_BI_ERROR;
    }
    char *m = check_schema(s, 0);
    if (m) {
        xv_val_decref(doc);
        xv_val_decref(s);
        int rc = xv_bi_error(ctx, "%s", m);
        free(m);
        return rc;
    }
    struct vctx c = {s, xv_val_array_new(0), 0, 0};
    if (c.errs)
        validate(&c, s, doc, "(root)", 0);
    xv_val_decref(doc);
    xv_val_decref(s);
    if (!c.errs || c.oom) {
        xv_val_decref(c.errs);
        return xv_bi_error(ctx, "out of memory");
    }
    return xv_bi_ret(ctx, pair(xv_val_bool(c.nerr == 0), c.errs), out);
}

const struct xv_builtin_def xv_bi_schema[] = {
    {"json.verify_schema", 1, bi_verify_schema, 0},
    {"json.match_schema", 2, bi_match_schema, 0},
    {NULL, 0, NULL, 0},
};
