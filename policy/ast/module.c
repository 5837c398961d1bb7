/*
 * ast/module.c — Rego modules and queries: rule heads (complete, partial set
 * and object, functions, ref heads, else chains, if/contains in v1), the
 * package and imports, the v0/v1 keyword rules, and the parser's entry points
 * (modules, queries, single value terms). Terms, expressions and bodies are
 * ast/parser.c's.
 *
 * Invariant: as in parser.c — an error longjmps out with its position,
 * leaving only the arena (and frozen values the caller's list owns).
 * Thread safety: no shared state; one parse per struct parser.
 */
#include "value/buf.h"
#include "ast/parse.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct body *true_body(struct parser *p, struct token *at)
{
    struct body *b = xv_ast_palloc(p, sizeof *b);
    b->exprs = xv_ast_palloc(p, sizeof *b->exprs);
    struct expr *e = xv_ast_new_expr(p, E_TERM, at);
    e->a = xv_ast_value_term(p, xv_val_bool(1), at);
    b->exprs[0] = e;
    b->n = 1;
    return b;
}

/* Parse the rest of a rule after its head: optional `if` body, else chain. */
static void parse_rule_tail(struct parser *p, struct rule *r, struct token *headtk)
{
    struct token *t = xv_ast_peek(p);
    if (xv_ast_is_kw(p, t, "if") && !xv_ast_kw_is_ref(p, t)) {
        xv_ast_next(p);
        r->body = xv_ast_parse_if_body(p);
    } else if (t->t == TK_LBRACE && !t->nl) {
        if (!p->v0)
            xv_ast_perr(p, t->line, t->col, "`if` keyword is required before rule body");
        xv_ast_next(p);
        r->body = xv_ast_parse_body(p, TK_RBRACE);
    } else if (t->t == TK_LBRACE && t->nl && p->v0 && r->value == NULL && r->kind == R_COMPLETE) {
        xv_ast_next(p);
        r->body = xv_ast_parse_body(p, TK_RBRACE);
    } else {
        r->body = true_body(p, headtk);
    }
    /* else chain */
    struct rule *prev = r;
    while (xv_ast_is_kw(p, xv_ast_peek(p), "else") && !xv_ast_kw_is_ref(p, xv_ast_peek(p))) {
        struct token *et = xv_ast_next(p);
        if (r->kind != R_COMPLETE && r->kind != R_FUNC)
            xv_ast_perr(p, et->line, et->col, "else keyword cannot be used on multi-value rules");
        struct rule *e = xv_ast_palloc(p, sizeof *e);
        *e = *r;
        e->els = NULL;
        e->loc.line = et->line;
        e->loc.col = et->col;
        e->value = NULL;
        if (xv_ast_peek(p)->t == TK_ASSIGN || xv_ast_peek(p)->t == TK_EQ) {
            xv_ast_next(p);
            e->value = xv_ast_parse_in(p);
        } else {
            e->value = xv_ast_value_term(p, xv_val_bool(1), et);
        }
        struct token *bt = xv_ast_peek(p);
        if (xv_ast_is_kw(p, bt, "if")) {
            xv_ast_next(p);
            e->body = xv_ast_parse_if_body(p);
        } else if (bt->t == TK_LBRACE) {
            if (!p->v0)
                xv_ast_perr(p, bt->line, bt->col, "`if` keyword is required before rule body");
            xv_ast_next(p);
            e->body = xv_ast_parse_body(p, TK_RBRACE);
        } else {
            e->body = true_body(p, et);
        }
        prev->els = e;
        prev = e;
    }
}

static int is_ground_string(struct term *t)
{
    return t->kind == T_VALUE && t->val->type == XV_T_STRING;
}

/* One rule: default rules, function heads, ref heads (a.b[x]),
 * contains / if (v1, and v0 with them imported), the value, bodies and
 * else chains. */
static struct rule *parse_rule(struct parser *p, struct module *m)
{
    struct token *st = xv_ast_peek(p);
    struct rule *r = xv_ast_palloc(p, sizeof *r);
    r->mod = m;
    r->loc.file = p->file;
    r->loc.line = st->line;
    r->loc.col = st->col;
    r->annot = xv_ast_annotations_for(p, st->line, 0);
    int dflt = 0;
    if (xv_ast_is_kw(p, st, "default") && !xv_ast_kw_is_ref(p, st)) {
        xv_ast_next(p);
        dflt = 1;
    }
    struct token *ht = xv_ast_peek(p);
    struct token *after = xv_ast_peek2(p);
    if (ht->t != TK_IDENT ||
        (xv_ast_is_keyword(p, ht) && !((after->t == TK_DOT || after->t == TK_LBRACK) &&
                                after->off == ht->off + ht->len)))
        xv_ast_unexpected(p, ht);
    xv_ast_next(p);
    struct term *href = xv_ast_var_term(p, p->src + ht->off, ht->len, ht);
    href = xv_ast_parse_postfix(p, href, 0);
    r->href = href;
    /* function args */
    if (xv_ast_peek(p)->t == TK_LPAREN && !xv_ast_peek(p)->nl) {
        xv_ast_next(p);
        struct tlist args = {0};
        if (xv_ast_peek(p)->t != TK_RPAREN) {
            xv_ast_tl_push(p, &args, xv_ast_parse_in(p));
            while (xv_ast_peek(p)->t == TK_COMMA) {
                xv_ast_next(p);
                xv_ast_tl_push(p, &args, xv_ast_parse_in(p));
            }
        }
        xv_ast_expect(p, TK_RPAREN);
        r->kind = R_FUNC;
        r->args = args.v;
        r->nargs = args.n;
    }
    struct token *op = xv_ast_peek(p);
    if (xv_ast_is_kw(p, op, "contains") && !xv_ast_kw_is_ref(p, op)) {
        if (r->kind == R_FUNC || dflt)
            xv_ast_unexpected(p, op);
        xv_ast_next(p);
        r->kind = R_SET;
        r->key = xv_ast_parse_in(p);
    } else if (op->t == TK_ASSIGN || op->t == TK_EQ) {
        xv_ast_next(p);
        r->assign = op->t == TK_ASSIGN;
        r->value = xv_ast_parse_in(p);
    }
    if (r->kind != R_FUNC) {
        /* Split the head ref into the ground prefix and the rest. */
        int n = href->kind == T_REF ? href->n : 1;
        struct term **items = href->kind == T_REF ? href->items : &href;
        int g = 1;
        while (g < n && is_ground_string(items[g]))
            g++;
        if (g < n) {
            r->rest = items + g;
            r->nrest = n - g;
        }
        if (r->kind != R_SET) {
            if (g < n) {
                if (p->v0 && !r->value && n - g == 1) {
                    /* v0 partial set: p[x] { ... } */
                    r->kind = R_SET;
                    r->key = items[g];
                    r->rest = NULL;
                    r->nrest = 0;
                    r->href = items[0];
                } else {
                    r->kind = R_OBJECT;
                }
            } else {
                r->kind = R_COMPLETE;
            }
        }
    }
    if (!r->value && r->kind != R_SET)
        r->value = xv_ast_value_term(p, xv_val_bool(1), op);
    if (dflt) {
        r->is_default = 1;
        if (r->kind == R_OBJECT || r->kind == R_SET)
            xv_ast_perr(p, st->line, st->col, "default rules must not have a variable in their reference");
        r->body = true_body(p, st);
        return r;
    }
    parse_rule_tail(p, r, ht);
    return r;
}

static struct term *parse_pkg_ref(struct parser *p)
{
    struct token *tk = xv_ast_peek(p);
    if (tk->t != TK_IDENT)
        xv_ast_unexpected(p, tk);
    xv_ast_next(p);
    struct term *t = xv_ast_var_term(p, p->src + tk->off, tk->len, tk);
    return xv_ast_parse_postfix(p, t, 0);
}

/* package, imports (with the future/v1 keyword imports), then rules to
 * EOF; METADATA blocks are attached to what follows them. */
static int do_parse_module(struct parser *p, struct module **out)
{
    struct module *m = xv_ast_palloc(p, sizeof *m);
    m->file = p->file;
    m->v0 = p->v0;
    struct token *t = xv_ast_peek(p);
    if (!xv_ast_is_kw(p, t, "package"))
        xv_ast_perr(p, t->line, t->col, "package expected");
    m->annot = xv_ast_annotations_for(p, t->line, 1);
    xv_ast_next(p);
    struct term *pkg = parse_pkg_ref(p);
    m->pkg = pkg;
    int n = pkg->kind == T_REF ? pkg->n : 1;
    struct term **items = pkg->kind == T_REF ? pkg->items : &pkg;
    m->pkgpath = xv_ast_palloc(p, (size_t)n * sizeof(char *));
    for (int i = 0; i < n; i++) {
        if (i == 0) {
            m->pkgpath[i] = items[0]->name;
        } else {
            if (!is_ground_string(items[i]))
                xv_ast_perr(p, items[i]->loc.line, items[i]->loc.col, "unexpected non-string package path");
            m->pkgpath[i] = xv_ast_arena_strdup(p->ar, XV_STR(items[i]->val), XV_STRLEN(items[i]->val));
        }
    }
    m->npkg = n;
    int capi = 0, capr = 0;
    while (xv_ast_is_kw(p, xv_ast_peek(p), "import") && !xv_ast_kw_is_ref(p, xv_ast_peek(p))) {
        struct token *it = xv_ast_next(p);
        struct term *path = parse_pkg_ref(p);
        const char *alias = NULL;
        if (xv_ast_is_kw(p, xv_ast_peek(p), "as")) {
            xv_ast_next(p);
            struct token *a = xv_ast_expect(p, TK_IDENT);
            alias = xv_ast_arena_strdup(p->ar, p->src + a->off, a->len);
        }
        if (m->nimports == capi) {
            capi = capi ? capi * 2 : 4;
            struct import *ni = xv_ast_palloc(p, (size_t)capi * sizeof *ni);
            if (m->nimports)
                memcpy(ni, m->imports, (size_t)m->nimports * sizeof *ni);
            m->imports = ni;
        }
        struct import *im = &m->imports[m->nimports++];
        im->path = path;
        im->loc.file = p->file;
        im->loc.line = it->line;
        im->loc.col = it->col;
        const char *root = path->kind == T_REF ? path->items[0]->name : path->name;
        if (strcmp(root, "data") && strcmp(root, "input") && strcmp(root, "future") &&
            strcmp(root, "rego"))
            xv_ast_perr(p, it->line, it->col, "unexpected import path, must begin with one of: {data, future, input, rego}");
        if (!alias) {
            if (path->kind == T_REF) {
                struct term *last = path->items[path->n - 1];
                if (is_ground_string(last))
                    alias = xv_ast_arena_strdup(p->ar, XV_STR(last->val), XV_STRLEN(last->val));
            } else {
                alias = path->name;
            }
        }
        im->alias = alias;
    }
    while (xv_ast_peek(p)->t != TK_EOF) {
        struct rule *r = parse_rule(p, m);
        if (m->nrules == capr) {
            capr = capr ? capr * 2 : 16;
            struct rule **nr = xv_ast_palloc(p, (size_t)capr * sizeof *nr);
            if (m->nrules)
                memcpy(nr, m->rules, (size_t)m->nrules * sizeof *nr);
            m->rules = nr;
        }
        m->rules[m->nrules++] = r;
        struct token *nt = xv_ast_peek(p);
        if (nt->t != TK_EOF && !nt->nl && nt->t != TK_SEMI)
            xv_ast_unexpected(p, nt);
        while (xv_ast_peek(p)->t == TK_SEMI)
            xv_ast_next(p);
    }
    *out = m;
    return 0;
}

/* The setjmp frame of one module parse: lex, parse, release. */
static int parse_with(struct xv_arena *ar, struct xv_frozen_list *fz, const char *file,
                      const char *src, size_t len, int v0, struct module **out, struct xv_perr *err)
{
    struct parser p;
    memset(&p, 0, sizeof p);
    p.ar = ar;
    p.fz = fz;
    p.file = file;
    p.src = src;
    p.len = len;
    p.v0 = v0;
    p.err = err;
    volatile int rc = -1;
    if (setjmp(p.jb) == 0) {
        xv_ast_lex(&p);
        rc = do_parse_module(&p, out);
    }
    xv_ast_parser_release(&p);
    return rc;
}

/* Entry point: parse a module (v0 or v1 syntax) into the arena. */
int xv_ast_parse_module(struct xv_arena *ar, struct xv_frozen_list *frozen, const char *file,
                    const char *src, size_t len, int version, struct module **out,
                    struct xv_perr *err)
{
    *out = NULL;
    file = xv_ast_arena_strdup(ar, file, strlen(file));
    if (version == XV_REGO_V0)
        return parse_with(ar, frozen, file, src, len, 1, out, err);
    int rc = parse_with(ar, frozen, file, src, len, 0, out, err);
    if (rc == 0 || version == XV_REGO_V1)
        return rc;
    /* Auto: a module that only parses as v0 is accepted as v0. */
    struct xv_perr e0;
    if (parse_with(ar, frozen, file, src, len, 1, out, &e0) == 0)
        return 0;
    /* Neither parses: report the attempt that got further (a v0 policy with
     * a typo should not be told that v1 wants `if`). */
    if (e0.loc.line > err->loc.line || (e0.loc.line == err->loc.line && e0.loc.col > err->loc.col))
        *err = e0;
    return -1;
}

/* Entry point: parse a query (a body) into the arena. */
int xv_ast_parse_query(struct xv_arena *ar, struct xv_frozen_list *frozen, const char *src,
                   size_t len, struct body **out, struct xv_perr *err)
{
    struct parser p;
    memset(&p, 0, sizeof p);
    p.ar = ar;
    p.fz = frozen;
    p.file = "query";
    p.src = src;
    p.len = len;
    p.err = err;
    p.wild = 100000;
    volatile int rc = -1;
    *out = NULL;
    if (setjmp(p.jb) == 0) {
        xv_ast_lex(&p);
        /* A query is a body without braces, ended by EOF. */
        *out = xv_ast_parse_body(&p, TK_EOF);
        rc = 0;
    }
    xv_ast_parser_release(&p);
    return rc;
}

/* Build a fresh (unfrozen, thread-local) value from a ground term. */
static struct xv_value *term_to_value(struct term *t, struct xv_perr *err)
{
    struct xv_value *r = NULL, *x, *y;
    int i;
    switch (t->kind) {
    case T_VALUE:
        if (t->val->type == XV_T_STRING)
            return xv_val_string(XV_STR(t->val), XV_STRLEN(t->val));
        if (t->val->type == XV_T_NUMBER) {
            struct xv_buf b;
            xv_buf_init(&b, 1 << 20);
            xv_val_number_write(&b, t->val);
            r = xv_val_number_parse(b.data, b.len);
            xv_buf_free(&b);
            return r;
        }
        if (t->val->type == XV_T_ARRAY)
            return xv_val_array_new(0);
        if (t->val->type == XV_T_SET)
            return xv_val_set_new(0);
        if (t->val->type == XV_T_OBJECT)
            return xv_val_object_new(0);
        return t->val; /* null / booleans are static */
    case T_ARRAY:
    case T_SET:
        r = t->kind == T_ARRAY ? xv_val_array_new((size_t)t->n) : xv_val_set_new((size_t)t->n);
        for (i = 0; i < t->n; i++) {
            if (!(x = term_to_value(t->items[i], err))) {
                xv_val_decref(r);
                return NULL;
            }
            if (t->kind == T_ARRAY)
                xv_val_array_push(r, x);
            else
                xv_val_set_add(r, x);
            xv_val_decref(x);
        }
        return r;
    case T_OBJECT:
        r = xv_val_object_new((size_t)t->n / 2);
        for (i = 0; i + 1 < t->n; i += 2) {
            x = term_to_value(t->items[i], err);
            y = x ? term_to_value(t->items[i + 1], err) : NULL;
            if (!x || !y) {
                xv_val_decref(x);
                xv_val_decref(r);
                return NULL;
            }
            xv_val_object_set(r, x, y);
            xv_val_decref(x);
            xv_val_decref(y);
        }
        return r;
    case T_CALL:
        /* Negative numbers of non-literal form, e.g. -(1) */
    default:
        err->loc = t->loc;
        snprintf(err->msg, sizeof err->msg, "input term must be a constant value");
        return NULL;
    }
}

/* Entry point: a single constant term
 * to a value (Rego syntax for test inputs); refs and calls are errors. */
int xv_ast_parse_value_term(const char *src, size_t len, struct xv_value **out, struct xv_perr *err)
{
    struct xv_arena ar = {0};
    struct xv_frozen_list fz = {0};
    struct parser p;
    memset(&p, 0, sizeof p);
    p.ar = &ar;
    p.fz = &fz;
    p.file = "input";
    p.src = src;
    p.len = len;
    p.err = err;
    volatile int rc = -1;
    *out = NULL;
    if (setjmp(p.jb) == 0) {
        xv_ast_lex(&p);
        struct term *t = xv_ast_parse_in(&p);
        if (xv_ast_peek(&p)->t != TK_EOF)
            xv_ast_unexpected(&p, xv_ast_peek(&p));
        *out = term_to_value(t, err);
        rc = *out ? 0 : -1;
    }
    xv_ast_parser_release(&p);
    xv_ast_arena_free(&ar);
    xv_val_free_frozen(&fz);
    return rc;
}
