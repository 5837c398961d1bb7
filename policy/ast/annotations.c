/*
 * ast/annotations.c — METADATA comment blocks to OPA's annotation objects:
 * the YAML is read by value/yaml.c (the project's one YAML reader), then
 * shaped as OPA's ast.Annotations marshals: authors "Name <email>" become
 * {"name", "email"} objects, related_resources strings become {"ref"}
 * objects, the known text fields stay text, and "scope" defaults to the
 * annotated thing (package or rule). rego.metadata.* (eval/rego.c) returns
 * these objects.
 *
 * Invariant: the result is an object or NULL with err set; nothing here
 * keeps state.
 * Thread safety: reentrant.
 */
#include "ast/parse.h"
#include "value/yaml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = 0;
    return s;
}

/* "Name <email>" -> {"name": "Name", "email": "email"} */
static struct xv_value *author(const struct xv_value *s)
{
    struct xv_value *o = xv_val_object_new(2);
    char *t = strndup(XV_STR(s), XV_STRLEN(s));
    if (!o || !t) {
        free(t);
        return o;
    }
    char *lt = strchr(t, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    if (lt && gt) {
        *gt = 0;
        struct xv_value *e = xv_val_cstring(trim(lt + 1));
        xv_val_object_set_str(o, "email", e);
        xv_val_decref(e);
        *lt = 0;
    }
    char *name = trim(t);
    if (*name) {
        struct xv_value *nv = xv_val_cstring(name);
        xv_val_object_set_str(o, "name", nv);
        xv_val_decref(nv);
    }
    free(t);
    return o;
}

/* Each string item of list v through fn (other items kept). New reference. */
static struct xv_value *map_strings(const struct xv_value *v,
                                    struct xv_value *(*fn)(const struct xv_value *))
{
    struct xv_value *a = xv_val_array_new(XV_ARR_LEN(v));
    for (size_t k = 0; a && k < XV_ARR_LEN(v); k++) {
        const struct xv_value *it = XV_ARR_ITEM(v, k);
        struct xv_value *e = it->type == XV_T_STRING ? fn(it) : xv_val_incref((struct xv_value *)it);
        if (!e || xv_val_array_push(a, e)) {
            xv_val_decref(e);
            xv_val_decref(a);
            return NULL;
        }
        xv_val_decref(e);
    }
    return a;
}

static struct xv_value *resource(const struct xv_value *s)
{
    struct xv_value *r = xv_val_object_new(1);
    if (r)
        xv_val_object_set_str(r, "ref", (struct xv_value *)s);
    return r;
}

/* A scalar where OPA's struct has a string field: its text, as go-yaml
 * would decode "title: 1" into a string. New reference. */
static struct xv_value *as_text(struct xv_value *v)
{
    if (v->type == XV_T_STRING || v->type == XV_T_ARRAY || v->type == XV_T_OBJECT ||
        v->type == XV_T_SET)
        return xv_val_incref(v);
    char *s = xv_val_json_dump(v, 0);
    struct xv_value *r = s ? xv_val_cstring(s) : NULL;
    free(s);
    return r;
}

struct xv_value *xv_ast_yaml_annotations(const char *text, int is_package, char *err,
                                         size_t errlen)
{
    const char *src = text ? text : "";
    struct xv_value *o = xv_val_yaml_parse(src, strlen(src), err, errlen);
    if (!o)
        return NULL;
    if (o->type == XV_T_NULL) { /* an empty block */
        xv_val_decref(o);
        o = xv_val_object_new(1);
    } else if (o->type != XV_T_OBJECT) {
        xv_val_decref(o);
        snprintf(err, errlen, "yaml: unmarshal errors: annotations must be a mapping");
        return NULL;
    }
    if (!o) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    static const char *const text_keys[] = {"title", "description", "scope", NULL};
    for (size_t i = 0; i < XV_OBJ_LEN(o); i++) {
        /* YAML keys need not be strings ("1: x"): such a key names none of
         * the fields below (fuzz_rego found strcmp on a number's bytes). */
        if (XV_TYPE(XV_OBJ_KEY(o, i)) != XV_T_STRING)
            continue;
        const char *key = XV_STR(XV_OBJ_KEY(o, i));
        struct xv_value *v = XV_OBJ_VAL(o, i), *nv = NULL;
        if (!strcmp(key, "authors") && v->type == XV_T_ARRAY)
            nv = map_strings(v, author);
        else if (!strcmp(key, "related_resources") && v->type == XV_T_ARRAY)
            nv = map_strings(v, resource);
        for (int k = 0; !nv && text_keys[k]; k++)
            if (!strcmp(key, text_keys[k]))
                nv = as_text(v);
        if (nv) {
            xv_val_object_set(o, XV_OBJ_KEY(o, i), nv);
            xv_val_decref(nv);
        }
    }
    if (xv_val_object_find_str(o, "scope", 5) < 0) {
        struct xv_value *sc = xv_val_cstring(is_package ? "package" : "rule");
        xv_val_object_set_str(o, "scope", sc);
        xv_val_decref(sc);
    }
    return o;
}
