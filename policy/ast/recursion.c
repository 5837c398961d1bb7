/*
 * ast/recursion.c — the recursion check: a depth-first walk over the rule
 * tree following every data reference (and call) from a rule's bodies,
 * value and key to the nodes it reaches; meeting a node still on the walk
 * is OPA's rego_recursion_error, reported at the reference that closes the
 * circle.
 *
 * Invariant: every node is visited once (visit: 0 new, 1 on the walk,
 * 2 done), so the walk is linear in the references.
 * Thread safety: single-threaded, within one compile.
 */
#include "ast/compile.h"
#include "ast/tree.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ast/compile.h"

/* ---- recursion ---- */

static void dep_term(struct cctx *x, struct term *t, struct node *from);
static void visit_node(struct cctx *x, struct node *n);

/* from depends on node to: meeting a node still on the walk (visit 1) is
 * a circle, reported at loc; an unvisited one is walked now. */
static void dep_edge(struct cctx *x, struct node *to, struct node *from, struct xv_loc loc)
{
    if (to->nrules || to->dflt) {
        if (to->visit == 1) {
            x->err->loc = loc;
            snprintf(x->err->code, sizeof x->err->code, "rego_recursion_error");
            snprintf(x->err->msg, sizeof x->err->msg, "rule %s is recursive: %s -> %s",
                     to->path, to->path, to->path);
            longjmp(x->jb, 1);
        }
        if (to->visit == 0)
            visit_node(x, to);
    }
}

static void dep_all(struct cctx *x, struct node *n, struct node *from, struct xv_loc loc)
{
    dep_edge(x, n, from, loc);
    for (int i = 0; i < n->nkids; i++)
        dep_all(x, n->kids[i], from, loc);
}

/* Every data reference and call of a body is a dependency edge. */
static void dep_body(struct cctx *x, struct body *b, struct node *from)
{
    for (int i = 0; b && i < b->n; i++) {
        struct expr *e = b->exprs[i];
        while (e->kind == E_NOT)
            e = e->inner;
        if (e->a) dep_term(x, e->a, from);
        if (e->b) dep_term(x, e->b, from);
        if (e->key) dep_term(x, e->key, from);
        if (e->body) dep_body(x, e->body, from);
        for (int k = 0; k < e->nwith; k++)
            dep_term(x, e->withs[k].value, from);
    }
}

/* The dependencies of one term: its linked data node, its user function,
 * and everything in its nested terms and bodies. */
static void dep_term(struct cctx *x, struct term *t, struct node *from)
{
    if (!t)
        return;
    if (t->rnode) {
        if (t->rnode->nrules || t->rnode->dflt) {
            dep_edge(x, t->rnode, from, t->loc);
        } else if (t->kind != T_REF || t->rconsumed >= t->n) {
            /* the ref names the whole subtree */
            dep_all(x, t->rnode, from, t->loc);
        }
        /* A dynamic key (data[x]…) is not followed statically, as in OPA;
         * a cycle through it is caught when evaluation re-enters a rule. */
        /* else: a ground key with no rule below it reaches base data only */
    }
    if (t->kind == T_CALL && t->fnode)
        dep_edge(x, t->fnode, from, t->loc);
    for (int i = 0; i < t->n; i++)
        if (t->items && t->items[i])
            dep_term(x, t->items[i], from);
    if (t->head) dep_term(x, t->head, from);
    if (t->key) dep_term(x, t->key, from);
    if (t->body) dep_body(x, t->body, from);
}

/* Depth-first over the rules of node n (visit: 0 new, 1 on the walk,
 * 2 done). */
static void visit_node(struct cctx *x, struct node *n)
{
    n->visit = 1;
    for (struct rule *r = n->rules; r; r = r->next)
        for (struct rule *e = r; e; e = e->els) {
            dep_body(x, e->body, n);
            dep_term(x, e->value, n);
            dep_term(x, e->key, n);
            for (int i = 0; i < e->nrest; i++)
                dep_term(x, e->rest[i], n);
        }
    n->visit = 2;
}

void xv_ast_check_recursion(struct cctx *x, struct node *n)
{
    if ((n->nrules || n->dflt) && n->visit == 0)
        visit_node(x, n);
    for (int i = 0; i < n->nkids; i++)
        xv_ast_check_recursion(x, n->kids[i]);
}
