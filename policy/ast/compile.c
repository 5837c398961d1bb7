/*
 * ast/compile.c — turns parsed modules into the rule tree: builds the data
 * namespace, resolves names (locals to frame slots, rule names and imports
 * to data references, calls to builtins or user functions), checks arity;
 * safety.c reorders bodies the way OPA does (reporting unsafe variables),
 * recursion.c rejects recursion and link.c binds data references to
 * rule-tree nodes.
 *
 * Invariant: after a successful compile every T_VAR has a slot or is the
 * input/data root, every T_CALL has bi or fnode, and each body's
 * expressions are in an order where every variable is bound before use.
 * Thread safety: single-threaded; the result is read-only.
 */
#include "ast/compile.h"
#include "ast/tree.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Compile errors leave by longjmp to the entry point, which frees the
 * context; everything else lives in the arena. */
void xv_ast_cerr(struct cctx *x, struct xv_loc loc, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    x->err->loc = loc;
    snprintf(x->err->code, sizeof x->err->code, "%s", code);
    vsnprintf(x->err->msg, sizeof x->err->msg, fmt, ap);
    va_end(ap);
    longjmp(x->jb, 1);
}

void *xv_ast_calloc_or_die(struct cctx *x, size_t n)
{
    void *p = xv_ast_arena_alloc(&x->c->ar, n);
    if (!p) {
        struct xv_loc l = {0};
        xv_ast_cerr(x, l, "rego_compile_error", "out of memory");
    }
    return p;
}


/* ---- rule tree ---- */

struct node *xv_ast_node_child(const struct node *n, const char *name, size_t len)
{
    int lo = 0, hi = n->nkids;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        const char *k = n->kids[mid]->name;
        size_t kl = strlen(k);
        size_t m = kl < len ? kl : len;
        int c = memcmp(k, name, m);
        if (c == 0)
            c = kl < len ? -1 : kl > len;
        if (c == 0)
            return n->kids[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The child of n named name, created (with its frozen key and its
 * dotted path) when it does not exist yet. */
static struct node *node_get(struct cctx *x, struct node *n, const char *name, size_t len)
{
    struct node *k = xv_ast_node_child(n, name, len);
    if (k)
        return k;
    k = xv_ast_calloc_or_die(x, sizeof *k);
    k->name = xv_ast_arena_strdup(&x->c->ar, name, len);
    k->key = xv_val_string(name, len);
    xv_val_freeze(k->key, &x->c->fz);
    k->parent = n;
    k->id = x->c->nnodes++;
    size_t pl = strlen(n->path);
    k->path = xv_ast_calloc_or_die(x, pl + len + 2);
    memcpy(k->path, n->path, pl);
    k->path[pl] = '.';
    memcpy(k->path + pl + 1, name, len);
    if (n->nkids == n->capkids) {
        int nc = n->capkids ? n->capkids * 2 : 4;
        struct node **nk = xv_ast_calloc_or_die(x, (size_t)nc * sizeof *nk);
        if (n->nkids)
            memcpy(nk, n->kids, (size_t)n->nkids * sizeof *nk);
        n->kids = nk;
        n->capkids = nc;
    }
    int at = 0;
    while (at < n->nkids && strcmp(n->kids[at]->name, k->name) < 0)
        at++;
    memmove(n->kids + at + 1, n->kids + at, (size_t)(n->nkids - at) * sizeof *n->kids);
    n->kids[at] = k;
    n->nkids++;
    return k;
}

static struct node *pkg_node(struct cctx *x, struct module *m)
{
    struct node *n = x->c->root;
    for (int i = 0; i < m->npkg; i++)
        n = node_get(x, n, m->pkgpath[i], strlen(m->pkgpath[i]));
    return n;
}

/* Hang rule r under its package in the rule tree: the ground prefix of its
 * head ref names the node; the rest (variables of a ref head) are matched
 * at evaluation. */
static void add_rule(struct cctx *x, struct module *m, struct rule *r)
{
    struct node *n = pkg_node(x, m);
    struct term *h = r->href;
    int nitems = h->kind == T_REF ? h->n : 1;
    struct term **items = h->kind == T_REF ? h->items : &h;
    int g = nitems - r->nrest;
    if (r->kind == R_FUNC)
        g = nitems;
    n = node_get(x, n, items[0]->name, strlen(items[0]->name));
    for (int i = 1; i < g; i++) {
        if (items[i]->kind != T_VALUE || items[i]->val->type != XV_T_STRING)
            xv_ast_cerr(x, items[i]->loc, "rego_type_error", "rule head must be a ground reference");
        n = node_get(x, n, XV_STR(items[i]->val), XV_STRLEN(items[i]->val));
    }
    if (r->kind == R_FUNC) {
        if (n->nrules && !n->is_func)
            xv_ast_cerr(x, r->loc, "rego_type_error", "conflicting rules %s found", n->path);
        if (n->is_func && n->arity != r->nargs)
            xv_ast_cerr(x, r->loc, "rego_type_error", "conflicting rules %s found", n->path);
        n->is_func = 1;
        n->arity = r->nargs;
    } else if (n->is_func) {
        xv_ast_cerr(x, r->loc, "rego_type_error", "conflicting rules %s found", n->path);
    }
    for (struct rule *e = r; e; e = e->els)
        e->node = n;
    if (r->is_default) {
        if (n->dflt)
            xv_ast_cerr(x, r->loc, "rego_type_error", "multiple default rules %s found", n->path);
        n->dflt = r;
        return;
    }
    if (r->kind == R_COMPLETE)
        n->has_complete = 1;
    if (r->kind == R_SET && r->nrest == 0)
        n->has_set = 1;
    if (n->has_complete && (n->has_set || (r->kind == R_OBJECT)))
        xv_ast_cerr(x, r->loc, "rego_type_error", "conflicting rules %s found", n->path);
    /* append keeping source order */
    struct rule **pp = &n->rules;
    while (*pp)
        pp = &(*pp)->next;
    *pp = r;
    n->nrules++;
}

/* ---- scopes ---- */

static int new_slot(struct cctx *x, const char *name, int depth)
{
    if (x->nslots == x->capslots) {
        int nc = x->capslots ? x->capslots * 2 : 32;
        const char **nn = realloc(x->names, (size_t)nc * sizeof *nn);
        int *no = nn ? realloc(x->owner, (size_t)nc * sizeof *no) : NULL;
        if (!nn || !no) {
            struct xv_loc l = {0};
            if (nn)
                x->names = nn;
            xv_ast_cerr(x, l, "rego_compile_error", "out of memory");
        }
        x->names = nn;
        x->owner = no;
        x->capslots = nc;
    }
    x->names[x->nslots] = name;
    x->owner[x->nslots] = depth;
    return x->nslots++;
}

/* Add name to scope s with a fresh frame slot; returns the slot. */
static int scope_add(struct cctx *x, struct scope *s, const char *name, int declared)
{
    if (s->n == s->cap) {
        int nc = s->cap ? s->cap * 2 : 8;
        struct sname *nv = xv_ast_calloc_or_die(x, (size_t)nc * sizeof *nv);
        if (s->n)
            memcpy(nv, s->v, (size_t)s->n * sizeof *nv);
        s->v = nv;
        s->cap = nc;
    }
    int slot = new_slot(x, name, s->depth);
    s->v[s->n].name = name;
    s->v[s->n].slot = slot;
    s->v[s->n].declared = declared;
    s->v[s->n].order = declared ? s->cur : -1;
    s->n++;
    return slot;
}

static struct sname *scope_find1(struct scope *s, const char *name)
{
    for (int i = s->n - 1; i >= 0; i--)
        if (!strcmp(s->v[i].name, name))
            return &s->v[i];
    return NULL;
}

/* Lookup from a nested body: skip declarations made after it. */
static struct sname *scope_find_outer(struct scope *s, const char *name)
{
    for (int i = s->n - 1; i >= 0; i--)
        if (!strcmp(s->v[i].name, name) && !(s->v[i].declared && s->v[i].order >= s->limit))
            return &s->v[i];
    return NULL;
}

/* A comprehension or `every` body uses slot of an enclosing scope: record
 * it as a free variable of every construct being resolved deeper than the
 * slot's owner, so the evaluator can copy it into the nested frame. */
static void note_free(struct cctx *x, int slot, int owner_depth)
{
    for (int i = 0; i < x->nfstack; i++) {
        if (x->fdepth[i] <= owner_depth)
            continue;
        int *l = x->frees[i];
        int dup = 0;
        for (int k = 0; k < x->nfrees[i]; k++)
            dup |= l[k] == slot;
        if (dup)
            continue;
        int *nl = realloc(l, (size_t)(x->nfrees[i] + 1) * sizeof *nl);
        if (!nl)
            continue;
        nl[x->nfrees[i]++] = slot;
        x->frees[i] = nl;
    }
}

/* Expand a name to the data path of a rule in the current package, an
 * import, or NULL. Fills items (arena) of a fresh T_REF. */
static struct term *global_ref(struct cctx *x, const char *name, struct xv_loc loc)
{
    struct module *m = x->m;
    if (!m)
        return NULL;
    for (int i = 0; i < m->nimports; i++) {
        struct import *im = &m->imports[i];
        if (!im->alias || strcmp(im->alias, name))
            continue;
        const char *root = im->path->kind == T_REF ? im->path->items[0]->name : im->path->name;
        if (strcmp(root, "data") && strcmp(root, "input"))
            continue;
        struct term *r = xv_ast_calloc_or_die(x, sizeof *r);
        *r = *im->path;
        r->loc = loc;
        if (r->kind == T_VAR) {
            r->vflags = !strcmp(root, "data") ? VF_DATA : VF_INPUT;
            return r;
        }
        r->items = xv_ast_calloc_or_die(x, (size_t)r->n * sizeof *r->items);
        memcpy(r->items, im->path->items, (size_t)r->n * sizeof *r->items);
        struct term *h = xv_ast_calloc_or_die(x, sizeof *h);
        *h = *r->items[0];
        h->vflags = !strcmp(root, "data") ? VF_DATA : VF_INPUT;
        r->items[0] = h;
        return r;
    }
    struct node *pn = pkg_node(x, m);
    if (!xv_ast_node_child(pn, name, strlen(name)))
        return NULL;
    struct term *r = xv_ast_calloc_or_die(x, sizeof *r);
    r->kind = T_REF;
    r->loc = loc;
    r->slot = -1;
    r->n = m->npkg + 2;
    r->items = xv_ast_calloc_or_die(x, (size_t)r->n * sizeof *r->items);
    struct term *d = xv_ast_calloc_or_die(x, sizeof *d);
    d->kind = T_VAR;
    d->name = "data";
    d->vflags = VF_DATA;
    d->slot = -1;
    d->loc = loc;
    r->items[0] = d;
    for (int i = 0; i <= m->npkg; i++) {
        const char *s = i < m->npkg ? m->pkgpath[i] : name;
        struct term *k = xv_ast_calloc_or_die(x, sizeof *k);
        k->kind = T_VALUE;
        k->loc = loc;
        k->slot = -1;
        k->ground = 1;
        k->val = xv_val_cstring(s);
        xv_val_freeze(k->val, &x->c->fz);
        r->items[i + 1] = k;
    }
    return r;
}

/* Resolve a variable occurrence in place. */
static void resolve_var(struct cctx *x, struct term *t, struct scope *s)
{
    if (t->vflags & (VF_DATA | VF_INPUT))
        return;
    if (t->vflags & VF_WILDCARD) {
        t->slot = scope_add(x, s, t->name, 1);
        return;
    }
    for (struct scope *sc = s; sc; sc = sc->parent) {
        struct sname *sn = sc == s ? scope_find1(sc, t->name) : scope_find_outer(sc, t->name);
        if (sn) {
            t->slot = sn->slot;
            if (sc != s)
                note_free(x, sn->slot, sc->depth);
            return;
        }
    }
    struct term *g = global_ref(x, t->name, t->loc);
    if (g) {
        *t = *g;
        return;
    }
    t->slot = scope_add(x, s, t->name, 0);
}

/* Declare the variables of an assignment / some / argument pattern;
 * strict (:=) refuses a name assigned or referenced earlier in the body,
 * as OPA does. */
static void declare_pattern(struct cctx *x, struct term *t, struct scope *s, int strict)
{
    switch (t->kind) {
    case T_VAR:
        if (t->vflags & (VF_DATA | VF_INPUT))
            xv_ast_cerr(x, t->loc, "rego_compile_error", "cannot assign to %s", t->name);
        if (!(t->vflags & VF_WILDCARD) && strict) {
            struct sname *sn = scope_find1(s, t->name);
            if (sn && sn->declared)
                xv_ast_cerr(x, t->loc, "rego_compile_error", "var %s assigned above", t->name);
            if (sn && !sn->declared)
                xv_ast_cerr(x, t->loc, "rego_compile_error", "var %s referenced above", t->name);
        }
        t->slot = scope_add(x, s, t->name, 1);
        break;
    case T_ARRAY:
        for (int i = 0; i < t->n; i++)
            declare_pattern(x, t->items[i], s, strict);
        break;
    case T_OBJECT:
        for (int i = 1; i < t->n; i += 2)
            declare_pattern(x, t->items[i], s, strict);
        break;
    default:
        break;
    }
}

static void resolve_term(struct cctx *x, struct term *t, struct scope *s, struct pend **pend,
                         int *npend);
static void resolve_body(struct cctx *x, struct body *b, struct scope *s);

/* Defer a comprehension or `every` body: it is resolved after the
 * enclosing body, in a child scope, once every outer name is known. */
static void push_pend(struct cctx *x, struct pend **pend, int *npend, struct term *t, struct expr *e)
{
    /* arena-allocated: a compile error (longjmp) leaves nothing to free */
    struct pend *np = xv_ast_calloc_or_die(x, (size_t)(*npend + 1) * sizeof *np);
    if (*npend)
        memcpy(np, *pend, (size_t)*npend * sizeof *np);
    np[*npend].t = t;
    np[*npend].e = e;
    np[*npend].at = 0;
    *pend = np;
    (*npend)++;
}

/* Dotted call name -> builtin or user function. */
static void resolve_call(struct cctx *x, struct term *t, struct scope *s)
{
    const char *name = t->name;
    const char *dot = strchr(name, '.');
    size_t first = dot ? (size_t)(dot - name) : strlen(name);
    struct node *fn = NULL;
    char buf[512];
    /* user function via data.…, an import, or the current package */
    if (first == 4 && !strncmp(name, "data", 4) && dot) {
        fn = x->c->root;
        const char *p = dot + 1;
        while (fn && *p) {
            const char *e = strchr(p, '.');
            size_t l = e ? (size_t)(e - p) : strlen(p);
            fn = xv_ast_node_child(fn, p, l);
            p = e ? e + 1 : p + l;
        }
    } else if (x->m) {
        snprintf(buf, sizeof buf, "%.*s", (int)first, name);
        struct term *g = global_ref(x, buf, t->loc);
        if (g && g->kind == T_REF && (g->items[0]->vflags & VF_DATA)) {
            fn = x->c->root;
            for (int i = 1; fn && i < g->n; i++) {
                struct term *k = g->items[i];
                if (k->kind != T_VALUE || k->val->type != XV_T_STRING) {
                    fn = NULL;
                    break;
                }
                fn = xv_ast_node_child(fn, XV_STR(k->val), XV_STRLEN(k->val));
            }
            const char *p = dot ? dot + 1 : NULL;
            while (fn && p && *p) {
                const char *e = strchr(p, '.');
                size_t l = e ? (size_t)(e - p) : strlen(p);
                fn = xv_ast_node_child(fn, p, l);
                p = e ? e + 1 : p + l;
            }
        }
    }
    int nargs = t->n - 1;
    if (fn && fn->is_func) {
        t->fnode = fn;
        if (nargs == fn->arity + 1)
            t->outarg = 1;
        else if (nargs != fn->arity)
            xv_ast_cerr(x, t->loc, "rego_type_error", "%s: arity mismatch", name);
        return;
    }
    const struct xv_builtin_def *bi = x->c->lookup(name, strlen(name));
    if (!bi)
        xv_ast_cerr(x, t->loc, "rego_type_error", "undefined function %s", name);
    t->bi = bi;
    if (bi->flags & XV_BIF_NONDET)
        x->c->nondet = 1;
    if (bi->arity >= 0) {
        if (nargs == bi->arity + 1)
            t->outarg = 1;
        else if (nargs != bi->arity)
            xv_ast_cerr(x, t->loc, "rego_type_error", "%s: arity mismatch", name);
    }
}

/* Resolve the names in term t: locals to slots, rule names and imports to
 * data refs, calls to builtins or user functions (with arity checks);
 * nested bodies are deferred (push_pend). */
static void resolve_term(struct cctx *x, struct term *t, struct scope *s, struct pend **pend,
                         int *npend)
{
    int i;
    switch (t->kind) {
    case T_VALUE:
        return;
    case T_VAR:
        resolve_var(x, t, s);
        return;
    case T_REF: {
        struct term *h = t->items[0];
        for (i = 1; i < t->n; i++)
            resolve_term(x, t->items[i], s, pend, npend);
        if (h->kind == T_VAR) {
            resolve_var(x, h, s);
            if (h->kind == T_REF) {
                /* splice the expansion */
                int n = h->n + t->n - 1;
                struct term **items = xv_ast_calloc_or_die(x, (size_t)n * sizeof *items);
                memcpy(items, h->items, (size_t)h->n * sizeof *items);
                memcpy(items + h->n, t->items + 1, (size_t)(t->n - 1) * sizeof *items);
                t->items = items;
                t->n = n;
            }
        } else {
            resolve_term(x, h, s, pend, npend);
        }
        return;
    }
    case T_CALL:
        for (i = 1; i < t->n; i++)
            resolve_term(x, t->items[i], s, pend, npend);
        resolve_call(x, t, s);
        return;
    case T_ARRAY:
    case T_SET:
    case T_OBJECT:
    case T_TEMPLATE:
        for (i = 0; i < t->n; i++)
            resolve_term(x, t->items[i], s, pend, npend);
        return;
    case T_ACOMP:
    case T_SCOMP:
    case T_OCOMP:
        push_pend(x, pend, npend, t, NULL);
        return;
    }
}

/* A `with` target: input/data paths must be ground; a function or builtin
 * target is replaced by a value, a builtin or another function. */
static void resolve_with_target(struct cctx *x, struct with *w, struct scope *s)
{
    struct term *t = w->target;
    const char *root = t->kind == T_REF ? (t->items[0]->kind == T_VAR ? t->items[0]->name : "")
                                        : t->name;
    if (!strcmp(root, "input") || !strcmp(root, "data")) {
        struct term *h = t->kind == T_REF ? t->items[0] : t;
        h->vflags |= !strcmp(root, "data") ? VF_DATA : VF_INPUT;
        for (int i = 1; t->kind == T_REF && i < t->n; i++)
            if (t->items[i]->kind != T_VALUE)
                xv_ast_cerr(x, t->loc, "rego_compile_error", "with keyword target must be ground");
        return;
    }
    /* function mock: resolve like a call with no args */
    struct term call = {0};
    call.kind = T_CALL;
    call.loc = t->loc;
    call.n = 1;
    struct xv_buf b;
    xv_buf_init(&b, 4096);
    if (t->kind == T_VAR) {
        xv_buf_append(&b, t->name, strlen(t->name));
    } else {
        xv_buf_append(&b, root, strlen(root));
        for (int i = 1; i < t->n; i++) {
            struct term *k = t->items[i];
            if (k->kind != T_VALUE || k->val->type != XV_T_STRING)
                break;
            xv_buf_append(&b, ".", 1);
            xv_buf_append(&b, XV_STR(k->val), XV_STRLEN(k->val));
        }
    }
    call.name = xv_ast_arena_strdup(&x->c->ar, b.data ? b.data : "", b.len);
    xv_buf_free(&b);
    const struct xv_builtin_def *bi = NULL;
    struct node *fn = NULL;
    /* resolve without arity checks */
    const char *name = call.name;
    bi = x->c->lookup(name, strlen(name));
    {
        jmp_buf save;
        memcpy(save, x->jb, sizeof save);
        struct xv_cerr e2 = *x->err;
        if (setjmp(x->jb) == 0) {
            call.n = 1;
            resolve_call(x, &call, s);
        }
        memcpy(x->jb, save, sizeof save);
        *x->err = e2;
        fn = call.fnode;
        if (!bi)
            bi = call.bi;
    }
    if (!bi && !fn)
        xv_ast_cerr(x, t->loc, "rego_compile_error",
             "with keyword cannot replace %s: unknown function", name);
    w->tbi = fn ? NULL : bi;
    w->tnode = fn;
    /* the value may name a function too */
    struct term *v = w->value;
    if (v->kind == T_VAR || v->kind == T_REF) {
        const char *vn = NULL;
        if (v->kind == T_VAR) {
            vn = v->name;
        } else if (v->items[0]->kind == T_VAR) {
            xv_buf_init(&b, 4096);
            xv_buf_append(&b, v->items[0]->name, strlen(v->items[0]->name));
            for (int i = 1; i < v->n; i++) {
                struct term *k = v->items[i];
                if (k->kind != T_VALUE || k->val->type != XV_T_STRING) {
                    xv_buf_free(&b);
                    b.data = NULL;
                    break;
                }
                xv_buf_append(&b, ".", 1);
                xv_buf_append(&b, XV_STR(k->val), XV_STRLEN(k->val));
            }
            if (b.data)
                vn = xv_ast_arena_strdup(&x->c->ar, b.data, b.len);
            xv_buf_free(&b);
        }
        if (vn) {
            int local = 0;
            if (v->kind == T_VAR || v->items[0]->kind == T_VAR) {
                const char *hn = v->kind == T_VAR ? v->name : v->items[0]->name;
                for (struct scope *sc = s; sc && !local; sc = sc->parent)
                    local = scope_find1(sc, hn) != NULL;
            }
            if (!local) {
                struct term c2 = {0};
                c2.kind = T_CALL;
                c2.n = 1;
                c2.name = vn;
                jmp_buf save;
                memcpy(save, x->jb, sizeof save);
                struct xv_cerr e2 = *x->err;
                if (setjmp(x->jb) == 0)
                    resolve_call(x, &c2, s);
                memcpy(x->jb, save, sizeof save);
                *x->err = e2;
                if (c2.fnode)
                    w->vnode = c2.fnode;
                else if (c2.bi)
                    w->vbi = c2.bi;
            }
        }
    }
}

/* Resolve one expression and its `with` modifiers. */
static void resolve_expr(struct cctx *x, struct expr *e, struct scope *s, struct pend **pend,
                         int *npend)
{
    int i;
    for (i = 0; i < e->nwith; i++) {
        resolve_with_target(x, &e->withs[i], s);
        if (!e->withs[i].vbi && !e->withs[i].vnode)
            resolve_term(x, e->withs[i].value, s, pend, npend);
    }
    switch (e->kind) {
    case E_SOME:
        for (i = 0; i < e->n; i++)
            declare_pattern(x, e->items[i], s, 0);
        break;
    case E_ASSIGN:
        resolve_term(x, e->b, s, pend, npend);
        if (e->a->kind != T_VAR && e->a->kind != T_ARRAY && e->a->kind != T_OBJECT)
            xv_ast_cerr(x, e->a->loc, "rego_compile_error", "cannot assign to %s",
                 e->a->kind == T_REF ? "ref" : e->a->kind == T_CALL ? "call" : "value");
        if (e->a->kind == T_OBJECT)
            for (i = 0; i < e->a->n; i += 2)
                resolve_term(x, e->a->items[i], s, pend, npend);
        declare_pattern(x, e->a, s, 1);
        break;
    case E_SOMEIN:
        resolve_term(x, e->b, s, pend, npend);
        if (e->key) {
            if (e->key->kind == T_VAR)
                declare_pattern(x, e->key, s, 0);
            else
                resolve_term(x, e->key, s, pend, npend);
        }
        if (e->a->kind == T_VAR || e->a->kind == T_ARRAY)
            declare_pattern(x, e->a, s, 0);
        else
            resolve_term(x, e->a, s, pend, npend);
        break;
    case E_EVERY:
        resolve_term(x, e->b, s, pend, npend);
        push_pend(x, pend, npend, NULL, e);
        break;
    case E_NOT:
        resolve_expr(x, e->inner, s, pend, npend);
        break;
    case E_UNIFY:
        resolve_term(x, e->a, s, pend, npend);
        resolve_term(x, e->b, s, pend, npend);
        break;
    case E_TERM:
        resolve_term(x, e->a, s, pend, npend);
        break;
    }
}

/* Start collecting the free variables of a nested construct at depth. */
static void push_free(struct cctx *x, int depth)
{
    int n = x->nfstack + 1;
    int **f = realloc(x->frees, (size_t)n * sizeof *f);
    int *nf = f ? realloc(x->nfrees, (size_t)n * sizeof *nf) : NULL;
    int *fd = nf ? realloc(x->fdepth, (size_t)n * sizeof *fd) : NULL;
    if (f) x->frees = f;
    if (nf) x->nfrees = nf;
    if (fd) x->fdepth = fd;
    if (!f || !nf || !fd) {
        struct xv_loc l = {0};
        xv_ast_cerr(x, l, "rego_compile_error", "out of memory");
    }
    x->frees[x->nfstack] = NULL;
    x->nfrees[x->nfstack] = 0;
    x->fdepth[x->nfstack] = depth;
    x->nfstack++;
}

/* Stop collecting: the free-variable list moves into the arena. */
static void pop_free(struct cctx *x, int **out, int *nout)
{
    x->nfstack--;
    int n = x->nfrees[x->nfstack];
    int *l = x->frees[x->nfstack];
    *nout = n;
    *out = n ? xv_ast_calloc_or_die(x, (size_t)n * sizeof(int)) : NULL;
    if (n)
        memcpy(*out, l, (size_t)n * sizeof(int));
    free(l);
}

/* Resolve the deferred nested bodies, each in its own child scope that
 * sees only the declarations before the expression it appears in. */
static void resolve_pending(struct cctx *x, struct pend *pd, int np, struct scope *s)
{
    for (int i = 0; i < np; i++) {
        struct scope child = {s, NULL, 0, 0, s->depth + 1, 0, 0};
        s->limit = pd[i].at;
        push_free(x, child.depth);
        if (pd[i].t) {
            struct term *t = pd[i].t;
            resolve_body(x, t->body, &child);
            struct pend *p2 = NULL;
            int n2 = 0;
            if (t->key)
                resolve_term(x, t->key, &child, &p2, &n2);
            resolve_term(x, t->head, &child, &p2, &n2);
            resolve_pending(x, p2, n2, &child);
            pop_free(x, &t->free, &t->nfree);
        } else {
            struct expr *e = pd[i].e;
            child.cur = -1; /* binders are visible to everything inside */
            if (e->key)
                declare_pattern(x, e->key, &child, 0);
            declare_pattern(x, e->a, &child, 0);
            resolve_body(x, e->body, &child);
            pop_free(x, &e->free, &e->nfree);
        }
        /* free vars of an inner construct are free in this one too when
         * they belong further out: note_free already recorded them. */
    }
}

/* Resolve a body expression by expression, then its deferred bodies. */
static void resolve_body(struct cctx *x, struct body *b, struct scope *s)
{
    struct pend *pd = NULL;
    int np = 0;
    for (int i = 0; i < b->n; i++) {
        int before = np;
        s->cur = i;
        resolve_expr(x, b->exprs[i], s, &pd, &np);
        for (int j = before; j < np; j++)
            pd[j].at = i;
    }
    s->cur = b->n;
    resolve_pending(x, pd, np, s);
}


/* An argument that compile_rule can declare as it stands: a constant, a
 * variable, or an array / object of those under constant keys. Anything
 * nested deeper (a call such as `-{}`, a ref, a template, a set or a
 * comprehension inside an array) needs the body's resolution. */
static int is_arg_pattern(const struct term *t)
{
    switch (t->kind) {
    case T_VALUE:
    case T_VAR:
        return 1;
    case T_ARRAY:
        for (int i = 0; i < t->n; i++)
            if (!is_arg_pattern(t->items[i]))
                return 0;
        return 1;
    case T_OBJECT:
        for (int i = 0; i + 1 < t->n; i += 2)
            if (t->items[i]->kind != T_VALUE || !is_arg_pattern(t->items[i + 1]))
                return 0;
        return 1;
    default:
        return 0;
    }
}

/* Function arguments that are not patterns (templates, calls, refs, and
 * arrays or objects holding one) become `$aN = arg` at the start of every
 * body of the chain, as OPA rewrites them, so the safety ordering can place
 * them after what binds their vars. Sets and comprehensions at the top stay
 * (compile_rule resolves them in place). */
static void lift_func_args(struct cctx *x, struct rule *r)
{
    for (int i = 0; i < r->nargs; i++) {
        struct term *a = r->args[i];
        int lift = a->kind == T_TEMPLATE || a->kind == T_CALL || a->kind == T_REF ||
                   ((a->kind == T_ARRAY || a->kind == T_OBJECT) && !is_arg_pattern(a));
        if (!lift)
            continue;
        struct term *v = xv_ast_calloc_or_die(x, sizeof *v);
        v->kind = T_VAR;
        v->loc = a->loc;
        v->slot = -1;
        char nm[24];
        snprintf(nm, sizeof nm, "$a%d", i);
        v->name = xv_ast_arena_strdup(&x->c->ar, nm, strlen(nm));
        r->args[i] = v;
        for (struct rule *e = r; e; e = e->els) {
            struct expr *u = xv_ast_calloc_or_die(x, sizeof *u);
            u->kind = E_UNIFY;
            u->loc = a->loc;
            u->a = xv_ast_calloc_or_die(x, sizeof *u->a);
            *u->a = *v;
            u->b = a;
            struct expr **ne = xv_ast_calloc_or_die(x, (size_t)(e->body->n + 1) * sizeof *ne);
            ne[0] = u;
            memcpy(ne + 1, e->body->exprs, (size_t)e->body->n * sizeof *ne);
            e->body->exprs = ne;
            e->body->n++;
        }
    }
}

/* One rule (with its else chain): arguments first (visible everywhere),
 * then bodies, value and key; safety and reordering (safety.c); every
 * else gets the rule's frame size. */
static void compile_rule(struct cctx *x, struct rule *r)
{
    struct scope s = {0};
    if (r->kind == R_FUNC)
        lift_func_args(x, r);
    s.cur = -1; /* arguments are visible everywhere */
    x->nslots = 0;
    struct pend *pd = NULL;
    int np = 0;
    for (int i = 0; i < r->nargs; i++) {
        if (r->args[i]->kind == T_VAR || r->args[i]->kind == T_ARRAY || r->args[i]->kind == T_OBJECT)
            declare_pattern(x, r->args[i], &s, 0);
        else
            resolve_term(x, r->args[i], &s, &pd, &np);
    }
    for (struct rule *e = r; e; e = e->els) {
        resolve_body(x, e->body, &s);
        if (e->value)
            resolve_term(x, e->value, &s, &pd, &np);
    }
    if (r->key)
        resolve_term(x, r->key, &s, &pd, &np);
    for (int i = 0; i < r->nrest; i++)
        resolve_term(x, r->rest[i], &s, &pd, &np);
    for (int j = 0; j < np; j++)
        pd[j].at = 1 << 30;
    resolve_pending(x, pd, np, &s);
    xv_ast_check_rule_safety(x, r);
    for (struct rule *e = r; e; e = e->els)
        e->nslots = x->nslots;
}

/* Free what the context holds outside the arena (slot names, owners and
 * the free-variable stacks). */
static void ctx_free(struct cctx *x)
{
    free(x->names);
    free(x->owner);
    for (int i = 0; i < x->nfstack; i++)
        free(x->frees[i]);
    free(x->frees);
    free(x->nfrees);
    free(x->fdepth);
}

/* Entry point: every parsed module into the rule tree, then names, safety
 * and recursion; 0 or -1 with err. */
int xv_ast_compile_modules(struct xv_compiled *c, struct xv_cerr *err)
{
    struct cctx x;
    memset(&x, 0, sizeof x);
    x.c = c;
    x.err = err;
    if (setjmp(x.jb)) {
        ctx_free(&x);
        return -1;
    }
    if (!c->root) {
        c->root = xv_ast_calloc_or_die(&x, sizeof *c->root);
        c->root->name = "data";
        c->root->path = "data";
        c->root->id = c->nnodes++;
    }
    for (struct module *m = c->mods; m; m = m->next) {
        pkg_node(&x, m); /* empty packages still exist as {} */
        for (int i = 0; i < m->nrules; i++)
            add_rule(&x, m, m->rules[i]);
    }
    for (struct module *m = c->mods; m; m = m->next) {
        x.m = m;
        for (int i = 0; i < m->nrules; i++)
            compile_rule(&x, m->rules[i]);
    }
    c->input_any = 0;
    c->ninput_keys = 0;
    x.track_input = 1;
    for (struct module *m = c->mods; m; m = m->next)
        for (int i = 0; i < m->nrules; i++)
            xv_ast_link_rule(&x, m->rules[i]);
    xv_ast_check_recursion(&x, c->root);
    xv_ast_compute_deps(c);
    ctx_free(&x);
    return 0;
}

/* Entry point: an ad-hoc query body against the compiled tree (names,
 * safety, links); its variables get slots named in *names. */
int xv_ast_compile_query(struct xv_compiled *c, struct body *q, int *nslots, const char ***names,
                     struct xv_cerr *err)
{
    struct cctx x;
    memset(&x, 0, sizeof x);
    x.c = c;
    x.err = err;
    if (setjmp(x.jb)) {
        ctx_free(&x);
        return -1;
    }
    struct scope s = {0};
    resolve_body(&x, q, &s);
    uint8_t *B = calloc((size_t)x.nslots + 1, 1);
    struct term *bad = NULL;
    if (!B || xv_ast_order_body(&x, q, B, &bad)) {
        free(B);
        xv_ast_unsafe(&x, bad, q->n ? q->exprs[0]->loc : (struct xv_loc){0});
    }
    free(B);
    xv_ast_link_body(&x, q);
    *nslots = x.nslots;
    const char **nm = xv_ast_calloc_or_die(&x, (size_t)(x.nslots + 1) * sizeof *nm);
    for (int i = 0; i < x.nslots; i++)
        nm[i] = x.names[i];
    *names = nm;
    ctx_free(&x);
    return 0;
}
