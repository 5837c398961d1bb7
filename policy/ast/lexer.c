/*
 * ast/lexer.c — Rego tokens: identifiers, numbers, strings (with escapes), raw
 * strings, template strings (kept raw for the parser to split), operators;
 * comments are skipped except `# METADATA` blocks, which are remembered for
 * the package or rule that follows.
 *
 * Invariant: the token array always ends with one TK_EOF token; every
 * error leaves through the parser's jmp_buf with a line:col position.
 * Thread safety: works on one struct parser only.
 */
#include "value/buf.h"
#include "ast/parse.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const xv_ast_tok_names[] = {
    "EOF", "ident", "string", "number", "template string", "{", "}", "[", "]", "(", ")",
    ",", ";", ".", ":", ":=", "=", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/",
    "%", "&", "|",
};

void xv_ast_perr(struct parser *p, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5), noreturn));
/* Record a parse error at line:col and leave the parse (longjmp). */
void xv_ast_perr(struct parser *p, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    p->err->loc.file = p->file;
    p->err->loc.line = line;
    p->err->loc.col = col;
    vsnprintf(p->err->msg, sizeof p->err->msg, fmt, ap);
    va_end(ap);
    longjmp(p->jb, 1);
}

__attribute__((noinline)) void *xv_ast_palloc(struct parser *p, size_t n)
{
    void *r = xv_ast_arena_alloc(p->ar, n);
    if (!r)
        xv_ast_perr(p, 0, 0, "out of memory");
    return r;
}

struct xv_value *xv_ast_pfreeze(struct parser *p, struct xv_value *v)
{
    if (!v)
        xv_ast_perr(p, 0, 0, "out of memory");
    if (p->fz)
        xv_val_freeze(v, p->fz);
    return v;
}

/* Append a token, growing the token array in the arena. */
static void push_tok(struct parser *p, struct token *t)
{
    if (p->ntok == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 256;
        struct token *n = realloc(p->toks, nc * sizeof *n);
        if (!n)
            xv_ast_perr(p, t->line, t->col, "out of memory");
        p->toks = n;
        p->cap = nc;
    }
    p->toks[p->ntok++] = *t;
}

static int is_ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Decode a "..." string starting at s[i] (the quote); returns index past it. */
static size_t lex_string(struct parser *p, size_t i, int line, int col, struct xv_value **out)
{
    struct xv_buf b;
    xv_buf_init(&b, (size_t)1 << 30);
    i++;
    for (;;) {
        if (i >= p->len || p->src[i] == '\n') {
            xv_buf_free(&b);
            xv_ast_perr(p, line, col, "non-terminated string");
        }
        char c = p->src[i];
        if (c == '"') {
            i++;
            break;
        }
        if (c != '\\') {
            xv_buf_append(&b, &c, 1);
            i++;
            continue;
        }
        if (i + 1 >= p->len) {
            xv_buf_free(&b);
            xv_ast_perr(p, line, col, "non-terminated string");
        }
        char e = p->src[i + 1], ch = 0;
        i += 2;
        switch (e) {
        case '"': ch = '"'; break;
        case '\\': ch = '\\'; break;
        case '/': ch = '/'; break;
        case 'b': ch = '\b'; break;
        case 'f': ch = '\f'; break;
        case 'n': ch = '\n'; break;
        case 'r': ch = '\r'; break;
        case 't': ch = '\t'; break;
        case 'u': {
            uint32_t cp = 0;
            for (int k = 0; k < 4; k++, i++) {
                char h = i < p->len ? p->src[i] : 0;
                cp <<= 4;
                if (h >= '0' && h <= '9') cp |= (uint32_t)(h - '0');
                else if (h >= 'a' && h <= 'f') cp |= (uint32_t)(h - 'a' + 10);
                else if (h >= 'A' && h <= 'F') cp |= (uint32_t)(h - 'A' + 10);
                else {
                    xv_buf_free(&b);
                    xv_ast_perr(p, line, col, "illegal escape sequence");
                }
            }
            if (cp >= 0xD800 && cp < 0xDC00 && i + 6 <= p->len && p->src[i] == '\\' &&
                p->src[i + 1] == 'u') {
                uint32_t lo = 0;
                int ok = 1;
                for (int k = 0; k < 4; k++) {
                    char h = p->src[i + 2 + k];
                    lo <<= 4;
                    if (h >= '0' && h <= '9') lo |= (uint32_t)(h - '0');
                    else if (h >= 'a' && h <= 'f') lo |= (uint32_t)(h - 'a' + 10);
                    else if (h >= 'A' && h <= 'F') lo |= (uint32_t)(h - 'A' + 10);
                    else ok = 0;
                }
                if (ok && lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                }
            }
            char enc[4];
            xv_buf_append(&b, enc, xv_val_utf8_encode(cp, enc));
            continue;
        }
        default:
            xv_buf_free(&b);
            xv_ast_perr(p, line, col, "illegal escape sequence");
        }
        xv_buf_append(&b, &ch, 1);
    }
    *out = xv_ast_pfreeze(p, xv_val_string(b.data ? b.data : "", b.len));
    xv_buf_free(&b);
    return i;
}

/* A `# METADATA` comment at the start of a line opens a block that runs
 * over the following comment lines; remember its YAML for the package or
 * rule on the next line. */
static void note_metadata(struct parser *p, size_t i, int line, size_t linestart)
{
    for (size_t k = linestart; k < i; k++)
        if (p->src[k] != ' ' && p->src[k] != '\t')
            return;
    size_t e = i + 10;
    while (e < p->len && (p->src[e] == ' ' || p->src[e] == '\t' || p->src[e] == '\r'))
        e++;
    if (e < p->len && p->src[e] != '\n')
        return;
    struct xv_buf b;
    xv_buf_init(&b, (size_t)1 << 20);
    int endline = line;
    size_t j = e < p->len ? e + 1 : e;
    while (j < p->len) {
        size_t k = j;
        while (k < p->len && (p->src[k] == ' ' || p->src[k] == '\t'))
            k++;
        if (k >= p->len || p->src[k] != '#')
            break;
        k++;
        if (k < p->len && p->src[k] == ' ')
            k++;
        size_t le = k;
        while (le < p->len && p->src[le] != '\n')
            le++;
        xv_buf_append(&b, p->src + k, le - k);
        xv_buf_append(&b, "\n", 1);
        endline++;
        j = le < p->len ? le + 1 : le;
    }
    struct mblock *nb = realloc(p->mb, (size_t)(p->nmb + 1) * sizeof *nb);
    if (!nb) {
        xv_buf_free(&b);
        return;
    }
    p->mb = nb;
    p->mb[p->nmb].line = line;
    p->mb[p->nmb].endline = endline;
    p->mb[p->nmb].text = b.data ? xv_buf_steal(&b, NULL) : strdup("");
    p->nmb++;
}

/* Annotations for a package/rule starting at line, or NULL. */
struct xv_value *xv_ast_annotations_for(struct parser *p, int line, int is_package)
{
    for (int i = 0; i < p->nmb; i++) {
        if (p->mb[i].endline != line - 1)
            continue;
        char err[200];
        struct xv_value *v = xv_ast_yaml_annotations(p->mb[i].text, is_package, err, sizeof err);
        if (!v)
            xv_ast_perr(p, p->mb[i].line, 1, "%s", err);
        return xv_ast_pfreeze(p, v);
    }
    return NULL;
}

/* Free what a parser holds outside the arena (METADATA block texts). */
void xv_ast_parser_release(struct parser *p)
{
    free(p->toks);
    p->toks = NULL;
    for (int i = 0; i < p->nmb; i++)
        free(p->mb[i].text);
    free(p->mb);
    p->mb = NULL;
    p->nmb = 0;
}

/* Tokenise the whole source up front: the parser then looks ahead
 * freely. Comments are dropped except METADATA blocks, which are kept for
 * annotations; newlines are remembered on the next token (Rego separates
 * expressions by them). */
void xv_ast_lex(struct parser *p)
{
    size_t i = 0;
    int line = 1;
    size_t linestart = 0;
    int nl = 1;
    while (1) {
        while (i < p->len) {
            char c = p->src[i];
            if (c == '\n') {
                line++;
                linestart = i + 1;
                nl = 1;
                i++;
            } else if (c == ' ' || c == '\t' || c == '\r') {
                i++;
            } else if (c == '#') {
                if (i + 10 <= p->len && !memcmp(p->src + i, "# METADATA", 10))
                    note_metadata(p, i, line, linestart);
                while (i < p->len && p->src[i] != '\n')
                    i++;
            } else {
                break;
            }
        }
        struct token t = {0};
        t.line = line;
        t.col = (int)(i - linestart) + 1;
        t.off = i;
        t.nl = (uint8_t)nl;
        nl = 0;
        if (i >= p->len) {
            t.t = TK_EOF;
            push_tok(p, &t);
            return;
        }
        char c = p->src[i];
        if (is_ident_start(c)) {
            while (i < p->len && (is_ident_start(p->src[i]) || is_digit(p->src[i])))
                i++;
            t.t = TK_IDENT;
        } else if (is_digit(c)) {
            while (i < p->len && is_digit(p->src[i]))
                i++;
            if (i + 1 < p->len && p->src[i] == '.' && is_digit(p->src[i + 1])) {
                i++;
                while (i < p->len && is_digit(p->src[i]))
                    i++;
            }
            if (i < p->len && (p->src[i] == 'e' || p->src[i] == 'E')) {
                size_t j = i + 1;
                if (j < p->len && (p->src[j] == '+' || p->src[j] == '-'))
                    j++;
                if (j < p->len && is_digit(p->src[j])) {
                    i = j;
                    while (i < p->len && is_digit(p->src[i]))
                        i++;
                }
            }
            t.t = TK_NUMBER;
        } else if (c == '"') {
            i = lex_string(p, i, t.line, t.col, &t.v);
            t.t = TK_STRING;
        } else if (c == '`') {
            size_t j = i + 1;
            while (j < p->len && p->src[j] != '`')
                j++;
            if (j >= p->len)
                xv_ast_perr(p, t.line, t.col, "non-terminated raw string");
            t.v = xv_ast_pfreeze(p, xv_val_string(p->src + i + 1, j - i - 1));
            for (size_t k = i; k < j; k++)
                if (p->src[k] == '\n')
                    line++, linestart = k + 1;
            i = j + 1;
            t.t = TK_STRING;
        } else if (c == '$' && i + 1 < p->len && (p->src[i + 1] == '"' || p->src[i + 1] == '`')) {
            /* Template string: keep the raw text, the parser splits it. */
            char q = p->src[i + 1];
            size_t j = i + 2;
            int braces = 0;
            while (j < p->len) {
                char d = p->src[j];
                if (d == '\\' && j + 1 < p->len && (q == '"' || p->src[j + 1] == '{')) {
                    j += 2;
                    continue;
                }
                if (d == '{')
                    braces++;
                else if (d == '}' && braces > 0)
                    braces--;
                else if (braces > 0 && d == '"') {
                    j++;
                    while (j < p->len && p->src[j] != '"') {
                        if (p->src[j] == '\\')
                            j++;
                        j++;
                    }
                } else if (d == q && braces == 0)
                    break;
                if (d == '\n' && q == '"' && braces == 0)
                    xv_ast_perr(p, t.line, t.col, "non-terminated string");
                j++;
            }
            if (j >= p->len)
                xv_ast_perr(p, t.line, t.col, "non-terminated string");
            i = j + 1;
            t.t = TK_TEMPLATE;
        } else {
            char d = i + 1 < p->len ? p->src[i + 1] : 0;
            int two = 0;
            switch (c) {
            case '{': t.t = TK_LBRACE; break;
            case '}': t.t = TK_RBRACE; break;
            case '[': t.t = TK_LBRACK; break;
            case ']': t.t = TK_RBRACK; break;
            case '(': t.t = TK_LPAREN; break;
            case ')': t.t = TK_RPAREN; break;
            case ',': t.t = TK_COMMA; break;
            case ';': t.t = TK_SEMI; break;
            case '.': t.t = TK_DOT; break;
            case ':': if (d == '=') t.t = TK_ASSIGN, two = 1; else t.t = TK_COLON; break;
            case '=': if (d == '=') t.t = TK_EQEQ, two = 1; else t.t = TK_EQ; break;
            case '!':
                if (d != '=')
                    xv_ast_perr(p, t.line, t.col, "illegal ! character");
                t.t = TK_NEQ, two = 1;
                break;
            case '<': if (d == '=') t.t = TK_LTE, two = 1; else t.t = TK_LT; break;
            case '>': if (d == '=') t.t = TK_GTE, two = 1; else t.t = TK_GT; break;
            case '+': t.t = TK_PLUS; break;
            case '-': t.t = TK_MINUS; break;
            case '*': t.t = TK_STAR; break;
            case '/': t.t = TK_SLASH; break;
            case '%': t.t = TK_PERCENT; break;
            case '&': t.t = TK_AMP; break;
            case '|': t.t = TK_BAR; break;
            default:
                xv_ast_perr(p, t.line, t.col, "illegal token");
            }
            i += two ? 2 : 1;
        }
        t.len = i - t.off;
        push_tok(p, &t);
    }
}

