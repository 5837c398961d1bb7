/*
 * builtins/graphql_lex.c — the GraphQL (October 2021 spec) lexer behind
 * graphql.parse_*: punctuators, names, numbers, strings and block strings
 * (with the spec's indentation rule), comments and ignored tokens, with
 * gqlparser's error texts and 1-based line/column positions.
 *
 * Invariant: the lexer never reads past g->n; an invalid token sets g->err
 * once and is T_INVALID.
 * Thread safety: reentrant.
 */
#include "builtins/graphql_lex.h"
#include "value/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const xv_bi_gql_tk_names[] = {
    "<EOF>", "<Invalid>", "!", "$", "&", "(", ")", "...", ":", "=", "@", "[", "]", "{",
    "|", "}", "Name", "Int", "Float", "String", "BlockString",
};

void xv_bi_gql_tok_free(struct tok *t)
{
    free(t->val);
    t->val = NULL;
}

static bool name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool name_ch(char c)
{
    return name_start(c) || (c >= '0' && c <= '9');
}

static void skip_ignored(struct gp *g)
{
    while (g->pos < g->n) {
        unsigned char c = (unsigned char)g->s[g->pos];
        if (c == '\n') {
            g->pos++;
            g->line++;
            g->line_start = g->pos;
        } else if (c == '\r') {
            g->pos++;
            if (g->pos < g->n && g->s[g->pos] == '\n')
                g->pos++;
            g->line++;
            g->line_start = g->pos;
        } else if (c == ' ' || c == '\t' || c == ',') {
            g->pos++;
        } else if (c == 0xEF && g->pos + 2 < g->n && (unsigned char)g->s[g->pos + 1] == 0xBB &&
                   (unsigned char)g->s[g->pos + 2] == 0xBF) {
            g->pos += 3;   /* BOM */
        } else if (c == '#') {
            while (g->pos < g->n && g->s[g->pos] != '\n' && g->s[g->pos] != '\r')
                g->pos++;
        } else {
            break;
        }
    }
}

/* Block string value: common indentation removed, blank first/last lines dropped. */
static char *block_value(const char *raw, size_t n, size_t *outlen)
{
    /* split into lines, unescape \""" */
    struct xv_val_buf b = {0};
    size_t i = 0, nl = 0;
    const char *lines[4096];
    size_t lens[4096];
    char *tmp = malloc(n + 1);
    if (!tmp)
        return NULL;
    size_t tn = 0;
    for (i = 0; i < n; i++) {
        if (raw[i] == '\\' && i + 3 < n && memcmp(raw + i + 1, "\"\"\"", 3) == 0) {
            memcpy(tmp + tn, "\"\"\"", 3);
            tn += 3;
            i += 3;
        } else {
            tmp[tn++] = raw[i];
        }
    }
    size_t st = 0;
    for (i = 0; i <= tn && nl < 4096; i++) {
        if (i == tn || tmp[i] == '\n' || tmp[i] == '\r') {
            lines[nl] = tmp + st;
            lens[nl++] = i - st;
            if (i < tn && tmp[i] == '\r' && i + 1 < tn && tmp[i + 1] == '\n')
                i++;
            st = i + 1;
        }
    }
    size_t common = (size_t)-1;
    for (size_t k = 1; k < nl; k++) {
        size_t ind = 0;
        while (ind < lens[k] && (lines[k][ind] == ' ' || lines[k][ind] == '\t'))
            ind++;
        if (ind < lens[k] && ind < common)
            common = ind;
    }
    size_t first = 0, last = nl;
    for (size_t k = 0; k < nl; k++) {
        if (k > 0 && common != (size_t)-1) {
            size_t cut = common < lens[k] ? common : lens[k];
            lines[k] += cut;
            lens[k] -= cut;
        }
    }
    while (first < last) {
        size_t j = 0;
        while (j < lens[first] && (lines[first][j] == ' ' || lines[first][j] == '\t'))
            j++;
        if (j < lens[first])
            break;
        first++;
    }
    while (last > first) {
        size_t j = 0;
        while (j < lens[last - 1] && (lines[last - 1][j] == ' ' || lines[last - 1][j] == '\t'))
            j++;
        if (j < lens[last - 1])
            break;
        last--;
    }
    for (size_t k = first; k < last; k++) {
        if (k > first)
            xv_val_buf_addc(&b, '\n');
        xv_val_buf_add(&b, lines[k], lens[k]);
    }
    xv_val_buf_add(&b, "", 0);
    free(tmp);
    return xv_val_buf_take(&b, outlen);
}

/* An Int or Float at g->pos (gqlparser: no leading zeros, no name
 * character or '.' right after the number). */
static void lex_number(struct gp *g, struct tok *t)
{
    const char *s = g->s;
    size_t i = g->pos;
    size_t j = i;
    bool flt = false;
    if (s[j] == '-')
        j++;
    if (j < g->n && s[j] == '0') {
        j++;
    } else {
        size_t st = j;
        while (j < g->n && s[j] >= '0' && s[j] <= '9')
            j++;
        if (j == st) {
            t->kind = T_INVALID;
            return;
        }
    }
    if (j < g->n && s[j] == '.') {
        flt = true;
        j++;
        size_t st = j;
        while (j < g->n && s[j] >= '0' && s[j] <= '9')
            j++;
        if (j == st) {
            t->kind = T_INVALID;
            return;
        }
    }
    if (j < g->n && (s[j] == 'e' || s[j] == 'E')) {
        flt = true;
        j++;
        if (j < g->n && (s[j] == '+' || s[j] == '-'))
            j++;
        size_t st = j;
        while (j < g->n && s[j] >= '0' && s[j] <= '9')
            j++;
        if (j == st) {
            t->kind = T_INVALID;
            return;
        }
    }
    if (j < g->n && (name_start(s[j]) || s[j] == '.')) {
        t->kind = T_INVALID;
        return;
    }
    t->kind = flt ? T_FLOAT : T_INT;
    t->n = j - i;
    t->val = strndup(s + i, t->n);
    t->vlen = t->n;
    g->pos = j;
    return;
}

/* A block string ("""...""") at g->pos; the value gets the spec's
 * indentation rule (block_value). */
static void lex_block_string(struct gp *g, struct tok *t)
{
    const char *s = g->s;
    size_t i = g->pos;
    size_t j = i + 3;
    while (j + 2 < g->n && !(s[j] == '"' && s[j + 1] == '"' && s[j + 2] == '"')) {
        if (s[j] == '\\' && j + 3 < g->n && s[j + 1] == '"' && s[j + 2] == '"' &&
            s[j + 3] == '"')
            j += 4;
        else
            j++;
    }
    if (j + 2 >= g->n) {
        /* unterminated: the error points at the end of the input */
        for (size_t k = i; k < g->n; k++)
            if (s[k] == '\n' || (s[k] == '\r' && !(k + 1 < g->n && s[k + 1] == '\n'))) {
                t->line++;
                t->col = 1;
                g->line_start = k + 1;
            }
        t->col = (int)xv_val_utf8_count(s + g->line_start, g->n - g->line_start) + 1;
        t->kind = T_INVALID;
        return;
    }
    t->col += 3;   /* gqlparser locates strings at their contents */
    t->kind = T_BLOCK_STRING;
    t->val = block_value(s + i + 3, j - i - 3, &t->vlen);
    t->n = j + 3 - i;
    /* keep line accounting across the block */
    for (size_t k = i; k < j + 3; k++)
        if (s[k] == '\n') {
            g->line++;
            g->line_start = k + 1;
        }
    g->pos = j + 3;
    return;
}

/* A quoted string at g->pos, escapes decoded. */
static void lex_string(struct gp *g, struct tok *t)
{
    const char *s = g->s;
    size_t i = g->pos;
struct xv_val_buf b = {0};
    size_t j = i + 1;
    while (j < g->n && s[j] != '"' && s[j] != '\n' && s[j] != '\r') {
        if (s[j] == '\\' && j + 1 < g->n) {
            char e = s[j + 1];
            const char *map = "\"\"\\\\//b\bf\fn\nr\rt\t";
            const char *m = strchr(map, e);
            if (e == 'u' && j + 5 < g->n) {
                unsigned cp = 0;
                bool ok = true;
                for (int k = 2; k < 6; k++) {
                    char h = s[j + k];
                    int v = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                            : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
                    if (v < 0)
                        ok = false;
                    cp = cp * 16 + (unsigned)(v < 0 ? 0 : v);
                }
                if (!ok) {
                    xv_val_buf_free(&b);
                    t->kind = T_INVALID;
                    return;
                }
                xv_val_buf_addcp(&b, cp);
                j += 6;
                continue;
            }
            if (!e || !m || (m - map) % 2 != 0) {
                xv_val_buf_free(&b);
                t->kind = T_INVALID;
                return;
            }
            xv_val_buf_addc(&b, m[1]);
            j += 2;
            continue;
        }
        if ((unsigned char)s[j] < 0x20 && s[j] != '\t') {
            xv_val_buf_free(&b);
            t->kind = T_INVALID;
            return;
        }
        xv_val_buf_addc(&b, s[j]);
        j++;
    }
    if (j >= g->n || s[j] != '"') {
        xv_val_buf_free(&b);
        t->kind = T_INVALID;
        return;
    }
    xv_val_buf_add(&b, "", 0);
    t->col += 1;
    t->kind = T_STRING;
    t->val = xv_val_buf_take(&b, &t->vlen);
    t->n = j + 1 - i;
    g->pos = j + 1;
    return;
}

void xv_bi_gql_lex(struct gp *g, struct tok *t)
{
    memset(t, 0, sizeof *t);
    skip_ignored(g);
    t->line = g->line;
    t->col = (int)xv_val_utf8_count(g->s + g->line_start, g->pos - g->line_start) + 1;
    t->p = g->s + g->pos;
    if (g->pos >= g->n) {
        t->kind = T_EOF;
        return;
    }
    const char *s = g->s;
    size_t i = g->pos;
    char c = s[i];
    static const char punct[] = "!$&():=@[]{|}";
    static const enum tk pk[] = {T_BANG, T_DOLLAR, T_AMP, T_PAREN_L, T_PAREN_R, T_COLON,
                                 T_EQUALS, T_AT, T_BRACKET_L, T_BRACKET_R, T_BRACE_L,
                                 T_PIPE, T_BRACE_R};
    const char *pp = c ? strchr(punct, c) : NULL;
    if (pp) {
        t->kind = pk[pp - punct];
        t->n = 1;
        g->pos++;
        return;
    }
    if (c == '.') {
        if (i + 2 < g->n && s[i + 1] == '.' && s[i + 2] == '.') {
            t->kind = T_SPREAD;
            t->n = 3;
            g->pos += 3;
            return;
        }
        t->kind = T_INVALID;
        return;
    }
    if (name_start(c)) {
        size_t j = i;
        while (j < g->n && name_ch(s[j]))
            j++;
        t->kind = T_NAME;
        t->n = j - i;
        t->val = strndup(s + i, t->n);
        t->vlen = t->n;
        g->pos = j;
        return;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        lex_number(g, t);
        return;
    }
    if (c == '"') {
        if (i + 2 < g->n && s[i + 1] == '"' && s[i + 2] == '"')
            lex_block_string(g, t);
        else
            lex_string(g, t);
        return;
    }
    t->kind = T_INVALID;
}
