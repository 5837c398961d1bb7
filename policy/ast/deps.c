/*
 * ast/deps.c — what each rule's value can depend on: which top-level keys of
 * `input` it reads, through its own terms and through every rule and
 * function it reaches, and whether anything else may make two evaluations
 * of equal inputs differ (struct rule/node deps, XV_DEP_* in tree.h).
 *
 * The decision uses it to reuse, at the response stage, what the rules
 * that cannot see the members that stage changes produced at the request
 * stage (engine.c, eval/rules.c). So it must never say "does not depend"
 * wrongly: every reference the analysis cannot follow exactly (a data ref
 * with a computed key, `data` whole, a circle, a `with`, a
 * non-deterministic builtin) counts as depending on everything.
 *
 * Invariant: runs after link.c (refs bound to nodes, input keys listed);
 * each node is walked once (dvisit: 0 new, 1 on the walk, 2 done).
 * Thread safety: single-threaded, within one compile.
 */
#include "ast/compile.h"
#include "ast/tree.h"

#include <string.h>

static uint64_t term_deps(const struct xv_compiled *c, const struct term *t);
static uint64_t node_deps(const struct xv_compiled *c, struct node *n);

#define DEP_ALL (XV_DEP_INPUT | XV_DEP_OTHER)

/* The input key t reads when t is `input` or a ref into it (as link.c's
 * note_input decides what is read). */
static uint64_t input_dep(const struct xv_compiled *c, const struct term *t)
{
    if (t->kind == T_VAR && (t->vflags & VF_INPUT))
        return XV_DEP_INPUT;
    if (t->kind != T_REF || t->items[0]->kind != T_VAR || !(t->items[0]->vflags & VF_INPUT))
        return 0;
    const struct term *k = t->n > 1 ? t->items[1] : NULL;
    if (c->input_any || !k || k->kind != T_VALUE || k->val->type != XV_T_STRING)
        return XV_DEP_INPUT;
    for (int i = 0; i < c->ninput_keys; i++)
        if (!strcmp(c->input_keys[i], XV_STR(k->val)))
            return (uint64_t)1 << i;
    return XV_DEP_INPUT; /* not listed: cannot happen after link.c, counted as all */
}

/* Everything below node n (a package or a name with rules further down). */
static uint64_t subtree_deps(const struct xv_compiled *c, struct node *n)
{
    uint64_t d = node_deps(c, n);
    for (int i = 0; i < n->nkids && d != DEP_ALL; i++)
        d |= subtree_deps(c, n->kids[i]);
    return d;
}

static uint64_t body_deps(const struct xv_compiled *c, const struct body *b)
{
    uint64_t d = 0;
    for (int i = 0; b && i < b->n; i++) {
        const struct expr *e = b->exprs[i];
        for (;; e = e->inner) {
            if (e->nwith)
                return DEP_ALL; /* replaced input, data or functions: not followed */
            if (e->kind != E_NOT)
                break;
        }
        d |= term_deps(c, e->a) | term_deps(c, e->b) | term_deps(c, e->key) |
             body_deps(c, e->body);
        for (int k = 0; k < e->n; k++)
            d |= term_deps(c, e->items[k]);
    }
    return d;
}

static uint64_t term_deps(const struct xv_compiled *c, const struct term *t)
{
    if (!t)
        return 0;
    uint64_t d = input_dep(c, t);
    if (t->rnode) /* (a partial object's document merges the rules below it) */
        d |= subtree_deps(c, t->rnode);
    if (t->kind == T_CALL) {
        if (t->fnode)
            d |= node_deps(c, t->fnode);
        if (t->bi && (t->bi->flags & XV_BIF_NONDET))
            d |= XV_DEP_OTHER;
    }
    /* a ref's head variable (input, data, a local) is not read whole */
    int from = t->kind == T_REF && t->n && t->items[0]->kind == T_VAR;
    for (int i = from; i < t->n; i++)
        if (t->items && t->items[i])
            d |= term_deps(c, t->items[i]);
    return d | term_deps(c, t->head) | term_deps(c, t->key) | body_deps(c, t->body);
}

/* One rule with its else chain (and a function's argument patterns). */
static uint64_t rule_deps(const struct xv_compiled *c, const struct rule *r)
{
    uint64_t d = term_deps(c, r->key);
    for (int i = 0; i < r->nrest; i++)
        d |= term_deps(c, r->rest[i]);
    for (const struct rule *e = r; e; e = e->els) {
        d |= body_deps(c, e->body) | term_deps(c, e->value);
        for (int i = 0; i < e->nargs; i++)
            d |= term_deps(c, e->args[i]);
    }
    return d;
}

static uint64_t node_deps(const struct xv_compiled *c, struct node *n)
{
    if (n->dvisit == 2)
        return n->deps;
    if (n->dvisit == 1)
        return DEP_ALL; /* a circle (through a computed key): not followed */
    n->dvisit = 1;
    uint64_t d = 0;
    for (struct rule *r = n->rules; r; r = r->next)
        d |= r->deps = rule_deps(c, r);
    if (n->dflt)
        d |= n->dflt->deps = rule_deps(c, n->dflt);
    n->deps = d;
    n->dvisit = 2;
    return d;
}

static void reset(struct node *n)
{
    n->dvisit = 0;
    n->deps = 0;
    for (int i = 0; i < n->nkids; i++)
        reset(n->kids[i]);
}

void xv_ast_compute_deps(struct xv_compiled *c)
{
    if (!c->root)
        return;
    reset(c->root);
    subtree_deps(c, c->root);
}
