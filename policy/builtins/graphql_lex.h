/*
 * builtins/graphql_lex.h — the GraphQL lexer's tokens and the parser state
 * the lexer (graphql_lex.c) and the parser (graphql.c) share.
 *
 * Invariant: a token's val is owned by the token (xv_bi_gql_tok_free);
 * raw text points into the document, which outlives the parse.
 * Thread safety: reentrant; one struct gp per parse.
 */
#ifndef XV_POLICY_BUILTINS_GRAPHQL_LEX_H
#define XV_POLICY_BUILTINS_GRAPHQL_LEX_H

#include <stdbool.h>
#include <stddef.h>

enum tk {
    T_EOF, T_INVALID, T_BANG, T_DOLLAR, T_AMP, T_PAREN_L, T_PAREN_R, T_SPREAD, T_COLON,
    T_EQUALS, T_AT, T_BRACKET_L, T_BRACKET_R, T_BRACE_L, T_PIPE, T_BRACE_R, T_NAME, T_INT,
    T_FLOAT, T_STRING, T_BLOCK_STRING,
};


struct tok {
    enum tk kind;       /* token kind */
    const char *p;      /* raw text */
    size_t n;           /* its length */
    char *val;          /* decoded value (names, numbers, strings); owned */
    size_t vlen;        /* its length */
    int line, col;      /* 1-based start */
};

struct gp {
    const char *s;      /* document */
    size_t n;           /* its length */
    size_t pos;         /* lexer position */
    int line;           /* current line */
    size_t line_start;  /* offset of the current line */
    struct tok cur;     /* lookahead token */
    bool have;          /* cur is valid */
    char err[300];      /* first error */
    int depth;          /* nesting, bounded by GQL_MAX_DEPTH */
    bool keep_pos;      /* record "__pos": [line, col] on fields (for validation) */
};

/* Token kinds as gqlparser spells them in messages, indexed by enum tk. */
extern const char *const xv_bi_gql_tk_names[];
/* Read the next token at g->pos into t (T_INVALID with g->err on error). */
void xv_bi_gql_lex(struct gp *g, struct tok *t);
/* Free t's decoded value. */
void xv_bi_gql_tok_free(struct tok *t);

#endif
