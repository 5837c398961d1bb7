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
#include "eval/frame.h"

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

struct xv_value *xv_policy_yaml_annotations(const char *text, int is_package, char *err,
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

/* ---- rego.metadata.* ---- */

static const char *scope_of(const struct xv_value *annot)
{
    long i = annot ? xv_object_find_str(annot, "scope", 5) : -1;
    return i >= 0 && XV_OBJ_VAL(annot, i)->type == XV_T_STRING ? XV_STR(XV_OBJ_VAL(annot, i)) : "";
}

static struct rule *current_rule(struct xv_bctx *ctx)
{
    return ((struct ev *)ctx->ev)->cur_rule;
}

static int bi_meta_rule(struct xv_bctx *ctx, struct xv_value *const *a, int n, struct xv_value **out)
{
    struct rule *r = current_rule(ctx);
    if (r && r->annot && !strcmp(scope_of(r->annot), "rule"))
        *out = xv_incref(r->annot);
    else
        *out = xv_object_new(0);
    return *out ? XV_BI_OK : XV_BI_ERROR;
}

/* The node's path below data as an array of strings. */
static struct xv_value *node_path(const struct node *n)
{
    const struct node *chain[256];
    int d = 0;
    for (const struct node *p = n; p && p->parent && d < 256; p = p->parent)
        chain[d++] = p;
    struct xv_value *arr = xv_array_new((size_t)d);
    for (int i = d - 1; arr && i >= 0; i--)
        xv_array_push(arr, chain[i]->key);
    return arr;
}

static int push_entry(struct xv_value *chain, struct xv_value *annot, struct xv_value *path)
{
    struct xv_value *e = xv_object_new(2);
    if (!e)
        return -1;
    if (annot)
        xv_object_set_str(e, "annotations", annot);
    xv_object_set_str(e, "path", path);
    xv_array_push(chain, e);
    xv_decref(e);
    return 0;
}

static int same_package(const struct module *a, const struct module *b)
{
    if (a->npkg != b->npkg)
        return 0;
    for (int i = 0; i < a->npkg; i++)
        if (strcmp(a->pkgpath[i], b->pkgpath[i]))
            return 0;
    return 1;
}

static int bi_meta_chain(struct xv_bctx *ctx, struct xv_value *const *a, int n, struct xv_value **out)
{
    struct ev *ev = (struct ev *)ctx->ev;
    struct rule *r = ev->cur_rule;
    struct xv_value *chain = xv_array_new(4);
    if (!chain)
        return XV_BI_ERROR;
    *out = chain;
    if (!r || !r->node)
        return XV_BI_OK;
    struct xv_value *path = node_path(r->node);
    /* this rule's own annotations */
    push_entry(chain, r->annot && !strcmp(scope_of(r->annot), "rule") ? r->annot : NULL, path);
    /* document scope: any definition of the same rule */
    struct rule *all[2] = {r->node->rules, r->node->dflt};
    int done = 0;
    for (int k = 0; k < 2 && !done; k++)
        for (struct rule *x = all[k]; x && !done; x = k ? NULL : x->next)
            for (struct rule *e = x; e && !done; e = e->els)
                if (e->annot && !strcmp(scope_of(e->annot), "document")) {
                    push_entry(chain, e->annot, path);
                    done = 1;
                }
    xv_decref(path);
    /* the package (annotations may sit on any module of the package) */
    for (const struct module *m = ev->c->mods; m; m = m->next) {
        if (!m->annot || !same_package(m, r->mod))
            continue;
        struct xv_value *pp = xv_array_new((size_t)m->npkg);
        for (int i = 0; pp && i < m->npkg; i++) {
            struct xv_value *s = xv_cstring(m->pkgpath[i]);
            xv_array_push(pp, s);
            xv_decref(s);
        }
        if (pp)
            push_entry(chain, m->annot, pp);
        xv_decref(pp);
        break;
    }
    return XV_BI_OK;
}

/* ---- rego.parse_module ---- */

static struct xv_value *ast_term(const char *type, struct xv_value *value)
{
    struct xv_value *o = xv_object_new(2), *t = xv_cstring(type);
    if (o && t) {
        xv_object_set_str(o, "type", t);
        xv_object_set_str(o, "value", value);
    }
    xv_decref(t);
    return o;
}

/* A ref of vars and string keys (package paths, imports, rule heads). */
static struct xv_value *ast_ref_items(struct term *t, int with_data)
{
    struct xv_value *arr = xv_array_new(4);
    if (with_data) {
        struct xv_value *d = xv_cstring("data"), *v = ast_term("var", d);
        xv_array_push(arr, v);
        xv_decref(v);
        xv_decref(d);
    }
    int n = t->kind == T_REF ? t->n : 1;
    struct term **items = t->kind == T_REF ? t->items : &t;
    for (int i = 0; i < n; i++) {
        struct term *it = items[i];
        struct xv_value *v = NULL;
        if (it->kind == T_VAR) {
            struct xv_value *s = xv_cstring(it->name);
            v = ast_term(i == 0 && !with_data ? "var" : "string", s);
            xv_decref(s);
        } else if (it->kind == T_VALUE) {
            v = ast_term(xv_type_name(it->val), it->val);
        } else {
            struct xv_value *s = xv_cstring("?");
            v = ast_term("var", s);
            xv_decref(s);
        }
        xv_array_push(arr, v);
        xv_decref(v);
    }
    return arr;
}

static int bi_parse_module(struct xv_bctx *ctx, struct xv_value *const *a, int n, struct xv_value **out)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING) || xv_bi_want(ctx, a, 2, XV_T_STRING))
        return XV_BI_ERROR;
    struct xv_arena ar = {0};
    struct xv_frozen_list fz = {0};
    struct module *m = NULL;
    struct xv_perr pe;
    memset(&pe, 0, sizeof pe);
    if (xv_parse_module(&ar, &fz, XV_STR(a[0]), XV_STR(a[1]), XV_STRLEN(a[1]), XV_REGO_V1, &m,
                        &pe)) {
        xv_arena_free(&ar);
        xv_value_free_frozen(&fz);
        return xv_bi_error(ctx, "%s:%d: rego_parse_error: %s", XV_STR(a[0]), pe.loc.line, pe.msg);
    }
    struct xv_value *mod = xv_object_new(3);
    /* package: {"path": [data, "a", "b"]} (the first component is a string) */
    struct xv_value *pkg = xv_object_new(1);
    struct xv_value *pp = ast_ref_items(m->pkg, 1);
    xv_object_set_str(pkg, "path", pp);
    xv_decref(pp);
    xv_object_set_str(mod, "package", pkg);
    xv_decref(pkg);
    struct xv_value *imps = xv_array_new((size_t)m->nimports);
    for (int i = 0; i < m->nimports; i++) {
        struct xv_value *ip = ast_ref_items(m->imports[i].path, 0);
        struct xv_value *pt = ast_term("ref", ip), *io = xv_object_new(1);
        xv_object_set_str(io, "path", pt);
        xv_array_push(imps, io);
        xv_decref(ip);
        xv_decref(pt);
        xv_decref(io);
    }
    if (m->nimports)
        xv_object_set_str(mod, "imports", imps);
    xv_decref(imps);
    struct xv_value *rules = xv_array_new((size_t)m->nrules);
    for (int i = 0; i < m->nrules; i++) {
        struct rule *r = m->rules[i];
        struct term *h = r->href;
        struct xv_value *head = xv_object_new(2), *ro = xv_object_new(1);
        struct xv_value *name = xv_cstring(h->kind == T_REF ? h->items[0]->name : h->name);
        struct xv_value *ref = ast_ref_items(h, 0);
        xv_object_set_str(head, "name", name);
        xv_object_set_str(head, "ref", ref);
        xv_object_set_str(ro, "head", head);
        xv_array_push(rules, ro);
        xv_decref(name);
        xv_decref(ref);
        xv_decref(head);
        xv_decref(ro);
    }
    if (m->nrules)
        xv_object_set_str(mod, "rules", rules);
    xv_decref(rules);
    xv_arena_free(&ar);
    /* values from the parse are referenced by mod: copy before freeing them */
    char *js = xv_json_dump(mod, 0);
    xv_decref(mod);
    xv_value_free_frozen(&fz);
    char msg[64];
    struct xv_value *res = NULL;
    if (!js || xv_json_parse(js, strlen(js), &res, msg, sizeof msg)) {
        free(js);
        return xv_bi_error(ctx, "rego.parse_module: out of memory");
    }
    free(js);
    *out = res;
    return XV_BI_OK;
}

const struct xv_builtin_def xv_policy_meta_builtins[] = {
    {"rego.metadata.rule", 0, bi_meta_rule, 0},
    {"rego.metadata.chain", 0, bi_meta_chain, 0},
    {"rego.parse_module", 2, bi_parse_module, 0},
    {NULL, 0, NULL, 0},
};
