/*
 * ast/compile.h — what the compiler's files (compile.c, safety.c, link.c,
 * recursion.c) share:
 * the compile context, scopes, and the error exit.
 *
 * Invariant: an error longjmps to the compile entry point (cctx.jb), which
 * has already set everything it must free; nothing else unwinds.
 * Thread safety: single-threaded, within one compile.
 */
#ifndef XV_POLICY_AST_COMPILE_H
#define XV_POLICY_AST_COMPILE_H

#include <setjmp.h>
#include <stdint.h>

#include "ast/tree.h"

struct sname {
    const char *name; /* variable name */
    int slot;         /* frame slot */
    int declared;     /* declared by some / := / args */
    int order;        /* index of the declaring expression (-1: implicit/args) */
};

struct scope {
    struct scope *parent; /* enclosing scope */
    struct sname *v;      /* names */
    int n, cap;           /* count, allocated */
    int depth;            /* 0 for a rule's scope */
    int cur;              /* index of the expression being resolved */
    int limit;            /* while resolving a nested body found at expression
                           * `limit`, declarations from later expressions are
                           * invisible to it */
};

/* A comprehension or every body waiting for its own scope. */
struct pend {
    struct term *t; /* comprehension (or NULL) */
    struct expr *e; /* every (or NULL) */
    int at;         /* index of the expression it appears in */
};

struct cctx {
    struct xv_compiled *c;  /* policy */
    struct module *m;       /* current module (NULL for queries) */
    struct xv_cerr *err;    /* out */
    jmp_buf jb;             /* error exit */
    int nslots;             /* slots handed out in this rule */
    const char **names;     /* slot -> name (heap) */
    int *owner;             /* slot -> owning scope depth */
    int capslots;           /* allocated */
    int **frees;            /* stack of free-var lists being built */
    int *nfrees;            /* their lengths */
    int nfstack;            /* depth of that stack */
    int *fdepth;            /* scope depth of each stacked construct */
    int track_input;        /* link.c notes the input keys read (modules only) */
};

/* Record a compile error in x->err and leave the compile (longjmp). */
void xv_ast_cerr(struct cctx *x, struct xv_loc loc, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5), noreturn));
/* Zeroed arena memory, or a compile error (out of memory). */
void *xv_ast_calloc_or_die(struct cctx *x, size_t n);

/* safety.c: order body b so every variable is bound before use (B: slot ->
 * bound, updated). 0, or -1 with *bad the first unsafe term. */
int xv_ast_order_body(struct cctx *x, struct body *b, uint8_t *B, struct term **bad);

/* safety.c: report the unsafe variable of term bad (or, without one, at
 * fallback) as a compile error; never returns. */
void xv_ast_unsafe(struct cctx *x, struct term *bad, struct xv_loc fallback)
    __attribute__((noreturn));
/* safety.c: check rule r (args, every body of its else chain, value, key)
 * and reorder its bodies; a compile error names the first unsafe variable. */
void xv_ast_check_rule_safety(struct cctx *x, struct rule *r);

/* link.c: point every data ref in body b at its rule-tree node and fold
 * constant collections. */
void xv_ast_link_body(struct cctx *x, struct body *b);
/* link.c: the same over rule r (bodies and values of its else chain, key,
 * ref-head items). */
void xv_ast_link_rule(struct cctx *x, struct rule *r);

/* recursion.c: reject recursion among the rules below node n (a compile
 * error at the reference that closes the circle). */
void xv_ast_check_recursion(struct cctx *x, struct node *n);
/* deps.c: every rule's and node's deps (tree.h, XV_DEP_*), after linking. */
void xv_ast_compute_deps(struct xv_compiled *c);

#endif
