/*
 * ast/tree.h — the Rego syntax tree, the compiled rule tree and the arena they
 * live in (internal to policy/).
 *
 * Invariant: every node is allocated from one struct xv_arena owned by the
 * compiled policy and freed with it in one go; constant values hanging off
 * nodes are frozen and recorded in the policy's frozen list.
 * Thread safety: built by one thread; read-only (shareable) once compiled.
 */
#ifndef XV_POLICY_AST_H
#define XV_POLICY_AST_H

#include <stddef.h>
#include <stdint.h>

#include "builtins/context.h"

/* ---- arena ---- */
struct xv_arena {
    struct xv_arena_chunk *head; /* newest chunk first */
};
void *xv_ast_arena_alloc(struct xv_arena *a, size_t n); /* zeroed; NULL on OOM */
char *xv_ast_arena_strdup(struct xv_arena *a, const char *s, size_t n);
void xv_ast_arena_free(struct xv_arena *a);

/* ---- source positions ---- */
struct xv_loc {
    const char *file; /* module name (arena string) */
    int line, col;    /* 1-based */
};

/* ---- terms ---- */
enum term_kind {
    T_VALUE,   /* constant: val */
    T_VAR,     /* variable: name, slot */
    T_REF,     /* items[0] head, items[1..n-1] path */
    T_ARRAY,   /* items */
    T_SET,     /* items */
    T_OBJECT,  /* items: k0, v0, k1, v1, ... (n = 2 * entries) */
    T_ACOMP,   /* [head | body] */
    T_SCOMP,   /* {head | body} */
    T_OCOMP,   /* {key: head | body} */
    T_CALL,    /* items[0] operator (T_REF or T_VAR name), items[1..] args */
    T_TEMPLATE /* $"..": items are T_VALUE strings and expression terms */
};

enum var_flags {
    VF_WILDCARD = 1, /* `_` or generated */
    VF_DATA = 2,     /* the root `data` */
    VF_INPUT = 4,    /* the root `input` */
};

struct term {
    uint8_t kind;          /* enum term_kind */
    uint8_t vflags;        /* enum var_flags for T_VAR */
    uint8_t ground;        /* compile-time: contains no variables */
    uint16_t site;         /* constant string key of a ref: its lookup hint (link.c) */
    uint8_t cpath;         /* T_REF: a variable or input head and constant items only (link.c) */
    struct xv_loc loc;     /* where it starts */
    struct xv_value *val;  /* T_VALUE (frozen), or the folded constant of a ground composite */
    const char *name;      /* T_VAR name; T_CALL builtin/func name (dotted) */
    int slot;              /* T_VAR: frame slot, -1 unresolved */
    struct term **items;   /* children (see kinds) */
    int n;                 /* number of children */
    struct term *head;     /* comprehensions: element (or value for T_OCOMP) */
    struct term *key;      /* T_OCOMP key */
    struct body *body;     /* comprehensions */
    /* T_CALL resolution */
    const struct xv_builtin_def *bi; /* builtin, or NULL */
    struct node *fnode;              /* user function node, or NULL */
    /* T_REF: statically resolved data prefix */
    struct node *rnode;    /* deepest rule-tree node for a data.<ground...> prefix */
    int rconsumed;         /* items consumed to reach rnode (1 = data itself) */
    int *free;             /* comprehensions: outer slots they read */
    int nfree;             /* count */
    int outarg;            /* T_CALL: last argument is an output (arity + 1 args) */
};

/* ---- expressions ---- */
enum expr_kind {
    E_TERM,    /* a: term (a call or a value that must not be false) */
    E_UNIFY,   /* a = b */
    E_ASSIGN,  /* a := b */
    E_NOT,     /* not inner */
    E_SOME,    /* some x, y (declaration only): items */
    E_SOMEIN,  /* some [key,] a in b */
    E_EVERY,   /* every [key,] a in b { body } */
};

struct with {
    struct term *target; /* input..., data..., or a function ref */
    struct term *value;  /* replacement */
    const struct xv_builtin_def *tbi;  /* target is this builtin */
    struct node *tnode;                /* target is this user function */
    const struct xv_builtin_def *vbi;  /* value names this builtin */
    struct node *vnode;                /* value names this user function */
};

struct expr {
    uint8_t kind;         /* enum expr_kind */
    struct xv_loc loc;    /* start of the expression */
    struct term *a, *b;   /* operands (see kinds) */
    struct term *key;     /* E_SOMEIN / E_EVERY key var (optional) */
    struct expr *inner;   /* E_NOT */
    struct body *body;    /* E_EVERY */
    struct term **items;  /* E_SOME declared vars */
    int n;                /* count of items */
    struct with *withs;   /* with modifiers */
    int nwith;            /* count */
    int *free;            /* E_EVERY: outer slots its body reads */
    int nfree;            /* count */
};

struct body {
    struct expr **exprs; /* in evaluation order after compile */
    int n;               /* count */
};

/* ---- rules ---- */
enum rule_kind {
    R_COMPLETE, /* p := v / p if {...} */
    R_SET,      /* p contains x (rest: path below node) */
    R_OBJECT,   /* p[k] := v (rest non-empty) */
    R_FUNC,     /* f(args) := v */
};

struct rule {
    uint8_t kind;          /* enum rule_kind */
    uint8_t is_default;    /* default rule */
    uint8_t assign;        /* used := */
    struct xv_loc loc;     /* the head */
    struct module *mod;    /* defining module */
    struct term *href;     /* head reference as written (T_REF or T_VAR) */
    struct term **rest;    /* head ref terms below the node (R_SET/R_OBJECT) */
    int nrest;             /* count */
    struct term **args;    /* R_FUNC arguments */
    int nargs;             /* count */
    struct term *value;    /* value term (true when omitted) */
    struct term *key;      /* R_SET element */
    struct body *body;     /* may be empty */
    struct rule *els;      /* else chain */
    int nslots;            /* frame size (compile) */
    struct rule *next;     /* next rule at the same node */
    struct node *node;     /* the node it defines (compile) */
    struct xv_value *annot;/* METADATA annotations (frozen object) or NULL */
    uint64_t deps;         /* what its value can depend on, else chain included (deps.c) */
};

/* A node of the data namespace: a package, a rule or an intermediate name. */
struct node {
    const char *name;       /* key below the parent */
    struct xv_value *key;   /* same, as a frozen string value */
    struct node *parent;    /* NULL at the root */
    struct node **kids;     /* children sorted by name */
    int nkids, capkids;     /* count / allocated */
    struct rule *rules;     /* rules whose ground prefix ends here */
    struct rule *dflt;      /* default rule, if any */
    int nrules;             /* count of non-default rules */
    int id;                 /* index into per-evaluation caches */
    int is_func;            /* rules are functions */
    int arity;              /* function arity */
    int has_complete;       /* any R_COMPLETE */
    int has_set;            /* any R_SET with nrest == 0 */
    int visit;              /* compile-time recursion check state */
    int dvisit;             /* compile-time dependency walk state (deps.c) */
    uint64_t deps;          /* what its document can depend on (deps.c) */
    char *path;             /* "data.a.b" (arena) */
};

struct import {
    struct term *path;  /* T_REF / T_VAR: data.x.y or input.z */
    const char *alias;  /* name bound in the module */
    struct xv_loc loc;  /* position */
};

struct module {
    const char *file;      /* name used in messages */
    struct term *pkg;      /* package reference (data.a.b) */
    const char **pkgpath;  /* package path components */
    int npkg;              /* count */
    struct import *imports;/* imports */
    int nimports;          /* count */
    struct rule **rules;   /* in source order */
    int nrules;            /* count */
    int v0;                /* parsed as Rego v0 */
    struct xv_value *annot;/* package METADATA annotations (frozen) or NULL */
    struct module *next;   /* next module of the policy */
};

#define XV_INPUT_KEYS_MAX 32

/* What a rule's or node's value can depend on (struct rule/node deps, set
 * by xv_ast_compute_deps): bit i for input.<input_keys[i]>, XV_DEP_INPUT for
 * input read whole or under a computed key, XV_DEP_OTHER for anything that
 * may differ between two evaluations of equal inputs or that the analysis
 * does not follow (a non-deterministic builtin, a `with`, a circle). Base
 * data and constants are no dependency: they never change. */
#define XV_DEP_INPUT ((uint64_t)1 << 62)
#define XV_DEP_OTHER ((uint64_t)1 << 63)
_Static_assert(XV_INPUT_KEYS_MAX <= 62, "one dependency bit per input key");

/* The compiled policy (all modules, the rule tree). */
struct xv_compiled {
    struct xv_arena ar;          /* every node */
    struct xv_frozen_list fz;    /* every constant value */
    struct module *mods;         /* modules */
    struct node *root;           /* the `data` node */
    int nnodes;                  /* ids handed out */
    unsigned nsites;             /* ref key sites numbered (term.site), wrapping */
    /* Builtin names for the compiler (arity, existence). Set by the engine
     * to the evaluator's lookup (eval/query.h), which adds the rego.*
     * builtins to builtins/'s table; injected so that ast/ never reaches
     * up into eval/. */
    const struct xv_builtin_def *(*lookup)(const char *name, size_t len);
    /* The top-level keys of `input` the modules read (link.c), so a caller
     * can leave out of the input document what no rule can see.
     * input_any = 1 when some rule reads `input` whole or under a computed
     * key, or more keys than fit: then every key counts as read. */
    int input_any;
    int ninput_keys;
    /* Some rule or function calls a non-deterministic builtin (XV_BIF_NONDET:
     * time, rand, uuid, http): two evaluations of one input may differ. */
    int nondet;
    const char *input_keys[XV_INPUT_KEYS_MAX]; /* frozen strings of the tree */
};

struct xv_cerr {
    struct xv_loc loc;  /* where */
    char code[40];      /* rego_parse_error, rego_unsafe_var_error, ... */
    char msg[300];      /* message */
};

/* Compile every parsed module in c->mods into the rule tree. 0 or -1 with err. */
int xv_ast_compile_modules(struct xv_compiled *c, struct xv_cerr *err);
/* Compile a query body against c; *nslots receives the frame size and
 * names[slot] the variable names (arena). */
int xv_ast_compile_query(struct xv_compiled *c, struct body *q, int *nslots, const char ***names,
                     struct xv_cerr *err);
/* Find the child of n named name (NULL if none). */
struct node *xv_ast_node_child(const struct node *n, const char *name, size_t len);

/* ---- parser ---- */
struct xv_perr {
    struct xv_loc loc; /* where */
    char msg[256];     /* rego_parse_error text */
};

enum { XV_REGO_AUTO = 0, XV_REGO_V1 = 1, XV_REGO_V0 = 2 };

/* Parse one module. 0 and *out, or -1 with err filled. Values created are
 * frozen into frozen. */
int xv_ast_parse_module(struct xv_arena *ar, struct xv_frozen_list *frozen, const char *file,
                    const char *src, size_t len, int version, struct module **out,
                    struct xv_perr *err);
/* Parse a query body (v1 syntax). */
int xv_ast_parse_query(struct xv_arena *ar, struct xv_frozen_list *frozen, const char *src,
                   size_t len, struct body **out, struct xv_perr *err);
/* Parse a single term with no variables (input_term). The value is not frozen. */
int xv_ast_parse_value_term(const char *src, size_t len, struct xv_value **out, struct xv_perr *err);

#endif
