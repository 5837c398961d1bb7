/*
 * eval/rego.c — the rego.* builtins, which look at the policy itself and so
 * belong to the evaluator: rego.metadata.rule, rego.metadata.chain (the
 * annotations in scope of the rule being evaluated) and rego.parse_module
 * (a module's AST as OPA's JSON); and xv_eval_builtin_lookup, which puts
 * them in front of builtins/'s table for the compiler.
 *
 * Invariant: the builtins only read the compiled policy and the running
 * evaluation's current rule.
 * Thread safety: reentrant; no state of its own.
 */
#include "eval/frame.h"
#include "eval/query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- rego.metadata.* ---- */

static const char *scope_of(const struct xv_value *annot)
{
    long i = annot ? xv_val_object_find_str(annot, "scope", 5) : -1;
    return i >= 0 && XV_OBJ_VAL(annot, i)->type == XV_T_STRING ? XV_STR(XV_OBJ_VAL(annot, i)) : "";
}

static struct rule *current_rule(struct xv_bctx *ctx)
{
    return ((struct ev *)ctx->ev)->cur_rule;
}

/* rego.metadata.rule(): the annotations of the rule being evaluated. */
static int bi_meta_rule(struct xv_bctx *ctx, struct xv_value *const *a, int n, struct xv_value **out)
{
    struct rule *r = current_rule(ctx);
    if (r && r->annot && !strcmp(scope_of(r->annot), "rule"))
        *out = xv_val_incref(r->annot);
    else
        *out = xv_val_object_new(0);
    return *out ? XV_BI_OK : XV_BI_ERROR;
}

/* The node's path below data as an array of strings. */
static struct xv_value *node_path(const struct node *n)
{
    const struct node *chain[256];
    int d = 0;
    for (const struct node *p = n; p && p->parent && d < 256; p = p->parent)
        chain[d++] = p;
    struct xv_value *arr = xv_val_array_new((size_t)d);
    for (int i = d - 1; arr && i >= 0; i--)
        xv_val_array_push(arr, chain[i]->key);
    return arr;
}

/* One element of the chain: {"path": …, "annotations": …}. */
static int push_entry(struct xv_value *chain, struct xv_value *annot, struct xv_value *path)
{
    struct xv_value *e = xv_val_object_new(2);
    if (!e)
        return -1;
    if (annot)
        xv_val_object_set_str(e, "annotations", annot);
    xv_val_object_set_str(e, "path", path);
    xv_val_array_push(chain, e);
    xv_val_decref(e);
    return 0;
}

/* Whether two modules declare the same package path. */
static int same_package(const struct module *a, const struct module *b)
{
    if (a->npkg != b->npkg)
        return 0;
    for (int i = 0; i < a->npkg; i++)
        if (strcmp(a->pkgpath[i], b->pkgpath[i]))
            return 0;
    return 1;
}

/* rego.metadata.chain(): the rule's annotations, then its package's (in
 * every module of that package), each with its path, innermost first. */
static int bi_meta_chain(struct xv_bctx *ctx, struct xv_value *const *a, int n, struct xv_value **out)
{
    struct ev *ev = (struct ev *)ctx->ev;
    struct rule *r = ev->cur_rule;
    struct xv_value *chain = xv_val_array_new(4);
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
    xv_val_decref(path);
    /* the package (annotations may sit on any module of the package) */
    for (const struct module *m = ev->c->mods; m; m = m->next) {
        if (!m->annot || !same_package(m, r->mod))
            continue;
        struct xv_value *pp = xv_val_array_new((size_t)m->npkg);
        for (int i = 0; pp && i < m->npkg; i++) {
            struct xv_value *s = xv_val_cstring(m->pkgpath[i]);
            xv_val_array_push(pp, s);
            xv_val_decref(s);
        }
        if (pp)
            push_entry(chain, m->annot, pp);
        xv_val_decref(pp);
        break;
    }
    return XV_BI_OK;
}

/* ---- rego.parse_module ---- */

static struct xv_value *ast_term(const char *type, struct xv_value *value)
{
    struct xv_value *o = xv_val_object_new(2), *t = xv_val_cstring(type);
    if (o && t) {
        xv_val_object_set_str(o, "type", t);
        xv_val_object_set_str(o, "value", value);
    }
    xv_val_decref(t);
    return o;
}

/* A ref of vars and string keys (package paths, imports, rule heads). */
static struct xv_value *ast_ref_items(struct term *t, int with_data)
{
    struct xv_value *arr = xv_val_array_new(4);
    if (with_data) {
        struct xv_value *d = xv_val_cstring("data"), *v = ast_term("var", d);
        xv_val_array_push(arr, v);
        xv_val_decref(v);
        xv_val_decref(d);
    }
    int n = t->kind == T_REF ? t->n : 1;
    struct term **items = t->kind == T_REF ? t->items : &t;
    for (int i = 0; i < n; i++) {
        struct term *it = items[i];
        struct xv_value *v = NULL;
        if (it->kind == T_VAR) {
            struct xv_value *s = xv_val_cstring(it->name);
            v = ast_term(i == 0 && !with_data ? "var" : "string", s);
            xv_val_decref(s);
        } else if (it->kind == T_VALUE) {
            v = ast_term(xv_val_type_name(it->val), it->val);
        } else {
            struct xv_value *s = xv_val_cstring("?");
            v = ast_term("var", s);
            xv_val_decref(s);
        }
        xv_val_array_push(arr, v);
        xv_val_decref(v);
    }
    return arr;
}

/* rego.parse_module(file, text): the package path, imports and each
 * rule's head as OPA's JSON AST (bodies are not rendered). */
static int bi_parse_module(struct xv_bctx *ctx, struct xv_value *const *a, int n, struct xv_value **out)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING) || xv_bi_want(ctx, a, 2, XV_T_STRING))
        return XV_BI_ERROR;
    struct xv_arena ar = {0};
    struct xv_frozen_list fz = {0};
    struct module *m = NULL;
    struct xv_perr pe;
    memset(&pe, 0, sizeof pe);
    if (xv_ast_parse_module(&ar, &fz, XV_STR(a[0]), XV_STR(a[1]), XV_STRLEN(a[1]), XV_REGO_V1, &m,
                        &pe)) {
        xv_ast_arena_free(&ar);
        xv_val_free_frozen(&fz);
        return xv_bi_error(ctx, "%s:%d: rego_parse_error: %s", XV_STR(a[0]), pe.loc.line, pe.msg);
    }
    struct xv_value *mod = xv_val_object_new(3);
    /* package: {"path": [data, "a", "b"]} (the first component is a string) */
    struct xv_value *pkg = xv_val_object_new(1);
    struct xv_value *pp = ast_ref_items(m->pkg, 1);
    xv_val_object_set_str(pkg, "path", pp);
    xv_val_decref(pp);
    xv_val_object_set_str(mod, "package", pkg);
    xv_val_decref(pkg);
    struct xv_value *imps = xv_val_array_new((size_t)m->nimports);
    for (int i = 0; i < m->nimports; i++) {
        struct xv_value *ip = ast_ref_items(m->imports[i].path, 0);
        struct xv_value *pt = ast_term("ref", ip), *io = xv_val_object_new(1);
        xv_val_object_set_str(io, "path", pt);
        xv_val_array_push(imps, io);
        xv_val_decref(ip);
        xv_val_decref(pt);
        xv_val_decref(io);
    }
    if (m->nimports)
        xv_val_object_set_str(mod, "imports", imps);
    xv_val_decref(imps);
    struct xv_value *rules = xv_val_array_new((size_t)m->nrules);
    for (int i = 0; i < m->nrules; i++) {
        struct rule *r = m->rules[i];
        struct term *h = r->href;
        struct xv_value *head = xv_val_object_new(2), *ro = xv_val_object_new(1);
        struct xv_value *name = xv_val_cstring(h->kind == T_REF ? h->items[0]->name : h->name);
        struct xv_value *ref = ast_ref_items(h, 0);
        xv_val_object_set_str(head, "name", name);
        xv_val_object_set_str(head, "ref", ref);
        xv_val_object_set_str(ro, "head", head);
        xv_val_array_push(rules, ro);
        xv_val_decref(name);
        xv_val_decref(ref);
        xv_val_decref(head);
        xv_val_decref(ro);
    }
    if (m->nrules)
        xv_val_object_set_str(mod, "rules", rules);
    xv_val_decref(rules);
    xv_ast_arena_free(&ar);
    /* values from the parse are referenced by mod: copy before freeing them */
    char *js = xv_val_json_dump(mod, 0);
    xv_val_decref(mod);
    xv_val_free_frozen(&fz);
    char msg[64];
    struct xv_value *res = NULL;
    if (!js || xv_val_json_parse(js, strlen(js), &res, msg, sizeof msg)) {
        free(js);
        return xv_bi_error(ctx, "rego.parse_module: out of memory");
    }
    free(js);
    *out = res;
    return XV_BI_OK;
}

static const struct xv_builtin_def rego_builtins[] = {
    {"rego.metadata.rule", 0, bi_meta_rule, 0},
    {"rego.metadata.chain", 0, bi_meta_chain, 0},
    {"rego.parse_module", 2, bi_parse_module, 0},
    {NULL, 0, NULL, 0},
};

const struct xv_builtin_def *xv_eval_builtin_lookup(const char *name, size_t len)
{
    for (const struct xv_builtin_def *d = rego_builtins; d->name; d++)
        if (strlen(d->name) == len && !memcmp(d->name, name, len))
            return d;
    return xv_bi_lookup(name, len);
}
