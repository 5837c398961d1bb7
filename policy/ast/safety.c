/*
 * ast/safety.c — OPA's safety check and body reordering: each body's
 * expressions are put in an order where every variable is bound before it
 * is used (a generator before its consumers, negations and comparisons
 * after), nested bodies (comprehensions, every) ordered the same way, and
 * the first variable that can never be bound reported as unsafe.
 *
 * Invariant: reordering only permutes a body's expressions; a body that
 * cannot be ordered is left as it was and its unsafe term returned.
 * Thread safety: single-threaded, within one compile.
 */
#include "ast/tree.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ast/compile.h"

/* ---- safety ---- */

enum { M_VALUE, M_PATTERN };

struct bset {
    uint8_t *b; /* slot -> bound */
    int n;      /* slots */
};


/* Check that t can be evaluated (M_VALUE) or matched (M_PATTERN) with the
 * bound set; on success marks the vars it binds. Returns 0 or -1. */
static int check_term(struct term *t, uint8_t *B, int mode, struct term **bad)
{
    int i;
    switch (t->kind) {
    case T_VALUE:
        return 0;
    case T_VAR:
        if (t->slot < 0 || B[t->slot])
            return 0;
        if (mode == M_PATTERN) {
            B[t->slot] = 1;
            return 0;
        }
        *bad = t;
        return -1;
    case T_REF:
        if (t->items[0]->kind == T_VAR) {
            if (check_term(t->items[0], B, M_VALUE, bad))
                return -1;
        } else if (check_term(t->items[0], B, M_VALUE, bad)) {
            return -1;
        }
        for (i = 1; i < t->n; i++) {
            struct term *k = t->items[i];
            if (k->kind == T_VAR && k->slot >= 0 && !B[k->slot]) {
                B[k->slot] = 1; /* enumerated */
                continue;
            }
            if (check_term(k, B, (k->kind == T_ARRAY || k->kind == T_OBJECT) ? M_PATTERN : M_VALUE, bad))
                return -1;
        }
        return 0;
    case T_CALL:
        /* reference arguments are evaluated first (see eval_call) */
        for (i = 1; i < t->n; i++)
            if (t->items[i]->kind == T_REF && check_term(t->items[i], B, M_VALUE, bad))
                return -1;
        for (i = 1; i < t->n; i++)
            if (t->items[i]->kind != T_REF && check_term(t->items[i], B, M_VALUE, bad))
                return -1;
        return 0;
    case T_ARRAY:
    case T_SET:
    case T_TEMPLATE:
        for (i = 0; i < t->n; i++)
            if (check_term(t->items[i], B, t->kind == T_ARRAY ? mode : M_VALUE, bad))
                return -1;
        return 0;
    case T_OBJECT:
        for (i = 0; i < t->n; i++)
            if (check_term(t->items[i], B, (i & 1) ? mode : M_VALUE, bad))
                return -1;
        return 0;
    case T_ACOMP:
    case T_SCOMP:
    case T_OCOMP:
        for (i = 0; i < t->nfree; i++)
            if (!B[t->free[i]]) {
                /* find a term naming it for the message */
                static struct term fake;
                fake.slot = t->free[i];
                fake.loc = t->loc;
                *bad = &fake;
                return -1;
            }
        return 0;
    }
    return 0;
}

static int is_pattern_shape(struct term *t)
{
    return t->kind == T_VAR || t->kind == T_ARRAY || t->kind == T_OBJECT;
}

/* a = b is safe if one side can be evaluated and the other then matched
 * (tried both ways), binding the pattern's variables. */
static int check_unify(struct term *a, struct term *b, uint8_t *B, int n, struct term **bad)
{
    uint8_t *T = malloc((size_t)n + 1);
    if (!T)
        return -1;
    int ok = -1;
    struct term *bad1 = NULL;
    /* b evaluable, a pattern */
    memcpy(T, B, (size_t)n);
    if (!check_term(b, T, M_VALUE, &bad1) && !check_term(a, T, M_PATTERN, bad)) {
        ok = 0;
        goto done;
    }
    memcpy(T, B, (size_t)n);
    if (!check_term(a, T, M_VALUE, bad) && !check_term(b, T, M_PATTERN, bad)) {
        ok = 0;
        goto done;
    }
    if (a->kind == T_ARRAY && b->kind == T_ARRAY && a->n == b->n) {
        memcpy(T, B, (size_t)n);
        ok = 0;
        for (int i = 0; i < a->n && !ok; i++)
            ok = check_unify(a->items[i], b->items[i], T, n, bad);
        if (!ok)
            goto done;
    }
    if (a->kind == T_OBJECT && b->kind == T_OBJECT && a->n == b->n) {
        memcpy(T, B, (size_t)n);
        ok = 0;
        for (int i = 1; i < a->n && !ok; i += 2)
            ok = check_unify(a->items[i], b->items[i], T, n, bad);
        if (!ok)
            goto done;
    }
    ok = -1;
    if (bad1 && !is_pattern_shape(b))
        *bad = bad1;
done:
    if (!ok)
        memcpy(B, T, (size_t)n);
    free(T);
    return ok;
}



/* Whether expression e can run with the variables bound in B, marking
 * the ones it binds; -1 with the unsafe term in *bad. */
static int check_expr(struct cctx *x, struct expr *e, uint8_t *B, struct term **bad)
{
    int n = x->nslots;
    int i;
    for (i = 0; i < e->nwith; i++)
        if (!e->withs[i].vbi && !e->withs[i].vnode &&
            check_term(e->withs[i].value, B, M_VALUE, bad))
            return -1;
    switch (e->kind) {
    case E_SOME:
        return 0;
    case E_TERM:
        if (e->a->kind == T_CALL && e->a->outarg) {
            for (i = 1; i < e->a->n - 1; i++)
                if (check_term(e->a->items[i], B, M_VALUE, bad))
                    return -1;
            return check_term(e->a->items[e->a->n - 1], B, M_PATTERN, bad);
        }
        return check_term(e->a, B, M_VALUE, bad);
    case E_UNIFY:
    case E_ASSIGN:
        return check_unify(e->a, e->b, B, n, bad);
    case E_SOMEIN:
        if (check_term(e->b, B, M_VALUE, bad))
            return -1;
        if (e->key && check_term(e->key, B, M_PATTERN, bad))
            return -1;
        return check_term(e->a, B, M_PATTERN, bad);
    case E_NOT: {
        uint8_t *T = malloc((size_t)n + 1);
        if (!T)
            return -1;
        memcpy(T, B, (size_t)n);
        int rc = check_expr(x, e->inner, T, bad);
        if (!rc) {
            /* vars first bound inside the negation must be wildcards */
            for (i = 0; i < n; i++)
                if (T[i] && !B[i] && x->names[i][0] != '$') {
                    static struct term fake;
                    fake.slot = i;
                    fake.loc = e->loc;
                    *bad = &fake;
                    rc = -1;
                    break;
                }
        }
        free(T);
        return rc;
    }
    case E_EVERY: {
        if (check_term(e->b, B, M_VALUE, bad))
            return -1;
        for (i = 0; i < e->nfree; i++)
            if (!B[e->free[i]]) {
                static struct term fake;
                fake.slot = e->free[i];
                fake.loc = e->loc;
                *bad = &fake;
                return -1;
            }
        return 0;
    }
    }
    return 0;
}

static int order_term_bodies(struct cctx *x, struct term *t, uint8_t *B, struct term **bad);

/* Order the nested bodies (comprehensions, every) inside an expression,
 * each in a copy of the bound set of its position. */
static int order_expr_bodies(struct cctx *x, struct expr *e, uint8_t *B, struct term **bad)
{
    int n = x->nslots, rc = 0;
    for (int i = 0; i < e->nwith && !rc; i++)
        rc = order_term_bodies(x, e->withs[i].value, B, bad);
    if (rc)
        return rc;
    switch (e->kind) {
    case E_NOT:
        return order_expr_bodies(x, e->inner, B, bad);
    case E_EVERY: {
        uint8_t *T = malloc((size_t)n + 1);
        if (!T)
            return -1;
        memcpy(T, B, (size_t)n);
        if ((rc = order_term_bodies(x, e->b, T, bad)) == 0) {
            if (e->key)
                check_term(e->key, T, M_PATTERN, bad);
            check_term(e->a, T, M_PATTERN, bad);
            rc = xv_ast_order_body(x, e->body, T, bad);
        }
        free(T);
        return rc;
    }
    default:
        if (e->a && (rc = order_term_bodies(x, e->a, B, bad)))
            return rc;
        if (e->b && (rc = order_term_bodies(x, e->b, B, bad)))
            return rc;
        if (e->key && (rc = order_term_bodies(x, e->key, B, bad)))
            return rc;
        return 0;
    }
}

/* The same for the comprehensions inside a term. */
static int order_term_bodies(struct cctx *x, struct term *t, uint8_t *B, struct term **bad)
{
    int rc = 0;
    if (t->kind == T_ACOMP || t->kind == T_SCOMP || t->kind == T_OCOMP) {
        int n = x->nslots;
        uint8_t *T = malloc((size_t)n + 1);
        if (!T)
            return -1;
        memcpy(T, B, (size_t)n);
        rc = xv_ast_order_body(x, t->body, T, bad);
        if (!rc && t->key)
            rc = check_term(t->key, T, M_VALUE, bad);
        if (!rc)
            rc = check_term(t->head, T, M_VALUE, bad);
        if (!rc)
            rc = order_term_bodies(x, t->head, T, bad);
        free(T);
        return rc;
    }
    for (int i = 0; i < t->n && !rc; i++)
        if (t->items && t->items[i])
            rc = order_term_bodies(x, t->items[i], B, bad);
    return rc;
}

/* Greedy reordering: repeatedly take the first expression that is safe. */
int xv_ast_order_body(struct cctx *x, struct body *b, uint8_t *B, struct term **bad)
{
    int n = b->n;
    struct expr **out = xv_ast_calloc_or_die(x, (size_t)(n ? n : 1) * sizeof *out);
    uint8_t *done = calloc((size_t)n + 1, 1);
    if (!done)
        return -1;
    int k = 0;
    while (k < n) {
        int picked = -1;
        struct term *firstbad = NULL;
        for (int i = 0; i < n; i++) {
            if (done[i])
                continue;
            struct term *bd = NULL;
            uint8_t *T = malloc((size_t)x->nslots + 1);
            if (!T) {
                free(done);
                return -1;
            }
            memcpy(T, B, (size_t)x->nslots);
            if (check_expr(x, b->exprs[i], T, &bd) == 0) {
                memcpy(B, T, (size_t)x->nslots);
                free(T);
                picked = i;
                break;
            }
            free(T);
            if (!firstbad)
                firstbad = bd;
        }
        if (picked < 0) {
            *bad = firstbad;
            free(done);
            return -1;
        }
        /* nested bodies see the bindings made so far (before this expr's
         * outputs, approximated by after) */
        if (order_expr_bodies(x, b->exprs[picked], B, bad)) {
            free(done);
            return -1;
        }
        done[picked] = 1;
        out[k++] = b->exprs[picked];
    }
    free(done);
    b->exprs = out;
    return 0;
}

void xv_ast_unsafe(struct cctx *x, struct term *bad, struct xv_loc fallback)
{
    const char *nm = bad && bad->slot >= 0 && bad->slot < x->nslots ? x->names[bad->slot] : "?";
    if (nm[0] == '$')
        nm = "_";
    xv_ast_cerr(x, bad ? bad->loc : fallback, "rego_unsafe_var_error", "var %s is unsafe", nm);
}

void xv_ast_check_rule_safety(struct cctx *x, struct rule *r)
{
    int n = x->nslots;
    uint8_t *B = calloc((size_t)n + 1, 1);
    if (!B)
        xv_ast_cerr(x, r->loc, "rego_compile_error", "out of memory");
    for (struct rule *e = r; e; e = e->els) {
        memset(B, 0, (size_t)n);
        struct term *bad = NULL;
        for (int i = 0; i < r->nargs; i++)
            check_term(r->args[i], B, M_PATTERN, &bad);
        if (xv_ast_order_body(x, e->body, B, &bad)) {
            free(B);
            xv_ast_unsafe(x, bad, e->loc);
        }
        int rc = 0;
        if (e->value)
            rc = check_term(e->value, B, M_VALUE, &bad) ||
                 order_term_bodies(x, e->value, B, &bad);
        if (!rc && e == r && r->key)
            rc = check_term(r->key, B, M_VALUE, &bad) || order_term_bodies(x, r->key, B, &bad);
        for (int i = 0; !rc && e == r && i < r->nrest; i++)
            rc = check_term(r->rest[i], B, M_VALUE, &bad);
        if (rc) {
            free(B);
            xv_ast_unsafe(x, bad, e->loc);
        }
    }
    free(B);
}
