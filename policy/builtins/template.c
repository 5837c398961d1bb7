/*
 * builtins/template.c — strings.render_template: the commonly used subset of
 * Go's text/template over Rego values.
 *
 * Supported: text, {{pipeline}}, trim markers {{- -}}, comments (slash-star
 * inside braces),
 * fields .a.b, $, $var and $var.field, string/number/bool literals,
 * {{if}} / {{else if}} / {{else}} / {{end}}, {{range}} (arrays, sets,
 * objects in key order, with "$i, $v :=" or "$v :=") with {{else}},
 * {{with}}, {{$x := ...}} / {{$x = ...}}, and the functions len, index,
 * eq, ne, lt, le, gt, ge, and, or, not, print, printf. A missing key
 * prints "<undefined>", as OPA renders it. Values print as Go's %v prints
 * the JSON-decoded value ("[a b]", "map[k:v]", "<nil>").
 *
 * Invariant: rendering output is bounded (XV_VAL_BUF_MAX) and nesting is
 * bounded (64), so a hostile template cannot exhaust memory or stack.
 * Thread safety: reentrant.
 */
#include "builtins/helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(v) XV_STR(v)
#define SL(v) XV_STRLEN(v)
#define MAXVARS 32
#define MAXDEPTH 64

/* "undefined" is a distinct marker value (never a real Rego value) */
static struct xv_value undef_marker;
#define UNDEF (&undef_marker)

struct var {
    char name[32];          /* "$x" without the '$' ("" for $) */
    struct xv_value *val;   /* owned reference */
};

struct tctx {
    const char *s;          /* template */
    size_t n;               /* its length */
    size_t pos;             /* parse position */
    struct xv_val_buf out;   /* rendered text */
    struct var vars[MAXVARS];
    int nvars;
    char err[256];          /* first error */
    int depth;
};

static void fail(struct tctx *t, const char *msg)
{
    if (!t->err[0])
        snprintf(t->err, sizeof t->err, "template: template:%s", msg);
}

static void print_value(struct xv_val_buf *b, const struct xv_value *v)
{
    if (v == UNDEF) {
        xv_val_buf_adds(b, "<undefined>");
        return;
    }
    switch (XV_TYPE(v)) {
    case XV_T_NULL: xv_val_buf_adds(b, "<nil>"); break;
    case XV_T_STRING: xv_val_buf_add(b, S(v), SL(v)); break;
    case XV_T_ARRAY: case XV_T_SET:
        xv_val_buf_addc(b, '[');
        for (size_t i = 0; i < v->u.arr.len; i++) {
            if (i)
                xv_val_buf_addc(b, ' ');
            print_value(b, v->u.arr.items[i]);
        }
        xv_val_buf_addc(b, ']');
        break;
    case XV_T_OBJECT:
        xv_val_buf_adds(b, "map[");
        for (size_t i = 0; i < XV_OBJ_LEN(v); i++) {
            if (i)
                xv_val_buf_addc(b, ' ');
            print_value(b, XV_OBJ_KEY(v, i));
            xv_val_buf_addc(b, ':');
            print_value(b, XV_OBJ_VAL(v, i));
        }
        xv_val_buf_addc(b, ']');
        break;
    default:
        xv_bi_rego_text(b, v);
    }
}

static bool truthy(const struct xv_value *v)
{
    if (!v || v == UNDEF)
        return false;
    switch (XV_TYPE(v)) {
    case XV_T_NULL: return false;
    case XV_T_BOOL: return XV_BOOLV(v);
    case XV_T_NUMBER: return xv_val_number_get_double(v) != 0;
    case XV_T_STRING: return SL(v) > 0;
    case XV_T_OBJECT: return XV_OBJ_LEN(v) > 0;
    default: return v->u.arr.len > 0;
    }
}

static struct xv_value *ref(struct xv_value *v)
{
    return v == UNDEF ? UNDEF : xv_val_incref(v);
}

static void unref(struct xv_value *v)
{
    if (v && v != UNDEF)
        xv_val_decref(v);
}

static struct xv_value *lookup_var(struct tctx *t, const char *name)
{
    for (int i = t->nvars - 1; i >= 0; i--)
        if (strcmp(t->vars[i].name, name) == 0)
            return t->vars[i].val;
    return NULL;
}

static void set_var(struct tctx *t, const char *name, struct xv_value *v, bool declare)
{
    if (!declare)
        for (int i = t->nvars - 1; i >= 0; i--)
            if (strcmp(t->vars[i].name, name) == 0) {
                unref(t->vars[i].val);
                t->vars[i].val = ref(v);
                return;
            }
    if (t->nvars >= MAXVARS) {
        fail(t, "too many variables");
        return;
    }
    snprintf(t->vars[t->nvars].name, sizeof t->vars[0].name, "%s", name);
    t->vars[t->nvars++].val = ref(v);
}

static void pop_vars(struct tctx *t, int to)
{
    while (t->nvars > to)
        unref(t->vars[--t->nvars].val);
}

/* ---- action lexing: an action's text is act[0..an) ---- */

struct lex {
    const char *p, *e;   /* remaining action text */
};

static void skip_ws(struct lex *l)
{
    while (l->p < l->e && (*l->p == ' ' || *l->p == '\t' || *l->p == '\n' || *l->p == '\r'))
        l->p++;
}

static bool ident_ch(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static struct xv_value *field_chain(struct tctx *t, struct xv_value *base, struct lex *l)
{
    struct xv_value *cur = ref(base);
    while (l->p < l->e && *l->p == '.' && l->p + 1 < l->e && ident_ch(l->p[1])) {
        l->p++;
        const char *st = l->p;
        while (l->p < l->e && ident_ch(*l->p))
            l->p++;
        struct xv_value *next = UNDEF;
        if (cur != UNDEF && XV_IS(cur, XV_T_OBJECT)) {
            long at = xv_val_object_find_str(cur, st, (size_t)(l->p - st));
            if (at >= 0)
                next = XV_OBJ_VAL(cur, at);
        }
        struct xv_value *nr = ref(next);
        unref(cur);
        cur = nr;
    }
    (void)t;
    return cur;
}

static struct xv_value *eval_pipeline(struct tctx *t, struct lex *l, struct xv_value *dot);

/* One operand: (pipeline), literal, field, variable. NULL at the end. */
/* printf: Go's fmt.Sprintf over the template's values (numbers as int or
 * float, strings as strings, anything else printed as the template would). */
static struct xv_value *tmpl_printf(struct xv_value **args, int na)
{
    struct xv_value *r;
    struct xv_go_fmt_arg fa[16];
    char *owned[16] = {0};
    for (int i = 1; i < na; i++) {
        int64_t iv;
        const struct xv_value *x = args[i];
        memset(&fa[i - 1], 0, sizeof fa[0]);
        if (x != UNDEF && XV_IS(x, XV_T_STRING)) {
            fa[i - 1].kind = XV_GO_FMT_STRING;
            fa[i - 1].s = S(x);
            fa[i - 1].slen = SL(x);
        } else if (x != UNDEF && XV_IS(x, XV_T_NUMBER) && xv_val_number_get_int64(x, &iv) == 0) {
            fa[i - 1].kind = XV_GO_FMT_INT;
            fa[i - 1].i = iv;
        } else if (x != UNDEF && XV_IS(x, XV_T_NUMBER)) {
            fa[i - 1].kind = XV_GO_FMT_FLOAT;
            fa[i - 1].f = xv_val_number_get_double(x);
        } else {
            struct xv_val_buf b = {0};
            print_value(&b, x);
            owned[i] = xv_val_buf_take(&b, &fa[i - 1].slen);
            fa[i - 1].kind = XV_GO_FMT_STRING;
            fa[i - 1].s = owned[i] ? owned[i] : "";
        }
    }
    size_t len;
    char *s = xv_go_fmt_sprintf(S(args[0]), SL(args[0]), fa, (size_t)(na - 1), &len);
    r = s ? xv_val_string(s, len) : UNDEF;
    free(s);
    for (int i = 0; i < 16; i++)
        free(owned[i]);
    return r;
}

/* A template function (len, index, eq/ne, lt/le/gt/ge, not, and/or,
 * print, printf) applied to its evaluated arguments. New reference or UNDEF. */
static struct xv_value *call_func(struct tctx *t, const char *fn, struct xv_value **args, int na)
{
    struct xv_value *r = UNDEF;
    if (strcmp(fn, "len") == 0 && na == 1 && args[0] != UNDEF) {
        const struct xv_value *x = args[0];
        r = xv_val_int(XV_IS(x, XV_T_STRING) ? (int64_t)SL(x)
                   : XV_IS(x, XV_T_OBJECT) ? (int64_t)XV_OBJ_LEN(x)
                   : (XV_IS(x, XV_T_ARRAY) || XV_IS(x, XV_T_SET)) ? (int64_t)x->u.arr.len : 0);
    } else if (strcmp(fn, "index") == 0 && na >= 2) {
        struct xv_value *cur = ref(args[0]);
        for (int i = 1; i < na && cur != UNDEF; i++) {
            struct xv_value *next = UNDEF;
            int64_t ix;
            if (XV_IS(cur, XV_T_OBJECT)) {
                long at = xv_val_object_find(cur, args[i]);
                if (at >= 0)
                    next = XV_OBJ_VAL(cur, at);
            } else if (XV_IS(cur, XV_T_ARRAY) && XV_IS(args[i], XV_T_NUMBER) &&
                       xv_val_number_get_int64(args[i], &ix) == 0 && ix >= 0 &&
                       (size_t)ix < XV_ARR_LEN(cur)) {
                next = XV_ARR_ITEM(cur, ix);
            }
            struct xv_value *nr = ref(next);
            unref(cur);
            cur = nr;
        }
        r = cur;
    } else if ((strcmp(fn, "eq") == 0 || strcmp(fn, "ne") == 0) && na >= 2) {
        bool eq = false;
        for (int i = 1; i < na && !eq; i++)
            eq = args[0] != UNDEF && args[i] != UNDEF && xv_val_equal(args[0], args[i]);
        r = xv_val_bool(fn[0] == 'e' ? eq : !eq);
    } else if ((strcmp(fn, "lt") == 0 || strcmp(fn, "le") == 0 || strcmp(fn, "gt") == 0 ||
                strcmp(fn, "ge") == 0) && na == 2 && args[0] != UNDEF && args[1] != UNDEF) {
        int c2 = xv_val_compare(args[0], args[1]);
        r = xv_val_bool(fn[0] == 'l' ? (fn[1] == 't' ? c2 < 0 : c2 <= 0)
                                 : (fn[1] == 't' ? c2 > 0 : c2 >= 0));
    } else if (strcmp(fn, "not") == 0 && na == 1) {
        r = xv_val_bool(!truthy(args[0]));
    } else if ((strcmp(fn, "and") == 0 || strcmp(fn, "or") == 0) && na >= 1) {
        int pick = na - 1;
        for (int i = 0; i < na; i++)
            if (fn[0] == 'a' ? !truthy(args[i]) : truthy(args[i])) {
                pick = i;
                break;
            }
        r = ref(args[pick]);
    } else if (strcmp(fn, "print") == 0) {
        struct xv_val_buf b = {0};
        for (int i = 0; i < na; i++) {
            /* Go's Sprint: spaces only between non-string operands */
            if (i && !XV_IS(args[i], XV_T_STRING) && !XV_IS(args[i - 1], XV_T_STRING))
                xv_val_buf_addc(&b, ' ');
            print_value(&b, args[i]);
        }
        size_t len;
        char *s = xv_val_buf_take(&b, &len);
        r = s ? xv_val_string(s, len) : UNDEF;
        free(s);
    } else if (strcmp(fn, "printf") == 0 && na >= 1 && XV_IS(args[0], XV_T_STRING)) {
        r = tmpl_printf(args, na);
    } else {
        fail(t, " function not defined or wrong arguments");
    }
    return r;
}

static struct xv_value *operand(struct tctx *t, struct lex *l, struct xv_value *dot)
{
    skip_ws(l);
    if (l->p >= l->e || *l->p == ')' || *l->p == '|')
        return NULL;
    char c = *l->p;
    if (c == '(') {
        l->p++;
        struct xv_value *v = eval_pipeline(t, l, dot);
        skip_ws(l);
        if (l->p < l->e && *l->p == ')')
            l->p++;
        else
            fail(t, " unclosed left paren");
        if (!v)
            return UNDEF;
        struct xv_value *r = field_chain(t, v, l);
        unref(v);
        return r;
    }
    if (c == '.') {
        if (l->p + 1 < l->e && ident_ch(l->p[1]))
            return field_chain(t, dot, l);
        l->p++;
        return field_chain(t, dot, l);
    }
    if (c == '$') {
        l->p++;
        const char *st = l->p;
        while (l->p < l->e && ident_ch(*l->p))
            l->p++;
        char name[32];
        snprintf(name, sizeof name, "%.*s", (int)(l->p - st), st);
        struct xv_value *v = lookup_var(t, name);
        if (!v) {
            fail(t, " undefined variable");
            return UNDEF;
        }
        return field_chain(t, v, l);
    }
    if (c == '"' || c == '`') {
        const char *st = ++l->p;
        while (l->p < l->e && *l->p != c) {
            if (c == '"' && *l->p == '\\' && l->p + 1 < l->e)
                l->p++;
            l->p++;
        }
        struct xv_value *v;
        if (c == '"') {
            /* the JSON string parser handles Go's common escapes */
            char err[64];
            if (xv_val_json_parse(st - 1, (size_t)(l->p - st + 2), &v, err, sizeof err) || !v)
                v = xv_val_string(st, (size_t)(l->p - st));
        } else {
            v = xv_val_string(st, (size_t)(l->p - st));
        }
        if (l->p < l->e)
            l->p++;
        return v ? v : UNDEF;
    }
    if ((c >= '0' && c <= '9') || c == '-') {
        const char *st = l->p++;
        while (l->p < l->e && strchr("0123456789.eE+-", *l->p))
            l->p++;
        struct xv_value *v = xv_val_number_parse(st, (size_t)(l->p - st));
        return v ? v : UNDEF;
    }
    const char *st = l->p;
    while (l->p < l->e && ident_ch(*l->p))
        l->p++;
    size_t wl = (size_t)(l->p - st);
    if (wl == 4 && memcmp(st, "true", 4) == 0)
        return xv_val_bool(1);
    if (wl == 5 && memcmp(st, "false", 5) == 0)
        return xv_val_bool(0);
    if (wl == 3 && memcmp(st, "nil", 3) == 0)
        return xv_val_null();
    if (wl == 0) {
        fail(t, " unexpected character in command");
        l->p = l->e;
        return UNDEF;
    }
    /* a function call: name followed by its arguments up to | or ) */
    char fn[16];
    snprintf(fn, sizeof fn, "%.*s", (int)(wl < 15 ? wl : 15), st);
    struct xv_value *args[16];
    int na = 0;
    struct xv_value *v;
    while (na < 16 && (v = operand(t, l, dot)) != NULL)
        args[na++] = v;
    struct xv_value *r = call_func(t, fn, args, na);
    for (int i = 0; i < na; i++)
        unref(args[i]);
    return r ? r : UNDEF;
}

/* A pipeline: command ( '|' command )*, the previous result becoming the
 * last argument of the next command (only function commands use it here). */
static struct xv_value *eval_pipeline(struct tctx *t, struct lex *l, struct xv_value *dot)
{
    struct xv_value *v = operand(t, l, dot);
    skip_ws(l);
    while (v && l->p < l->e && *l->p == '|') {
        l->p++;
        /* evaluate "fn args... prev" by splicing: only printf/print/len/not
         * are meaningful here; treat as fn(args, prev) */
        skip_ws(l);
        const char *st = l->p;
        while (l->p < l->e && ident_ch(*l->p))
            l->p++;
        char fn[16];
        snprintf(fn, sizeof fn, "%.*s", (int)(l->p - st < 15 ? l->p - st : 15), st);
        struct xv_value *r = UNDEF;
        if (strcmp(fn, "len") == 0 && v != UNDEF)
            r = xv_val_int(XV_IS(v, XV_T_STRING) ? (int64_t)SL(v)
                       : XV_IS(v, XV_T_OBJECT) ? (int64_t)XV_OBJ_LEN(v)
                       : (XV_IS(v, XV_T_ARRAY) || XV_IS(v, XV_T_SET)) ? (int64_t)v->u.arr.len : 0);
        else if (strcmp(fn, "not") == 0)
            r = xv_val_bool(!truthy(v));
        else if (strcmp(fn, "print") == 0)
            r = ref(v);
        else
            fail(t, " unsupported pipeline command");
        unref(v);
        v = r;
        while (l->p < l->e && *l->p != '|' && *l->p != ')')
            l->p++;
    }
    return v;
}

/* ---- template structure ---- */

/* Find the next action from pos: sets text span [pos, ts) (after trim) and
 * the action span; returns false at the end of the template. */
static bool next_action(struct tctx *t, size_t *text_end, const char **act, size_t *an,
                        size_t *after)
{
    const char *s = t->s;
    const char *o = memmem(s + t->pos, t->n - t->pos, "{{", 2);
    if (!o) {
        *text_end = t->n;
        *after = t->n;
        return false;
    }
    size_t st = (size_t)(o - s) + 2, te = (size_t)(o - s);
    bool ltrim = st + 1 < t->n && s[st] == '-' && (s[st + 1] == ' ' || s[st + 1] == '\t' ||
                                                   s[st + 1] == '\n' || s[st + 1] == '\r');
    if (ltrim) {
        st += 2;
        while (te > t->pos && strchr(" \t\r\n", s[te - 1]))
            te--;
    }
    const char *c = memmem(s + st, t->n - st, "}}", 2);
    if (!c) {
        fail(t, " unclosed action");
        *text_end = te;
        *after = t->n;
        return false;
    }
    size_t ae = (size_t)(c - s), nx = ae + 2;
    if (ae >= st + 2 && s[ae - 1] == '-' && strchr(" \t\r\n", s[ae - 2])) {
        ae -= 2;
        while (nx < t->n && strchr(" \t\r\n", s[nx]))
            nx++;
    }
    *text_end = te;
    *act = s + st;
    *an = ae > st ? ae - st : 0;
    *after = nx;
    return true;
}

enum stop { STOP_EOF, STOP_END, STOP_ELSE };

/* Render (or skip, when !emit) until {{end}} / {{else...}} / EOF. For
 * STOP_ELSE, *else_rest points at what follows "else" in the action. */
static enum stop run(struct tctx *t, struct xv_value *dot, bool emit, const char **else_rest,
                     size_t *else_len);

static bool word(const char **p, const char *e, const char *w)
{
    size_t k = strlen(w);
    if ((size_t)(e - *p) >= k && memcmp(*p, w, k) == 0 &&
        ((size_t)(e - *p) == k || !ident_ch((*p)[k]))) {
        *p += k;
        return true;
    }
    return false;
}

static void do_if(struct tctx *t, struct xv_value *dot, bool emit, struct lex *l, bool with)
{
    bool done = false;
    for (;;) {
        struct xv_value *v = emit && !done ? eval_pipeline(t, l, dot) : NULL;
        bool take = emit && !done && truthy(v);
        const char *er;
        size_t el;
        enum stop st = run(t, with && take ? v : dot, take, &er, &el);
        unref(v);
        if (take)
            done = true;
        if (st != STOP_ELSE)
            return;
        struct lex l2 = {er, er + el};
        skip_ws(&l2);
        if (word(&l2.p, l2.e, "if") || (with && word(&l2.p, l2.e, "with"))) {
            *l = l2;
            continue;
        }
        /* plain else */
        enum stop s2 = run(t, dot, emit && !done, &er, &el);
        if (s2 == STOP_ELSE)
            fail(t, " expected end; found else");
        return;
    }
}

static void do_range(struct tctx *t, struct xv_value *dot, bool emit, struct lex *l)
{
    char v1[32] = "", v2[32] = "";
    int nv = 0;
    const char *save = l->p;
    skip_ws(l);
    if (l->p < l->e && *l->p == '$') {
        const char *p = l->p + 1, *st = p;
        while (p < l->e && ident_ch(*p))
            p++;
        snprintf(v1, sizeof v1, "%.*s", (int)(p - st), st);
        while (p < l->e && *p == ' ')
            p++;
        if (p < l->e && *p == ',') {
            p++;
            while (p < l->e && *p == ' ')
                p++;
            if (p < l->e && *p == '$') {
                st = ++p;
                while (p < l->e && ident_ch(*p))
                    p++;
                snprintf(v2, sizeof v2, "%.*s", (int)(p - st), st);
                nv = 2;
            }
            while (p < l->e && *p == ' ')
                p++;
        } else {
            nv = 1;
        }
        if (p + 1 < l->e && p[0] == ':' && p[1] == '=') {
            l->p = p + 2;
        } else {
            nv = 0;
            l->p = save;
        }
    }
    struct xv_value *coll = emit ? eval_pipeline(t, l, dot) : NULL;
    size_t body = t->pos;
    size_t cnt = 0;
    if (emit && coll && coll != UNDEF)
        cnt = XV_IS(coll, XV_T_OBJECT) ? XV_OBJ_LEN(coll)
              : (XV_IS(coll, XV_T_ARRAY) || XV_IS(coll, XV_T_SET)) ? coll->u.arr.len : 0;
    const char *er;
    size_t el;
    if (cnt == 0) {
        enum stop st = run(t, dot, false, &er, &el);
        if (st == STOP_ELSE && run(t, dot, emit, &er, &el) == STOP_ELSE)
            fail(t, " expected end; found else");
        unref(coll);
        return;
    }
    enum stop st = STOP_END;
    for (size_t i = 0; i < cnt && !t->err[0]; i++) {
        t->pos = body;
        int mark = t->nvars;
        struct xv_value *key, *val;
        bool obj = XV_IS(coll, XV_T_OBJECT);
        key = obj ? XV_OBJ_KEY(coll, i) : xv_val_int((int64_t)i);
        val = obj ? XV_OBJ_VAL(coll, i) : coll->u.arr.items[i];
        if (nv == 1)
            set_var(t, v1, val, true);
        else if (nv == 2) {
            set_var(t, v1, key, true);
            set_var(t, v2, val, true);
        }
        if (!obj)
            xv_val_decref(key);
        st = run(t, val, true, &er, &el);
        pop_vars(t, mark);
    }
    if (st == STOP_ELSE)
        run(t, dot, false, &er, &el);   /* skip the else branch */
    unref(coll);
}

static enum stop run(struct tctx *t, struct xv_value *dot, bool emit, const char **else_rest,
                     size_t *else_len)
{
    if (++t->depth > MAXDEPTH) {
        fail(t, " nesting too deep");
        t->depth--;
        return STOP_EOF;
    }
    int mark = t->nvars;
    enum stop result = STOP_EOF;
    while (!t->err[0]) {
        size_t te, an, after;
        const char *act;
        bool more = next_action(t, &te, &act, &an, &after);
        if (emit)
            xv_val_buf_add(&t->out, t->s + t->pos, te - t->pos);
        t->pos = after;
        if (!more)
            break;
        struct lex l = {act, act + an};
        skip_ws(&l);
        if (l.p + 1 < l.e && l.p[0] == '/' && l.p[1] == '*')
            continue;   /* comment */
        if (word(&l.p, l.e, "end")) {
            result = STOP_END;
            break;
        }
        if (word(&l.p, l.e, "else")) {
            *else_rest = l.p;
            *else_len = (size_t)(l.e - l.p);
            result = STOP_ELSE;
            break;
        }
        if (word(&l.p, l.e, "if")) {
            do_if(t, dot, emit, &l, false);
            continue;
        }
        if (word(&l.p, l.e, "with")) {
            do_if(t, dot, emit, &l, true);
            continue;
        }
        if (word(&l.p, l.e, "range")) {
            do_range(t, dot, emit, &l);
            continue;
        }
        if (word(&l.p, l.e, "define") || word(&l.p, l.e, "template") || word(&l.p, l.e, "block")) {
            fail(t, " define/template/block are not supported");
            break;
        }
        /* variable declaration or assignment */
        const char *p = l.p;
        if (p < l.e && *p == '$') {
            const char *st = ++p;
            while (p < l.e && ident_ch(*p))
                p++;
            const char *ne = p;
            while (p < l.e && *p == ' ')
                p++;
            bool decl = p + 1 < l.e && p[0] == ':' && p[1] == '=';
            bool asg = p < l.e && p[0] == '=' && !(p + 1 < l.e && p[1] == '=');
            if (decl || asg) {
                char name[32];
                snprintf(name, sizeof name, "%.*s", (int)(ne - st), st);
                l.p = p + (decl ? 2 : 1);
                if (emit) {
                    struct xv_value *v = eval_pipeline(t, &l, dot);
                    set_var(t, name, v ? v : UNDEF, decl);
                    unref(v);
                }
                continue;
            }
        }
        if (emit) {
            struct xv_value *v = eval_pipeline(t, &l, dot);
            if (v)
                print_value(&t->out, v);
            unref(v);
        }
    }
    if (result != STOP_ELSE)
        pop_vars(t, mark);
    t->depth--;
    return result;
}

BI_FN(bi_render_template)
{
    if (xv_bi_want(ctx, a, 1, XV_T_STRING) || xv_bi_want(ctx, a, 2, XV_T_OBJECT))
        return XV_BI_ERROR;
    struct tctx t = {0};
    t.s = S(a[0]);
    t.n = SL(a[0]);
    set_var(&t, "", a[1], true);
    const char *er;
    size_t el;
    enum stop st = run(&t, a[1], true, &er, &el);
    if (!t.err[0] && st != STOP_EOF)
        fail(&t, st == STOP_END ? " unexpected {{end}}" : " unexpected {{else}}");
    pop_vars(&t, 0);
    if (t.err[0]) {
        xv_val_buf_free(&t.out);
        return xv_bi_error(ctx, "%s", t.err);
    }
    xv_val_buf_add(&t.out, "", 0);
    return xv_bi_ret_buf(ctx, &t.out, out);
}

const struct xv_builtin_def xv_bi_template[] = {
    {"strings.render_template", 2, bi_render_template, 0},
    {NULL, 0, NULL, 0},
};
