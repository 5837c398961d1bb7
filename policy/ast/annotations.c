/*
 * ast/annotations.c — builtins that look at the policy itself: rego.metadata.rule,
 * rego.metadata.chain (METADATA comment annotations) and rego.parse_module,
 * plus the small YAML reader the annotations need.
 *
 * The YAML accepted is the subset annotations use: `key: scalar`, `key:`
 * followed by `- item` lines (a list) or indented `k: v` lines (a map).
 * rego.parse_module returns a partial AST: the package path, the imports and
 * each rule's head (name and ref) in OPA's JSON term form; rule bodies are
 * not rendered.
 * Thread safety: reentrant; reads only the compiled (immutable) policy.
 */
#include "ast/parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- YAML subset ---- */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = 0;
    return s;
}

static struct xv_value *scalar(char *s)
{
    s = trim(s);
    size_t n = strlen(s);
    if (n >= 2 && ((s[0] == '"' && s[n - 1] == '"') || (s[0] == '\'' && s[n - 1] == '\''))) {
        s[n - 1] = 0;
        s++;
    }
    return xv_cstring(s);
}

/* "Name <email>" -> {"name": "Name", "email": "email"} */
static struct xv_value *author(struct xv_value *s)
{
    struct xv_value *o = xv_object_new(2);
    char *t = strdup(XV_STR(s));
    if (!o || !t) {
        free(t);
        return o;
    }
    char *lt = strchr(t, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    if (lt && gt) {
        *gt = 0;
        struct xv_value *e = xv_cstring(trim(lt + 1));
        xv_object_set_str(o, "email", e);
        xv_decref(e);
        *lt = 0;
    }
    char *name = trim(t);
    if (*name) {
        struct xv_value *nv = xv_cstring(name);
        xv_object_set_str(o, "name", nv);
        xv_decref(nv);
    }
    free(t);
    return o;
}

struct xv_value *xv_ast_yaml_annotations(const char *text, int is_package, char *err,
                                            size_t errlen)
{
    char *buf = strdup(text ? text : "");
    struct xv_value *o = xv_object_new(4);
    if (!buf || !o) {
        free(buf);
        xv_decref(o);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    char *save = NULL;
    char *lines[512];
    int n = 0;
    for (char *l = strtok_r(buf, "\n", &save); l && n < 512; l = strtok_r(NULL, "\n", &save))
        lines[n++] = l;
    for (int i = 0; i < n; i++) {
        char *l = lines[i];
        if (!*trim(l) || l[0] == ' ' || l[0] == '\t')
            continue;
        char *colon = strchr(l, ':');
        if (!colon) {
            snprintf(err, errlen, "yaml: line %d: could not find expected ':'", i + 2);
            free(buf);
            xv_decref(o);
            return NULL;
        }
        *colon = 0;
        char *key = trim(l), *val = trim(colon + 1);
        struct xv_value *v;
        if (*val) {
            v = scalar(val);
        } else {
            /* a list (- item) or a map (indented k: v) */
            int j = i + 1;
            int list = j < n && !strncmp(trim(lines[j]), "- ", 2);
            v = list ? xv_array_new(4) : xv_object_new(4);
            for (; j < n; j++) {
                char *raw = lines[j];
                char *t = trim(raw);
                if (list && !strncmp(t, "- ", 2)) {
                    struct xv_value *e = scalar(t + 2);
                    xv_array_push(v, e);
                    xv_decref(e);
                } else if (!list && (raw[0] == ' ' || raw[0] == '\t') && strchr(t, ':')) {
                    char *c2 = strchr(t, ':');
                    *c2 = 0;
                    struct xv_value *e = scalar(c2 + 1);
                    xv_object_set_str(v, trim(t), e);
                    xv_decref(e);
                } else {
                    break;
                }
            }
            i = j - 1;
        }
        if (!strcmp(key, "authors") && v->type == XV_T_ARRAY) {
            struct xv_value *a = xv_array_new(XV_ARR_LEN(v));
            for (size_t k = 0; k < XV_ARR_LEN(v); k++) {
                struct xv_value *au = author(XV_ARR_ITEM(v, k));
                xv_array_push(a, au);
                xv_decref(au);
            }
            xv_decref(v);
            v = a;
        } else if (!strcmp(key, "related_resources") && v->type == XV_T_ARRAY) {
            struct xv_value *a = xv_array_new(XV_ARR_LEN(v));
            for (size_t k = 0; k < XV_ARR_LEN(v); k++) {
                struct xv_value *r = xv_object_new(1);
                xv_object_set_str(r, "ref", XV_ARR_ITEM(v, k));
                xv_array_push(a, r);
                xv_decref(r);
            }
            xv_decref(v);
            v = a;
        } else if (!strcmp(key, "entrypoint") && v->type == XV_T_STRING) {
            int b = !strcmp(XV_STR(v), "true");
            xv_decref(v);
            v = xv_bool(b);
        }
        xv_object_set_str(o, key, v);
        xv_decref(v);
    }
    free(buf);
    if (xv_object_find_str(o, "scope", 5) < 0) {
        struct xv_value *sc = xv_cstring(is_package ? "package" : "rule");
        xv_object_set_str(o, "scope", sc);
        xv_decref(sc);
    }
    return o;
}
