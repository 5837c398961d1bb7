/*
 * ast/parse.h — what the lexer (lexer.c), the parser (parser.c, module.c)
 * and the annotations (annotations.c) share: tokens, the parser state, its
 * error exit and the term parsers module.c builds rules from.
 *
 * Invariant: every allocation of a parse is in its arena (or the caller's
 * frozen list), so an error can longjmp out without freeing anything but
 * what xv_ast_parser_release frees.
 * Thread safety: one struct parser per parse.
 */
#ifndef XV_POLICY_PARSE_INT_H
#define XV_POLICY_PARSE_INT_H

#include <setjmp.h>

#include "ast/tree.h"

enum tok {
    TK_EOF, TK_IDENT, TK_STRING, TK_NUMBER, TK_TEMPLATE,
    TK_LBRACE, TK_RBRACE, TK_LBRACK, TK_RBRACK, TK_LPAREN, TK_RPAREN,
    TK_COMMA, TK_SEMI, TK_DOT, TK_COLON, TK_ASSIGN, TK_EQ, TK_EQEQ, TK_NEQ,
    TK_LT, TK_LTE, TK_GT, TK_GTE, TK_PLUS, TK_MINUS, TK_STAR, TK_SLASH,
    TK_PERCENT, TK_AMP, TK_BAR,
};


struct token {
    uint8_t t;          /* enum tok */
    uint8_t nl;         /* a newline precedes it */
    int line, col;      /* position */
    size_t off, len;    /* source span */
    struct xv_value *v; /* decoded string (frozen) */
};

struct parser {
    struct xv_arena *ar;         /* node storage */
    struct xv_frozen_list *fz;   /* frozen values */
    const char *file;            /* module name */
    const char *src;             /* source */
    size_t len;                  /* source length */
    struct token *toks;          /* token array (malloc) */
    size_t ntok, cap, pos;       /* count, allocated, cursor */
    int v0;                      /* v0 syntax */
    int no_bar;                  /* do not consume '|' at this level */
    int depth;                   /* recursion guard */
    int wild;                    /* wildcard counter */
    struct mblock {
        int endline;             /* last comment line of the block */
        int line;                /* its first line */
        char *text;              /* YAML after the "# METADATA" line (malloc) */
    } *mb;                       /* METADATA comment blocks */
    int nmb;                     /* count */
    struct xv_perr *err;         /* error out */
    jmp_buf jb;                  /* error exit */
};

extern const char *const xv_ast_tok_names[];

/* Record a parse error at line:col and leave through p->jb. */
void xv_ast_perr(struct parser *p, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5), noreturn));
/* Arena allocation that cannot fail (errors leave through p->jb). */
void *xv_ast_palloc(struct parser *p, size_t n);
/* Freeze v into the parse's frozen list (NULL: out of memory error). */
struct xv_value *xv_ast_pfreeze(struct parser *p, struct xv_value *v);
/* Tokenise p->src into p->toks (ending with TK_EOF). */
void xv_ast_lex(struct parser *p);
/* Free the token array and METADATA blocks. */
void xv_ast_parser_release(struct parser *p);
/* Annotations of the METADATA block ending on the line before `line`. */
struct xv_value *xv_ast_annotations_for(struct parser *p, int line, int is_package);

/* annotations.c: METADATA YAML (a subset: scalars, lists, one level of maps)
 * to OPA's annotation object, with "scope" filled in. NULL + err on error. */
struct xv_value *xv_ast_yaml_annotations(const char *text, int is_package, char *err,
                                            size_t errlen);

/* A growing list of terms (arena-allocated). */
struct tlist {
    struct term **v; /* items */
    int n, cap;      /* count, allocated */
};

/* parser.c: the token cursor and the term/expression/body parsers that
 * ast/module.c builds rules from (every error longjmps out). */
struct token *xv_ast_expect(struct parser *p, int tt);
int xv_ast_is_keyword(struct parser *p, struct token *t);
int xv_ast_is_kw(struct parser *p, struct token *t, const char *kw);
int xv_ast_kw_is_ref(struct parser *p, struct token *t);
struct expr *xv_ast_new_expr(struct parser *p, int kind, struct token *at);
struct token *xv_ast_next(struct parser *p);
struct body *xv_ast_parse_body(struct parser *p, int closer);
struct body *xv_ast_parse_if_body(struct parser *p);
struct term *xv_ast_parse_in(struct parser *p);
struct term *xv_ast_parse_postfix(struct parser *p, struct term *t, int allow_call);
struct token *xv_ast_peek(struct parser *p);
struct token *xv_ast_peek2(struct parser *p);
void xv_ast_tl_push(struct parser *p, struct tlist *l, struct term *t);
void xv_ast_unexpected(struct parser *p, struct token *t) __attribute__((noreturn));
struct term *xv_ast_value_term(struct parser *p, struct xv_value *v, struct token *at);
struct term *xv_ast_var_term(struct parser *p, const char *name, size_t n, struct token *at);

#endif
