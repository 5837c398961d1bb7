/*
 * ast/link.c — the compiler's last phase: binds each data reference to the
 * deepest rule-tree node its constant prefix names, so evaluation starts
 * there instead of walking from data, folds collections of constants into
 * one frozen value, and (for modules) notes which top-level keys of `input`
 * any rule can read (xv_compiled.input_keys / input_any).
 *
 * Invariant: runs after names are resolved and bodies ordered; it only
 * annotates terms (rnode, rconsumed, site) or replaces a constant collection by
 * a T_VALUE, never changes what a term means.
 * Thread safety: single-threaded, within one compile.
 */
#include "ast/compile.h"
#include "ast/tree.h"

#include <string.h>

static void link_refs_term(struct cctx *x, struct term *t);

/* Note which top-level key of `input` term t reads, if t reads input: a
 * ref input.k (k a constant string) notes k; input itself as a value, or
 * under a key computed at evaluation time, notes everything (input_any).
 * Called for every term the modules evaluate, so the set is complete. */
static void note_input(struct cctx *x, const struct term *t)
{
    struct xv_compiled *c = x->c;
    if (!x->track_input || c->input_any)
        return;
    if (t->kind == T_VAR && (t->vflags & VF_INPUT)) {
        c->input_any = 1; /* input as a whole (a ref's head is not visited as a term) */
        return;
    }
    if (t->kind != T_REF || t->items[0]->kind != T_VAR || !(t->items[0]->vflags & VF_INPUT))
        return;
    const struct term *k = t->n > 1 ? t->items[1] : NULL;
    if (!k || k->kind != T_VALUE || k->val->type != XV_T_STRING) {
        c->input_any = 1;
        return;
    }
    for (int i = 0; i < c->ninput_keys; i++)
        if (!strcmp(c->input_keys[i], XV_STR(k->val)))
            return;
    if (c->ninput_keys == XV_INPUT_KEYS_MAX || strlen(XV_STR(k->val)) != XV_STRLEN(k->val)) {
        c->input_any = 1; /* too many to list, or a key with a NUL byte */
        return;
    }
    c->input_keys[c->ninput_keys++] = XV_STR(k->val);
}

/* Function arguments are patterns (compile.c lifted every ref out of
 * them); one that still names input counts as reading all of it. */
static void note_input_pattern(struct cctx *x, const struct term *t)
{
    if (!t)
        return;
    note_input(x, t);
    for (int i = 0; i < t->n; i++)
        if (t->items && t->items[i])
            note_input_pattern(x, t->items[i]);
}

/* Point every data ref in b at its rule-tree node (link_refs_term). */
void xv_ast_link_body(struct cctx *x, struct body *b)
{
    for (int i = 0; i < b->n; i++) {
        struct expr *e = b->exprs[i];
        while (e->kind == E_NOT) {
            for (int k = 0; k < e->nwith; k++)
                link_refs_term(x, e->withs[k].value);
            e = e->inner;
        }
        for (int k = 0; k < e->nwith; k++)
            link_refs_term(x, e->withs[k].value);
        if (e->a) link_refs_term(x, e->a);
        if (e->b) link_refs_term(x, e->b);
        if (e->key) link_refs_term(x, e->key);
        for (int k = 0; k < e->n; k++)
            link_refs_term(x, e->items[k]);
        if (e->body) xv_ast_link_body(x, e->body);
    }
}

/* Fold a collection whose elements are all constants into one constant
 * (after its children were folded): `x in {"a", "b"}` builds nothing at
 * evaluation time. */
static void fold_constant(struct cctx *x, struct term *t)
{
    if (t->kind != T_ARRAY && t->kind != T_SET && t->kind != T_OBJECT)
        return;
    for (int i = 0; i < t->n; i++)
        if (t->items[i]->kind != T_VALUE)
            return;
    struct xv_value *v = t->kind == T_ARRAY ? xv_val_array_new((size_t)t->n)
                       : t->kind == T_SET   ? xv_val_set_new((size_t)t->n)
                                            : xv_val_object_new((size_t)t->n / 2);
    if (!v)
        return;
    for (int i = 0; i < t->n; i++) {
        if (t->kind == T_ARRAY)
            xv_val_array_push(v, t->items[i]->val);
        else if (t->kind == T_SET)
            xv_val_set_add(v, t->items[i]->val);
        else if (i % 2 == 0)
            xv_val_object_set(v, t->items[i]->val, t->items[i + 1]->val);
    }
    xv_val_freeze(v, &x->c->fz);
    t->kind = T_VALUE;
    t->val = v;
    t->ground = 1;
}

/* A data ref whose leading items are constant strings is bound to the
 * deepest rule-tree node they name, so evaluation starts there instead of
 * walking from data; constant collections are folded on the way. */
static void link_refs_term(struct cctx *x, struct term *t)
{
    if (!t)
        return;
    note_input(x, t);
    if (t->kind == T_REF && t->items[0]->kind == T_VAR && (t->items[0]->vflags & VF_DATA)) {
        struct node *n = x->c->root;
        int i = 1;
        while (i < t->n) {
            struct term *k = t->items[i];
            if (k->kind != T_VALUE || k->val->type != XV_T_STRING)
                break;
            struct node *c = xv_ast_node_child(n, XV_STR(k->val), XV_STRLEN(k->val));
            if (!c)
                break;
            n = c;
            i++;
            if (n->nrules || n->dflt)
                break;
        }
        t->rnode = n;
        t->rconsumed = i;
    }
    if (t->kind == T_VAR && (t->vflags & VF_DATA)) {
        t->rnode = x->c->root;
        t->rconsumed = 1;
    }
    for (int i = 0; i < t->n; i++)
        if (t->items && t->items[i] && !(i == 0 && t->kind == T_REF && t->items[0]->kind == T_VAR))
            link_refs_term(x, t->items[i]);
    if (t->head) link_refs_term(x, t->head);
    if (t->key) link_refs_term(x, t->key);
    if (t->body) xv_ast_link_body(x, t->body);
    /* Once its items are folded: number the constant string keys of a ref
     * (an evaluation keeps, per number, where that key was found last:
     * eval/frame.h, hint) and note a path of constant keys (cpath). */
    if (t->kind == T_REF) {
        int path = t->items[0]->kind == T_VAR && !(t->items[0]->vflags & VF_DATA);
        for (int i = 1; i < t->n; i++) {
            path &= t->items[i]->kind == T_VALUE;
            if (t->items[i]->kind == T_VALUE && t->items[i]->val->type == XV_T_STRING)
                t->items[i]->site = (uint16_t)x->c->nsites++;
        }
        t->cpath = (uint8_t)path; /* eval/call.c reads it without enumerating */
    }
    fold_constant(x, t);
}
/* Links over a rule's bodies, values, key and ref-head items. */
void xv_ast_link_rule(struct cctx *x, struct rule *r)
{
    for (struct rule *e = r; e; e = e->els) {
        xv_ast_link_body(x, e->body);
        link_refs_term(x, e->value);
    }
    link_refs_term(x, r->key);
    for (int i = 0; i < r->nrest; i++)
        link_refs_term(x, r->rest[i]);
    for (struct rule *e = r; e; e = e->els)
        for (int i = 0; i < e->nargs; i++)
            note_input_pattern(x, e->args[i]);
}
