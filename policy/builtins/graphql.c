/*
 * builtins/graphql.c — graphql.parse_query, graphql.parse_schema: a GraphQL
 * (October 2021 spec) lexer and parser producing the AST objects OPA
 * returns (vektah/gqlparser's AST with null fields and positions dropped),
 * with gqlparser's error texts ("Expected Name, found <EOF>", "Unexpected
 * Name \"on\"", "expected at least one definition, found }") and locations.
 * The validating builtins live in builtins_graphql_validate.c.
 *
 * Invariant: parsing is recursive descent with a depth bound
 * (GQL_MAX_DEPTH), so hostile documents cannot exhaust the stack.
 * Thread safety: reentrant.
 */
#include "builtins/graphql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GQL_MAX_DEPTH 200

enum tk {
    T_EOF, T_INVALID, T_BANG, T_DOLLAR, T_AMP, T_PAREN_L, T_PAREN_R, T_SPREAD, T_COLON,
    T_EQUALS, T_AT, T_BRACKET_L, T_BRACKET_R, T_BRACE_L, T_PIPE, T_BRACE_R, T_NAME, T_INT,
    T_FLOAT, T_STRING, T_BLOCK_STRING,
};

static const char *const tk_names[] = {
    "<EOF>", "<Invalid>", "!", "$", "&", "(", ")", "...", ":", "=", "@", "[", "]", "{",
    "|", "}", "Name", "Int", "Float", "String", "BlockString",
};

struct tok {
    enum tk kind;
    const char *p;      /* raw text */
    size_t n;
    char *val;          /* decoded value (names, numbers, strings); owned */
    size_t vlen;
    int line, col;      /* 1-based start */
};

struct gp {
    const char *s;      /* document */
    size_t n;
    size_t pos;         /* lexer position */
    int line;           /* current line */
    size_t line_start;  /* offset of the current line */
    struct tok cur;     /* lookahead token */
    bool have;          /* cur is valid */
    char err[300];      /* first error */
    int depth;
    bool keep_pos;      /* record "__pos": [line, col] on fields (for validation) */
};

/* ---- lexer ---- */

static void tok_free(struct tok *t)
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

static void lex(struct gp *g, struct tok *t)
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
    if (c == '"') {
        if (i + 2 < g->n && s[i + 1] == '"' && s[i + 2] == '"') {
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
    t->kind = T_INVALID;
}

static struct tok *peek(struct gp *g)
{
    if (!g->have) {
        lex(g, &g->cur);
        g->have = true;
    }
    return &g->cur;
}

/* Consume the lookahead; the caller takes ownership of *out (if given). */
static void take(struct gp *g, struct tok *out)
{
    peek(g);
    if (out)
        *out = g->cur;
    else
        tok_free(&g->cur);
    g->have = false;
    if (g->cur.kind == T_INVALID)
        g->have = true;   /* never advance past an invalid token */
    if (out && out->kind == T_INVALID)
        out->val = NULL;
}

static void tok_desc(const struct tok *t, char *buf, size_t n)
{
    if (t->kind == T_NAME || t->kind == T_INT || t->kind == T_FLOAT || t->kind == T_STRING ||
        t->kind == T_BLOCK_STRING)
        snprintf(buf, n, "%s \"%.*s\"", tk_names[t->kind], (int)(t->vlen > 100 ? 100 : t->vlen),
                 t->val ? t->val : "");
    else
        snprintf(buf, n, "%s", tk_names[t->kind]);
}

static void errorf_at(struct gp *g, const struct tok *t, const char *msg)
{
    if (g->err[0])
        return;
    snprintf(g->err, sizeof g->err, "%s in GraphQL string at location %d:%d", msg, t->line, t->col);
}

static void unexpected(struct gp *g)
{
    char d[160], m[200];
    tok_desc(peek(g), d, sizeof d);
    snprintf(m, sizeof m, "Unexpected %s", d);
    errorf_at(g, peek(g), m);
}

static bool expect(struct gp *g, enum tk k, struct tok *out)
{
    struct tok *t = peek(g);
    if (t->kind != k) {
        char d[160], m[220];
        tok_desc(t, d, sizeof d);
        snprintf(m, sizeof m, "Expected %s, found %s", tk_names[k], d);
        errorf_at(g, t, m);
        return false;
    }
    take(g, out);
    return true;
}

static bool skip(struct gp *g, enum tk k)
{
    if (peek(g)->kind != k)
        return false;
    take(g, NULL);
    return true;
}

static bool is_kw(struct gp *g, const char *w)
{
    struct tok *t = peek(g);
    return t->kind == T_NAME && strcmp(t->val ? t->val : "", w) == 0;
}

static bool expect_kw(struct gp *g, const char *w)
{
    if (is_kw(g, w)) {
        take(g, NULL);
        return true;
    }
    char d[160], m[220];
    tok_desc(peek(g), d, sizeof d);
    snprintf(m, sizeof m, "Expected \"%s\", found %s", w, d);
    errorf_at(g, peek(g), m);
    return false;
}

/* ---- AST helpers ---- */

static void set(struct xv_value *o, const char *k, struct xv_value *v)
{
    if (o && v)
        xv_object_set_str(o, k, v);
    xv_decref(v);
}

static void set_s(struct xv_value *o, const char *k, const char *s)
{
    set(o, k, xv_cstring(s ? s : ""));
}

static void set_list(struct xv_value *o, const char *k, struct xv_value *arr)
{
    /* gqlparser leaves empty lists nil, which OPA drops */
    if (arr && XV_ARR_LEN(arr) > 0)
        set(o, k, arr);
    else
        xv_decref(arr);
}

static void push(struct xv_value *arr, struct xv_value *v)
{
    if (arr && v)
        xv_array_push(arr, v);
    xv_decref(v);
}

static char *parse_name(struct gp *g)
{
    struct tok t;
    if (!expect(g, T_NAME, &t))
        return NULL;
    return t.val;
}

/* ---- values and types ---- */

static struct xv_value *parse_value(struct gp *g, bool isconst);

static struct xv_value *value_node(int kind, const char *raw, size_t rl)
{
    struct xv_value *o = xv_object_new(4);
    set(o, "Kind", xv_int(kind));
    set(o, "Raw", xv_string(raw ? raw : "", raw ? rl : 0));
    set(o, "ExpectedTypeHasDefault", xv_bool(0));
    return o;
}

static struct xv_value *parse_value(struct gp *g, bool isconst)
{
    if (++g->depth > GQL_MAX_DEPTH) {
        errorf_at(g, peek(g), "document nests too deeply");
        g->depth--;
        return NULL;
    }
    struct tok *t = peek(g);
    struct xv_value *v = NULL;
    switch (t->kind) {
    case T_BRACKET_L: {
        take(g, NULL);
        v = value_node(GQL_LIST, "", 0);
        struct xv_value *kids = xv_array_new(2);
        while (!g->err[0] && !skip(g, T_BRACKET_R)) {
            if (peek(g)->kind == T_EOF) {
                unexpected(g);
                break;
            }
            struct xv_value *c = xv_object_new(2);
            set_s(c, "Name", "");
            set(c, "Value", parse_value(g, isconst));
            push(kids, c);
        }
        set_list(v, "Children", kids);
        break;
    }
    case T_BRACE_L: {
        take(g, NULL);
        v = value_node(GQL_OBJECT, "", 0);
        struct xv_value *kids = xv_array_new(2);
        while (!g->err[0] && !skip(g, T_BRACE_R)) {
            char *name = parse_name(g);
            if (!name || !expect(g, T_COLON, NULL)) {
                free(name);
                break;
            }
            struct xv_value *c = xv_object_new(2);
            set_s(c, "Name", name);
            free(name);
            set(c, "Value", parse_value(g, isconst));
            push(kids, c);
        }
        set_list(v, "Children", kids);
        break;
    }
    case T_DOLLAR:
        if (isconst) {
            unexpected(g);
            break;
        }
        take(g, NULL);
        {
            char *name = parse_name(g);
            if (name)
                v = value_node(GQL_VARIABLE, name, strlen(name));
            free(name);
        }
        break;
    case T_INT: case T_FLOAT: case T_STRING: case T_BLOCK_STRING: {
        struct tok tk;
        take(g, &tk);
        int kind = tk.kind == T_INT ? GQL_INT : tk.kind == T_FLOAT ? GQL_FLOAT
                   : tk.kind == T_STRING ? GQL_STRING : GQL_BLOCK;
        v = value_node(kind, tk.val, tk.vlen);
        tok_free(&tk);
        break;
    }
    case T_NAME: {
        struct tok tk;
        take(g, &tk);
        int kind = (strcmp(tk.val, "true") == 0 || strcmp(tk.val, "false") == 0) ? GQL_BOOLEAN
                   : strcmp(tk.val, "null") == 0 ? GQL_NULL : GQL_ENUM;
        v = value_node(kind, tk.val, tk.vlen);
        tok_free(&tk);
        break;
    }
    default:
        unexpected(g);
    }
    g->depth--;
    return v;
}

static struct xv_value *parse_type(struct gp *g)
{
    if (++g->depth > GQL_MAX_DEPTH) {
        errorf_at(g, peek(g), "document nests too deeply");
        g->depth--;
        return NULL;
    }
    struct xv_value *t = xv_object_new(3);
    if (skip(g, T_BRACKET_L)) {
        struct xv_value *elem = parse_type(g);
        expect(g, T_BRACKET_R, NULL);
        set_s(t, "NamedType", "");
        set(t, "Elem", elem);
    } else {
        char *name = parse_name(g);
        set_s(t, "NamedType", name);
        free(name);
    }
    set(t, "NonNull", xv_bool(skip(g, T_BANG)));
    g->depth--;
    return t;
}

static struct xv_value *parse_arguments(struct gp *g, bool isconst)
{
    struct xv_value *arr = xv_array_new(2);
    if (!skip(g, T_PAREN_L))
        return arr;
    do {
        char *name = parse_name(g);
        if (!name || !expect(g, T_COLON, NULL)) {
            free(name);
            break;
        }
        struct xv_value *a = xv_object_new(2);
        set_s(a, "Name", name);
        free(name);
        set(a, "Value", parse_value(g, isconst));
        push(arr, a);
    } while (!g->err[0] && !skip(g, T_PAREN_R));
    return arr;
}

static struct xv_value *parse_directives(struct gp *g, bool isconst)
{
    struct xv_value *arr = xv_array_new(1);
    while (!g->err[0] && peek(g)->kind == T_AT) {
        take(g, NULL);
        char *name = parse_name(g);
        struct xv_value *d = xv_object_new(3);
        set_s(d, "Name", name);
        free(name);
        set_list(d, "Arguments", parse_arguments(g, isconst));
        set_s(d, "Location", "");
        push(arr, d);
    }
    return arr;
}

/* ---- executable documents ---- */

static struct xv_value *parse_selection_set(struct gp *g);

static struct xv_value *parse_selection(struct gp *g)
{
    if (skip(g, T_SPREAD)) {
        if (peek(g)->kind == T_NAME && !is_kw(g, "on")) {
            struct xv_value *s = xv_object_new(2);
            char *name = parse_name(g);
            set_s(s, "Name", name);
            free(name);
            set_list(s, "Directives", parse_directives(g, false));
            return s;
        }
        struct xv_value *s = xv_object_new(3);
        if (is_kw(g, "on")) {
            take(g, NULL);
            char *name = parse_name(g);
            set_s(s, "TypeCondition", name);
            free(name);
        } else {
            set_s(s, "TypeCondition", "");
        }
        set_list(s, "Directives", parse_directives(g, false));
        set_list(s, "SelectionSet", parse_selection_set(g));
        return s;
    }
    struct xv_value *f = xv_object_new(5);
    if (g->keep_pos) {
        struct xv_value *pos = xv_array_new(2);
        push(pos, xv_int(peek(g)->line));
        push(pos, xv_int(peek(g)->col));
        set(f, "__pos", pos);
    }
    char *name = parse_name(g), *alias = NULL;
    if (name && skip(g, T_COLON)) {
        alias = name;
        name = parse_name(g);
    }
    set_s(f, "Alias", alias ? alias : name);
    set_s(f, "Name", name);
    free(alias);
    free(name);
    set_list(f, "Arguments", parse_arguments(g, false));
    set_list(f, "Directives", parse_directives(g, false));
    if (peek(g)->kind == T_BRACE_L)
        set_list(f, "SelectionSet", parse_selection_set(g));
    return f;
}

/* gqlparser's "some": an opening token, then at least one item. */
static bool some_open(struct gp *g, enum tk open, enum tk close)
{
    if (!expect(g, open, NULL))
        return false;
    if (peek(g)->kind == close) {
        char d[160], m[220];
        tok_desc(peek(g), d, sizeof d);
        snprintf(m, sizeof m, "expected at least one definition, found %s", d);
        errorf_at(g, peek(g), m);
        return false;
    }
    return true;
}

static struct xv_value *parse_selection_set(struct gp *g)
{
    struct xv_value *arr = xv_array_new(2);
    if (++g->depth > GQL_MAX_DEPTH) {
        errorf_at(g, peek(g), "document nests too deeply");
        g->depth--;
        return arr;
    }
    if (some_open(g, T_BRACE_L, T_BRACE_R))
        while (!g->err[0] && !skip(g, T_BRACE_R)) {
            if (peek(g)->kind == T_EOF) {
                parse_name(g);   /* reports "Expected Name, found <EOF>" */
                break;
            }
            push(arr, parse_selection(g));
        }
    g->depth--;
    return arr;
}

static struct xv_value *parse_variable_definitions(struct gp *g)
{
    struct xv_value *arr = xv_array_new(1);
    if (!skip(g, T_PAREN_L))
        return arr;
    do {
        if (!expect(g, T_DOLLAR, NULL))
            break;
        char *name = parse_name(g);
        if (!name || !expect(g, T_COLON, NULL)) {
            free(name);
            break;
        }
        struct xv_value *v = xv_object_new(5);
        set_s(v, "Variable", name);
        free(name);
        set(v, "Type", parse_type(g));
        if (skip(g, T_EQUALS))
            set(v, "DefaultValue", parse_value(g, true));
        set_list(v, "Directives", parse_directives(g, true));
        set(v, "Used", xv_bool(0));
        push(arr, v);
    } while (!g->err[0] && !skip(g, T_PAREN_R));
    return arr;
}

struct xv_value *xv_bi_gql_parse_query(const char *s, size_t n, bool keep_pos, char *err,
                                              size_t errlen)
{
    struct gp g = {.s = s, .n = n, .line = 1, .keep_pos = keep_pos};
    struct xv_value *ops = xv_array_new(1), *frags = xv_array_new(1);
    while (!g.err[0] && peek(&g)->kind != T_EOF) {
        if (peek(&g)->kind == T_BRACE_L) {
            struct xv_value *op = xv_object_new(3);
            set_s(op, "Operation", "query");
            set_s(op, "Name", "");
            set_list(op, "SelectionSet", parse_selection_set(&g));
            push(ops, op);
            continue;
        }
        if (is_kw(&g, "query") || is_kw(&g, "mutation") || is_kw(&g, "subscription")) {
            struct xv_value *op = xv_object_new(5);
            struct tok t;
            take(&g, &t);
            set_s(op, "Operation", t.val);
            tok_free(&t);
            if (peek(&g)->kind == T_NAME) {
                char *name = parse_name(&g);
                set_s(op, "Name", name);
                free(name);
            } else {
                set_s(op, "Name", "");
            }
            set_list(op, "VariableDefinitions", parse_variable_definitions(&g));
            set_list(op, "Directives", parse_directives(&g, false));
            set_list(op, "SelectionSet", parse_selection_set(&g));
            push(ops, op);
            continue;
        }
        if (is_kw(&g, "fragment")) {
            take(&g, NULL);
            struct xv_value *fr = xv_object_new(5);
            if (is_kw(&g, "on")) {
                unexpected(&g);
                xv_decref(fr);
                break;
            }
            char *name = parse_name(&g);
            set_s(fr, "Name", name);
            free(name);
            set_list(fr, "VariableDefinition", parse_variable_definitions(&g));
            if (expect_kw(&g, "on")) {
                char *tc = parse_name(&g);
                set_s(fr, "TypeCondition", tc);
                free(tc);
            }
            set_list(fr, "Directives", parse_directives(&g, false));
            set_list(fr, "SelectionSet", parse_selection_set(&g));
            push(frags, fr);
            continue;
        }
        unexpected(&g);
    }
    if (g.have)
        tok_free(&g.cur);
    if (g.err[0]) {
        snprintf(err, errlen, "%s", g.err);
        xv_decref(ops);
        xv_decref(frags);
        return NULL;
    }
    struct xv_value *doc = xv_object_new(2);
    set_list(doc, "Operations", ops);
    set_list(doc, "Fragments", frags);
    return doc;
}

/* ---- schema documents ---- */

static char *parse_description(struct gp *g)
{
    struct tok *t = peek(g);
    if (t->kind == T_STRING || t->kind == T_BLOCK_STRING) {
        struct tok tk;
        take(g, &tk);
        return tk.val;
    }
    return NULL;
}

static struct xv_value *parse_input_value_def(struct gp *g)
{
    char *desc = parse_description(g);
    char *name = parse_name(g);
    struct xv_value *a = xv_object_new(5);
    set_s(a, "Description", desc);
    set_s(a, "Name", name);
    free(desc);
    free(name);
    if (!expect(g, T_COLON, NULL))
        return a;
    set(a, "Type", parse_type(g));
    if (skip(g, T_EQUALS))
        set(a, "DefaultValue", parse_value(g, true));
    set_list(a, "Directives", parse_directives(g, true));
    return a;
}

static struct xv_value *parse_arg_defs(struct gp *g)
{
    struct xv_value *arr = xv_array_new(2);
    if (!skip(g, T_PAREN_L))
        return arr;
    do
        push(arr, parse_input_value_def(g));
    while (!g->err[0] && !skip(g, T_PAREN_R));
    return arr;
}

static struct xv_value *parse_fields_def(struct gp *g)
{
    struct xv_value *arr = xv_array_new(2);
    if (peek(g)->kind != T_BRACE_L)
        return arr;
    if (!some_open(g, T_BRACE_L, T_BRACE_R))
        return arr;
    while (!g->err[0] && !skip(g, T_BRACE_R)) {
        char *desc = parse_description(g);
        char *name = parse_name(g);
        struct xv_value *f = xv_object_new(5);
        set_s(f, "Description", desc);
        set_s(f, "Name", name);
        free(desc);
        free(name);
        set_list(f, "Arguments", parse_arg_defs(g));
        if (expect(g, T_COLON, NULL))
            set(f, "Type", parse_type(g));
        set_list(f, "Directives", parse_directives(g, true));
        push(arr, f);
    }
    return arr;
}

static struct xv_value *parse_input_fields_def(struct gp *g)
{
    struct xv_value *arr = xv_array_new(2);
    if (peek(g)->kind != T_BRACE_L)
        return arr;
    if (!some_open(g, T_BRACE_L, T_BRACE_R))
        return arr;
    while (!g->err[0] && !skip(g, T_BRACE_R))
        push(arr, parse_input_value_def(g));
    return arr;
}

static struct xv_value *parse_implements(struct gp *g)
{
    struct xv_value *arr = xv_array_new(1);
    if (!is_kw(g, "implements"))
        return arr;
    take(g, NULL);
    skip(g, T_AMP);
    do {
        char *n = parse_name(g);
        if (n)
            push(arr, xv_cstring(n));
        free(n);
    } while (!g->err[0] && skip(g, T_AMP));
    return arr;
}

static const char *kind_for(const char *kw)
{
    if (strcmp(kw, "scalar") == 0) return "SCALAR";
    if (strcmp(kw, "type") == 0) return "OBJECT";
    if (strcmp(kw, "interface") == 0) return "INTERFACE";
    if (strcmp(kw, "union") == 0) return "UNION";
    if (strcmp(kw, "enum") == 0) return "ENUM";
    if (strcmp(kw, "input") == 0) return "INPUT_OBJECT";
    return NULL;
}

/* A type definition or extension body after its keyword. */
static struct xv_value *parse_type_def(struct gp *g, const char *kind, const char *desc, bool ext)
{
    struct xv_value *d = xv_object_new(8);
    set_s(d, "Kind", kind);
    set_s(d, "Description", desc);
    char *name = parse_name(g);
    set_s(d, "Name", name);
    free(name);
    set(d, "BuiltIn", xv_bool(0));
    bool any = false;
    if (strcmp(kind, "OBJECT") == 0 || strcmp(kind, "INTERFACE") == 0) {
        struct xv_value *impl = parse_implements(g), *dirs = parse_directives(g, true);
        struct xv_value *fields = parse_fields_def(g);
        any = XV_ARR_LEN(impl) || XV_ARR_LEN(dirs) || XV_ARR_LEN(fields);
        set_list(d, "Interfaces", impl);
        set_list(d, "Directives", dirs);
        set_list(d, "Fields", fields);
    } else if (strcmp(kind, "UNION") == 0) {
        struct xv_value *dirs = parse_directives(g, true), *types = xv_array_new(2);
        if (skip(g, T_EQUALS)) {
            skip(g, T_PIPE);
            do {
                char *n = parse_name(g);
                if (n)
                    push(types, xv_cstring(n));
                free(n);
            } while (!g->err[0] && skip(g, T_PIPE));
        }
        any = XV_ARR_LEN(dirs) || XV_ARR_LEN(types);
        set_list(d, "Directives", dirs);
        set_list(d, "Types", types);
    } else if (strcmp(kind, "ENUM") == 0) {
        struct xv_value *dirs = parse_directives(g, true), *vals = xv_array_new(2);
        if (peek(g)->kind == T_BRACE_L && some_open(g, T_BRACE_L, T_BRACE_R))
            while (!g->err[0] && !skip(g, T_BRACE_R)) {
                char *vd = parse_description(g);
                char *vn = parse_name(g);
                struct xv_value *ev = xv_object_new(3);
                set_s(ev, "Description", vd);
                set_s(ev, "Name", vn);
                free(vd);
                free(vn);
                set_list(ev, "Directives", parse_directives(g, true));
                push(vals, ev);
            }
        any = XV_ARR_LEN(dirs) || XV_ARR_LEN(vals);
        set_list(d, "Directives", dirs);
        set_list(d, "EnumValues", vals);
    } else if (strcmp(kind, "INPUT_OBJECT") == 0) {
        struct xv_value *dirs = parse_directives(g, true), *fields = parse_input_fields_def(g);
        any = XV_ARR_LEN(dirs) || XV_ARR_LEN(fields);
        set_list(d, "Directives", dirs);
        set_list(d, "Fields", fields);
    } else { /* SCALAR */
        struct xv_value *dirs = parse_directives(g, true);
        any = XV_ARR_LEN(dirs);
        set_list(d, "Directives", dirs);
    }
    if (ext && !any && !g->err[0])
        unexpected(g);
    return d;
}

static const char *const dir_locations[] = {
    "QUERY", "MUTATION", "SUBSCRIPTION", "FIELD", "FRAGMENT_DEFINITION", "FRAGMENT_SPREAD",
    "INLINE_FRAGMENT", "VARIABLE_DEFINITION", "SCHEMA", "SCALAR", "OBJECT", "FIELD_DEFINITION",
    "ARGUMENT_DEFINITION", "INTERFACE", "UNION", "ENUM", "ENUM_VALUE", "INPUT_OBJECT",
    "INPUT_FIELD_DEFINITION", NULL,
};

static struct xv_value *parse_schema_def(struct gp *g, const char *desc, bool ext)
{
    struct xv_value *s = xv_object_new(3);
    set_s(s, "Description", desc);
    struct xv_value *dirs = parse_directives(g, true), *ops = xv_array_new(3);
    bool braces = peek(g)->kind == T_BRACE_L;
    if (braces && some_open(g, T_BRACE_L, T_BRACE_R))
        while (!g->err[0] && !skip(g, T_BRACE_R)) {
            struct tok t;
            if (!expect(g, T_NAME, &t))
                break;
            if (strcmp(t.val, "query") && strcmp(t.val, "mutation") && strcmp(t.val, "subscription")) {
                char m[200];
                snprintf(m, sizeof m, "Unexpected Name \"%s\"", t.val);
                errorf_at(g, &t, m);
                tok_free(&t);
                break;
            }
            if (!expect(g, T_COLON, NULL)) {
                tok_free(&t);
                break;
            }
            char *ty = parse_name(g);
            struct xv_value *o = xv_object_new(2);
            set_s(o, "Operation", t.val);
            set_s(o, "Type", ty);
            tok_free(&t);
            free(ty);
            push(ops, o);
        }
    if (!braces && (!ext || XV_ARR_LEN(dirs) == 0) && !g->err[0])
        unexpected(g);
    set_list(s, "Directives", dirs);
    set_list(s, "OperationTypes", ops);
    return s;
}

struct xv_value *xv_bi_gql_parse_schema(const char *s, size_t n, char *err, size_t errlen)
{
    struct gp g = {.s = s, .n = n, .line = 1};
    struct xv_value *defs = xv_array_new(4), *exts = xv_array_new(1), *schema = xv_array_new(1),
                    *schema_ext = xv_array_new(1), *dirs = xv_array_new(1);
    while (!g.err[0] && peek(&g)->kind != T_EOF) {
        struct tok desc_tok = *peek(&g);
        char *desc = parse_description(&g);
        if (peek(&g)->kind != T_NAME) {
            free(desc);
            unexpected(&g);
            break;
        }
        const char *kw = peek(&g)->val;
        const char *kind = kind_for(kw);
        if (kind) {
            take(&g, NULL);
            push(defs, parse_type_def(&g, kind, desc, false));
        } else if (strcmp(kw, "schema") == 0) {
            take(&g, NULL);
            push(schema, parse_schema_def(&g, desc, false));
        } else if (strcmp(kw, "directive") == 0) {
            take(&g, NULL);
            struct xv_value *d = xv_object_new(5);
            set_s(d, "Description", desc);
            if (expect(&g, T_AT, NULL)) {
                char *name = parse_name(&g);
                set_s(d, "Name", name);
                free(name);
            }
            set_list(d, "Arguments", parse_arg_defs(&g));
            bool rep = false;
            if (is_kw(&g, "repeatable")) {
                take(&g, NULL);
                rep = true;
            }
            set(d, "IsRepeatable", xv_bool(rep));
            struct xv_value *locs = xv_array_new(2);
            if (expect_kw(&g, "on")) {
                skip(&g, T_PIPE);
                do {
                    struct tok t;
                    if (!expect(&g, T_NAME, &t))
                        break;
                    bool ok = false;
                    for (int i = 0; dir_locations[i] && !ok; i++)
                        ok = strcmp(dir_locations[i], t.val) == 0;
                    if (!ok) {
                        char m[200];
                        snprintf(m, sizeof m, "Unexpected Name \"%s\"", t.val);
                        errorf_at(&g, &t, m);
                        tok_free(&t);
                        break;
                    }
                    push(locs, xv_cstring(t.val));
                    tok_free(&t);
                } while (!g.err[0] && skip(&g, T_PIPE));
            }
            set(d, "Locations", locs);
            push(dirs, d);
        } else if (strcmp(kw, "extend") == 0) {
            if (desc) {
                /* extensions take no description */
                char m[200], dd[160];
                tok_desc(&desc_tok, dd, sizeof dd);
                snprintf(m, sizeof m, "Unexpected %s", dd);
                errorf_at(&g, &desc_tok, m);
                free(desc);
                break;
            }
            take(&g, NULL);
            if (peek(&g)->kind != T_NAME) {
                unexpected(&g);
                break;
            }
            const char *k2 = peek(&g)->val;
            const char *kind2 = kind_for(k2);
            if (kind2) {
                take(&g, NULL);
                push(exts, parse_type_def(&g, kind2, NULL, true));
            } else if (strcmp(k2, "schema") == 0) {
                take(&g, NULL);
                push(schema_ext, parse_schema_def(&g, NULL, true));
            } else {
                unexpected(&g);
            }
        } else {
            free(desc);
            unexpected(&g);
            break;
        }
        free(desc);
    }
    if (g.have)
        tok_free(&g.cur);
    if (g.err[0]) {
        snprintf(err, errlen, "%s", g.err);
        xv_decref(defs);
        xv_decref(exts);
        xv_decref(schema);
        xv_decref(schema_ext);
        xv_decref(dirs);
        return NULL;
    }
    struct xv_value *doc = xv_object_new(5);
    set_list(doc, "Schema", schema);
    set_list(doc, "SchemaExtension", schema_ext);
    set_list(doc, "Directives", dirs);
    set_list(doc, "Definitions", defs);
    set_list(doc, "Extensions", exts);
    return doc;
}

/* ---- builtins ---- */

BI_FN(bi_gql_parse_query)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING))
        return XV_BI_ERROR;
    char err[400];
    struct xv_value *doc = xv_bi_gql_parse_query(XV_STR(a[0]), XV_STRLEN(a[0]), false, err,
                                                       sizeof err);
    if (!doc)
        return xv_bi_error(ctx, "%s", err);
    *out = doc;
    return XV_BI_OK;
}

BI_FN(bi_gql_parse_schema)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING))
        return XV_BI_ERROR;
    char err[400];
    struct xv_value *doc = xv_bi_gql_parse_schema(XV_STR(a[0]), XV_STRLEN(a[0]), err, sizeof err);
    if (!doc)
        return xv_bi_error(ctx, "%s", err);
    *out = doc;
    return XV_BI_OK;
}

const struct xv_builtin_def xv_bi_graphql[] = {
    {"graphql.parse_query", 1, bi_gql_parse_query, 0},
    {"graphql.parse_schema", 1, bi_gql_parse_schema, 0},
    {NULL, 0, NULL, 0},
};
