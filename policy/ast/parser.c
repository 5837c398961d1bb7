/*
 * ast/parser.c — lexer and recursive-descent parser for Rego (v1, and v0 with
 * the newer keywords always available), producing the tree of ast.h.
 *
 * Invariant: the parser never reads past the token array's EOF token; every
 * error jumps out (longjmp) with a file:line:col position, leaving nothing to
 * free but the arena (and frozen values, which the caller's list owns).
 * Thread safety: no shared state; one parse per struct parser.
 */
#include "value/buf.h"
#include "ast/parse.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */
static struct token *peek(struct parser *p) { return &p->toks[p->pos]; }
static struct token *peek2(struct parser *p) { return &p->toks[p->pos + (p->pos + 1 < p->ntok)]; }
static struct token *next(struct parser *p)
{
    struct token *t = &p->toks[p->pos];
    if (t->t != TK_EOF)
        p->pos++;
    return t;
}
static int is_kw(struct parser *p, struct token *t, const char *kw)
{
    size_t n = strlen(kw);
    return t->t == TK_IDENT && t->len == n && !memcmp(p->src + t->off, kw, n);
}
static int is_keyword(struct parser *p, struct token *t)
{
    static const char *const kws[] = {"as", "default", "else", "every", "false", "if", "import",
                                      "in", "not", "null", "package", "some", "true", "with",
                                      "contains", NULL};
    for (int i = 0; kws[i]; i++)
        if (is_kw(p, t, kws[i]))
            return 1;
    return 0;
}

/* A keyword used as the head of a reference (`every.x`, `as[0]`). */
static int kw_is_ref(struct parser *p, struct token *t)
{
    struct token *n = t + (t->t != TK_EOF);
    return (n->t == TK_DOT || n->t == TK_LBRACK) && n->off == t->off + t->len;
}

static void __attribute__((noreturn)) unexpected(struct parser *p, struct token *t)
{
    if (t->t == TK_EOF)
        xv_ast_perr(p, t->line, t->col, "unexpected eof token");
    if (t->t == TK_IDENT)
        xv_ast_perr(p, t->line, t->col, "unexpected %.*s token", (int)t->len, p->src + t->off);
    xv_ast_perr(p, t->line, t->col, "unexpected %s token", xv_ast_tok_names[t->t]);
}

static struct token *expect(struct parser *p, int tt)
{
    struct token *t = peek(p);
    if (t->t != tt) {
        if (t->t == TK_EOF)
            xv_ast_perr(p, t->line, t->col, "unexpected eof token: expected %s", xv_ast_tok_names[tt]);
        xv_ast_perr(p, t->line, t->col, "unexpected %s token: expected %s",
             t->t == TK_IDENT ? "ident" : xv_ast_tok_names[t->t], xv_ast_tok_names[tt]);
    }
    return next(p);
}

static struct term *new_term(struct parser *p, int kind, struct token *at)
{
    struct term *t = xv_ast_palloc(p, sizeof *t);
    t->kind = (uint8_t)kind;
    t->slot = -1;
    t->loc.file = p->file;
    t->loc.line = at->line;
    t->loc.col = at->col;
    return t;
}

static struct term *value_term(struct parser *p, struct xv_value *v, struct token *at)
{
    struct term *t = new_term(p, T_VALUE, at);
    t->val = xv_ast_pfreeze(p, v);
    t->ground = 1;
    return t;
}

static struct term *var_term(struct parser *p, const char *name, size_t n, struct token *at)
{
    struct term *t = new_term(p, T_VAR, at);
    if (n == 1 && name[0] == '_') {
        char buf[32];
        int k = snprintf(buf, sizeof buf, "$_%d", p->wild++);
        t->name = xv_ast_arena_strdup(p->ar, buf, (size_t)k);
        t->vflags = VF_WILDCARD;
    } else {
        t->name = xv_ast_arena_strdup(p->ar, name, n);
    }
    return t;
}

/* Growable term list on the C heap, copied into the arena when done. */
struct tlist {
    struct term **v; /* items */
    int n, cap;      /* count, allocated */
};
static void tl_push(struct parser *p, struct tlist *l, struct term *t)
{
    if (l->n == l->cap) {
        int nc = l->cap ? l->cap * 2 : 8;
        struct term **nv = xv_ast_palloc(p, (size_t)nc * sizeof *nv);
        if (l->n)
            memcpy(nv, l->v, (size_t)l->n * sizeof *nv);
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = t;
}

static struct term *make_call(struct parser *p, const char *op, struct token *at, struct term *a,
                              struct term *b)
{
    struct term *c = new_term(p, T_CALL, at);
    c->name = op;
    c->n = b ? 3 : 2;
    c->items = xv_ast_palloc(p, 3 * sizeof(struct term *));
    c->items[0] = var_term(p, op, strlen(op), at);
    c->items[1] = a;
    c->items[2] = b;
    c->loc = a->loc;
    return c;
}

static struct term *parse_in(struct parser *p);
static struct term *parse_in_kv(struct parser *p);
static struct term *parse_term(struct parser *p);
static struct body *parse_body(struct parser *p, int closer);
static struct expr *parse_expr(struct parser *p);

static void enter(struct parser *p)
{
    if (++p->depth > 400)
        xv_ast_perr(p, peek(p)->line, peek(p)->col, "nesting too deep");
}

/* Split a template string token into literal and expression parts. */
static struct with *parse_withs(struct parser *p, int *n);
static struct expr *new_expr(struct parser *p, int kind, struct token *at);

static struct term *parse_template(struct parser *p, struct token *tk)
{
    struct term *t = new_term(p, T_TEMPLATE, tk);
    struct tlist parts = {0};
    const char *s = p->src + tk->off + 2;
    size_t n = tk->len - 3, i = 0;
    char q = p->src[tk->off + 1];
    struct xv_buf lit;
    xv_buf_init(&lit, (size_t)1 << 30);
    while (i < n) {
        char c = s[i];
        if (q == '`' && c == '\\' && i + 1 < n && s[i + 1] == '{') {
            xv_buf_append(&lit, "{", 1);
            i += 2;
            continue;
        }
        if (q == '"' && c == '\\' && i + 1 < n) {
            char e = s[i + 1];
            char ch = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
            if (e == 'u' && i + 5 < n) {
                char hex[5] = {s[i + 2], s[i + 3], s[i + 4], s[i + 5], 0};
                char enc[4];
                xv_buf_append(&lit, enc, xv_val_utf8_encode((uint32_t)strtoul(hex, NULL, 16), enc));
                i += 6;
                continue;
            }
            xv_buf_append(&lit, &ch, 1);
            i += 2;
            continue;
        }
        if (c == '{') {
            size_t j = i + 1;
            int depth = 1;
            while (j < n && depth > 0) {
                if (s[j] == '{')
                    depth++;
                else if (s[j] == '}')
                    depth--;
                else if (s[j] == '"') {
                    j++;
                    while (j < n && s[j] != '"') {
                        if (s[j] == '\\')
                            j++;
                        j++;
                    }
                }
                if (depth > 0)
                    j++;
            }
            if (lit.len) {
                tl_push(p, &parts, value_term(p, xv_string(lit.data, lit.len), tk));
                xv_buf_reset(&lit);
            }
            /* Sub-parse the embedded expression with its own token array. */
            volatile size_t jend = j;
            struct parser sub = *p;
            sub.src = s + i + 1;
            sub.len = j - i - 1;
            sub.toks = NULL;
            sub.ntok = sub.cap = sub.pos = 0;
            sub.mb = NULL;
            sub.nmb = 0;
            sub.no_bar = 0;
            struct term *volatile e = NULL;
            if (setjmp(sub.jb) == 0) {
                xv_ast_lex(&sub);
                e = parse_in(&sub);
                if (is_kw(&sub, peek(&sub), "with")) {
                    /* `{a with input as x}`: evaluate as [$t | $t = a with …][0] */
                    struct token *wt = peek(&sub);
                    struct expr *ex = new_expr(&sub, E_UNIFY, wt);
                    char nm[32];
                    int nl = snprintf(nm, sizeof nm, "$t%d", sub.wild++);
                    struct term *tv = var_term(&sub, nm, (size_t)nl, wt);
                    ex->a = tv;
                    ex->b = e;
                    ex->withs = parse_withs(&sub, &ex->nwith);
                    struct term *c = new_term(&sub, T_ACOMP, wt);
                    c->head = var_term(&sub, tv->name, strlen(tv->name), wt);
                    c->body = xv_ast_palloc(&sub, sizeof *c->body);
                    c->body->exprs = xv_ast_palloc(&sub, sizeof(struct expr *));
                    c->body->exprs[0] = ex;
                    c->body->n = 1;
                    c->outarg = 1; /* marks "first element of" for templates */
                    e = c;
                }
                if (peek(&sub)->t != TK_EOF)
                    unexpected(&sub, peek(&sub));
            }
            xv_ast_parser_release(&sub);
            p->wild = sub.wild;
            if (!e) {
                xv_buf_free(&lit);
                p->err->loc.line += tk->line - 1;
                longjmp(p->jb, 1);
            }
            tl_push(p, &parts, e);
            i = jend + 1;
            continue;
        }
        xv_buf_append(&lit, &c, 1);
        i++;
    }
    if (lit.len || parts.n == 0)
        tl_push(p, &parts, value_term(p, xv_string(lit.data ? lit.data : "", lit.len), tk));
    xv_buf_free(&lit);
    t->items = parts.v;
    t->n = parts.n;
    return t;
}

/* Comprehension or collection after '[' or '{' has been consumed. */
static struct term *parse_collection(struct parser *p, struct token *open)
{
    int closer = open->t == TK_LBRACK ? TK_RBRACK : TK_RBRACE;
    struct tlist items = {0};
    if (peek(p)->t == closer) {
        next(p);
        if (closer == TK_RBRACK)
            return value_term(p, xv_array_new(0), open);
        return value_term(p, xv_object_new(0), open);
    }
    int saved = p->no_bar;
    p->no_bar = 1;
    struct term *first = parse_in(p);
    struct term *fval = NULL;
    int isobj = 0;
    if (closer == TK_RBRACE && peek(p)->t == TK_COLON) {
        next(p);
        isobj = 1;
        fval = parse_in(p);
    }
    p->no_bar = saved;
    if (peek(p)->t == TK_BAR) {
        next(p);
        struct term *t = new_term(p, closer == TK_RBRACK ? T_ACOMP : isobj ? T_OCOMP : T_SCOMP, open);
        if (isobj) {
            t->key = first;
            t->head = fval;
        } else {
            t->head = first;
        }
        t->body = parse_body(p, closer);
        return t;
    }
    struct term *t = new_term(p, closer == TK_RBRACK ? T_ARRAY : isobj ? T_OBJECT : T_SET, open);
    tl_push(p, &items, first);
    if (isobj)
        tl_push(p, &items, fval);
    while (peek(p)->t == TK_COMMA) {
        next(p);
        if (peek(p)->t == closer)
            break;
        tl_push(p, &items, parse_in(p));
        if (isobj) {
            expect(p, TK_COLON);
            tl_push(p, &items, parse_in(p));
        }
    }
    expect(p, closer);
    t->items = items.v;
    t->n = items.n;
    return t;
}

/* Dotted name of a ref made only of a var and string keys ("a.b.c"), or NULL. */
static const char *ref_name(struct parser *p, struct term *t)
{
    if (t->kind == T_VAR)
        return t->name;
    if (t->kind != T_REF || t->items[0]->kind != T_VAR)
        return NULL;
    struct xv_buf b;
    xv_buf_init(&b, 4096);
    xv_buf_append(&b, t->items[0]->name, strlen(t->items[0]->name));
    for (int i = 1; i < t->n; i++) {
        struct term *k = t->items[i];
        if (k->kind != T_VALUE || k->val->type != XV_T_STRING) {
            xv_buf_free(&b);
            return NULL;
        }
        xv_buf_append(&b, ".", 1);
        xv_buf_append(&b, XV_STR(k->val), XV_STRLEN(k->val));
    }
    const char *r = xv_ast_arena_strdup(p->ar, b.data, b.len);
    xv_buf_free(&b);
    return r;
}

static struct term *parse_postfix(struct parser *p, struct term *t, int allow_call)
{
    for (;;) {
        struct token *tk = peek(p);
        if (tk->nl && (tk->t == TK_LBRACK || tk->t == TK_LPAREN))
            return t;
        if (tk->t == TK_DOT) {
            next(p);
            struct token *id = peek(p);
            if (id->t != TK_IDENT)
                xv_ast_perr(p, id->line, id->col, "unexpected %s token: expected ident",
                     id->t == TK_EOF ? "eof" : xv_ast_tok_names[id->t]);
            next(p);
            struct term *k = value_term(p, xv_string(p->src + id->off, id->len), id);
            if (t->kind != T_REF) {
                struct term *r = new_term(p, T_REF, tk);
                r->loc = t->loc;
                struct tlist l = {0};
                tl_push(p, &l, t);
                r->items = l.v, r->n = l.n;
                t = r;
            }
            struct tlist l = {t->items, t->n, t->n};
            tl_push(p, &l, k);
            t->items = l.v, t->n = l.n;
        } else if (tk->t == TK_LBRACK) {
            next(p);
            int saved = p->no_bar;
            p->no_bar = 0;
            struct term *k = parse_in(p);
            p->no_bar = saved;
            expect(p, TK_RBRACK);
            if (t->kind != T_REF) {
                struct term *r = new_term(p, T_REF, tk);
                r->loc = t->loc;
                struct tlist l = {0};
                tl_push(p, &l, t);
                r->items = l.v, r->n = l.n;
                t = r;
            }
            struct tlist l = {t->items, t->n, t->n};
            tl_push(p, &l, k);
            t->items = l.v, t->n = l.n;
        } else if (tk->t == TK_LPAREN && allow_call) {
            const char *name = ref_name(p, t);
            if (!name)
                return t;
            next(p);
            struct term *c = new_term(p, T_CALL, tk);
            c->loc = t->loc;
            c->name = name;
            struct tlist args = {0};
            tl_push(p, &args, t);
            int saved = p->no_bar;
            p->no_bar = 0;
            if (peek(p)->t != TK_RPAREN) {
                tl_push(p, &args, parse_in(p));
                while (peek(p)->t == TK_COMMA) {
                    next(p);
                    if (peek(p)->t == TK_RPAREN)
                        break; /* trailing comma */
                    tl_push(p, &args, parse_in(p));
                }
            }
            p->no_bar = saved;
            expect(p, TK_RPAREN);
            c->items = args.v;
            c->n = args.n;
            t = c;
        } else {
            return t;
        }
    }
}

static struct term *parse_term(struct parser *p)
{
    enter(p);
    struct token *tk = next(p);
    struct term *t = NULL;
    switch (tk->t) {
    case TK_IDENT:
        if ((is_kw(p, tk, "true") || is_kw(p, tk, "false") || is_kw(p, tk, "null")) &&
            kw_is_ref(p, tk)) {
            t = var_term(p, p->src + tk->off, tk->len, tk); /* keywordrefs: false.foo */
        } else if (is_kw(p, tk, "true"))
            t = value_term(p, xv_bool(1), tk);
        else if (is_kw(p, tk, "false"))
            t = value_term(p, xv_bool(0), tk);
        else if (is_kw(p, tk, "null"))
            t = value_term(p, xv_null(), tk);
        else if (tk->len == 3 && !memcmp(p->src + tk->off, "set", 3) && peek(p)->t == TK_LPAREN &&
                 peek2(p)->t == TK_RPAREN && !peek(p)->nl) {
            next(p);
            next(p);
            t = value_term(p, xv_set_new(0), tk);
        } else {
            /* `contains(...)` is the builtin, not the keyword; a keyword
             * directly followed by `.` or `[` is a reference (keywordrefs) */
            if (is_keyword(p, tk) && !(is_kw(p, tk, "contains") && peek(p)->t == TK_LPAREN) &&
                !((peek(p)->t == TK_DOT || peek(p)->t == TK_LBRACK) && peek(p)->off == tk->off + tk->len))
                unexpected(p, tk);
            t = var_term(p, p->src + tk->off, tk->len, tk);
            if (!strcmp(t->name, "data"))
                t->vflags |= VF_DATA;
            else if (!strcmp(t->name, "input"))
                t->vflags |= VF_INPUT;
        }
        break;
    case TK_NUMBER: {
        struct xv_value *v = xv_number_parse(p->src + tk->off, tk->len);
        if (!v)
            xv_ast_perr(p, tk->line, tk->col, "invalid number");
        t = value_term(p, v, tk);
        break;
    }
    case TK_STRING:
        t = new_term(p, T_VALUE, tk);
        t->val = tk->v;
        t->ground = 1;
        break;
    case TK_TEMPLATE:
        t = parse_template(p, tk);
        break;
    case TK_LBRACK:
    case TK_LBRACE: {
        int saved = p->no_bar;
        p->no_bar = 0;
        t = parse_collection(p, tk);
        p->no_bar = saved;
        break;
    }
    case TK_LPAREN: {
        int saved = p->no_bar;
        p->no_bar = 0;
        t = parse_in_kv(p);
        p->no_bar = saved;
        expect(p, TK_RPAREN);
        break;
    }
    case TK_MINUS: {
        struct token *n = peek(p);
        if (n->t == TK_NUMBER && n->off == tk->off + 1) {
            next(p);
            struct xv_value *v = xv_number_parse(p->src + tk->off, n->off + n->len - tk->off);
            if (!v)
                xv_ast_perr(p, n->line, n->col, "invalid number");
            t = value_term(p, v, tk);
        } else {
            struct term *x = parse_term(p);
            t = make_call(p, "minus", tk, value_term(p, xv_int(0), tk), x);
        }
        p->depth--;
        return t;
    }
    default:
        unexpected(p, tk);
    }
    t = parse_postfix(p, t, 1);
    p->depth--;
    return t;
}

static struct term *parse_factor(struct parser *p)
{
    struct term *l = parse_term(p);
    for (;;) {
        struct token *tk = peek(p);
        const char *op = tk->t == TK_STAR ? "mul" : tk->t == TK_SLASH ? "div"
                       : tk->t == TK_PERCENT ? "rem" : NULL;
        if (!op)
            return l;
        next(p);
        l = make_call(p, op, tk, l, parse_term(p));
    }
}

static struct term *parse_arith(struct parser *p)
{
    struct term *l = parse_factor(p);
    for (;;) {
        struct token *tk = peek(p);
        const char *op = tk->t == TK_PLUS ? "plus" : tk->t == TK_MINUS ? "minus" : NULL;
        if (!op)
            return l;
        /* "x -1" on a new line is a new expression, not a subtraction */
        if (tk->nl)
            return l;
        next(p);
        l = make_call(p, op, tk, l, parse_factor(p));
    }
}

static struct term *parse_and(struct parser *p)
{
    struct term *l = parse_arith(p);
    while (peek(p)->t == TK_AMP) {
        struct token *tk = next(p);
        l = make_call(p, "and", tk, l, parse_arith(p));
    }
    return l;
}

static struct term *parse_or(struct parser *p)
{
    struct term *l = parse_and(p);
    while (!p->no_bar && peek(p)->t == TK_BAR) {
        struct token *tk = next(p);
        l = make_call(p, "or", tk, l, parse_and(p));
    }
    return l;
}

static struct term *parse_rel(struct parser *p)
{
    struct term *l = parse_or(p);
    for (;;) {
        struct token *tk = peek(p);
        const char *op = NULL;
        switch (tk->t) {
        case TK_EQEQ: op = "equal"; break;
        case TK_NEQ: op = "neq"; break;
        case TK_LT: op = "lt"; break;
        case TK_LTE: op = "lte"; break;
        case TK_GT: op = "gt"; break;
        case TK_GTE: op = "gte"; break;
        default: return l;
        }
        next(p);
        l = make_call(p, op, tk, l, parse_or(p));
    }
}

static struct term *make_member3(struct parser *p, struct token *at, struct term *k,
                                 struct term *v, struct term *coll)
{
    struct term *c = new_term(p, T_CALL, at);
    c->name = "internal.member_3";
    c->n = 4;
    c->items = xv_ast_palloc(p, 4 * sizeof(struct term *));
    c->items[0] = var_term(p, c->name, strlen(c->name), at);
    c->items[1] = k;
    c->items[2] = v;
    c->items[3] = coll;
    c->loc = k->loc;
    return c;
}

/* `k, v in coll` where allowed (parenthesised or a whole expression). */
static struct term *parse_in_kv(struct parser *p)
{
    enter(p);
    struct term *l = parse_rel(p);
    if (peek(p)->t == TK_COMMA) {
        size_t save = p->pos;
        int wild = p->wild;
        next(p);
        struct term *v = parse_rel(p);
        if (is_kw(p, peek(p), "in")) {
            struct token *intk = next(p);
            l = make_member3(p, intk, l, v, parse_rel(p));
        } else {
            p->pos = save;
            p->wild = wild;
        }
    }
    while (is_kw(p, peek(p), "in") && !kw_is_ref(p, peek(p))) {
        struct token *tk = next(p);
        l = make_call(p, "internal.member_2", tk, l, parse_rel(p));
    }
    p->depth--;
    return l;
}

static struct term *parse_in(struct parser *p)
{
    enter(p);
    struct term *l = parse_rel(p);
    while (is_kw(p, peek(p), "in") && !kw_is_ref(p, peek(p))) {
        struct token *tk = next(p);
        l = make_call(p, "internal.member_2", tk, l, parse_rel(p));
    }
    p->depth--;
    return l;
}

static struct with *parse_withs(struct parser *p, int *n)
{
    struct with *w = NULL;
    int cnt = 0, cap = 0;
    while (is_kw(p, peek(p), "with") && !kw_is_ref(p, peek(p))) {
        next(p);
        if (cnt == cap) {
            cap = cap ? cap * 2 : 4;
            struct with *nw = xv_ast_palloc(p, (size_t)cap * sizeof *nw);
            if (cnt)
                memcpy(nw, w, (size_t)cnt * sizeof *nw);
            w = nw;
        }
        struct token *at = peek(p);
        struct term *tg = parse_term(p);
        if (tg->kind != T_VAR && tg->kind != T_REF)
            xv_ast_perr(p, at->line, at->col, "with target must be a reference");
        if (!is_kw(p, peek(p), "as"))
            unexpected(p, peek(p));
        next(p);
        w[cnt].target = tg;
        w[cnt].value = parse_in(p);
        cnt++;
    }
    *n = cnt;
    return w;
}

static struct expr *new_expr(struct parser *p, int kind, struct token *at)
{
    struct expr *e = xv_ast_palloc(p, sizeof *e);
    e->kind = (uint8_t)kind;
    e->loc.file = p->file;
    e->loc.line = at->line;
    e->loc.col = at->col;
    return e;
}

static struct expr *parse_expr(struct parser *p)
{
    enter(p);
    struct token *tk = peek(p);
    struct expr *e;
    if (is_kw(p, tk, "some") && !kw_is_ref(p, tk)) {
        next(p);
        struct tlist vars = {0};
        tl_push(p, &vars, parse_rel(p));
        while (peek(p)->t == TK_COMMA) {
            next(p);
            tl_push(p, &vars, parse_rel(p));
        }
        if (is_kw(p, peek(p), "in")) {
            next(p);
            if (vars.n > 2)
                xv_ast_perr(p, tk->line, tk->col, "unexpected , token");
            e = new_expr(p, E_SOMEIN, tk);
            e->key = vars.n == 2 ? vars.v[0] : NULL;
            e->a = vars.v[vars.n - 1];
            e->b = parse_rel(p);
        } else {
            for (int i = 0; i < vars.n; i++)
                if (vars.v[i]->kind != T_VAR)
                    xv_ast_perr(p, vars.v[i]->loc.line, vars.v[i]->loc.col,
                         "expected var or \"some x in xs\"");
            e = new_expr(p, E_SOME, tk);
            e->items = vars.v;
            e->n = vars.n;
        }
    } else if (is_kw(p, tk, "every") && !kw_is_ref(p, tk)) {
        next(p);
        e = new_expr(p, E_EVERY, tk);
        struct term *a = parse_term(p);
        if (peek(p)->t == TK_COMMA) {
            next(p);
            e->key = a;
            a = parse_term(p);
        }
        e->a = a;
        if (!is_kw(p, peek(p), "in"))
            unexpected(p, peek(p));
        next(p);
        e->b = parse_rel(p);
        expect(p, TK_LBRACE);
        e->body = parse_body(p, TK_RBRACE);
    } else if (is_kw(p, tk, "not") && !kw_is_ref(p, tk)) {
        next(p);
        e = new_expr(p, E_NOT, tk);
        e->inner = parse_expr(p);
        p->depth--;
        return e;
    } else {
        struct term *a = parse_in_kv(p);
        struct token *op = peek(p);
        if (op->t == TK_EQ || op->t == TK_ASSIGN) {
            next(p);
            e = new_expr(p, op->t == TK_EQ ? E_UNIFY : E_ASSIGN, tk);
            e->a = a;
            e->b = parse_in(p);
        } else if (op->t == TK_COMMA && !p->no_bar) {
            /* k, v in coll */
            next(p);
            struct term *v = parse_rel(p);
            if (!is_kw(p, peek(p), "in"))
                unexpected(p, peek(p));
            struct token *intk = next(p);
            struct term *coll = parse_rel(p);
            struct term *c = new_term(p, T_CALL, intk);
            c->name = "internal.member_3";
            c->n = 4;
            c->items = xv_ast_palloc(p, 4 * sizeof(struct term *));
            c->items[0] = var_term(p, c->name, strlen(c->name), intk);
            c->items[1] = a;
            c->items[2] = v;
            c->items[3] = coll;
            c->loc = a->loc;
            e = new_expr(p, E_TERM, tk);
            e->a = c;
        } else {
            e = new_expr(p, E_TERM, tk);
            e->a = a;
        }
    }
    e->withs = parse_withs(p, &e->nwith);
    p->depth--;
    return e;
}

/* Body after '{' (or the '|' of a comprehension) up to closer. */
static struct body *parse_body(struct parser *p, int closer)
{
    struct body *b = xv_ast_palloc(p, sizeof *b);
    int cap = 0;
    int saved = p->no_bar;
    p->no_bar = 0;
    for (;;) {
        while (peek(p)->t == TK_SEMI)
            next(p);
        if (peek(p)->t == closer) {
            next(p);
            break;
        }
        struct expr *e = parse_expr(p);
        if (b->n == cap) {
            cap = cap ? cap * 2 : 8;
            struct expr **ne = xv_ast_palloc(p, (size_t)cap * sizeof *ne);
            if (b->n)
                memcpy(ne, b->exprs, (size_t)b->n * sizeof *ne);
            b->exprs = ne;
        }
        b->exprs[b->n++] = e;
        struct token *t = peek(p);
        if (t->t == TK_SEMI || t->t == closer || t->nl)
            continue;
        unexpected(p, t);
    }
    p->no_bar = saved;
    if (b->n == 0)
        xv_ast_perr(p, p->toks[p->pos - 1].line, p->toks[p->pos - 1].col, "found empty body");
    return b;
}

/* Body of a rule after `if`: a braced body or one expression. */
static struct body *parse_if_body(struct parser *p)
{
    if (peek(p)->t == TK_LBRACE) {
        /* `if {` is a body; when that does not parse, the braces are an
         * object/set term used as the expression (`if {x: 1 | …}`). */
        size_t save = p->pos;
        int wild = p->wild, depth = p->depth;
        struct xv_perr e1 = *p->err;
        jmp_buf outer;
        memcpy(outer, p->jb, sizeof outer);
        struct body *volatile b = NULL;
        if (setjmp(p->jb) == 0) {
            next(p);
            b = parse_body(p, TK_RBRACE);
        }
        memcpy(p->jb, outer, sizeof outer);
        if (b)
            return b;
        struct xv_perr body_err = *p->err;
        *p->err = e1;
        p->pos = save;
        p->wild = wild;
        p->depth = depth;
        if (setjmp(p->jb) == 0) {
            b = xv_ast_palloc(p, sizeof *b);
            b->exprs = xv_ast_palloc(p, sizeof *b->exprs);
            b->exprs[0] = parse_expr(p);
            b->n = 1;
        }
        memcpy(p->jb, outer, sizeof outer);
        if (!b || !b->n) {
            *p->err = body_err; /* report the body's error */
            longjmp(p->jb, 1);
        }
        return b;
    }
    struct body *b = xv_ast_palloc(p, sizeof *b);
    b->exprs = xv_ast_palloc(p, sizeof *b->exprs);
    b->exprs[0] = parse_expr(p);
    b->n = 1;
    return b;
}

static struct body *true_body(struct parser *p, struct token *at)
{
    struct body *b = xv_ast_palloc(p, sizeof *b);
    b->exprs = xv_ast_palloc(p, sizeof *b->exprs);
    struct expr *e = new_expr(p, E_TERM, at);
    e->a = value_term(p, xv_bool(1), at);
    b->exprs[0] = e;
    b->n = 1;
    return b;
}

/* Parse the rest of a rule after its head: optional `if` body, else chain. */
static void parse_rule_tail(struct parser *p, struct rule *r, struct token *headtk)
{
    struct token *t = peek(p);
    if (is_kw(p, t, "if") && !kw_is_ref(p, t)) {
        next(p);
        r->body = parse_if_body(p);
    } else if (t->t == TK_LBRACE && !t->nl) {
        if (!p->v0)
            xv_ast_perr(p, t->line, t->col, "`if` keyword is required before rule body");
        next(p);
        r->body = parse_body(p, TK_RBRACE);
    } else if (t->t == TK_LBRACE && t->nl && p->v0 && r->value == NULL && r->kind == R_COMPLETE) {
        next(p);
        r->body = parse_body(p, TK_RBRACE);
    } else {
        r->body = true_body(p, headtk);
    }
    /* else chain */
    struct rule *prev = r;
    while (is_kw(p, peek(p), "else") && !kw_is_ref(p, peek(p))) {
        struct token *et = next(p);
        if (r->kind != R_COMPLETE && r->kind != R_FUNC)
            xv_ast_perr(p, et->line, et->col, "else keyword cannot be used on multi-value rules");
        struct rule *e = xv_ast_palloc(p, sizeof *e);
        *e = *r;
        e->els = NULL;
        e->loc.line = et->line;
        e->loc.col = et->col;
        e->value = NULL;
        if (peek(p)->t == TK_ASSIGN || peek(p)->t == TK_EQ) {
            next(p);
            e->value = parse_in(p);
        } else {
            e->value = value_term(p, xv_bool(1), et);
        }
        struct token *bt = peek(p);
        if (is_kw(p, bt, "if")) {
            next(p);
            e->body = parse_if_body(p);
        } else if (bt->t == TK_LBRACE) {
            if (!p->v0)
                xv_ast_perr(p, bt->line, bt->col, "`if` keyword is required before rule body");
            next(p);
            e->body = parse_body(p, TK_RBRACE);
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

static struct rule *parse_rule(struct parser *p, struct module *m)
{
    struct token *st = peek(p);
    struct rule *r = xv_ast_palloc(p, sizeof *r);
    r->mod = m;
    r->loc.file = p->file;
    r->loc.line = st->line;
    r->loc.col = st->col;
    r->annot = xv_ast_annotations_for(p, st->line, 0);
    int dflt = 0;
    if (is_kw(p, st, "default") && !kw_is_ref(p, st)) {
        next(p);
        dflt = 1;
    }
    struct token *ht = peek(p);
    struct token *after = peek2(p);
    if (ht->t != TK_IDENT ||
        (is_keyword(p, ht) && !((after->t == TK_DOT || after->t == TK_LBRACK) &&
                                after->off == ht->off + ht->len)))
        unexpected(p, ht);
    next(p);
    struct term *href = var_term(p, p->src + ht->off, ht->len, ht);
    href = parse_postfix(p, href, 0);
    r->href = href;
    /* function args */
    if (peek(p)->t == TK_LPAREN && !peek(p)->nl) {
        next(p);
        struct tlist args = {0};
        if (peek(p)->t != TK_RPAREN) {
            tl_push(p, &args, parse_in(p));
            while (peek(p)->t == TK_COMMA) {
                next(p);
                tl_push(p, &args, parse_in(p));
            }
        }
        expect(p, TK_RPAREN);
        r->kind = R_FUNC;
        r->args = args.v;
        r->nargs = args.n;
    }
    struct token *op = peek(p);
    if (is_kw(p, op, "contains") && !kw_is_ref(p, op)) {
        if (r->kind == R_FUNC || dflt)
            unexpected(p, op);
        next(p);
        r->kind = R_SET;
        r->key = parse_in(p);
    } else if (op->t == TK_ASSIGN || op->t == TK_EQ) {
        next(p);
        r->assign = op->t == TK_ASSIGN;
        r->value = parse_in(p);
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
        r->value = value_term(p, xv_bool(1), op);
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
    struct token *tk = peek(p);
    if (tk->t != TK_IDENT)
        unexpected(p, tk);
    next(p);
    struct term *t = var_term(p, p->src + tk->off, tk->len, tk);
    return parse_postfix(p, t, 0);
}

static int do_parse_module(struct parser *p, struct module **out)
{
    struct module *m = xv_ast_palloc(p, sizeof *m);
    m->file = p->file;
    m->v0 = p->v0;
    struct token *t = peek(p);
    if (!is_kw(p, t, "package"))
        xv_ast_perr(p, t->line, t->col, "package expected");
    m->annot = xv_ast_annotations_for(p, t->line, 1);
    next(p);
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
    while (is_kw(p, peek(p), "import") && !kw_is_ref(p, peek(p))) {
        struct token *it = next(p);
        struct term *path = parse_pkg_ref(p);
        const char *alias = NULL;
        if (is_kw(p, peek(p), "as")) {
            next(p);
            struct token *a = expect(p, TK_IDENT);
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
    while (peek(p)->t != TK_EOF) {
        struct rule *r = parse_rule(p, m);
        if (m->nrules == capr) {
            capr = capr ? capr * 2 : 16;
            struct rule **nr = xv_ast_palloc(p, (size_t)capr * sizeof *nr);
            if (m->nrules)
                memcpy(nr, m->rules, (size_t)m->nrules * sizeof *nr);
            m->rules = nr;
        }
        m->rules[m->nrules++] = r;
        struct token *nt = peek(p);
        if (nt->t != TK_EOF && !nt->nl && nt->t != TK_SEMI)
            unexpected(p, nt);
        while (peek(p)->t == TK_SEMI)
            next(p);
    }
    *out = m;
    return 0;
}

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
        *out = parse_body(&p, TK_EOF);
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
            return xv_string(XV_STR(t->val), XV_STRLEN(t->val));
        if (t->val->type == XV_T_NUMBER) {
            struct xv_buf b;
            xv_buf_init(&b, 1 << 20);
            xv_number_write(&b, t->val);
            r = xv_number_parse(b.data, b.len);
            xv_buf_free(&b);
            return r;
        }
        if (t->val->type == XV_T_ARRAY)
            return xv_array_new(0);
        if (t->val->type == XV_T_SET)
            return xv_set_new(0);
        if (t->val->type == XV_T_OBJECT)
            return xv_object_new(0);
        return t->val; /* null / booleans are static */
    case T_ARRAY:
    case T_SET:
        r = t->kind == T_ARRAY ? xv_array_new((size_t)t->n) : xv_set_new((size_t)t->n);
        for (i = 0; i < t->n; i++) {
            if (!(x = term_to_value(t->items[i], err))) {
                xv_decref(r);
                return NULL;
            }
            if (t->kind == T_ARRAY)
                xv_array_push(r, x);
            else
                xv_set_add(r, x);
            xv_decref(x);
        }
        return r;
    case T_OBJECT:
        r = xv_object_new((size_t)t->n / 2);
        for (i = 0; i + 1 < t->n; i += 2) {
            x = term_to_value(t->items[i], err);
            y = x ? term_to_value(t->items[i + 1], err) : NULL;
            if (!x || !y) {
                xv_decref(x);
                xv_decref(r);
                return NULL;
            }
            xv_object_set(r, x, y);
            xv_decref(x);
            xv_decref(y);
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
        struct term *t = parse_in(&p);
        if (peek(&p)->t != TK_EOF)
            unexpected(&p, peek(&p));
        *out = term_to_value(t, err);
        rc = *out ? 0 : -1;
    }
    xv_ast_parser_release(&p);
    xv_ast_arena_free(&ar);
    xv_value_free_frozen(&fz);
    return rc;
}
