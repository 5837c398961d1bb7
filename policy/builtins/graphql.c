/*
 * builtins/graphql.c — graphql.parse_query, graphql.parse_schema: a GraphQL
 * (October 2021 spec) lexer and parser producing the AST objects OPA
 * returns (vektah/gqlparser's AST with null fields and positions dropped),
 * with gqlparser's error texts ("Expected Name, found <EOF>", "Unexpected
 * Name \"on\"", "expected at least one definition, found }") and locations.
 * The lexer is builtins/graphql_lex.c; the validating builtins live in
 * builtins/graphql_schema.c.
 *
 * Invariant: parsing is recursive descent with a depth bound
 * (GQL_MAX_DEPTH), so hostile documents cannot exhaust the stack.
 * Thread safety: reentrant.
 */
#include "builtins/graphql.h"
#include "builtins/graphql_lex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GQL_MAX_DEPTH 200

static struct tok *peek(struct gp *g)
{
    if (!g->have) {
        xv_bi_gql_lex(g, &g->cur);
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
        xv_bi_gql_tok_free(&g->cur);
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
        snprintf(buf, n, "%s \"%.*s\"", xv_bi_gql_tk_names[t->kind], (int)(t->vlen > 100 ? 100 : t->vlen),
                 t->val ? t->val : "");
    else
        snprintf(buf, n, "%s", xv_bi_gql_tk_names[t->kind]);
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
        snprintf(m, sizeof m, "Expected %s, found %s", xv_bi_gql_tk_names[k], d);
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
        xv_val_object_set_str(o, k, v);
    xv_val_decref(v);
}

static void set_s(struct xv_value *o, const char *k, const char *s)
{
    set(o, k, xv_val_cstring(s ? s : ""));
}

static void set_list(struct xv_value *o, const char *k, struct xv_value *arr)
{
    /* gqlparser leaves empty lists nil, which OPA drops */
    if (arr && XV_ARR_LEN(arr) > 0)
        set(o, k, arr);
    else
        xv_val_decref(arr);
}

static void push(struct xv_value *arr, struct xv_value *v)
{
    if (arr && v)
        xv_val_array_push(arr, v);
    xv_val_decref(v);
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
    struct xv_value *o = xv_val_object_new(4);
    set(o, "Kind", xv_val_int(kind));
    set(o, "Raw", xv_val_string(raw ? raw : "", raw ? rl : 0));
    set(o, "ExpectedTypeHasDefault", xv_val_bool(0));
    return o;
}

/* A GraphQL value (variable, number, string, block string, boolean, null,
 * enum, list, object) as gqlparser's {Kind, Raw, Children} object; isconst
 * refuses variables (default values, schema documents). */
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
        struct xv_value *kids = xv_val_array_new(2);
        while (!g->err[0] && !skip(g, T_BRACKET_R)) {
            if (peek(g)->kind == T_EOF) {
                unexpected(g);
                break;
            }
            struct xv_value *c = xv_val_object_new(2);
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
        struct xv_value *kids = xv_val_array_new(2);
        while (!g->err[0] && !skip(g, T_BRACE_R)) {
            char *name = parse_name(g);
            if (!name || !expect(g, T_COLON, NULL)) {
                free(name);
                break;
            }
            struct xv_value *c = xv_val_object_new(2);
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
        xv_bi_gql_tok_free(&tk);
        break;
    }
    case T_NAME: {
        struct tok tk;
        take(g, &tk);
        int kind = (strcmp(tk.val, "true") == 0 || strcmp(tk.val, "false") == 0) ? GQL_BOOLEAN
                   : strcmp(tk.val, "null") == 0 ? GQL_NULL : GQL_ENUM;
        v = value_node(kind, tk.val, tk.vlen);
        xv_bi_gql_tok_free(&tk);
        break;
    }
    default:
        unexpected(g);
    }
    g->depth--;
    return v;
}

/* A type reference: Name, [Type] and the non-null `!` on either. */
static struct xv_value *parse_type(struct gp *g)
{
    if (++g->depth > GQL_MAX_DEPTH) {
        errorf_at(g, peek(g), "document nests too deeply");
        g->depth--;
        return NULL;
    }
    struct xv_value *t = xv_val_object_new(3);
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
    set(t, "NonNull", xv_val_bool(skip(g, T_BANG)));
    g->depth--;
    return t;
}

/* (name: value, …) of a field or directive. */
static struct xv_value *parse_arguments(struct gp *g, bool isconst)
{
    struct xv_value *arr = xv_val_array_new(2);
    if (!skip(g, T_PAREN_L))
        return arr;
    do {
        char *name = parse_name(g);
        if (!name || !expect(g, T_COLON, NULL)) {
            free(name);
            break;
        }
        struct xv_value *a = xv_val_object_new(2);
        set_s(a, "Name", name);
        free(name);
        set(a, "Value", parse_value(g, isconst));
        push(arr, a);
    } while (!g->err[0] && !skip(g, T_PAREN_R));
    return arr;
}

/* @name(args) directives, as many as follow. */
static struct xv_value *parse_directives(struct gp *g, bool isconst)
{
    struct xv_value *arr = xv_val_array_new(1);
    while (!g->err[0] && peek(g)->kind == T_AT) {
        take(g, NULL);
        char *name = parse_name(g);
        struct xv_value *d = xv_val_object_new(3);
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

/* One selection: a field (alias, arguments, directives, sub-selection),
 * a fragment spread (...Name) or an inline fragment (... on Type { }). */
static struct xv_value *parse_selection(struct gp *g)
{
    if (skip(g, T_SPREAD)) {
        if (peek(g)->kind == T_NAME && !is_kw(g, "on")) {
            struct xv_value *s = xv_val_object_new(2);
            char *name = parse_name(g);
            set_s(s, "Name", name);
            free(name);
            set_list(s, "Directives", parse_directives(g, false));
            return s;
        }
        struct xv_value *s = xv_val_object_new(3);
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
    struct xv_value *f = xv_val_object_new(5);
    if (g->keep_pos) {
        struct xv_value *pos = xv_val_array_new(2);
        push(pos, xv_val_int(peek(g)->line));
        push(pos, xv_val_int(peek(g)->col));
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

/* { selection … }, depth-bounded. */
static struct xv_value *parse_selection_set(struct gp *g)
{
    struct xv_value *arr = xv_val_array_new(2);
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

/* ($var: Type = default @directives, …) of an operation. */
static struct xv_value *parse_variable_definitions(struct gp *g)
{
    struct xv_value *arr = xv_val_array_new(1);
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
        struct xv_value *v = xv_val_object_new(5);
        set_s(v, "Variable", name);
        free(name);
        set(v, "Type", parse_type(g));
        if (skip(g, T_EQUALS))
            set(v, "DefaultValue", parse_value(g, true));
        set_list(v, "Directives", parse_directives(g, true));
        set(v, "Used", xv_val_bool(0));
        push(arr, v);
    } while (!g->err[0] && !skip(g, T_PAREN_R));
    return arr;
}

/* An executable document: operations (query, mutation, subscription, or
 * a bare selection set) and fragments, as OPA's graphql.parse_query shapes
 * it. */
struct xv_value *xv_bi_gql_parse_query(const char *s, size_t n, bool keep_pos, char *err,
                                              size_t errlen)
{
    struct gp g = {.s = s, .n = n, .line = 1, .keep_pos = keep_pos};
    struct xv_value *ops = xv_val_array_new(1), *frags = xv_val_array_new(1);
    while (!g.err[0] && peek(&g)->kind != T_EOF) {
        if (peek(&g)->kind == T_BRACE_L) {
            struct xv_value *op = xv_val_object_new(3);
            set_s(op, "Operation", "query");
            set_s(op, "Name", "");
            set_list(op, "SelectionSet", parse_selection_set(&g));
            push(ops, op);
            continue;
        }
        if (is_kw(&g, "query") || is_kw(&g, "mutation") || is_kw(&g, "subscription")) {
            struct xv_value *op = xv_val_object_new(5);
            struct tok t;
            take(&g, &t);
            set_s(op, "Operation", t.val);
            xv_bi_gql_tok_free(&t);
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
            struct xv_value *fr = xv_val_object_new(5);
            if (is_kw(&g, "on")) {
                unexpected(&g);
                xv_val_decref(fr);
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
        xv_bi_gql_tok_free(&g.cur);
    if (g.err[0]) {
        snprintf(err, errlen, "%s", g.err);
        xv_val_decref(ops);
        xv_val_decref(frags);
        return NULL;
    }
    struct xv_value *doc = xv_val_object_new(2);
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

/* An argument or input field definition: description, name, type,
 * default, directives. */
static struct xv_value *parse_input_value_def(struct gp *g)
{
    char *desc = parse_description(g);
    char *name = parse_name(g);
    struct xv_value *a = xv_val_object_new(5);
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
    struct xv_value *arr = xv_val_array_new(2);
    if (!skip(g, T_PAREN_L))
        return arr;
    do
        push(arr, parse_input_value_def(g));
    while (!g->err[0] && !skip(g, T_PAREN_R));
    return arr;
}

/* { field(args): Type @directives … } of an object or interface type. */
static struct xv_value *parse_fields_def(struct gp *g)
{
    struct xv_value *arr = xv_val_array_new(2);
    if (peek(g)->kind != T_BRACE_L)
        return arr;
    if (!some_open(g, T_BRACE_L, T_BRACE_R))
        return arr;
    while (!g->err[0] && !skip(g, T_BRACE_R)) {
        char *desc = parse_description(g);
        char *name = parse_name(g);
        struct xv_value *f = xv_val_object_new(5);
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
    struct xv_value *arr = xv_val_array_new(2);
    if (peek(g)->kind != T_BRACE_L)
        return arr;
    if (!some_open(g, T_BRACE_L, T_BRACE_R))
        return arr;
    while (!g->err[0] && !skip(g, T_BRACE_R))
        push(arr, parse_input_value_def(g));
    return arr;
}

/* implements A & B (a leading & allowed). */
static struct xv_value *parse_implements(struct gp *g)
{
    struct xv_value *arr = xv_val_array_new(1);
    if (!is_kw(g, "implements"))
        return arr;
    take(g, NULL);
    skip(g, T_AMP);
    do {
        char *n = parse_name(g);
        if (n)
            push(arr, xv_val_cstring(n));
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
    struct xv_value *d = xv_val_object_new(8);
    set_s(d, "Kind", kind);
    set_s(d, "Description", desc);
    char *name = parse_name(g);
    set_s(d, "Name", name);
    free(name);
    set(d, "BuiltIn", xv_val_bool(0));
    bool any = false;
    if (strcmp(kind, "OBJECT") == 0 || strcmp(kind, "INTERFACE") == 0) {
        struct xv_value *impl = parse_implements(g), *dirs = parse_directives(g, true);
        struct xv_value *fields = parse_fields_def(g);
        any = XV_ARR_LEN(impl) || XV_ARR_LEN(dirs) || XV_ARR_LEN(fields);
        set_list(d, "Interfaces", impl);
        set_list(d, "Directives", dirs);
        set_list(d, "Fields", fields);
    } else if (strcmp(kind, "UNION") == 0) {
        struct xv_value *dirs = parse_directives(g, true), *types = xv_val_array_new(2);
        if (skip(g, T_EQUALS)) {
            skip(g, T_PIPE);
            do {
                char *n = parse_name(g);
                if (n)
                    push(types, xv_val_cstring(n));
                free(n);
            } while (!g->err[0] && skip(g, T_PIPE));
        }
        any = XV_ARR_LEN(dirs) || XV_ARR_LEN(types);
        set_list(d, "Directives", dirs);
        set_list(d, "Types", types);
    } else if (strcmp(kind, "ENUM") == 0) {
        struct xv_value *dirs = parse_directives(g, true), *vals = xv_val_array_new(2);
        if (peek(g)->kind == T_BRACE_L && some_open(g, T_BRACE_L, T_BRACE_R))
            while (!g->err[0] && !skip(g, T_BRACE_R)) {
                char *vd = parse_description(g);
                char *vn = parse_name(g);
                struct xv_value *ev = xv_val_object_new(3);
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

/* schema { query: Q mutation: M … } (or `extend schema`). */
static struct xv_value *parse_schema_def(struct gp *g, const char *desc, bool ext)
{
    struct xv_value *s = xv_val_object_new(3);
    set_s(s, "Description", desc);
    struct xv_value *dirs = parse_directives(g, true), *ops = xv_val_array_new(3);
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
                xv_bi_gql_tok_free(&t);
                break;
            }
            if (!expect(g, T_COLON, NULL)) {
                xv_bi_gql_tok_free(&t);
                break;
            }
            char *ty = parse_name(g);
            struct xv_value *o = xv_val_object_new(2);
            set_s(o, "Operation", t.val);
            set_s(o, "Type", ty);
            xv_bi_gql_tok_free(&t);
            free(ty);
            push(ops, o);
        }
    if (!braces && (!ext || XV_ARR_LEN(dirs) == 0) && !g->err[0])
        unexpected(g);
    set_list(s, "Directives", dirs);
    set_list(s, "OperationTypes", ops);
    return s;
}

/* A type-system document: schema, scalar, type, interface, union, enum,
 * input and directive definitions and their extensions, as OPA's
 * graphql.parse_schema shapes it. */
struct xv_value *xv_bi_gql_parse_schema(const char *s, size_t n, char *err, size_t errlen)
{
    struct gp g = {.s = s, .n = n, .line = 1};
    struct xv_value *defs = xv_val_array_new(4), *exts = xv_val_array_new(1), *schema = xv_val_array_new(1),
                    *schema_ext = xv_val_array_new(1), *dirs = xv_val_array_new(1);
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
            struct xv_value *d = xv_val_object_new(5);
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
            set(d, "IsRepeatable", xv_val_bool(rep));
            struct xv_value *locs = xv_val_array_new(2);
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
                        xv_bi_gql_tok_free(&t);
                        break;
                    }
                    push(locs, xv_val_cstring(t.val));
                    xv_bi_gql_tok_free(&t);
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
        xv_bi_gql_tok_free(&g.cur);
    if (g.err[0]) {
        snprintf(err, errlen, "%s", g.err);
        xv_val_decref(defs);
        xv_val_decref(exts);
        xv_val_decref(schema);
        xv_val_decref(schema_ext);
        xv_val_decref(dirs);
        return NULL;
    }
    struct xv_value *doc = xv_val_object_new(5);
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
