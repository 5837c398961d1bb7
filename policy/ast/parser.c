/*
 * ast/parser.c — recursive-descent parser for Rego terms, expressions and
 * bodies (v1, and v0 with the newer keywords always available), producing
 * the tree of ast/tree.h from ast/lexer.c's tokens; rules, modules and the
 * entry points are ast/module.c's.
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
struct token *xv_ast_peek(struct parser *p) { return &p->toks[p->pos]; }
struct token *xv_ast_peek2(struct parser *p) { return &p->toks[p->pos + (p->pos + 1 < p->ntok)]; }
struct token *xv_ast_next(struct parser *p)
{
    struct token *t = &p->toks[p->pos];
    if (t->t != TK_EOF)
        p->pos++;
    return t;
}
int xv_ast_is_kw(struct parser *p, struct token *t, const char *kw)
{
    size_t n = strlen(kw);
    return t->t == TK_IDENT && t->len == n && !memcmp(p->src + t->off, kw, n);
}
int xv_ast_is_keyword(struct parser *p, struct token *t)
{
    static const char *const kws[] = {"as", "default", "else", "every", "false", "if", "import",
                                      "in", "not", "null", "package", "some", "true", "with",
                                      "contains", NULL};
    for (int i = 0; kws[i]; i++)
        if (xv_ast_is_kw(p, t, kws[i]))
            return 1;
    return 0;
}

/* A keyword used as the head of a reference (`every.x`, `as[0]`). */
int xv_ast_kw_is_ref(struct parser *p, struct token *t)
{
    struct token *n = t + (t->t != TK_EOF);
    return (n->t == TK_DOT || n->t == TK_LBRACK) && n->off == t->off + t->len;
}

void __attribute__((noreturn)) xv_ast_unexpected(struct parser *p, struct token *t)
{
    if (t->t == TK_EOF)
        xv_ast_perr(p, t->line, t->col, "unexpected eof token");
    if (t->t == TK_IDENT)
        xv_ast_perr(p, t->line, t->col, "unexpected %.*s token", (int)t->len, p->src + t->off);
    xv_ast_perr(p, t->line, t->col, "unexpected %s token", xv_ast_tok_names[t->t]);
}

struct token *xv_ast_expect(struct parser *p, int tt)
{
    struct token *t = xv_ast_peek(p);
    if (t->t != tt) {
        if (t->t == TK_EOF)
            xv_ast_perr(p, t->line, t->col, "unexpected eof token: expected %s", xv_ast_tok_names[tt]);
        xv_ast_perr(p, t->line, t->col, "unexpected %s token: expected %s",
             t->t == TK_IDENT ? "ident" : xv_ast_tok_names[t->t], xv_ast_tok_names[tt]);
    }
    return xv_ast_next(p);
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

struct term *xv_ast_value_term(struct parser *p, struct xv_value *v, struct token *at)
{
    struct term *t = new_term(p, T_VALUE, at);
    t->val = xv_ast_pfreeze(p, v);
    t->ground = 1;
    return t;
}

/* A variable term (arena copy of the name); each `_` becomes its own
 * wildcard variable ($_0, $_1, …). */
struct term *xv_ast_var_term(struct parser *p, const char *name, size_t n, struct token *at)
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
void xv_ast_tl_push(struct parser *p, struct tlist *l, struct term *t)
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

/* An operator as the call OPA's AST has for it (plus(a, b), …). */
static struct term *make_call(struct parser *p, const char *op, struct token *at, struct term *a,
                              struct term *b)
{
    struct term *c = new_term(p, T_CALL, at);
    c->name = op;
    c->n = b ? 3 : 2;
    c->items = xv_ast_palloc(p, 3 * sizeof(struct term *));
    c->items[0] = xv_ast_var_term(p, op, strlen(op), at);
    c->items[1] = a;
    c->items[2] = b;
    c->loc = a->loc;
    return c;
}

struct term *xv_ast_parse_in(struct parser *p);
static struct term *parse_in_kv(struct parser *p);
static struct term *parse_term(struct parser *p);
struct body *xv_ast_parse_body(struct parser *p, int closer);
static struct expr *parse_expr(struct parser *p);

static void enter(struct parser *p)
{
    if (++p->depth > 400)
        xv_ast_perr(p, xv_ast_peek(p)->line, xv_ast_peek(p)->col, "nesting too deep");
}

/* Split a template string token into literal and expression parts. */
static struct with *parse_withs(struct parser *p, int *n);
struct expr *xv_ast_new_expr(struct parser *p, int kind, struct token *at);

/* A template string ($"…{expr}…" or $`…`): literal parts and the
 * embedded expressions, each parsed by a nested parser over its text. */
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
                xv_ast_tl_push(p, &parts, xv_ast_value_term(p, xv_val_string(lit.data, lit.len), tk));
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
                e = xv_ast_parse_in(&sub);
                if (xv_ast_is_kw(&sub, xv_ast_peek(&sub), "with")) {
                    /* `{a with input as x}`: evaluate as [$t | $t = a with …][0] */
                    struct token *wt = xv_ast_peek(&sub);
                    struct expr *ex = xv_ast_new_expr(&sub, E_UNIFY, wt);
                    char nm[32];
                    int nl = snprintf(nm, sizeof nm, "$t%d", sub.wild++);
                    struct term *tv = xv_ast_var_term(&sub, nm, (size_t)nl, wt);
                    ex->a = tv;
                    ex->b = e;
                    ex->withs = parse_withs(&sub, &ex->nwith);
                    struct term *c = new_term(&sub, T_ACOMP, wt);
                    c->head = xv_ast_var_term(&sub, tv->name, strlen(tv->name), wt);
                    c->body = xv_ast_palloc(&sub, sizeof *c->body);
                    c->body->exprs = xv_ast_palloc(&sub, sizeof(struct expr *));
                    c->body->exprs[0] = ex;
                    c->body->n = 1;
                    c->outarg = 1; /* marks "first element of" for templates */
                    e = c;
                }
                if (xv_ast_peek(&sub)->t != TK_EOF)
                    xv_ast_unexpected(&sub, xv_ast_peek(&sub));
            }
            xv_ast_parser_release(&sub);
            p->wild = sub.wild;
            if (!e) {
                xv_buf_free(&lit);
                p->err->loc.line += tk->line - 1;
                longjmp(p->jb, 1);
            }
            xv_ast_tl_push(p, &parts, e);
            i = jend + 1;
            continue;
        }
        xv_buf_append(&lit, &c, 1);
        i++;
    }
    if (lit.len || parts.n == 0)
        xv_ast_tl_push(p, &parts, xv_ast_value_term(p, xv_val_string(lit.data ? lit.data : "", lit.len), tk));
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
    if (xv_ast_peek(p)->t == closer) {
        xv_ast_next(p);
        if (closer == TK_RBRACK)
            return xv_ast_value_term(p, xv_val_array_new(0), open);
        return xv_ast_value_term(p, xv_val_object_new(0), open);
    }
    int saved = p->no_bar;
    p->no_bar = 1;
    struct term *first = xv_ast_parse_in(p);
    struct term *fval = NULL;
    int isobj = 0;
    if (closer == TK_RBRACE && xv_ast_peek(p)->t == TK_COLON) {
        xv_ast_next(p);
        isobj = 1;
        fval = xv_ast_parse_in(p);
    }
    p->no_bar = saved;
    if (xv_ast_peek(p)->t == TK_BAR) {
        xv_ast_next(p);
        struct term *t = new_term(p, closer == TK_RBRACK ? T_ACOMP : isobj ? T_OCOMP : T_SCOMP, open);
        if (isobj) {
            t->key = first;
            t->head = fval;
        } else {
            t->head = first;
        }
        t->body = xv_ast_parse_body(p, closer);
        return t;
    }
    struct term *t = new_term(p, closer == TK_RBRACK ? T_ARRAY : isobj ? T_OBJECT : T_SET, open);
    xv_ast_tl_push(p, &items, first);
    if (isobj)
        xv_ast_tl_push(p, &items, fval);
    while (xv_ast_peek(p)->t == TK_COMMA) {
        xv_ast_next(p);
        if (xv_ast_peek(p)->t == closer)
            break;
        xv_ast_tl_push(p, &items, xv_ast_parse_in(p));
        if (isobj) {
            xv_ast_expect(p, TK_COLON);
            xv_ast_tl_push(p, &items, xv_ast_parse_in(p));
        }
    }
    xv_ast_expect(p, closer);
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

/* What may follow a term: .name, [index] and, when allowed, a call's
 * (args); a newline ends it (Rego separates expressions by lines). */
struct term *xv_ast_parse_postfix(struct parser *p, struct term *t, int allow_call)
{
    for (;;) {
        struct token *tk = xv_ast_peek(p);
        if (tk->nl && (tk->t == TK_LBRACK || tk->t == TK_LPAREN))
            return t;
        if (tk->t == TK_DOT) {
            xv_ast_next(p);
            struct token *id = xv_ast_peek(p);
            if (id->t != TK_IDENT)
                xv_ast_perr(p, id->line, id->col, "unexpected %s token: expected ident",
                     id->t == TK_EOF ? "eof" : xv_ast_tok_names[id->t]);
            xv_ast_next(p);
            struct term *k = xv_ast_value_term(p, xv_val_string(p->src + id->off, id->len), id);
            if (t->kind != T_REF) {
                struct term *r = new_term(p, T_REF, tk);
                r->loc = t->loc;
                struct tlist l = {0};
                xv_ast_tl_push(p, &l, t);
                r->items = l.v, r->n = l.n;
                t = r;
            }
            struct tlist l = {t->items, t->n, t->n};
            xv_ast_tl_push(p, &l, k);
            t->items = l.v, t->n = l.n;
        } else if (tk->t == TK_LBRACK) {
            xv_ast_next(p);
            int saved = p->no_bar;
            p->no_bar = 0;
            struct term *k = xv_ast_parse_in(p);
            p->no_bar = saved;
            xv_ast_expect(p, TK_RBRACK);
            if (t->kind != T_REF) {
                struct term *r = new_term(p, T_REF, tk);
                r->loc = t->loc;
                struct tlist l = {0};
                xv_ast_tl_push(p, &l, t);
                r->items = l.v, r->n = l.n;
                t = r;
            }
            struct tlist l = {t->items, t->n, t->n};
            xv_ast_tl_push(p, &l, k);
            t->items = l.v, t->n = l.n;
        } else if (tk->t == TK_LPAREN && allow_call) {
            const char *name = ref_name(p, t);
            if (!name)
                return t;
            xv_ast_next(p);
            struct term *c = new_term(p, T_CALL, tk);
            c->loc = t->loc;
            c->name = name;
            struct tlist args = {0};
            xv_ast_tl_push(p, &args, t);
            int saved = p->no_bar;
            p->no_bar = 0;
            if (xv_ast_peek(p)->t != TK_RPAREN) {
                xv_ast_tl_push(p, &args, xv_ast_parse_in(p));
                while (xv_ast_peek(p)->t == TK_COMMA) {
                    xv_ast_next(p);
                    if (xv_ast_peek(p)->t == TK_RPAREN)
                        break; /* trailing comma */
                    xv_ast_tl_push(p, &args, xv_ast_parse_in(p));
                }
            }
            p->no_bar = saved;
            xv_ast_expect(p, TK_RPAREN);
            c->items = args.v;
            c->n = args.n;
            t = c;
        } else {
            return t;
        }
    }
}

/* A primary term: scalar, variable, ref, array/set/object literal or
 * comprehension, parenthesised expression, template string, unary minus. */
static struct term *parse_term(struct parser *p)
{
    enter(p);
    struct token *tk = xv_ast_next(p);
    struct term *t = NULL;
    switch (tk->t) {
    case TK_IDENT:
        if ((xv_ast_is_kw(p, tk, "true") || xv_ast_is_kw(p, tk, "false") || xv_ast_is_kw(p, tk, "null")) &&
            xv_ast_kw_is_ref(p, tk)) {
            t = xv_ast_var_term(p, p->src + tk->off, tk->len, tk); /* keywordrefs: false.foo */
        } else if (xv_ast_is_kw(p, tk, "true"))
            t = xv_ast_value_term(p, xv_val_bool(1), tk);
        else if (xv_ast_is_kw(p, tk, "false"))
            t = xv_ast_value_term(p, xv_val_bool(0), tk);
        else if (xv_ast_is_kw(p, tk, "null"))
            t = xv_ast_value_term(p, xv_val_null(), tk);
        else if (tk->len == 3 && !memcmp(p->src + tk->off, "set", 3) && xv_ast_peek(p)->t == TK_LPAREN &&
                 xv_ast_peek2(p)->t == TK_RPAREN && !xv_ast_peek(p)->nl) {
            xv_ast_next(p);
            xv_ast_next(p);
            t = xv_ast_value_term(p, xv_val_set_new(0), tk);
        } else {
            /* `contains(...)` is the builtin, not the keyword; a keyword
             * directly followed by `.` or `[` is a reference (keywordrefs) */
            if (xv_ast_is_keyword(p, tk) && !(xv_ast_is_kw(p, tk, "contains") && xv_ast_peek(p)->t == TK_LPAREN) &&
                !((xv_ast_peek(p)->t == TK_DOT || xv_ast_peek(p)->t == TK_LBRACK) && xv_ast_peek(p)->off == tk->off + tk->len))
                xv_ast_unexpected(p, tk);
            t = xv_ast_var_term(p, p->src + tk->off, tk->len, tk);
            if (!strcmp(t->name, "data"))
                t->vflags |= VF_DATA;
            else if (!strcmp(t->name, "input"))
                t->vflags |= VF_INPUT;
        }
        break;
    case TK_NUMBER: {
        struct xv_value *v = xv_val_number_parse(p->src + tk->off, tk->len);
        if (!v)
            xv_ast_perr(p, tk->line, tk->col, "invalid number");
        t = xv_ast_value_term(p, v, tk);
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
        xv_ast_expect(p, TK_RPAREN);
        break;
    }
    case TK_MINUS: {
        struct token *n = xv_ast_peek(p);
        if (n->t == TK_NUMBER && n->off == tk->off + 1) {
            xv_ast_next(p);
            struct xv_value *v = xv_val_number_parse(p->src + tk->off, n->off + n->len - tk->off);
            if (!v)
                xv_ast_perr(p, n->line, n->col, "invalid number");
            t = xv_ast_value_term(p, v, tk);
        } else {
            struct term *x = parse_term(p);
            t = make_call(p, "minus", tk, xv_ast_value_term(p, xv_val_int(0), tk), x);
        }
        p->depth--;
        return t;
    }
    default:
        xv_ast_unexpected(p, tk);
    }
    t = xv_ast_parse_postfix(p, t, 1);
    p->depth--;
    return t;
}

/* Precedence climbing, lowest binding last: * / % ... */
static struct term *parse_factor(struct parser *p)
{
    struct term *l = parse_term(p);
    for (;;) {
        struct token *tk = xv_ast_peek(p);
        const char *op = tk->t == TK_STAR ? "mul" : tk->t == TK_SLASH ? "div"
                       : tk->t == TK_PERCENT ? "rem" : NULL;
        if (!op)
            return l;
        xv_ast_next(p);
        l = make_call(p, op, tk, l, parse_term(p));
    }
}

/* ... + - ... */
static struct term *parse_arith(struct parser *p)
{
    struct term *l = parse_factor(p);
    for (;;) {
        struct token *tk = xv_ast_peek(p);
        const char *op = tk->t == TK_PLUS ? "plus" : tk->t == TK_MINUS ? "minus" : NULL;
        if (!op)
            return l;
        /* "x -1" on a new line is a new expression, not a subtraction */
        if (tk->nl)
            return l;
        xv_ast_next(p);
        l = make_call(p, op, tk, l, parse_factor(p));
    }
}

/* ... & (set intersection) ... */
static struct term *parse_and(struct parser *p)
{
    struct term *l = parse_arith(p);
    while (xv_ast_peek(p)->t == TK_AMP) {
        struct token *tk = xv_ast_next(p);
        l = make_call(p, "and", tk, l, parse_arith(p));
    }
    return l;
}

/* ... | (set union; not inside a set comprehension's head) ... */
static struct term *parse_or(struct parser *p)
{
    struct term *l = parse_and(p);
    while (!p->no_bar && xv_ast_peek(p)->t == TK_BAR) {
        struct token *tk = xv_ast_next(p);
        l = make_call(p, "or", tk, l, parse_and(p));
    }
    return l;
}

/* ... and comparisons, the loosest. */
static struct term *parse_rel(struct parser *p)
{
    struct term *l = parse_or(p);
    for (;;) {
        struct token *tk = xv_ast_peek(p);
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
        xv_ast_next(p);
        l = make_call(p, op, tk, l, parse_or(p));
    }
}

/* `k, v in c` as OPA's internal.member_3 call. */
static struct term *make_member3(struct parser *p, struct token *at, struct term *k,
                                 struct term *v, struct term *coll)
{
    struct term *c = new_term(p, T_CALL, at);
    c->name = "internal.member_3";
    c->n = 4;
    c->items = xv_ast_palloc(p, 4 * sizeof(struct term *));
    c->items[0] = xv_ast_var_term(p, c->name, strlen(c->name), at);
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
    if (xv_ast_peek(p)->t == TK_COMMA) {
        size_t save = p->pos;
        int wild = p->wild;
        xv_ast_next(p);
        struct term *v = parse_rel(p);
        if (xv_ast_is_kw(p, xv_ast_peek(p), "in")) {
            struct token *intk = xv_ast_next(p);
            l = make_member3(p, intk, l, v, parse_rel(p));
        } else {
            p->pos = save;
            p->wild = wild;
        }
    }
    while (xv_ast_is_kw(p, xv_ast_peek(p), "in") && !xv_ast_kw_is_ref(p, xv_ast_peek(p))) {
        struct token *tk = xv_ast_next(p);
        l = make_call(p, "internal.member_2", tk, l, parse_rel(p));
    }
    p->depth--;
    return l;
}

struct term *xv_ast_parse_in(struct parser *p)
{
    enter(p);
    struct term *l = parse_rel(p);
    while (xv_ast_is_kw(p, xv_ast_peek(p), "in") && !xv_ast_kw_is_ref(p, xv_ast_peek(p))) {
        struct token *tk = xv_ast_next(p);
        l = make_call(p, "internal.member_2", tk, l, parse_rel(p));
    }
    p->depth--;
    return l;
}

/* The `with target as value` modifiers after an expression. */
static struct with *parse_withs(struct parser *p, int *n)
{
    struct with *w = NULL;
    int cnt = 0, cap = 0;
    while (xv_ast_is_kw(p, xv_ast_peek(p), "with") && !xv_ast_kw_is_ref(p, xv_ast_peek(p))) {
        xv_ast_next(p);
        if (cnt == cap) {
            cap = cap ? cap * 2 : 4;
            struct with *nw = xv_ast_palloc(p, (size_t)cap * sizeof *nw);
            if (cnt)
                memcpy(nw, w, (size_t)cnt * sizeof *nw);
            w = nw;
        }
        struct token *at = xv_ast_peek(p);
        struct term *tg = parse_term(p);
        if (tg->kind != T_VAR && tg->kind != T_REF)
            xv_ast_perr(p, at->line, at->col, "with target must be a reference");
        if (!xv_ast_is_kw(p, xv_ast_peek(p), "as"))
            xv_ast_unexpected(p, xv_ast_peek(p));
        xv_ast_next(p);
        w[cnt].target = tg;
        w[cnt].value = xv_ast_parse_in(p);
        cnt++;
    }
    *n = cnt;
    return w;
}

struct expr *xv_ast_new_expr(struct parser *p, int kind, struct token *at)
{
    struct expr *e = xv_ast_palloc(p, sizeof *e);
    e->kind = (uint8_t)kind;
    e->loc.file = p->file;
    e->loc.line = at->line;
    e->loc.col = at->col;
    return e;
}

/* One expression: not, some, every, := / = / unification, or a term;
 * then its `with` modifiers. */
static struct expr *parse_expr(struct parser *p)
{
    enter(p);
    struct token *tk = xv_ast_peek(p);
    struct expr *e;
    if (xv_ast_is_kw(p, tk, "some") && !xv_ast_kw_is_ref(p, tk)) {
        xv_ast_next(p);
        struct tlist vars = {0};
        xv_ast_tl_push(p, &vars, parse_rel(p));
        while (xv_ast_peek(p)->t == TK_COMMA) {
            xv_ast_next(p);
            xv_ast_tl_push(p, &vars, parse_rel(p));
        }
        if (xv_ast_is_kw(p, xv_ast_peek(p), "in")) {
            xv_ast_next(p);
            if (vars.n > 2)
                xv_ast_perr(p, tk->line, tk->col, "unexpected , token");
            e = xv_ast_new_expr(p, E_SOMEIN, tk);
            e->key = vars.n == 2 ? vars.v[0] : NULL;
            e->a = vars.v[vars.n - 1];
            e->b = parse_rel(p);
        } else {
            for (int i = 0; i < vars.n; i++)
                if (vars.v[i]->kind != T_VAR)
                    xv_ast_perr(p, vars.v[i]->loc.line, vars.v[i]->loc.col,
                         "expected var or \"some x in xs\"");
            e = xv_ast_new_expr(p, E_SOME, tk);
            e->items = vars.v;
            e->n = vars.n;
        }
    } else if (xv_ast_is_kw(p, tk, "every") && !xv_ast_kw_is_ref(p, tk)) {
        xv_ast_next(p);
        e = xv_ast_new_expr(p, E_EVERY, tk);
        struct term *a = parse_term(p);
        if (xv_ast_peek(p)->t == TK_COMMA) {
            xv_ast_next(p);
            e->key = a;
            a = parse_term(p);
        }
        e->a = a;
        if (!xv_ast_is_kw(p, xv_ast_peek(p), "in"))
            xv_ast_unexpected(p, xv_ast_peek(p));
        xv_ast_next(p);
        e->b = parse_rel(p);
        xv_ast_expect(p, TK_LBRACE);
        e->body = xv_ast_parse_body(p, TK_RBRACE);
    } else if (xv_ast_is_kw(p, tk, "not") && !xv_ast_kw_is_ref(p, tk)) {
        xv_ast_next(p);
        e = xv_ast_new_expr(p, E_NOT, tk);
        e->inner = parse_expr(p);
        p->depth--;
        return e;
    } else {
        struct term *a = parse_in_kv(p);
        struct token *op = xv_ast_peek(p);
        if (op->t == TK_EQ || op->t == TK_ASSIGN) {
            xv_ast_next(p);
            e = xv_ast_new_expr(p, op->t == TK_EQ ? E_UNIFY : E_ASSIGN, tk);
            e->a = a;
            e->b = xv_ast_parse_in(p);
        } else if (op->t == TK_COMMA && !p->no_bar) {
            /* k, v in coll */
            xv_ast_next(p);
            struct term *v = parse_rel(p);
            if (!xv_ast_is_kw(p, xv_ast_peek(p), "in"))
                xv_ast_unexpected(p, xv_ast_peek(p));
            struct token *intk = xv_ast_next(p);
            struct term *coll = parse_rel(p);
            struct term *c = new_term(p, T_CALL, intk);
            c->name = "internal.member_3";
            c->n = 4;
            c->items = xv_ast_palloc(p, 4 * sizeof(struct term *));
            c->items[0] = xv_ast_var_term(p, c->name, strlen(c->name), intk);
            c->items[1] = a;
            c->items[2] = v;
            c->items[3] = coll;
            c->loc = a->loc;
            e = xv_ast_new_expr(p, E_TERM, tk);
            e->a = c;
        } else {
            e = xv_ast_new_expr(p, E_TERM, tk);
            e->a = a;
        }
    }
    e->withs = parse_withs(p, &e->nwith);
    p->depth--;
    return e;
}

/* Body after '{' (or the '|' of a comprehension) up to closer. */
struct body *xv_ast_parse_body(struct parser *p, int closer)
{
    struct body *b = xv_ast_palloc(p, sizeof *b);
    int cap = 0;
    int saved = p->no_bar;
    p->no_bar = 0;
    for (;;) {
        while (xv_ast_peek(p)->t == TK_SEMI)
            xv_ast_next(p);
        if (xv_ast_peek(p)->t == closer) {
            xv_ast_next(p);
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
        struct token *t = xv_ast_peek(p);
        if (t->t == TK_SEMI || t->t == closer || t->nl)
            continue;
        xv_ast_unexpected(p, t);
    }
    p->no_bar = saved;
    if (b->n == 0)
        xv_ast_perr(p, p->toks[p->pos - 1].line, p->toks[p->pos - 1].col, "found empty body");
    return b;
}

/* Body of a rule after `if`: a braced body or one expression. */
struct body *xv_ast_parse_if_body(struct parser *p)
{
    if (xv_ast_peek(p)->t == TK_LBRACE) {
        /* `if {` is a body; when that does not parse, the braces are an
         * object/set term used as the expression (`if {x: 1 | …}`). */
        size_t save = p->pos;
        int wild = p->wild, depth = p->depth;
        struct xv_perr e1 = *p->err;
        jmp_buf outer;
        memcpy(outer, p->jb, sizeof outer);
        struct body *volatile b = NULL;
        if (setjmp(p->jb) == 0) {
            xv_ast_next(p);
            b = xv_ast_parse_body(p, TK_RBRACE);
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

